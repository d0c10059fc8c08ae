from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dckd_cli.data.benchmarks import load_benchmark
from dckd_cli.data.folders import DatasetError
from dckd_cli.data.images import write_image
from dckd_cli.data.resize import bicubic_downscale, imresize


def test_builtin_sets_for_every_task():
    for task, scale in [("sr", 4), ("sr", 3), ("deblur", 1), ("derain", 1)]:
        bench = load_benchmark("builtin", task, scale, None)
        assert len(bench) == 4
        lq, gt = bench.pairs[0].load()
        assert lq.shape[0] * scale == gt.shape[0] and lq.dtype == np.uint8
        if task != "sr":
            assert np.abs(lq.astype(int) - gt).mean() > 1.0  # really degraded


def test_builtin_validation_crops_are_the_photographs_with_their_training_degradation():
    from dckd_cli.data import builtin
    from dckd_cli.data.benchmarks import TRAIN_VARIANTS, builtin_degrade
    from dckd_cli.metrics.psnr_ssim import psnr

    sr = load_benchmark("builtin-train", "sr", 4, None)
    names = [n for n, _ in builtin.train_images()]
    assert [p.name for p in sr] == [n for n in names if n != "colorwheel"]
    for p in sr:  # no crop that bicubic upscales almost losslessly (the colour wheel: 57 dB)
        lq, gt = p.load()
        assert psnr(np.asarray(imresize(lq, 4, out_shape=gt.shape[:2])), gt, crop=4) < 50.0, p.name
    rain = {p.name: p for p in load_benchmark("builtin-train", "derain", 1, None)}
    index = names.index("camera")  # after the colour wheel: its own seed, the variant training sees
    gt = builtin.centre_crop(dict(builtin.train_images())["camera"], builtin.EVAL_SIDE)
    lq, _ = rain["camera"].load()
    assert np.array_equal(lq, builtin_degrade("derain", gt, 1, index * TRAIN_VARIANTS))


def test_sr_folder_layouts(tmp_path: Path, rng):
    hr = rng.integers(0, 256, (50, 42, 3), dtype=np.uint8)
    write_image(tmp_path / "Mine" / "HR" / "a.png", hr)
    official = np.zeros((12, 10, 3), np.uint8)
    write_image(tmp_path / "Mine" / "LR_bicubic" / "X4" / "ax4.png", official)
    lq, gt = load_benchmark("Mine", "sr", 4, tmp_path).pairs[0].load()
    assert gt.shape == (48, 40, 3) and np.array_equal(lq, official)
    lq, _ = load_benchmark("Mine", "sr", 4, tmp_path, lr_source="matlab").pairs[0].load()
    assert np.array_equal(lq, bicubic_downscale(hr, 4))
    write_image(tmp_path / "Flat" / "b.png", hr)
    assert load_benchmark(str(tmp_path / "Flat"), "sr", 2, None).name == "Flat"


def test_paired_layouts_and_aliases(tmp_path: Path, rng):
    img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for sub in ("input", "target"):
        write_image(tmp_path / "GoPro" / "test" / sub / "x.png", img)
        write_image(tmp_path / "test" / "Rain100L" / sub / "y.png", img)
    assert len(load_benchmark("GoPro", "deblur", 1, tmp_path)) == 1
    assert load_benchmark("Rain100L", "derain", 1, tmp_path).pairs[0].name == "y"
    write_image(tmp_path / "B100" / "HR" / "z.png", img)
    assert load_benchmark("BSD100", "sr", 2, tmp_path).name == "BSD100"


def test_missing_sets_say_what_to_do(tmp_path: Path):
    with pytest.raises(DatasetError, match="--data-root"):
        load_benchmark("Set5", "sr", 4, None)
    with pytest.raises(DatasetError, match=r"Urban100.*not found under"):
        load_benchmark("Urban100", "sr", 4, tmp_path)
    (tmp_path / "Set5" / "HR").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images found"):
        load_benchmark("Set5", "sr", 4, tmp_path)
    write_image(tmp_path / "Set5" / "HR" / "a.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DatasetError, match="LR_bicubic"):
        load_benchmark("Set5", "sr", 4, tmp_path, lr_source="file")
