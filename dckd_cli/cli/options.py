"""Typed options shared by the commands (one definition each)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

PresetOpt = Annotated[Optional[str], typer.Option("--preset", "-p", help="Preset name (see presets/) or YAML path.")]
SetOpt = Annotated[
    Optional[list[str]], typer.Option("--set", "-s", help="Override a setting: --set optim.lr=2e-4 (repeatable).")
]
TaskOpt = Annotated[Optional[str], typer.Option("--task", help="sr, deblur or derain.")]
ScaleOpt = Annotated[Optional[int], typer.Option("--scale", help="SR scale: 2, 3 or 4.")]
DataRootOpt = Annotated[
    Optional[Path], typer.Option("--data-root", help="Folder with the benchmarks and training sets [env DCKD_DATA].")
]
DatasetsOpt = Annotated[
    Optional[str], typer.Option("--datasets", help="Comma-separated benchmark names or folders, e.g. Set5,Set14.")
]
TeacherOpt = Annotated[
    Optional[str], typer.Option("--teacher", help="Teacher architecture: swinir, rcan, nafnet, restormer.")
]
TeacherCkptOpt = Annotated[Optional[Path], typer.Option("--teacher-checkpoint", help="Teacher weights file.")]
StudentOpt = Annotated[Optional[str], typer.Option("--student", help="Student architecture (default: the teacher's).")]
MethodOpt = Annotated[
    Optional[str], typer.Option("--method", help="scratch, logits, fakd, csd, dukd, dckd, dckd-star.")
]
OutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o", help="Run folder.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing output.")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in --output.")]
ItersOpt = Annotated[Optional[int], typer.Option("--iters", help="Iteration budget.")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Random seed.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final results.")]
