from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
from torch import nn

from dckd_cli.metrics.inference import ImageTooLarge, _owned, _tile_starts, forward_padded, run_on_image, run_tiled
from dckd_cli.models.zoo import build_model


def test_tiles_cover_every_pixel_once():
    for length, tile, overlap in [(100, 32, 8), (33, 32, 8), (64, 16, 0), (10, 32, 4)]:
        starts = _tile_starts(length, tile, overlap)
        spans = _owned(starts, min(tile, length), length)
        assert spans[0][0] == 0 and spans[-1][1] == length
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        assert all(s <= a and b <= s + tile for s, (a, b) in zip(starts, spans))


def test_tiled_equals_whole_for_a_local_network():
    """RCAN-tiny's receptive field is finite (no global pooling at inference beyond CA)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 12, 3, padding=1), nn.PixelShuffle(2))
    x = torch.rand(1, 3, 45, 38)
    whole = run_tiled(net, x, 2)
    tiled = run_tiled(net, x, 2, tile=16, overlap=6)
    assert tiled.shape == whole.shape == (1, 3, 90, 76)
    assert torch.allclose(tiled, whole, atol=1e-6)


def test_padding_to_a_multiple_is_undone():
    model = build_model("restormer", "tiny", 1).eval()
    x = torch.rand(1, 3, 13, 21)
    with torch.no_grad():
        assert forward_padded(model, x, 1, multiple=8).shape == x.shape


def _upscaler() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.PixelShuffle(2)).eval()


def test_streamed_tiles_equal_the_whole_image_and_hold_only_uint8_buffers():
    """With tiles, the host memory of a restore is the uint8 input and output plus one tile:
    numpy's peak (tracemalloc sees numpy buffers) stays under twice the output's bytes, where
    converting the whole float output (the earlier code) needs over 10x."""
    net = _upscaler()
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (300, 260, 3), dtype=np.uint8)
    whole = run_on_image(net, img, 2)
    tracemalloc.start()
    tiled = run_on_image(net, img, 2, tile=64, overlap=8)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # Equal up to rounding at a half: oneDNN may pick another convolution kernel for a tile's
    # size than for the whole image's (on one AVX2 CPU 2 of 936,000 values were one level apart;
    # a seam or an offset tile moves thousands, by many levels).
    diff = np.abs(tiled.astype(int) - whole)
    assert diff.max() <= 1 and np.count_nonzero(diff) <= 1e-4 * diff.size, (diff.max(), np.count_nonzero(diff))
    assert peak < 2 * tiled.nbytes, (peak, tiled.nbytes)


def test_an_image_that_does_not_fit_names_the_tile_option():
    class Greedy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.empty(1 << 60, dtype=torch.uint8)  # the allocator refuses: out of memory

    img = np.zeros((40, 30, 3), np.uint8)
    with pytest.raises(ImageTooLarge, match=r"^photo.png: 30x40 at x2 does not fit in memory; pass --tile 256"):
        run_on_image(Greedy(), img, 2, name="photo.png")
    with pytest.raises(ImageTooLarge, match="pass a smaller --tile than 16"):
        run_on_image(Greedy(), img, 2, tile=16, overlap=4, name="photo.png")
