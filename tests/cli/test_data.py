"""`dckd data prepare` and `dckd data list`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage import data as skdata
from typer.testing import CliRunner

from dckd_cli.cli.app import app
from dckd_cli.data.images import write_image

runner = CliRunner()


def test_prepare_then_list_then_a_bad_file_named_in_one_line(tmp_path: Path):
    folder = tmp_path / "root" / "Mine" / "HR"
    folder.mkdir(parents=True)
    for i in range(3):
        write_image(folder / f"{i}.png", np.ascontiguousarray(skdata.astronaut()[: 64 + i, :80]))
    done = runner.invoke(
        app, ["data", "prepare", "Mine", "--data-root", str(tmp_path / "root"), "--scale", "2"], terminal_width=300
    )
    assert done.exit_code == 0, done.output
    assert "3 pairs" in done.output
    listed = runner.invoke(app, ["data", "list"], terminal_width=200)
    assert listed.exit_code == 0 and "Mine-HR-sr-x2-" in listed.output and "1 set(s)" in listed.output
    (folder / "1.png").write_bytes(b"not an image")
    bad = runner.invoke(app, ["data", "prepare", "Mine", "--data-root", str(tmp_path / "root"), "--scale", "2"])
    assert bad.exit_code == 1 and "1.png" in bad.output and "Traceback" not in bad.output
    assert len([line for line in bad.output.splitlines() if line.strip()]) == 1
    skipped = runner.invoke(
        app,
        ["data", "prepare", "Mine", "--data-root", str(tmp_path / "root"), "--scale", "2", "--skip-bad-images"],
        terminal_width=300,
    )
    assert skipped.exit_code == 0 and "2 pairs" in skipped.output
