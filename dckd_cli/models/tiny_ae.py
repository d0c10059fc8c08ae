"""Pretrained tiny-autoencoder encoders (the TAESD family) as DCKD feature encoders.

The family's encoders are plain ``nn.Sequential`` state dicts: 3x3 convolutions, residual
blocks of three 3x3 convolutions (``i.conv.{0,2,4}``, ReLU between, ReLU after the sum),
stride-2 convolutions between resolution levels, and a last convolution to the latent
channels. Some blocks (FLUX.2's ``taef2``) add a pre-residual 1x1 branch
``x + conv(relu(groupnorm(conv(x))))`` (``i.pool.{0,1,3}``). The layout is read from the
keys and shapes, so every member loads without naming it:

* a convolution without a bias, or any convolution before the first block of an encoder
  whose first convolution has 32 channels (the 32x variant, ``taesana``), has stride 2;
* a resolution level is a run of blocks between stride-2 convolutions; its tap is the
  output of its last block. ``taef2``: 4 levels (1, 1/2, 1/4, 1/8); ``taesana``: 4 levels
  (1/4, 1/8, 1/16, 1/32).

Inputs are RGB in [0, 1], as the family was trained. There is no codebook: DCKD's
distribution mapping (L_ce) needs one, so it refuses these encoders (``methods/method.py``).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from dckd_cli.errors import DckdError
from dckd_cli.models.segments import Segment, direct

GN_GROUPS = 4  # the pooled branch's group norm


class TinyAEError(DckdError):
    """A checkpoint that is not a tiny-autoencoder encoder."""


class _Block(nn.Module):
    def __init__(self, channels: int, pooled: bool):
        super().__init__()
        c = channels
        self.conv = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1),
        )
        self.pool = (
            nn.Sequential(
                nn.Conv2d(c, 4 * c, 1, bias=False),
                nn.GroupNorm(GN_GROUPS, 4 * c),
                nn.ReLU(),
                nn.Conv2d(4 * c, c, 1, bias=False),
            )
            if pooled
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return torch.relu(self.conv(x) + x)


def is_tiny_ae(state: dict[str, torch.Tensor]) -> bool:
    """Keys of an ``nn.Sequential`` with residual blocks (``1.conv.0.weight``...): this family."""
    return "0.weight" in state and any(re.fullmatch(r"\d+\.conv\.0\.weight", k) for k in state)


class TinyAEEncoder(nn.Module):
    """A frozen tiny-autoencoder encoder with taps at the end of each resolution level."""

    codebook = None  # no vector quantiser

    def __init__(self, state: dict[str, torch.Tensor]):
        super().__init__()
        if not is_tiny_ae(state):
            raise TinyAEError("not a tiny-autoencoder encoder: expected keys 0.weight, 1.conv.0.weight, ...")
        indices = sorted({int(k.split(".")[0]) for k in state})
        f32 = state["0.weight"].shape[0] == 32
        seen_block = False
        layers: list[nn.Module] = []
        self.level_ends: list[int] = []  # index in ``layers`` of each level's last block
        for i in range(indices[-1] + 1):
            if f"{i}.conv.0.weight" in state:
                layers.append(_Block(state[f"{i}.conv.0.weight"].shape[0], f"{i}.pool.0.weight" in state))
                seen_block = True
                if self.level_ends and self.level_ends[-1] == len(layers) - 2:
                    self.level_ends[-1] = len(layers) - 1  # the level continues
                else:
                    self.level_ends.append(len(layers) - 1)
            elif f"{i}.weight" in state:
                w = state[f"{i}.weight"]
                has_bias = f"{i}.bias" in state
                stride = 2 if (not has_bias and i != indices[-1]) or (f32 and not seen_block) else 1
                layers.append(nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], stride=stride, padding=1, bias=has_bias))
            else:
                layers.append(nn.ReLU())  # a parameter-free index: the 32x stem's activations
        self.layers = nn.Sequential(*layers)
        self.layers.load_state_dict({k: v.float() for k, v in state.items()})
        self.levels = len(self.level_ends)
        self.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> TinyAEEncoder:
        return super().train(False)  # frozen: fixed group-norm statistics are per sample anyway

    def forward(
        self, x: torch.Tensor, levels: tuple[int, ...] = (), latents: bool = False, segment: Segment = direct
    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Taps at ``levels`` (0 = the shallowest level) and, with ``latents``, the latent output.
        Without ``latents`` the pass stops at the deepest tapped level. Residual blocks run
        through ``segment``."""
        stop = len(self.layers) - 1 if latents else self.level_ends[max(levels)] if levels else -1
        wanted = {self.level_ends[level]: level for level in levels}
        taps: dict[int, torch.Tensor] = {}
        h = x
        for index, layer in enumerate(self.layers):
            if index > stop:
                break
            h = segment(layer, h) if isinstance(layer, _Block) else layer(h)
            if index in wanted:
                taps[wanted[index]] = h
        return [taps[level] for level in levels], (h if latents else None)
