from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dckd_cli.cli.app import app

runner = CliRunner()


def test_version_and_help_with_examples():
    assert runner.invoke(app, ["--version"]).output.startswith("dckd ")
    for command in ("distill", "evaluate", "export", "ablate"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "Example" in result.output and f"dckd {command}" in result.output


def test_evaluate_builtin_writes_json(tmp_path: Path):
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["evaluate", "--model", "bicubic", "--scale", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    (record,) = json.loads(out.read_text())
    assert {"dataset", "scale", "model", "psnr", "ssim", "images"} <= record.keys()
    assert record["dataset"] == "builtin" and record["scale"] == 2 and record["images"] == 4
    assert 25 < record["psnr"] < 40
    # An existing file is refused without --force, and left as it was.
    before = out.read_text()
    again = runner.invoke(app, ["evaluate", "--model", "bicubic", "--scale", "2", "--json", str(out)])
    assert again.exit_code == 1 and "--force" in again.output and out.read_text() == before
    assert (
        runner.invoke(app, ["evaluate", "--model", "bicubic", "--scale", "2", "--json", str(out), "--force"]).exit_code
        == 0
    )


def test_evaluate_scores_the_validation_crops_as_any_set(tmp_path: Path):
    """builtin-train is the demo's validation set: evaluate scores it (nothing is validated)."""
    import numpy as np

    from dckd_cli.data.benchmarks import load_benchmark
    from dckd_cli.data.resize import imresize
    from dckd_cli.metrics.psnr_ssim import psnr

    out = tmp_path / "v.json"
    args = ["evaluate", "--model", "bicubic", "--scale", "4", "--datasets", "builtin-train", "--json", str(out), "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (record,) = json.loads(out.read_text())
    pairs = [p.load() for p in load_benchmark("builtin-train", "sr", 4, None)]
    by_hand = np.mean([psnr(imresize(lq, 4, out_shape=gt.shape[:2]), gt, crop=4) for lq, gt in pairs])
    assert record["images"] == len(pairs) and record["psnr"] == pytest.approx(by_hand, abs=1e-6)


def test_evaluate_saves_images(tmp_path: Path):
    result = runner.invoke(
        app, ["evaluate", "--model", "bicubic", "--scale", "4", "--save-images", str(tmp_path / "img"), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "img" / "builtin").iterdir()) == [
        "astronaut.png",
        "chelsea.png",
        "coffee.png",
        "rocket.png",
    ]


def test_bad_settings_one_line_each_exit_1():
    result = runner.invoke(app, ["evaluate", "--model", "bicubic", "--scale", "5", "--set", "data.bogus=1"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines)
    assert "Traceback" not in result.output


def test_missing_checkpoint_and_dataset_are_one_line(tmp_path: Path):
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(tmp_path / "none.pth"), "--scale", "4"])
    assert result.exit_code == 1 and "none.pth: checkpoint file not found" in result.output
    result = runner.invoke(app, ["evaluate", "--model", "bicubic", "--datasets", "Set5"])
    assert result.exit_code == 1 and "--data-root" in result.output


def test_evaluate_published_row_through_the_cli(shared_data, tmp_path: Path):
    out = tmp_path / "r.json"
    args = ["evaluate", "--model", "bicubic", "--scale", "3", "--datasets", "Set5", "--data-root", str(shared_data)]
    result = runner.invoke(app, [*args, "--json", str(out), "-q"])
    assert result.exit_code == 0, result.output
    (record,) = json.loads(out.read_text())
    assert abs(record["psnr"] - 30.39) <= 0.02 and abs(record["ssim"] - 0.8682) <= 0.001


def test_distill_demo_runs_end_to_end(tmp_path: Path, monkeypatch):
    """`dckd distill` with no arguments: the packaged DCTLSA teacher, a warm-up, then scratch /
    logits / dckd runs and a table with an honest note."""
    from dckd_cli.pipelines import demo

    monkeypatch.setattr(demo, "DEMO_WARMUP_ITERS", 4)
    root = tmp_path / "demo"
    result = runner.invoke(app, ["distill", "--output", str(root), "--iters", "4", "-q"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for row in ("bicubic", "teacher", "warm-up", "scratch", "logits", "dckd"):
        assert row in result.output
    teacher = next(line for line in result.output.splitlines() if line.startswith("│ teacher"))
    bicubic = next(line for line in result.output.splitlines() if line.startswith("│ bicubic"))
    assert float(teacher.split()[3]) > float(bicubic.split()[3]) + 2  # DCTLSA: about +2.5 dB over bicubic
    assert "NOT above bicubic" in result.output  # 4 iterations: the note says what the table shows
    assert "dctlsa_x4.safetensors" in (root / "logits" / "settings.yaml").read_text()
    assert (root / "logits" / "checkpoints" / "last" / "model.safetensors").is_file()
    # A second demo into the same folder is refused without --force.
    again = runner.invoke(app, ["distill", "--output", str(root), "--iters", "4", "-q"])
    assert again.exit_code == 1 and "--force" in again.output


def test_distill_run_resume_and_refusal(tmp_path: Path, caplog):
    args = [
        "distill",
        "--preset",
        "demo",
        "--method",
        "scratch",
        "--set",
        "student.size=tiny",
        "--iters",
        "4",
        "--set",
        "runtime.val_every=2",
        "--set",
        "data.patch_size=12",
        "--output",
        str(tmp_path / "r"),
        "-q",
    ]
    assert runner.invoke(app, args).exit_code == 0
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1 and "--resume" in refused.output and "--force" in refused.output
    resume = ["distill", "--output", str(tmp_path / "r"), "--resume", "-q"]
    changed = runner.invoke(app, [*resume, "--method", "dckd"], terminal_width=300)
    assert changed.exit_code == 1 and "method.name" in changed.output and "drop them" in changed.output
    reseeded = runner.invoke(app, [*resume, "--seed", "5"], terminal_width=300)
    assert reseeded.exit_code == 1 and "runtime.seed" in reseeded.output
    same = runner.invoke(app, [*args[:-3], "--output", str(tmp_path / "r"), "--resume", "--iters", "5", "-q"])
    assert same.exit_code == 0, same.output  # the run's own command with --resume continues it
    fewer = runner.invoke(app, [*resume, "--iters", "2"])
    assert fewer.exit_code == 1 and "already done 5 iterations" in fewer.output
    resumed = runner.invoke(app, [*resume, "--iters", "6"])
    assert resumed.exit_code == 0, resumed.output
    assert "scratch: 6 iterations" in resumed.output  # labelled with the run's own method (5 -> 6)
    assert "iters: 6" in (tmp_path / "r" / "settings.yaml").read_text()  # the longer budget is recorded
    # a speed / memory switch may change on resume (and is recorded); the batch, which is the run, may not
    batch = runner.invoke(app, [*resume, "--iters", "7", "--set", "data.batch_size=2"], terminal_width=300)
    assert batch.exit_code == 1 and "data.batch_size" in batch.output and "method.encoder.recompute" in batch.output
    switched = ["--set", "runtime.channels_last=false", "--set", "data.workers=0"]
    caplog.clear()
    moved = runner.invoke(app, [*resume, "--iters", "7", *switched], terminal_width=300)
    assert moved.exit_code == 0, moved.output
    recorded = yaml.safe_load((tmp_path / "r" / "settings.yaml").read_text())
    assert recorded["runtime"]["channels_last"] is False and recorded["data"]["workers"] == 0
    assert recorded["optim"]["iters"] == 7
    # said, and noted in the run folder: channels-last rounds differently, the workers do not
    said = [r.getMessage() for r in caplog.records if "resumes at iteration" in r.getMessage()]
    assert len(said) == 1 and "runtime.channels_last None -> False" in said[0]
    assert "; runtime.channels_last may round differently" in said[0] and "no longer bitwise" in said[0]
    (note,) = [json.loads(line) for line in (tmp_path / "r" / "resumes.jsonl").read_text().splitlines()]
    assert note == {
        "iter": 6,
        "changed": {"runtime.channels_last": {"was": None, "now": False}, "data.workers": {"was": None, "now": 0}},
        "bitwise": False,
    }
    caplog.clear()
    workers = runner.invoke(app, [*resume, "--iters", "8", "--set", "data.workers=1"], terminal_width=300)
    assert workers.exit_code == 0 and "no longer bitwise" not in caplog.text, workers.output
    notes = [json.loads(line) for line in (tmp_path / "r" / "resumes.jsonl").read_text().splitlines()]
    assert notes[1] == {"iter": 7, "changed": {"data.workers": {"was": 0, "now": 1}}, "bitwise": True}


def test_distill_offline_teacher_is_one_line_and_leaves_nothing(tmp_path: Path, monkeypatch):
    from dckd_cli.catalog.architectures import ARCHITECTURES, Official

    url = "http://127.0.0.1:9/001_classicalSR_DIV2K_s48w8_SwinIR-M_x4.pth"
    monkeypatch.setitem(ARCHITECTURES["swinir"].official, ("sr", 4), Official(Path(url).name, url))
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["distill", "--task", "sr", "--teacher", "swinir", "--scale", "4", "--output", str(out)]
    )
    assert result.exit_code == 1 and url in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1
    assert not out.exists()


@pytest.mark.parametrize("packaged", [True, False])
def test_distill_task_alone_runs_that_tasks_demo(tmp_path: Path, monkeypatch, packaged: bool):
    """`dckd distill --task derain`: the deraining demo, with its packaged teacher; where the
    packaged file is missing (a source checkout without it), the teacher is trained on first use
    and cached."""
    from dckd_cli.cache import cache_dir
    from dckd_cli.pipelines import demo, demo_teacher

    monkeypatch.setattr(demo_teacher, "DEMO_TEACHER_ITERS", dict.fromkeys(demo_teacher.DEMO_TEACHER_ITERS, 2))
    monkeypatch.setattr(demo, "DEMO_WARMUP_ITERS", 2)
    if not packaged:
        monkeypatch.setattr(demo_teacher, "ASSETS", tmp_path / "no-assets")
    root = tmp_path / "demo"
    result = runner.invoke(app, ["distill", "--task", "derain", "--output", str(root), "--iters", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert "Demo: derain" in result.output and "│ input" in result.output
    trained = list((cache_dir() / "demo").glob("teacher-derain-nafnet-small-x1-2-v*.safetensors"))
    assert len(trained) == (0 if packaged else 1)


@pytest.mark.parametrize("task,method", [("sr", "logits"), ("sr", "fakd"), ("deblur", "logits"), ("derain", "dukd")])
def test_demo_preset_needs_no_teacher_checkpoint(task: str, method: str, tmp_path: Path, monkeypatch):
    """SR: the packaged DCTLSA (FAKD taps its LR_conv, found by class name); scale 1: a trained NAFNet."""
    from dckd_cli.pipelines import demo_teacher

    monkeypatch.setattr(demo_teacher, "DEMO_TEACHER_ITERS", dict.fromkeys(demo_teacher.DEMO_TEACHER_ITERS, 2))
    args = ["distill", "--preset", "demo", "--task", task, "--method", method, "--iters", "2"]
    args += ["--set", "data.patch_size=16", "--set", "teacher.size=tiny", "--output", str(tmp_path / "r"), "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "@demo" not in (tmp_path / "r" / "settings.yaml").read_text()  # the resolved file is recorded


def test_dry_run_of_a_demo_whose_teacher_is_not_trained_yet(tmp_path: Path):
    """Timed with random teacher weights of the demo architecture; nothing is trained or cached."""
    from dckd_cli.cache import cache_dir

    args = ["distill", "--preset", "demo", "--task", "derain", "--method", "logits", "--dry-run"]
    result = runner.invoke(app, [*args, "--set", "data.patch_size=16"])
    assert result.exit_code == 0, result.output
    assert "nothing was written" in result.output and "s/it" in result.output
    assert not (cache_dir() / "demo").exists()
