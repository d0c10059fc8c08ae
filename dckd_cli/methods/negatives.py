"""The degrading module D_j of the dynamic negative generator.

Strengths (the paper gives none) follow the released code: noise sigma ~ U[1, 30] / 255
per sample, grey noise with probability 0.5, clipped to [0, 1]; blur kernel 3-11 with
sigma 0.1-2. ``resize`` goes down by a random factor and back up (bicubic); ``mix`` picks
one of the three per negative. All randomness comes from the given generator.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from dckd_cli.methods.history_model import HistoryModel
from dckd_cli.settings.method import NegativeSettings


def _uniform(low: float, high: float, n: int, g: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def add_noise(x: torch.Tensor, cfg: NegativeSettings, g: torch.Generator) -> torch.Tensor:
    n, c, h, w = x.shape
    sigma = _uniform(*cfg.noise_sigma, n, g).div(255.0).view(n, 1, 1, 1)
    grey = (torch.rand(n, generator=g) < cfg.grey_prob).view(n, 1, 1, 1)
    colour_noise = torch.randn(n, c, h, w, generator=g)
    noise = torch.where(grey, colour_noise[:, :1].expand(n, c, h, w), colour_noise)
    return (x + (sigma * noise).to(x.device, x.dtype)).clamp(0, 1)


def gaussian_blur(x: torch.Tensor, cfg: NegativeSettings, g: torch.Generator) -> torch.Tensor:
    out = []
    low, high = cfg.blur_kernel
    for i in range(x.shape[0]):
        size = int(torch.randint(low // 2, high // 2 + 1, (), generator=g)) * 2 + 1
        sigma = float(_uniform(*cfg.blur_sigma, 1, g))
        axis = torch.arange(size, dtype=torch.float32) - size // 2
        k1 = torch.exp(-(axis**2) / (2 * sigma**2))
        kernel = (k1[:, None] * k1[None, :]) / k1.sum() ** 2
        kernel = kernel.to(x.device, x.dtype).expand(x.shape[1], 1, size, size)
        padded = F.pad(x[i : i + 1], (size // 2,) * 4, mode="reflect")
        out.append(F.conv2d(padded, kernel, groups=x.shape[1]))
    return torch.cat(out)


def down_up(x: torch.Tensor, cfg: NegativeSettings, g: torch.Generator) -> torch.Tensor:
    factor = float(_uniform(*cfg.resize_scale, 1, g))
    h, w = x.shape[-2:]
    small = F.interpolate(
        x, size=(max(1, round(h * factor)), max(1, round(w * factor))), mode="bicubic", align_corners=False
    )
    return F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


DEGRADATIONS = {"noise": add_noise, "blur": gaussian_blur, "resize": down_up}


def degrade(x: torch.Tensor, cfg: NegativeSettings, g: torch.Generator) -> torch.Tensor:
    kind = cfg.degradation
    if kind == "mix":
        kind = list(DEGRADATIONS)[int(torch.randint(len(DEGRADATIONS), (), generator=g))]
    return DEGRADATIONS[kind](x, cfg, g)


def negative_inputs(lq: torch.Tensor, cfg: NegativeSettings, g: torch.Generator) -> torch.Tensor:
    """``(K, N, C, H, W)``: the clean LQ (if ``include_clean``) and degraded copies, K = ``count``."""
    copies = [lq] if cfg.include_clean else []
    while len(copies) < cfg.count:
        copies.append(degrade(lq, cfg, g))
    return torch.stack(copies)


class HistoryNegatives:
    """The history model's restorations of K degraded copies of the LQ input, in one batched
    pass; the degradations draw from their own generator (``seed + 1``)."""

    def __init__(self, history: HistoryModel, cfg: NegativeSettings, seed: int):
        self.history, self.cfg = history, cfg
        self.generator = torch.Generator().manual_seed(seed + 1)

    def __call__(self, lq: torch.Tensor, positive: Callable[[], torch.Tensor]) -> torch.Tensor:
        inputs = negative_inputs(lq, self.cfg, self.generator)
        out = self.history(inputs.flatten(0, 1))
        return out.view(inputs.shape[0], lq.shape[0], *out.shape[1:])


class InBatchNegatives:
    """CSD-style fixed negatives: the teacher's restorations of the other images (shifts 1..K)."""

    def __init__(self, count: int):
        self.count = count

    def __call__(self, lq: torch.Tensor, positive: Callable[[], torch.Tensor]) -> torch.Tensor:
        out = positive()
        shifts = range(1, min(self.count, out.shape[0] - 1) + 1)
        return torch.stack([out.roll(s, dims=0) for s in shifts])
