"""`dckd export`: not available yet; the command exists so scripts can discover it."""

from __future__ import annotations

from dckd_cli.cli import options as opt
from dckd_cli.cli.errors import user_errors
from dckd_cli.errors import NotAvailable

EXAMPLE = "Example:  dckd export --run runs/dckd-x4 --format onnx --output student.onnx"


@user_errors
def export_command(preset: opt.PresetOpt = None, overrides: opt.SetOpt = None, output: opt.OutputOpt = None) -> None:
    """Export a trained student for deployment (safetensors, TorchScript, ONNX)."""
    raise NotAvailable("dckd export")
