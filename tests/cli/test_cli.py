from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dckd_cli.cli.app import app

runner = CliRunner()


def test_version_and_help_with_examples():
    assert runner.invoke(app, ["--version"]).output.startswith("dckd ")
    for command in ("distill", "evaluate", "export", "ablate"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "Example" in result.output and f"dckd {command}" in result.output


@pytest.mark.parametrize("command", ["export", "ablate"])
def test_unlanded_commands_exit_2(command):
    result = runner.invoke(app, [command])
    assert result.exit_code == 2 and "not available yet" in result.output


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
