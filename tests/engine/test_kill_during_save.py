"""A process killed at any file-system call of a checkpoint save, even during the first save of a
run that had itself resumed from such a kill, resumes to the same weights as a run never killed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dckd_cli.engine import checkpoint as ckpt_module
from dckd_cli.engine import trainer as trainer_module
from dckd_cli.engine.run_folder import RunFolder
from dckd_cli.engine.trainer import Trainer, train


class Killed(BaseException):
    """The process died here (nothing after this line of the save runs)."""


class Injector:
    """Counts the file-system calls of one chosen save and kills the process at call ``at``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, save_number: int, at: int):
        self.save_number, self.at, self.saves, self.calls, self.active = save_number, at, 0, 0, False
        self.total = 0  # calls seen in the chosen save (to learn how many there are)
        real_save = trainer_module.save_checkpoint

        def counted_save(*args, **kwargs):  # noqa: ANN002, ANN003
            self.saves += 1
            self.active = self.saves == self.save_number
            try:
                return real_save(*args, **kwargs)
            finally:
                self.active = False

        monkeypatch.setattr(trainer_module, "save_checkpoint", counted_save)
        for owner, name in [(shutil, "rmtree"), (os, "fsync"), (torch, "save"), (ckpt_module, "save_file")]:
            monkeypatch.setattr(owner, name, self.wrap(getattr(owner, name)))
        for name in ("rename", "mkdir"):
            monkeypatch.setattr(Path, name, self.wrap(getattr(Path, name)))

    def wrap(self, real):  # noqa: ANN001, ANN201
        def call(*args, **kwargs):  # noqa: ANN002, ANN003
            if self.active:
                self.total += 1
                if self.total == self.at:
                    raise Killed
            return real(*args, **kwargs)

        return call


def _student(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(RunFolder(folder).weights("last", "student")))


def test_a_kill_at_any_call_of_a_save_resumes_bitwise(tmp_path: Path, tiny_settings, monkeypatch):
    def settings():
        return tiny_settings("logits", iters=12, **{"runtime.val_every": 1000})  # saves at 3, 6, 9, 12

    train(settings(), tmp_path / "whole")
    expected = _student(tmp_path / "whole")
    with monkeypatch.context() as m:  # how many calls does a save make?
        probe = Injector(m, save_number=2, at=10**9)
        train(settings(), tmp_path / "probe")
    calls = probe.total
    assert calls >= 8
    print(f"file-system calls in one save: {calls}")
    for at in range(1, calls + 1):
        folder = tmp_path / f"kill-{at}"
        with monkeypatch.context() as m:
            Injector(m, save_number=2, at=at)  # the save at iteration 6
            with pytest.raises(Killed):
                train(settings(), folder)
        if at in (calls // 2, calls - 2):  # and the resumed run is killed during its own first save
            with monkeypatch.context() as m:
                Injector(m, save_number=1, at=at)
                with pytest.raises(Killed):
                    Trainer.of(settings(), folder).run(resume=True)
        Trainer.of(settings(), folder).run(resume=True)
        got = _student(folder)
        assert all(torch.equal(expected[k], got[k]) for k in expected), f"killed at call {at} of {calls}"


def test_a_full_disk_during_a_save_is_one_line_leaves_nothing_and_resumes(tmp_path: Path, tiny_settings, monkeypatch):
    """The third save meets a full disk (safetensors' own error text): the run stops with the
    checkpoint path and what to do, no temporary folder is left, and once space is back the run
    resumes from the checkpoint before and ends equal to an uninterrupted run."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from dckd_cli.engine import checkpoint as checkpoint_module
    from dckd_cli.engine.checkpoint import CheckpointWriteError
    from dckd_cli.engine.run_folder import RunFolder

    train(tiny_settings("logits", iters=6), tmp_path / "whole")
    real, calls = checkpoint_module.save_file, []

    def full_disk(tensors, path):  # noqa: ANN001
        calls.append(path)
        if len(calls) == 7:  # the first file of the third checkpoint
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        real(tensors, path)

    monkeypatch.setattr(checkpoint_module, "save_file", full_disk)
    run = tmp_path / "part"
    message = r"checkpoints/(last|best): the checkpoint could not be written \(no space left on the disk, .* free\); "
    message += r"the checkpoint before is intact: free space, then run dckd distill --output .* --resume$"
    with pytest.raises(CheckpointWriteError, match=message):
        train(tiny_settings("logits", iters=6), run)
    assert not list(RunFolder(run).checkpoints.glob(".tmp-*"))
    monkeypatch.setattr(checkpoint_module, "save_file", real)
    train(tiny_settings("logits", iters=6), run, resume=True)
    a, b = (load_file(str(RunFolder(tmp_path / n).weights("last", "student"))) for n in ("whole", "part"))
    assert all(torch.equal(a[k], b[k]) for k in a)
