"""The progressive patch / batch schedule: stages, sample indices, and resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dckd_cli.data.pairs import TrainingPatches, training_loaders
from dckd_cli.data.schedule import Stage, StagedBatches

STAGES = [Stage(until=3, patch=16, batch=4), Stage(until=5, patch=24, batch=2), Stage(until=6, patch=32, batch=1)]


def test_stages_set_batch_and_patch_and_indices_are_contiguous():
    sampler = StagedBatches(STAGES, start=0, iters=6)
    batches = list(sampler)
    assert [len(b) for b in batches] == [4, 4, 4, 2, 2, 1]
    flat = [i for b in batches for i in b]
    assert flat == list(range(sampler.samples)) and sampler.samples == 17
    assert [sampler.patch_of_sample(b[0]) for b in batches] == [16, 16, 16, 24, 24, 32]
    # a resumed sampler continues exactly where an uninterrupted one would be
    assert list(StagedBatches(STAGES, start=4, iters=6)) == batches[4:]
    # gradient accumulation: each iteration is `micro` micro-batches of its stage's size
    assert [len(b) for b in StagedBatches(STAGES, start=2, iters=4, micro=2)] == [4, 4, 2, 2]
    # the last stage runs to the end of a longer budget
    assert [len(b) for b in StagedBatches(STAGES, start=5, iters=8)] == [1, 1, 1]


def test_patches_grow_with_the_stages():
    sampler = StagedBatches(STAGES, start=0, iters=6)
    data = TrainingPatches(
        training_loaders(["builtin"], "derain", 1, None),
        1,
        16,
        sampler.samples,
        0,
        patch_of_sample=sampler.patch_of_sample,
    )
    loader = torch.utils.data.DataLoader(data, batch_sampler=sampler)
    shapes = [tuple(lq.shape) for lq, _ in loader]
    assert shapes[0] == (4, 3, 16, 16) and shapes[3] == (2, 3, 24, 24) and shapes[5] == (1, 3, 32, 32)


def _paired_folder(folder: Path) -> Path:
    """A small deblurring training set on disk (prepared on first use)."""
    from skimage import data as skdata

    from dckd_cli.data.images import write_image

    image = skdata.astronaut()
    for i in range(3):
        crop = np.ascontiguousarray(image[i * 60 : i * 60 + 80, :96])
        write_image(folder / "input" / f"{i}.png", np.ascontiguousarray(crop[:, ::-1]))
        write_image(folder / "target" / f"{i}.png", crop)
    return folder


@pytest.mark.parametrize("train_set", ["builtin", "folder"])
def test_a_progressive_run_resumes_bitwise(tmp_path: Path, train_set: str):
    from dckd_cli.engine.checkpoint import load_checkpoint
    from dckd_cli.engine.trainer import Trainer, train
    from dckd_cli.settings.presets import resolve_settings

    where = "builtin" if train_set == "builtin" else str(_paired_folder(tmp_path / "pairs"))
    overrides = [
        f"data.train=[{where}]",
        "student.size=tiny",
        "data.progressive=[{until: 2, patch: 16, batch: 2}, {until: 4, patch: 32, batch: 1}]",
        "runtime.val_every=100",
        "runtime.save_every=2",
        "runtime.device=cpu",
        "data.val_limit=1",
        "optim.scheduler=constant",
    ]
    full = resolve_settings("demo", {"task": "deblur", "method.name": "scratch", "optim.iters": 4}, overrides)
    train(full, tmp_path / "full")
    half = resolve_settings("demo", {"task": "deblur", "method.name": "scratch", "optim.iters": 2}, overrides)
    train(half, tmp_path / "half")
    resumed = full.model_copy(deep=True)
    resumed.output = tmp_path / "half"
    Trainer.of(resumed, tmp_path / "half").run(resume=True)  # stopped after stage 1, resumed into stage 2
    a, b = load_checkpoint(tmp_path / "full").model, load_checkpoint(tmp_path / "half").model
    assert all(torch.equal(a[k], b[k]) for k in a)
