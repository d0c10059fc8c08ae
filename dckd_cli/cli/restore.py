"""`dckd restore`: restore image files with a student; bad files are reported and skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from dckd_cli.cli import options as opt
from dckd_cli.cli.errors import user_errors

console = Console()

EXAMPLE = (
    "Examples:  dckd restore photo.png --model exports/rcan-x2 --output restored/"
    "  |  dckd restore photos/ --model exports/rcan-x2 --backend onnxruntime --tile 256 --output restored/"
    "  |  dckd restore photos/ --model runs/rcan-x2-dckd --output restored/"
)


@user_errors
def restore_command(
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or folders of images.")],
    model: Annotated[Path, typer.Option("--model", "-m", help="An export folder, a run folder or a checkpoint.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the restored images.")],
    backend: Annotated[str, typer.Option("--backend", help="torch or onnxruntime (needs an ONNX export).")] = "torch",
    tile: Annotated[Optional[int], typer.Option("--tile", help="Restore in input tiles of this side.")] = None,
    tile_overlap: Annotated[int, typer.Option("--tile-overlap", help="Tile overlap in input pixels.")] = 16,
    force: opt.ForceOpt = False,
    quiet: opt.QuietOpt = False,
) -> None:
    """Restore images with a trained or exported student (PyTorch or ONNX Runtime), tiled if asked."""
    from dckd_cli.pipelines.restore import restore_images  # torch loads here
    from dckd_cli.report.progress import image_progress

    with image_progress(console, quiet) as progress:
        bar = progress.add_task("restoring", total=None)

        def on_image(path: Path, error: str | None) -> None:
            progress.update(bar, advance=1, description=path.name)
            if error is not None:
                console.print(f"[bold red]skipped:[/] {error}", highlight=False)

        report = restore_images(
            inputs,
            model,
            output,
            backend=backend,
            tile=tile,
            overlap=tile_overlap,
            force=force,
            on_start=lambda n: progress.update(bar, total=n),
            on_image=on_image,
        )
    console.print(f"restored {len(report.written)} image(s) into {output}", highlight=False)
    if report.failed:
        console.print(f"{len(report.failed)} file(s) could not be read and were skipped", highlight=False)
        raise typer.Exit(1)
