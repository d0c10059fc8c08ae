"""`dckd data`: training sets prepared once per machine (decoded into the dckd cache)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dckd_cli.cli import options as opt
from dckd_cli.cli.errors import user_errors
from dckd_cli.errors import DckdError

console = Console()
data_app = typer.Typer(
    help="Training sets prepared once per machine: decoded, their LQ made, and kept in the dckd cache.",
    no_args_is_help=True,
)

EXAMPLE = "Example:  dckd data prepare DIV2K Flickr2K --task sr --scale 4 --data-root ~/data"


@data_app.command("prepare", epilog=EXAMPLE)
@user_errors
def prepare_command(
    sets: Annotated[list[str], typer.Argument(help="Training sets: names under --data-root, or folders.")],
    task: opt.TaskOpt = None,
    scale: opt.ScaleOpt = None,
    data_root: opt.DataRootOpt = None,
    skip_bad_images: Annotated[
        bool, typer.Option("--skip-bad-images", help="Leave files that do not decode out (with a warning).")
    ] = False,
    quiet: opt.QuietOpt = False,
) -> None:
    """Prepare training sets now, as the first run on them would (later runs and every worker map them)."""
    from dckd_cli.settings.presets import resolve_settings

    flags = {"task": task, "scale": scale, "data.root": data_root, "data.train": sets}
    settings = resolve_settings(None, {**flags, "data.skip_bad_images": skip_bad_images})
    if "builtin" in sets:
        raise DckdError("the built-in images are not prepared (they are made in memory); name folders or sets")
    from dckd_cli.pipelines.data import prepare_training_sets
    from dckd_cli.report.progress import show_preparation

    show_preparation(console, quiet)
    for info in prepare_training_sets(settings):
        console.print(
            f"{info.folder}: {info.pairs} pairs, {info.bytes / 2**30:.2f} GiB", highlight=False, soft_wrap=True
        )


@data_app.command("list")
@user_errors
def list_command() -> None:
    """The prepared sets in the dckd cache, their size, and where the cache is."""
    from dckd_cli.cache import cache_dir
    from dckd_cli.data.prepared import prepared_sets

    found = prepared_sets()
    table = Table(title=f"prepared training sets in {cache_dir() / 'prepared'}")
    for column in ("set", "pairs", "left out", "GiB"):
        table.add_column(column, justify="left" if column == "set" else "right")
    for info in found:
        table.add_row(info.folder.name, str(info.pairs), str(info.skipped), f"{info.bytes / 2**30:.2f}")
    console.print(table)
    total = sum(info.bytes for info in found) / 2**30
    console.print(
        f"{len(found)} set(s), {total:.2f} GiB; delete a folder to prepare it again, or set DCKD_CACHE to move "
        "the cache (a set is prepared anew there on first use)",
        highlight=False,
        soft_wrap=True,
    )
