from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from dckd_cli.cli.app import app
from dckd_cli.pipelines.compare import pick_crop
from tests.pipelines.test_export import _run

runner = CliRunner()


def test_auto_crop_finds_where_the_students_differ():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (160, 200, 3)).astype(np.uint8)
    good, bad = gt.copy(), gt.copy()
    bad[100:140, 20:60] = 0  # the second student fails in one region only
    x, y, w, h = pick_crop(gt, [good, bad], gt)
    assert (w, h) == (32, 32) and 100 - w < y <= 108 and 20 - w < x <= 28  # the window sits on that region


def test_compare_writes_one_labelled_grid(tmp_path: Path):
    run = _run(tmp_path, "rcan", 2, "sr")
    figure = tmp_path / "grid.png"
    args = ["evaluate", "--compare", f"{run},{run}", "--image", "astronaut", "--crop", "10,20,40,30"]
    result = runner.invoke(app, [*args, "--figure", str(figure)])
    assert result.exit_code == 0, result.output
    labels = [line.split(":")[0] for line in result.output.splitlines() if " dB / " in line]
    assert labels == ["bicubic", "teacher", "run-rcan", "run-rcan"]
    img = cv2.imread(str(figure))
    # 5 panels (HR, bicubic, teacher, 2 students) in 4 columns -> 2 rows: (4 + 2.2 * 4) x 5 inches at 120 dpi
    assert img.shape == (600, 1536, 3) and img.std() > 10
    again = runner.invoke(app, [*args, "--figure", str(figure)])
    assert again.exit_code == 1 and "--force" in again.output
    outside = runner.invoke(app, [*args[:-2], "--crop", "250,250,40,40", "--figure", str(tmp_path / "x.png")])
    assert outside.exit_code == 1 and "outside" in outside.output and not (tmp_path / "x.png").exists()
