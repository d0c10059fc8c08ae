"""`evaluate` on the CPU: convolutional models score in channels-last memory, to the same PSNR."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import dckd_cli.pipelines.evaluate as pipeline
from dckd_cli.models.zoo import build_model
from dckd_cli.settings.presets import resolve_settings


def _scores(checkpoint: Path, monkeypatch: pytest.MonkeyPatch, *overrides: str) -> tuple[list[float], bool]:
    """The PSNRs of the demo's benchmark and whether the scored model's weights were channels-last."""
    seen = {}
    scoring = pipeline.evaluate

    def spy(model, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1))
        seen["channels_last"] = conv.weight.is_contiguous(memory_format=torch.channels_last)
        return scoring(model, *args, **kwargs)

    monkeypatch.setattr(pipeline, "evaluate", spy)
    settings = resolve_settings("demo", {}, ["scale=2", *overrides])
    results = pipeline.run_evaluation(pipeline.ModelChoice(arch="rcan", size="tiny", checkpoint=checkpoint), settings)
    return [r.psnr for r in results], seen["channels_last"]


def test_a_convolutional_model_scores_in_channels_last_to_the_same_psnr(tmp_path: Path, monkeypatch):
    torch.manual_seed(3)
    checkpoint = tmp_path / "rcan.safetensors"
    save_file({k: v.contiguous() for k, v in build_model("rcan", "tiny", 2).state_dict().items()}, str(checkpoint))
    default, fast = _scores(checkpoint, monkeypatch)
    plain, slow = _scores(checkpoint, monkeypatch, "runtime.channels_last=false")
    assert fast and not slow
    assert default == pytest.approx(plain, abs=1e-4)  # dB: rounding of another summation order
