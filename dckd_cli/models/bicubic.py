"""``bicubic``: the parameter-free baseline, MATLAB ``imresize`` as a torch module."""

from __future__ import annotations

import torch
from torch import nn

from dckd_cli.data.resize import resize_matrix


class BicubicUpsampler(nn.Module):
    """Upscale ``(N, C, H, W)`` images in [0, 1] like MATLAB's bicubic ``imresize``.

    With ``quantize`` (default) each pass is rounded to the 8-bit grid, as MATLAB does for
    ``uint8`` images, so the output equals the bicubic rows that SR papers publish.
    """

    def __init__(self, scale: int, quantize: bool = True):
        super().__init__()
        self.scale = scale
        self.quantize = quantize

    def _round(self, v: torch.Tensor) -> torch.Tensor:
        # Works in 0..255 units so that exact halves (common with these dyadic weights) round up.
        return torch.clamp(torch.floor(v + 0.5), 0, 255) if self.quantize else v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        s = float(self.scale)
        rows = torch.from_numpy(resize_matrix(h, h * self.scale, s).toarray()).to(x.device, torch.float64)
        cols = torch.from_numpy(resize_matrix(w, w * self.scale, s).toarray()).to(x.device, torch.float64)
        out = self._round(x.double() * 255.0)
        out = self._round(torch.einsum("oh,nchw->ncow", rows, out))
        out = self._round(torch.einsum("pw,ncow->ncop", cols, out))
        return (out / 255.0).to(x.dtype)
