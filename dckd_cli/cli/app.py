"""The `dckd` command: one Typer app, one thin module per command."""

from __future__ import annotations

from typing import Annotated

import typer

from dckd_cli import __version__
from dckd_cli.cli import ablate, distill, evaluate, export, models, restore
from dckd_cli.cli.data import data_app
from dckd_cli.cli.encoder import encoder_app

app = typer.Typer(
    name="dckd",
    help="Knowledge distillation for image restoration (DCKD, AAAI 2025, and its baselines).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dckd {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Distil a large restoration teacher into a small, fast student."""
    from dckd_cli.cli.errors import user_errors
    from dckd_cli.limits import max_pixels

    user_errors(max_pixels)()  # the environment's limits are checked before any command reads a file


app.command("distill", epilog=distill.EXAMPLE)(distill.distill_command)
app.command("evaluate", epilog=evaluate.EXAMPLE)(evaluate.evaluate_command)
app.command("export", epilog=export.EXAMPLE)(export.export_command)
app.command("ablate", epilog=ablate.EXAMPLE)(ablate.ablate_command)
app.command("restore", epilog=restore.EXAMPLE)(restore.restore_command)
app.command("models", epilog=models.EXAMPLE)(models.models_command)
app.add_typer(encoder_app, name="encoder")
app.add_typer(data_app, name="data")
