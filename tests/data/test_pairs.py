from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dckd_cli.data.folders import DatasetError
from dckd_cli.data.images import write_image
from dckd_cli.data.pairs import TrainingPatches, augment, training_loaders
from dckd_cli.data.resize import bicubic_downscale


def test_same_seed_same_samples_any_order():
    loaders = training_loaders(["builtin"], "sr", 4, None)
    a = TrainingPatches(loaders, scale=4, patch=16, length=100, seed=3)
    b = TrainingPatches(loaders, scale=4, patch=16, length=100, seed=3)
    c = TrainingPatches(loaders, scale=4, patch=16, length=100, seed=4)
    later = [b[i] for i in (57, 5)]  # drawn out of order, as a resumed run does
    for (la, ga), (lb, gb) in zip([a[57], a[5]], later):
        assert torch.equal(la, lb) and torch.equal(ga, gb)
    assert not torch.equal(a[5][0], c[5][0])


def test_patches_are_aligned_lr_hr_pairs():
    """The LR patch is the bicubic downscale of its HR patch (away from the patch border)."""
    loaders = training_loaders(["builtin"], "sr", 2, None)
    data = TrainingPatches(loaders, scale=2, patch=24, length=20, seed=0)
    for i in range(5):
        lq, gt = data[i]
        assert lq.shape == (3, 24, 24) and gt.shape == (3, 48, 48)
        gt8 = np.rint(gt.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
        remade = bicubic_downscale(gt8, 2).astype(np.float64) / 255
        inner = np.abs(remade - lq.numpy().transpose(1, 2, 0))[4:-4, 4:-4]
        assert inner.max() < 1.5 / 255


def test_all_eight_augmentations_are_distinct_and_consistent(rng):
    lq = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    gt = np.repeat(np.repeat(lq, 2, axis=0), 2, axis=1)
    variants = set()
    for code in range(8):
        a, b = augment(lq, gt, code)
        assert np.array_equal(np.repeat(np.repeat(a, 2, axis=0), 2, axis=1), b)
        variants.add(a.tobytes())
    assert len(variants) == 8


def test_training_folders(tmp_path: Path, rng):
    write_image(tmp_path / "DIV2K" / "DIV2K_train_HR" / "0001.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert len(training_loaders(["DIV2K"], "sr", 4, tmp_path)) == 1
    with pytest.raises(DatasetError, match="not found"):
        training_loaders(["Nope"], "sr", 4, tmp_path)
    data = TrainingPatches(training_loaders(["DIV2K"], "sr", 4, tmp_path), scale=4, patch=48, length=1)
    with pytest.raises(DatasetError, match="smaller than the 48-pixel patch"):
        data[0]
    # A too-small image among usable ones is skipped, not fatal.
    write_image(tmp_path / "DIV2K" / "DIV2K_train_HR" / "0002.png", rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    mixed = TrainingPatches(training_loaders(["DIV2K"], "sr", 4, tmp_path), scale=4, patch=48, length=20)
    assert all(mixed[i][1].shape == (3, 192, 192) for i in range(20))


def test_t91_loads_through_the_folder_path(shared_data):
    loaders = training_loaders([str(shared_data / "T91")], "sr", 4, None)
    assert len(loaders) == 91
    lq, gt = TrainingPatches(loaders, scale=4, patch=24, length=1)[0]
    assert gt.shape == (3, 96, 96)
