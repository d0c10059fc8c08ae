"""Deblurring and deraining end to end: the demo preset per task, every method on tiny
scale-1 models (built-in stand-ins and real rain pairs), the input row and the paper layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from dckd_cli.catalog.methods import METHOD_NAMES
from dckd_cli.cli.app import app
from dckd_cli.engine.trainer import train
from dckd_cli.models.zoo import build_model
from dckd_cli.settings.presets import SettingsError, resolve_settings

runner = CliRunner()


@pytest.fixture
def nafnet_teacher(tmp_path: Path) -> Path:
    path = tmp_path / "nafnet-tiny.safetensors"
    torch.manual_seed(3)
    save_file({k: v.contiguous() for k, v in build_model("nafnet", "tiny", 1).state_dict().items()}, str(path))
    return path


def _tiny(task: str, method: str, teacher: Path, *extra: str):
    return resolve_settings(
        "demo",
        {"task": task, "method.name": method},
        [
            "teacher.size=tiny",
            f"teacher.checkpoint={teacher}",
            "student.size=tiny",
            "data.patch_size=16",
            "data.batch_size=2",
            "optim.iters=2",
            "runtime.log_every=1",
            "runtime.val_every=2",
            "data.val_limit=1",
            "method.dcl.history.steps=[1]",
            "method.dcl.history.breakpoints=[]",
            "runtime.device=cpu",
            *extra,
        ],
    )


def test_demo_preset_composes_with_each_task():
    sr, deblur, derain = (resolve_settings("demo", {"task": t}) for t in ("sr", "deblur", "derain"))
    assert (sr.scale, sr.student.arch, str(sr.teacher.checkpoint)) == (4, "rcan", "@demo")
    for s in (deblur, derain):
        assert (s.scale, s.teacher.arch, s.student.arch, s.data.patch_size) == (1, "nafnet", "nafnet", 64)
    assert resolve_settings("demo", {"task": "sr", "scale": 2}).scale == 2  # a flag still wins
    assert resolve_settings("demo", {}, ["task=derain"]).scale == 1  # so does --set task=...


@pytest.mark.parametrize("task", ["deblur", "derain"])
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_every_method_trains_on_each_scale1_task(task, method, nafnet_teacher, tmp_path):
    settings = _tiny(task, method, nafnet_teacher)
    result = train(settings, tmp_path / "run")
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert result.iterations == 2 and all(torch.isfinite(torch.tensor(r["loss"])) for r in lines if "loss" in r)
    assert result.best_psnr is not None and result.best_psnr > 5  # validated on the built-in stand-in


def test_fakd_and_dckd_parts_on_scale1_models(nafnet_teacher, tmp_path):
    """FAKD taps NAFNet's middle blocks; DCKD's negatives and label consistency keep the input size."""
    from dckd_cli.engine.build import build_run

    settings = _tiny("derain", "dckd-star", nafnet_teacher, "method.lcr.prob=1.0")
    trainer = build_run(settings)
    lq, gt = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    out = trainer.student(lq)
    terms = trainer.method.loss_terms(lq, gt, out)
    assert set(terms) >= {"rec", "kd", "dcl", "ce", "lcr"} and all(torch.isfinite(v) for v in terms.values())
    fakd = _tiny("deblur", "fakd", nafnet_teacher)
    trainer = build_run(fakd)
    assert trainer.method.resources.taps[0].paths == ["middle_blks"] and trainer.method.resources.taps[1].paths == [
        "middle_blks"
    ]


def test_nafnet_patch_constraint_is_found_up_front(nafnet_teacher):
    with pytest.raises(SettingsError, match="data.patch_size 20 is not a multiple of 16"):
        _tiny("deblur", "logits", nafnet_teacher, "data.patch_size=20")
    with pytest.raises(SettingsError, match=r"data.progressive\[1\].patch 36 is not a multiple of 8"):
        _tiny(
            "derain",
            "logits",
            nafnet_teacher,
            "teacher.arch=restormer",
            "student.arch=restormer",
            "data.progressive=[{until: 1, patch: 16, batch: 2}, {until: 2, patch: 36, batch: 1}]",
        )


def test_training_on_real_rain_pairs(shared_data, nafnet_teacher, tmp_path):
    rain = shared_data / "RainSIRR20"
    settings = _tiny(
        "derain", "dckd", nafnet_teacher, f"data.train=[{rain}]", f"data.val={rain}", "data.test=[builtin]"
    )
    result = train(settings, tmp_path / "run")
    assert result.iterations == 2 and result.best_psnr is not None and 10 < result.best_psnr < 40


def test_input_row_reproduces_the_independent_rainsirr20_figures(shared_data, tmp_path):
    rain = str(shared_data / "RainSIRR20")
    for task, psnr, ssim in (("derain", 22.29, 0.8726), ("deblur", 20.87, 0.8350)):  # Y, then RGB
        out = tmp_path / f"{task}.json"
        args = ["evaluate", "--task", task, "--model", "input", "--datasets", rain, "--json", str(out), "-q"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        (record,) = json.loads(out.read_text())
        assert abs(record["psnr"] - psnr) <= 0.01 and abs(record["ssim"] - ssim) <= 0.001, record


def test_paper_layout_has_a_column_per_set_and_an_average(shared_data, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    for name in ("Test100", "Rain100L"):
        (root / name).symlink_to(shared_data / "RainSIRR20")
    args = ["evaluate", "--task", "derain", "--model", "input", "--datasets", "Test100,Rain100L"]
    result = runner.invoke(app, [*args, "--data-root", str(root), "-q"], terminal_width=200)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("│ input"))
    assert row.count("22.29 / 0.8726") == 3  # two sets and their average
    assert "Average" in result.output
