from __future__ import annotations

import torch
from torch import nn

from dckd_cli.metrics.inference import _owned, _tile_starts, forward_padded, run_tiled
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
