"""Typed options shared by the commands (one definition each)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dckd_cli.catalog.architectures import ARCHITECTURES, SIZES
from dckd_cli.catalog.methods import METHOD_NAMES
from dckd_cli.catalog.tasks import TASK_NAMES, TASKS


def _names(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]


MODEL_ARCHS = [a for a in ARCHITECTURES if a != "bicubic"]
SR_SCALES = _names([str(s) for s in TASKS["sr"].scales])

PresetOpt = Annotated[Optional[str], typer.Option("--preset", "-p", help="Preset name (see presets/) or YAML path.")]
SetOpt = Annotated[
    Optional[list[str]], typer.Option("--set", "-s", help="Override a setting: --set optim.lr=2e-4 (repeatable).")
]
TaskOpt = Annotated[Optional[str], typer.Option("--task", help=f"{_names(TASK_NAMES)}.")]
ScaleOpt = Annotated[Optional[int], typer.Option("--scale", help=f"SR scale: {SR_SCALES} (1 for the other tasks).")]
DataRootOpt = Annotated[
    Optional[Path], typer.Option("--data-root", help="Folder with the benchmarks and training sets (env DCKD_DATA).")
]
DatasetsOpt = Annotated[
    Optional[str], typer.Option("--datasets", help="Comma-separated benchmark names or folders, e.g. Set5,Set14.")
]
TeacherOpt = Annotated[Optional[str], typer.Option("--teacher", help=f"Teacher architecture: {_names(MODEL_ARCHS)}.")]
TeacherCkptOpt = Annotated[Optional[Path], typer.Option("--teacher-checkpoint", help="Teacher weights file.")]
StudentOpt = Annotated[Optional[str], typer.Option("--student", help="Student architecture (default: the teacher's).")]
MethodOpt = Annotated[Optional[str], typer.Option("--method", help=f"{_names(METHOD_NAMES)}.")]
SizeOpt = Annotated[str, typer.Option("--size", help=f"Zoo size: {_names(SIZES)}.")]
OutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o", help="Run folder.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing output.")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in --output.")]
ItersOpt = Annotated[Optional[int], typer.Option("--iters", help="Iteration budget.")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Random seed.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final results.")]
