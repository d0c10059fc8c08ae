"""Checkpoints that survive a kill (the folder layout: ``run_folder.py``).

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

from dckd_cli.engine.run_folder import RunFolder, RunFolderError


@dataclass
class Checkpoint:
    model: nn.Module | dict[str, torch.Tensor]  # the EMA student
    student: nn.Module | dict[str, torch.Tensor]
    method: dict[str, torch.Tensor]
    state: dict[str, Any]


def _tensors(module_or_state: nn.Module | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def save_checkpoint(folder: Path, tag: str, ckpt: Checkpoint) -> Path:
    """Write ``checkpoints/<tag>/`` atomically and return its path."""
    root = RunFolder(folder).checkpoints
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
    root = RunFolder(folder).checkpoints
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
