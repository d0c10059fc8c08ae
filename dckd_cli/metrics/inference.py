"""Running a model on whole images: padding to the size a network needs, and tiling.

Large images are processed in overlapping LQ tiles so memory stays bounded. Each output
pixel is taken from exactly one tile, the one whose centre it is nearest, so with an
overlap at least twice a network's receptive-field radius the tiled output equals the
whole-image output. :func:`run_on_image` streams: each tile is converted from and to 8 bits
on its own, so besides the network's activations for one tile, memory holds only the uint8
input and the uint8 output.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dckd_cli.data.images import tensor_array_to_uint8, uint8_to_tensor_array
from dckd_cli.errors import DckdError


class ImageTooLarge(DckdError):
    """An image whose restoration does not fit in memory the way it was asked for."""


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


@dataclass(frozen=True)
class Tile:
    """One LQ tile: where it is read (``y0``, ``x0``, side ``tile``) and the LQ rows / columns
    ``[ya, yb) x [xa, xb)`` whose output it owns."""

    y0: int
    x0: int
    ya: int
    yb: int
    xa: int
    xb: int


def tiles(h: int, w: int, tile: int, overlap: int) -> Iterator[Tile]:
    ys, xs = _tile_starts(h, tile, overlap), _tile_starts(w, tile, overlap)
    for y0, (ya, yb) in zip(ys, _owned(ys, min(tile, h), h)):
        for x0, (xa, xb) in zip(xs, _owned(xs, min(tile, w), w)):
            yield Tile(y0, x0, ya, yb, xa, xb)


def _owned_output(patch: torch.Tensor, t: Tile, scale: int) -> torch.Tensor:
    """The part of a tile's output that the tile owns."""
    top, left = (t.ya - t.y0) * scale, (t.xa - t.x0) * scale
    return patch[..., top : top + (t.yb - t.ya) * scale, left : left + (t.xb - t.xa) * scale]


@torch.no_grad()
def run_tiled(
    model: nn.Module, x: torch.Tensor, scale: int, tile: int | None = None, overlap: int = 16, multiple: int = 1
) -> torch.Tensor:
    """Restore ``(1, C, H, W)`` ``x``, whole or in ``tile``-sized LQ tiles overlapping by ``overlap``."""
    h, w = x.shape[-2:]
    if tile is None or (h <= tile and w <= tile):
        return forward_padded(model, x, scale, multiple)
    out = None
    for t in tiles(h, w, tile, overlap):
        patch = forward_padded(model, x[..., t.y0 : t.y0 + tile, t.x0 : t.x0 + tile], scale, multiple)
        if out is None:
            out = patch.new_zeros(x.shape[0], patch.shape[1], h * scale, w * scale)
        out[..., t.ya * scale : t.yb * scale, t.xa * scale : t.xb * scale] = _owned_output(patch, t, scale)
    assert out is not None
    return out


def _to_uint8(y: torch.Tensor) -> np.ndarray:
    """``(1, 3, H, W)`` model output to ``(H, W, 3)`` uint8 (clamped and rounded as the published
    protocol does), a band of rows at a time so the float64 rounding stays small."""
    y = y[0].float().cpu()
    rows = max(1, (1 << 22) // max(1, y.shape[-1]))
    out = np.empty((y.shape[1], y.shape[2], y.shape[0]), np.uint8)
    for r in range(0, y.shape[1], rows):
        out[r : r + rows] = tensor_array_to_uint8(y[:, r : r + rows].numpy())
    return out


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is an allocation that failed (CUDA's or the host's)."""
    if isinstance(err, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


@torch.no_grad()
def run_on_image(
    model: nn.Module,
    img: np.ndarray,
    scale: int,
    tile: int | None = None,
    overlap: int = 16,
    multiple: int = 1,
    device: torch.device | str = "cpu",
    name: str = "image",
) -> np.ndarray:
    """``(H, W, 3)`` uint8 in, the restoration as ``(H * scale, W * scale, 3)`` uint8 out.

    An image that does not fit in memory is one line naming ``--tile`` (or a smaller one)."""
    h, w = img.shape[:2]

    def forward(part: np.ndarray) -> torch.Tensor:
        return forward_padded(model, torch.from_numpy(uint8_to_tensor_array(part))[None].to(device), scale, multiple)

    try:
        if tile is None or (h <= tile and w <= tile):
            return _to_uint8(forward(img))
        out = np.empty((h * scale, w * scale, img.shape[2]), np.uint8)
        for t in tiles(h, w, tile, overlap):
            patch = _owned_output(forward(img[t.y0 : t.y0 + tile, t.x0 : t.x0 + tile]), t, scale)
            out[t.ya * scale : t.yb * scale, t.xa * scale : t.xb * scale] = _to_uint8(patch)
        return out
    except (MemoryError, RuntimeError) as err:
        if not is_out_of_memory(err):
            raise
        fix = f"pass a smaller --tile than {tile}" if tile is not None else "pass --tile 256 (or smaller)"
        raise ImageTooLarge(f"{name}: {w}x{h} at x{scale} does not fit in memory; {fix}") from None
