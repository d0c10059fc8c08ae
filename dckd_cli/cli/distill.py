"""`dckd distill`: not available yet (the distillation engine lands next)."""

from __future__ import annotations

from dckd_cli.cli import options as opt
from dckd_cli.cli.errors import NotAvailable, user_errors

EXAMPLE = (
    "Example:  dckd distill --task sr --teacher swinir --scale 4"
    " --teacher-checkpoint SwinIR-M_x4.pth --data-root ~/data"
)


@user_errors
def distill_command(
    preset: opt.PresetOpt = None,
    overrides: opt.SetOpt = None,
    task: opt.TaskOpt = None,
    teacher: opt.TeacherOpt = None,
    scale: opt.ScaleOpt = None,
    output: opt.OutputOpt = None,
) -> None:
    """Distil a teacher into a student."""
    raise NotAvailable("dckd distill")
