"""Running a model on whole images: padding to the size a network needs, and tiling.

Large images are processed in overlapping LQ tiles so memory stays bounded. Each output
pixel is taken from exactly one tile, the one whose centre it is nearest, so with an
overlap at least twice a network's receptive-field radius the tiled output equals the
whole-image output.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dckd_cli.data.images import tensor_array_to_uint8, uint8_to_tensor_array


def forward_padded(model: nn.Module, x: torch.Tensor, scale: int, multiple: int = 1) -> torch.Tensor:
    """``model(x)`` after reflect-padding H and W up to ``multiple``; the output is cropped back."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
    return model(x)[..., : h * scale, : w * scale]


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def _owned(starts: list[int], tile: int, length: int) -> list[tuple[int, int]]:
    """Split [0, length) among tiles at the midpoints of their overlaps."""
    cuts = [0] + [(s + prev + tile) // 2 for prev, s in zip(starts, starts[1:])] + [length]
    return list(zip(cuts, cuts[1:]))


@torch.no_grad()
def run_tiled(
    model: nn.Module, x: torch.Tensor, scale: int, tile: int | None = None, overlap: int = 16, multiple: int = 1
) -> torch.Tensor:
    """Restore ``(1, C, H, W)`` ``x``, whole or in ``tile``-sized LQ tiles overlapping by ``overlap``."""
    h, w = x.shape[-2:]
    if tile is None or (h <= tile and w <= tile):
        return forward_padded(model, x, scale, multiple)
    ys, xs = _tile_starts(h, tile, overlap), _tile_starts(w, tile, overlap)
    out = None
    for y0, (ya, yb) in zip(ys, _owned(ys, min(tile, h), h)):
        for x0, (xa, xb) in zip(xs, _owned(xs, min(tile, w), w)):
            patch = forward_padded(model, x[..., y0 : y0 + tile, x0 : x0 + tile], scale, multiple)
            if out is None:
                out = patch.new_zeros(x.shape[0], patch.shape[1], h * scale, w * scale)
            out[..., ya * scale : yb * scale, xa * scale : xb * scale] = patch[
                ..., (ya - y0) * scale : (yb - y0) * scale, (xa - x0) * scale : (xb - x0) * scale
            ]
    assert out is not None
    return out


def run_on_image(
    model: nn.Module,
    img: np.ndarray,
    scale: int,
    tile: int | None = None,
    overlap: int = 16,
    multiple: int = 1,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """``(H, W, 3)`` uint8 in, the restoration as ``(H * scale, W * scale, 3)`` uint8 out
    (clamped and rounded as the published protocol does)."""
    x = torch.from_numpy(uint8_to_tensor_array(img))[None].to(device)
    y = run_tiled(model, x, scale, tile=tile, overlap=overlap, multiple=multiple)
    return tensor_array_to_uint8(y[0].float().cpu().numpy())
