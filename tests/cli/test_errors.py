"""Anything a user can cause is one line and an exit code, found before the run folder exists;
help and usage errors answer without loading torch."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import save_file
from typer.testing import CliRunner

from dckd_cli.cli.app import app
from dckd_cli.models.zoo import build_model

runner = CliRunner()


@pytest.fixture
def tiny_teacher(tmp_path: Path) -> Path:
    path = tmp_path / "teacher.safetensors"
    save_file({k: v.contiguous() for k, v in build_model("rcan", "tiny", 4).state_dict().items()}, str(path))
    return path


def _distill(tiny_teacher: Path, out: Path, *extra: str):
    args = ["distill", "--preset", "demo", "--teacher-checkpoint", str(tiny_teacher), "--output", str(out)]
    args += ["--set", "teacher.size=tiny", "--iters", "2", "-q", *extra]
    return runner.invoke(app, args)


@pytest.mark.parametrize(
    "extra,message",
    [
        (("--method", "dckd", "--set", "method.encoder.layers=[0,1,2,3,9]"), "method.encoder.layers"),
        (("--method", "dckd", "--set", "dckd.encoder.layers=[0,1,2,3,9]"), "method.encoder.layers"),
        (("--method", "csd", "--set", "data.batch_size=1"), "data.batch_size"),
        (("--method", "logits", "--set", "method.weights.rec=0", "--set", "method.weights.kd=0"), "weight 0"),
        (("--method", "fakd", "--set", "method.fakd.student_layers=[nope]"), "no layer 'nope'"),
        (("--method", "dckd", "--set", "dckd.colour=1"), "dckd.colour"),
    ],
)
def test_method_setting_errors_are_one_line_before_the_run_folder(tmp_path, tiny_teacher, extra, message):
    out = tmp_path / "run"
    result = _distill(tiny_teacher, out, *extra)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output
    assert not out.exists()


def test_existing_outputs_are_refused_with_one_line(tmp_path):
    taken = tmp_path / "r.json"
    taken.write_text("mine")
    result = runner.invoke(app, ["evaluate", "--model", "bicubic", "--scale", "2", "--json", str(taken)])
    assert result.exit_code == 1 and "--force" in result.output and taken.read_text() == "mine"


def test_a_damaged_settings_file_is_one_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "settings.yaml").write_text("task: [unclosed\n")
    result = runner.invoke(app, ["evaluate", "--run", str(run)])
    assert result.exit_code == 1 and "settings.yaml" in result.output and "Traceback" not in result.output


LIGHT = """
import sys
from typer.testing import CliRunner
from dckd_cli.cli.app import app
runner = CliRunner()
codes = [runner.invoke(app, args).exit_code for args in {args}]
heavy = sorted(m for m in ("torch", "spandrel", "taming", "accelerate", "cv2") if m in sys.modules)
print(__import__("json").dumps([codes, heavy]))
"""


def test_help_and_settings_errors_load_no_torch():
    calls = [
        ["--help"],
        *([c, "--help"] for c in ("distill", "evaluate", "export", "ablate")),
        ["encoder", "fit", "--help"],
        ["distill", "--set", "optim.lr=-1"],
        ["distill", "--method", "nope"],
        ["evaluate", "--set", "dckd.colour=1"],
    ]
    script = LIGHT.format(args=calls)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    codes, heavy = json.loads(out.strip().splitlines()[-1])
    assert codes == [0] * 6 + [1] * 3 and heavy == []


def test_file_system_errors_are_one_line(tmp_path):
    folder = tmp_path / "a-folder.json"
    folder.mkdir()  # empty: passes the overwrite check, then cannot be replaced by a file
    result = runner.invoke(app, ["evaluate", "--model", "bicubic", "--scale", "2", "--json", str(folder), "-q"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "a-folder.json" in lines[-1] and "free disk space" in lines[-1]


def test_dry_run_checks_and_times_but_writes_nothing(tmp_path, tiny_teacher, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["distill", "--preset", "demo", "--method", "logits", "--teacher-checkpoint", str(tiny_teacher)]
    args += ["--set", "teacher.size=tiny", "--iters", "300", "--dry-run"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "s/it" in text and "peak memory" in text and "300 iterations would take about" in text
    assert re.search(r"a GPU would allocate about \d+ MB: the weights and the step's tensors", text)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["teacher.safetensors"]  # no run folder
    bad = runner.invoke(app, [*args, "--set", "method.encoder.layers=[0,1,2,3,9]", "--method", "dckd"])
    assert bad.exit_code == 1 and "method.encoder.layers" in bad.output


@pytest.mark.parametrize(
    "args",
    [
        ["distill", "--preset", "demo", "--method", "scratch", "--output", "{blocker}/run"],
        ["evaluate", "--model", "bicubic", "--scale", "2", "--json", "{blocker}/r.json"],
        ["encoder", "fit", "--output", "{blocker}/enc.safetensors"],
    ],
)
def test_outputs_that_cannot_be_written_are_refused_before_any_work(tmp_path, args):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = runner.invoke(app, [a.format(blocker=blocker) for a in args])
    assert result.exit_code == 1 and "is a file, not a folder" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "side,scale,message",
    [(10, 2, "10x10 is too small to score (needs 15 pixels a side)"), (3, 4, "smaller than the scale x4")],
)
def test_images_too_small_to_score_are_one_line_before_any_scoring(tmp_path, side, scale, message):
    import cv2
    import numpy as np

    (tmp_path / "Tiny" / "HR").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "Tiny" / "HR" / "a.png"), np.full((side, side, 3), 100, np.uint8))
    args = ["evaluate", "--model", "bicubic", "--scale", str(scale), "--datasets", str(tmp_path / "Tiny"), "-q"]
    result = runner.invoke(app, [*args, "--json", str(tmp_path / "r.json")])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and "Traceback" not in result.output and len(lines) == 1, result.output
    assert message in lines[0] and not (tmp_path / "r.json").exists()


def test_after_an_interrupt_a_further_ctrl_c_is_ignored_while_the_process_ends(capsys):
    import os
    import signal
    import time

    import typer

    from dckd_cli.cli.errors import user_errors

    @user_errors
    def interrupted() -> None:
        raise KeyboardInterrupt

    previous = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(typer.Exit) as stopped:
            interrupted()
        assert stopped.value.exit_code == 130 and "interrupted" in capsys.readouterr().err
        os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C: no KeyboardInterrupt, no traceback
        time.sleep(0.05)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_resume_dry_run_checks_the_runs_own_settings_offline_and_writes_nothing(tmp_path, tiny_teacher):
    run = tmp_path / "run"
    made = _distill(tiny_teacher, run, "--method", "logits", "--iters", "3", "--set", "runtime.save_every=2")
    assert made.exit_code == 0, made.output
    before = sorted((p.relative_to(run), p.stat().st_mtime_ns) for p in run.rglob("*"))
    result = runner.invoke(app, ["distill", "--output", str(run), "--resume", "--iters", "10", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "the 7 iterations left of 10 iterations would take about" in " ".join(result.output.split())
    assert sorted((p.relative_to(run), p.stat().st_mtime_ns) for p in run.rglob("*")) == before


def test_an_unusable_pixel_limit_is_one_line_before_any_command_runs(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("DCKD_MAX_PIXELS", "16k")
    result = runner.invoke(
        app, ["restore", str(tmp_path / "in.png"), "--model", "x", "--output", str(tmp_path / "out")]
    )
    assert result.exit_code == 1
    assert "DCKD_MAX_PIXELS='16k': not a positive whole number of pixels" in result.output
    assert not (tmp_path / "out").exists()
