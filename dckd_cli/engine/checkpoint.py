"""Run folders and checkpoints that survive a kill.

Layout of a run folder::

    settings.yaml                 resolved settings
    metrics.jsonl                 one JSON object per logged iteration
    checkpoints/last/, best/      model.safetensors (EMA student: evaluate / export),
                                  student.safetensors (online weights), method.safetensors
                                  (e.g. the history model), state.pt (optimiser, scheduler,
                                  iteration, RNG, EMA step count; tensors and numbers only)
    val_images/iter_NNNNNN/       a few validation restorations

A checkpoint is written into a temporary folder and renamed into place, so ``last`` is
always a complete checkpoint, never a half-written one.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

SETTINGS_FILE = "settings.yaml"


class RunFolderError(ValueError):
    """A run folder that cannot be created, reused or resumed."""


@dataclass
class Checkpoint:
    model: nn.Module | dict[str, torch.Tensor]  # the EMA student
    student: nn.Module | dict[str, torch.Tensor]
    method: dict[str, torch.Tensor]
    state: dict[str, Any]


def _tensors(module_or_state: nn.Module | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def check_run_folder(folder: Path, force: bool, resume: bool) -> None:
    """Refuse to reuse an existing run without ``force``, or to resume a missing one."""
    if resume:
        if not (folder / SETTINGS_FILE).is_file():
            raise RunFolderError(f"{folder}: nothing to resume (no {SETTINGS_FILE}); drop --resume to start a run")
        return
    if folder.exists() and any(folder.iterdir()) and not force:
        raise RunFolderError(f"{folder} already exists; pass --resume to continue it or --force to overwrite it")


def prepare_run_folder(folder: Path, force: bool, resume: bool) -> None:
    """Create ``folder``; an existing run is kept for ``resume`` and replaced only with ``force``."""
    check_run_folder(folder, force, resume)
    if resume:
        return
    if folder.exists() and any(folder.iterdir()):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)


def save_checkpoint(folder: Path, tag: str, ckpt: Checkpoint) -> Path:
    """Write ``checkpoints/<tag>/`` atomically and return its path."""
    root = folder / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    tmp, final, old = root / f".tmp-{tag}", root / tag, root / f".old-{tag}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_tensors(ckpt.model), str(tmp / "model.safetensors"))
    save_file(_tensors(ckpt.student), str(tmp / "student.safetensors"))
    save_file(_tensors(ckpt.method) or {"_empty": torch.zeros(0)}, str(tmp / "method.safetensors"))
    torch.save(ckpt.state, tmp / "state.pt")
    for f in tmp.iterdir():
        with f.open("rb") as handle:
            os.fsync(handle.fileno())
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(folder: Path, tag: str = "last") -> Checkpoint:
    """Read ``checkpoints/<tag>/`` (or the previous copy if a kill struck mid-rename)."""
    root = folder / "checkpoints"
    path = next((p for p in (root / tag, root / f".old-{tag}") if (p / "state.pt").is_file()), None)
    if path is None:
        raise RunFolderError(f"{folder}: no '{tag}' checkpoint to resume from; start again with --force")
    method = load_file(str(path / "method.safetensors"))
    method.pop("_empty", None)
    return Checkpoint(
        model=load_file(str(path / "model.safetensors")),
        student=load_file(str(path / "student.safetensors")),
        method=method,
        state=torch.load(path / "state.pt", map_location="cpu", weights_only=True),
    )
