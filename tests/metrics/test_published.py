"""The bicubic rows SR papers publish, reproduced by `evaluate` (both LR sources)."""

from __future__ import annotations

import pytest

from dckd_cli.data.benchmarks import load_benchmark
from dckd_cli.metrics.scoring import evaluate
from dckd_cli.models.checkpoints import detect_model
from dckd_cli.models.zoo import build_model

PUBLISHED_SET5 = {2: (33.66, 0.9299), 3: (30.39, 0.8682), 4: (28.42, 0.8104)}
PUBLISHED_SET14 = {2: (30.24, 0.8688), 3: (27.55, 0.7742), 4: (26.00, 0.7027)}


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("lr_source", ["file", "matlab"])
def test_bicubic_set5_matches_published(shared_data, scale, lr_source):
    bench = load_benchmark("Set5", "sr", scale, shared_data, lr_source)
    (result,) = evaluate(
        build_model("bicubic", "teacher", scale), [bench], task="sr", scale=scale, model_name="bicubic"
    )
    want_psnr, want_ssim = PUBLISHED_SET5[scale]
    assert abs(result.psnr - want_psnr) <= 0.02 and abs(result.ssim - want_ssim) <= 0.001
    assert result.images == 5


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_set14_sits_about_008_db_above_the_published_copy(shared_data, scale):
    bench = load_benchmark("Set14", "sr", scale, shared_data)
    (result,) = evaluate(
        build_model("bicubic", "teacher", scale), [bench], task="sr", scale=scale, model_name="bicubic"
    )
    assert 0.06 <= result.psnr - PUBLISHED_SET14[scale][0] <= 0.10
    assert abs(result.ssim - PUBLISHED_SET14[scale][1]) <= 0.003


def test_official_dctlsa_x4_on_set5(shared_data, shared_weights):
    """A real DIV2K-trained network through the same path: 32.5232 dB measured independently."""
    model, scale = detect_model(shared_weights / "DCTLSA_x4.pt")
    bench = load_benchmark("Set5", "sr", 4, shared_data, "file")
    (result,) = evaluate(model, [bench], task="sr", scale=scale, model_name="dctlsa")
    assert result.psnr == pytest.approx(32.5232, abs=0.002)
