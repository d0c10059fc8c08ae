"""`dckd ablate`: not available yet; the command exists so scripts can discover it."""

from __future__ import annotations

from dckd_cli.cli import options as opt
from dckd_cli.cli.errors import user_errors
from dckd_cli.errors import NotAvailable

EXAMPLE = "Example:  dckd ablate --preset sr-rcan-x2 --degradation noise,blur"


@user_errors
def ablate_command(preset: opt.PresetOpt = None, overrides: opt.SetOpt = None, output: opt.OutputOpt = None) -> None:
    """Run an ablation grid (components, degradations, loss weights) over distill runs."""
    raise NotAvailable("dckd ablate")
