"""Checkpoints that survive a kill (the folder layout: ``run_folder.py``).

A checkpoint is written into a temporary folder and renamed into place, so ``last`` is
always a complete checkpoint, never a half-written one.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from dckd_cli.atomic import write_error
from dckd_cli.engine.run_folder import RunFolder, RunFolderError

log = logging.getLogger(__name__)


class CheckpointWriteError(RunFolderError):
    """A checkpoint that could not be written (a full disk, most often)."""


@dataclass
class Checkpoint:
    model: nn.Module | dict[str, torch.Tensor]  # the EMA student
    student: nn.Module | dict[str, torch.Tensor]
    method: dict[str, torch.Tensor]
    state: dict[str, Any]
    source: Path | None = None  # the folder it was read from


def _tensors(module_or_state: nn.Module | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def save_checkpoint(folder: Path, tag: str, ckpt: Checkpoint) -> Path:
    """Write ``checkpoints/<tag>/`` atomically and return its path.

    The new checkpoint is written and synced in a temporary folder; only then does the old
    one step aside as ``.prev-<tag>`` (kept: the fallback if the new one is ever damaged) and
    the new one take its name. At every moment one complete checkpoint is on disk.
    """
    root = RunFolder(folder).checkpoints
    root.mkdir(parents=True, exist_ok=True)
    tmp, final, prev = root / f".tmp-{tag}", root / tag, root / f".prev-{tag}"
    shutil.rmtree(tmp, ignore_errors=True)
    files = {
        "model.safetensors": _tensors(ckpt.model),
        "student.safetensors": _tensors(ckpt.student),
        "method.safetensors": _tensors(ckpt.method) or {"_empty": torch.zeros(0)},
    }
    try:
        tmp.mkdir()
        for name, tensors in files.items():
            save_file(tensors, str(tmp / name))
        torch.save(ckpt.state, tmp / "state.pt")
        for f in tmp.iterdir():
            with f.open("rb") as handle:
                os.fsync(handle.fileno())
    except (OSError, RuntimeError, SafetensorError) as err:  # a full disk, a lost mount: nothing half-written
        shutil.rmtree(tmp, ignore_errors=True)
        failed = write_error(final, err)
        saved = RunFolder(folder).saved_any()
        kept = "the checkpoint before is intact" if saved else "no checkpoint was written yet"
        nxt = f"dckd distill --output {folder} --resume" if saved else "the same command"
        raise CheckpointWriteError(
            f"{final}: the checkpoint could not be written ({failed.strerror}); {kept}: free space, then run {nxt}"
        ) from None
    if final.exists():  # only then may the previous copy go: `final` is complete
        shutil.rmtree(prev, ignore_errors=True)
        final.rename(prev)
    tmp.rename(final)
    return final


def _read(path: Path) -> Checkpoint:
    method = load_file(str(path / "method.safetensors"))
    method.pop("_empty", None)
    return Checkpoint(
        model=load_file(str(path / "model.safetensors")),
        student=load_file(str(path / "student.safetensors")),
        method=method,
        state=torch.load(path / "state.pt", map_location="cpu", weights_only=True),
        source=path,
    )


def load_checkpoint(folder: Path, tag: str = "last") -> Checkpoint:
    """Read ``checkpoints/<tag>/``; if it is missing or damaged, the previous copy (then, for
    ``last``, ``best`` and its previous copy), with a warning naming the one used."""
    root = RunFolder(folder).checkpoints
    names = [tag, f".prev-{tag}"] + (["best", ".prev-best"] if tag == "last" else [])
    candidates = [root / n for n in names if (root / n / "state.pt").is_file()]
    if not candidates:
        raise RunFolderError(f"{folder}: no '{tag}' checkpoint to resume from; start again with --force")
    damaged = []
    for path in candidates:
        try:
            ckpt = _read(path)
        except Exception as err:  # noqa: BLE001 - any unreadable file makes this copy unusable
            damaged.append(f"{path.name} ({str(err).splitlines()[0][:80] if str(err) else type(err).__name__})")
            continue
        if damaged:
            log.warning(
                "checkpoint %s is damaged; resuming from %s (iteration %s)", damaged[0], path, ckpt.state["iter"]
            )
        return ckpt
    raise RunFolderError(
        f"{folder}: every '{tag}' checkpoint is damaged ({'; '.join(damaged)}); start again with --force"
    )
