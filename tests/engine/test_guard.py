"""The collapse guard on a run made to collapse: validation PSNR sinking while losses fall."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from dckd_cli.engine.guard import Collapsed, CollapseGuard
from dckd_cli.engine.run_folder import RunFolder
from dckd_cli.engine.trainer import Trainer, train
from dckd_cli.metrics.scoring import DatasetResult, ImageScore


def _sinking(monkeypatch: pytest.MonkeyPatch, values: list[float]) -> None:
    """Validation returns these PSNRs in turn, on every validation image: a student that
    collapses after its first check."""
    calls = iter(values)

    def validate(self: Trainer, model: object, iteration: int) -> DatasetResult:
        value, pairs = next(calls), self.built.val_bench.pairs
        images = [ImageScore(f"{i}", value, 0.5) for i in range(len(pairs))]
        return DatasetResult("val", 4, "student", "y", value, 0.5, len(pairs), images)

    monkeypatch.setattr(Trainer, "_validate", validate)


def test_a_collapse_is_warned_once_naming_the_largest_term(tmp_path: Path, tiny_settings, monkeypatch, caplog):
    _sinking(monkeypatch, [30.0, 27.5, 20.0])
    with caplog.at_level(logging.WARNING, logger="dckd_cli.engine.trainer"):
        settings = tiny_settings("logits", iters=6, **{"runtime.val_every": 2, "guard.warmup": 1.0})
        train(settings, tmp_path / "run")
    warnings = [r.getMessage() for r in caplog.records if "validation PSNR" in r.getMessage()]
    assert len(warnings) == 1, warnings  # once, at the first fall, not again at the third validation
    assert warnings[0].startswith("validation PSNR 27.50 dB at iteration 4 fell 2.50 dB from the run's best (30.00 dB")
    assert "the largest loss term is '" in warnings[0] and "lower optim.lr (now 0.002)" in warnings[0]
    assert "guard.action=stop" in warnings[0]


def test_below_the_reference_row_after_the_warm_up_and_stop(tmp_path: Path, tiny_settings, monkeypatch):
    """Far under bicubic on the validation images (computed there, 44.8 dB): the run stops,
    with 'last' saved at that validation."""
    _sinking(monkeypatch, [5.0, 5.0, 5.0])
    settings = tiny_settings(
        "logits", iters=6, **{"runtime.val_every": 2, "guard.action": "stop", "guard.warmup": 0.5, "guard.min_iters": 0}
    )
    below = r"validation PSNR 5.00 dB at iteration 4 is [\d.]+ dB below the bicubic row on the median image"
    with pytest.raises(Collapsed, match=below + r" \((\d+) of \1 validation images more than 1 dB below it"):
        train(settings, tmp_path / "run")  # iteration 2 is inside the warm-up (3 of 6)
    assert RunFolder(tmp_path / "run").has_checkpoint()


def test_the_guard_advice_for_a_contrastive_term_and_off(tiny_settings):
    settings = tiny_settings("dckd")
    guard = CollapseGuard(settings, lambda: ("bicubic", [25.0]))
    settings.guard.min_iters = 0
    assert guard.check(1, 28.0, {"rec": 0.1}, [28.0]) is None  # inside the warm-up, nothing to compare with
    assert guard.check(3, 27.5, {"rec": 0.1}, [27.5]) is None  # within the margin of the best
    assert (
        CollapseGuard(settings, lambda: ("bicubic", [25.0])).check(3, 24.5, {}, [24.5]) is None
    )  # under bicubic, in margin
    message = guard.check(5, 26.5, {"rec": 0.02, "kd": 0.01, "dcl": 0.9}, [26.5])
    assert "'dcl' (0.9)" in message and "lower method.weights.dcl (now 0.1)" in message
    assert "method.encoder.checkpoint" in message
    settings.guard.action = "off"
    assert CollapseGuard(settings, lambda: ("bicubic", [99.0])).check(12, 1.0, {}, [1.0]) is None


def test_the_reference_row_is_compared_image_by_image(tiny_settings):
    """The median of the per-image gaps decides: one image the reference restores almost
    perfectly (the synthetic 57 dB one) does not set the guard off for a student ahead on the
    others, and does not hide a student that collapsed on the others."""
    settings = tiny_settings("logits", iters=10, **{"guard.min_iters": 0, "guard.warmup": 0.0})
    bicubic = [57.0, 30.0, 28.0]  # mean 38.33
    ahead = CollapseGuard(settings, lambda: ("bicubic", bicubic))
    assert ahead.check(5, 36.5, {}, [49.6, 30.5, 29.5]) is None  # mean 1.8 dB under bicubic, median 0.5 above
    hidden = CollapseGuard(settings, lambda: ("bicubic", bicubic))
    message = hidden.check(5, 38.0, {}, [60.0, 27.5, 26.5])  # mean 0.33 dB under (within the margin)
    assert "is 1.50 dB below the bicubic row on the median image (2 of 3 validation images" in message
    assert "means 38.00 against 38.33 dB" in message
    lossless = CollapseGuard(settings, lambda: ("bicubic", [math.inf, 30.0, 28.0]))
    assert lossless.check(5, math.inf, {}, [math.inf, 30.2, 28.1]) is None  # an image both restore exactly
    two = CollapseGuard(settings, lambda: ("bicubic", [57.0, 30.0]))
    assert "3.50 dB below the bicubic row on the median image" in two.check(5, 40.0, {}, [49.6, 30.4])


def test_the_reference_row_is_computed_once(tiny_settings):
    calls = []
    settings = tiny_settings("logits", iters=10, **{"guard.min_iters": 0})
    guard = CollapseGuard(settings, lambda: calls.append(1) or ("bicubic", [20.0]))
    assert guard.check(5, 30.0, {}, [30.0]) is None and guard.check(7, 30.5, {}, [30.5]) is None
    assert calls == [1]


def _resumed(
    tmp_path: Path, tiny_settings, monkeypatch, before: list[float], after: list[float], caplog, **guard
) -> list[str]:  # noqa: ANN001
    """Validated at 2 and 4 (``before``), stopped, resumed to 6 (``after``): the guard's warnings."""
    extra = {"runtime.val_every": 2, "guard.warmup": 1.0, **{f"guard.{k}": v for k, v in guard.items()}}
    with caplog.at_level(logging.WARNING, logger="dckd_cli.engine.trainer"):
        _sinking(monkeypatch, before)
        train(tiny_settings("logits", iters=4, **extra), tmp_path / "run")
        _sinking(monkeypatch, after)
        settings = tiny_settings("logits", iters=6, **extra)
        settings.output = tmp_path / "run"
        Trainer.of(settings, tmp_path / "run").run(resume=True)
    return [r.getMessage() for r in caplog.records if "validation PSNR" in r.getMessage()]


def test_a_resumed_run_remembers_its_best_validation(tmp_path: Path, tiny_settings, monkeypatch, caplog):
    warnings = _resumed(tmp_path, tiny_settings, monkeypatch, [30.0, 29.5], [27.0], caplog)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(
        "validation PSNR 27.00 dB at iteration 6 fell 3.00 dB from the run's best (30.00 dB at iteration 2)"
    )


def test_a_resumed_run_does_not_warn_twice(tmp_path: Path, tiny_settings, monkeypatch, caplog):
    # the reference row (bicubic, 44.8 dB on these images) checked from iteration 4 on: 20 dB is under it
    warnings = _resumed(tmp_path, tiny_settings, monkeypatch, [30.0, 27.0], [20.0], caplog, min_iters=0)
    assert len(warnings) == 1 and "at iteration 4 fell 3.00 dB" in warnings[0], warnings


def test_a_checkpoint_from_before_the_guard_state_keeps_the_best_psnr(tiny_settings):
    guard = CollapseGuard(tiny_settings("logits"), lambda: ("bicubic", [0.0]))
    guard.load_state_dict(None, 30.0)
    assert "from the run's best (30.00 dB before the run was resumed)" in guard.check(8, 28.0, {}, [28.0])
