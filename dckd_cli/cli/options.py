"""Typed options shared by the commands (one definition each)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dckd_cli.catalog.architectures import MODEL_ARCHS, SIZES
from dckd_cli.catalog.methods import METHOD_NAMES
from dckd_cli.catalog.tasks import TASK_NAMES, TASKS


def _names(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]


SR_SCALES = _names([str(s) for s in TASKS["sr"].scales])

PresetOpt = Annotated[
    Optional[str], typer.Option("--preset", "-p", metavar="NAME|FILE", help="Preset name (see presets/) or YAML path.")
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", metavar="KEY=VALUE", help="Override a setting: --set optim.lr=2e-4 (repeatable)."),
]
TaskOpt = Annotated[
    Optional[str], typer.Option("--task", metavar="TASK", help=f"{_names(TASK_NAMES)} (default: sr, or the preset's).")
]
ScaleOpt = Annotated[
    Optional[int],
    typer.Option("--scale", metavar="N", help=f"SR scale: {SR_SCALES} (1 for the other tasks) (default: 4 for sr)."),
]
DataRootOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--data-root", metavar="DIR", help="Folder with the benchmarks and training sets (default: $DCKD_DATA)."
    ),
]
DatasetsOpt = Annotated[
    Optional[str],
    typer.Option("--datasets", metavar="A,B", help="Comma-separated benchmark names or folders, e.g. Set5,Set14."),
]
TeacherOpt = Annotated[
    Optional[str],
    typer.Option(
        "--teacher",
        metavar="ARCH",
        help=f"Teacher architecture: {_names(MODEL_ARCHS)}, any spandrel family (dckd models) or "
        "package.module:function.",
    ),
]
TeacherCkptOpt = Annotated[
    Optional[Path],
    typer.Option("--teacher-checkpoint", metavar="FILE", help="Teacher weights (.pth / .pt / .ckpt / .safetensors)."),
]
StudentOpt = Annotated[
    Optional[str],
    typer.Option(
        "--student",
        metavar="ARCH",
        help="Student architecture (default: the teacher's): as --teacher; its constructor options with "
        "--set student.options.NAME=VALUE (dckd models FAMILY lists them).",
    ),
]
MethodOpt = Annotated[
    Optional[str],
    typer.Option("--method", metavar="METHOD", help=f"{_names(METHOD_NAMES)} (default: dckd, or the preset's)."),
]
SizeOpt = Annotated[str, typer.Option("--size", metavar="SIZE", help=f"Zoo size: {_names(SIZES)}.")]
OutputOpt = Annotated[
    Optional[Path],
    typer.Option("--output", "-o", metavar="DIR", help="Run folder (default: runs/<task>-<arch>-x<scale>-<method>)."),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing output.")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in --output.")]
ItersOpt = Annotated[
    Optional[int],
    typer.Option("--iters", metavar="N", help="Iteration budget (default: the preset's, 250000 without one)."),
]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", metavar="N", help="Random seed (default: 0).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final results.")]
