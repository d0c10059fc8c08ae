"""What the evidence scripts (``reproduce_scratch.py``, ``reproduce_small.py``) share: the
protocol's common settings, a random encoder written atomically, mean ± std, and a report
whose hand-written reading survives regeneration."""

from __future__ import annotations

import statistics
from pathlib import Path

import torch
from safetensors.torch import save_file

from dckd_cli.atomic import atomic_path

DATASETS = ("Set5", "Set14")
# Every evidence cell ran in contiguous memory (before channels-last became the CPU default);
# pinned in each cell's changes, so a rerun or a resumed cell repeats the recorded runs.
PINNED: dict[str, object] = {"runtime.channels_last": False}
READING = "## Reading"  # a report's hand-written part starts here and survives regeneration


def protocol_overrides(shared: Path, teacher: Path, student_size: str, patch: int, batch: int) -> list[str]:
    """``--set`` lines every evidence cell shares: x4 SR, the teacher file, an RCAN student,
    T91 + BSD200 for training, Set5 / Set14 with their official LR files, and no periodic
    validation (the final models are scored)."""
    data = shared / "data"
    return [
        "task=sr",
        "scale=4",
        "teacher.arch=auto",
        f"teacher.checkpoint={teacher}",
        "student.arch=rcan",
        f"student.size={student_size}",
        f"data.root={data}",
        f"data.train=[{data / 'T91'}, {data / 'BSD200'}]",
        "data.val=builtin-train",  # validation is not used: the final models are scored
        "data.val_limit=1",
        "data.test=[Set5, Set14]",
        "data.lr_source=file",
        f"data.patch_size={patch}",
        f"data.batch_size={batch}",
        "runtime.log_every=50",
        "runtime.val_every=1000000000",
        "runtime.save_every=100",
    ]


def save_random_encoder(state: dict[str, torch.Tensor], path: Path) -> None:
    """Write a randomly initialised encoder's weights (the encoder-quality control) atomically."""
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))


def mean_std(values: list[float], digits: int = 3, signed: bool = False) -> str:
    """``mean ± std``; one value alone, with no spread to show (``± 0.000`` would read as one)."""
    sign = "+" if signed else ""
    mean = f"{statistics.mean(values):{sign}.{digits}f}"
    return f"{mean} ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else mean


def write_report(path: Path, lines: list[str]) -> None:
    """``lines`` as the report at ``path``, followed by the reading already there (if any)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text() if path.is_file() else ""
    reading = old[old.index(READING) :] if READING in old else ""
    path.write_text("\n".join(lines) + "\n" + ("\n" + reading if reading else ""))
    print("\n".join(lines))
