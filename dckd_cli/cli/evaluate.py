"""`dckd evaluate`: parse, resolve settings, one library call, render."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from dckd_cli.cli import options as opt
from dckd_cli.cli.errors import user_errors
from dckd_cli.errors import DckdError, OutputExists
from dckd_cli.settings.presets import resolve_settings

console = Console()

EXAMPLE = (
    "Examples:  dckd evaluate --model bicubic --scale 4 --datasets Set5,Set14 --data-root ~/data"
    "  |  dckd evaluate --model swinir --checkpoint 001_classicalSR_DIV2K_s48w8_SwinIR-M_x4.pth --scale 4"
    "  |  dckd evaluate --run runs/dckd-x4 --datasets Set5 --json results.json"
)


def _check_free(path: Path | None, force: bool, what: str) -> None:
    if path is None or force:
        return
    if path.is_file() or (path.is_dir() and any(path.iterdir())):
        raise OutputExists(f"{what} {path}")
    from dckd_cli.atomic import check_writable

    check_writable(path)


@user_errors
def evaluate_command(
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model",
            "-m",
            help=f"Architecture ({', '.join(opt.MODEL_ARCHS)}), or a reference row: bicubic (SR), "
            "input (deblur, derain).",
        ),
    ] = None,
    size: opt.SizeOpt = "teacher",
    checkpoint: Annotated[
        Optional[Path],
        typer.Option("--checkpoint", "-c", help="Weights file (architecture detected when --model is omitted)."),
    ] = None,
    run: Annotated[Optional[Path], typer.Option("--run", help="A dckd run folder: evaluates its student.")] = None,
    weights: Annotated[
        str,
        typer.Option("--weights", help="--run: last (final EMA student, default), best (best validation), student."),
    ] = "last",
    task: opt.TaskOpt = None,
    scale: opt.ScaleOpt = None,
    datasets: opt.DatasetsOpt = None,
    data_root: opt.DataRootOpt = None,
    lr_source: Annotated[Optional[str], typer.Option("--lr-source", help="SR inputs: auto, file or matlab.")] = None,
    tile: Annotated[Optional[int], typer.Option("--tile", help="Process images in LQ tiles of this side.")] = None,
    tile_overlap: Annotated[Optional[int], typer.Option("--tile-overlap", help="Tile overlap in LQ pixels.")] = None,
    compare: Annotated[
        Optional[str],
        typer.Option("--compare", help="Runs / checkpoints (comma-separated) to compare on one image as a PNG grid."),
    ] = None,
    image: Annotated[Optional[str], typer.Option("--image", help="--compare: the image's name, e.g. img_092.")] = None,
    crop: Annotated[
        Optional[str], typer.Option("--crop", help="--compare: x,y,w,h in target pixels (default: where they differ).")
    ] = None,
    figure: Annotated[
        Optional[Path],
        typer.Option("--figure", help="--compare: the PNG to write (default compare-DATASET-IMAGE.png)."),
    ] = None,
    json_path: Annotated[
        Optional[Path], typer.Option("--json", help="Write the results as a list of JSON records.")
    ] = None,
    save_images: Annotated[
        Optional[Path], typer.Option("--save-images", help="Write restored images to DIR/<dataset>/.")
    ] = None,
    preset: opt.PresetOpt = None,
    overrides: opt.SetOpt = None,
    force: opt.ForceOpt = False,
    quiet: opt.QuietOpt = False,
) -> None:
    """Score a model on benchmarks with the published PSNR / SSIM protocol."""
    flags = {
        "task": task,
        "scale": scale,
        "data.root": str(data_root) if data_root else None,
        "data.test": [d.strip() for d in datasets.split(",") if d.strip()] if datasets else None,
        "data.val_is_test": True,  # nothing is validated here: any set may be scored, the validation one too
        "data.lr_source": lr_source,
        "runtime.tile": tile,
        "runtime.tile_overlap": tile_overlap,
    }
    if run is not None and (model or checkpoint or scale or task):
        given = [
            f for f, v in (("--model", model), ("--checkpoint", checkpoint), ("--scale", scale), ("--task", task)) if v
        ]
        raise DckdError(f"--run evaluates the run's own student at its own task and scale; drop {', '.join(given)}")
    settings = resolve_settings(preset, flags, overrides or [])
    if compare is not None:
        return _compare(compare, image, crop, figure, settings, force)
    _check_free(json_path, force, "JSON file")
    _check_free(save_images, force, "image folder")
    from dckd_cli.pipelines.evaluate import ModelChoice, run_evaluation, write_json  # torch loads here
    from dckd_cli.report.progress import image_progress
    from dckd_cli.report.tables import dataset_table, summary_table

    choice = ModelChoice(arch=model, size=size, checkpoint=checkpoint, run=run, weights=weights)
    with image_progress(console, quiet) as progress:
        bar = progress.add_task("evaluating", total=None)

        def on_start(benchmarks: list) -> None:
            progress.update(bar, total=sum(len(b) for b in benchmarks))

        def on_image(dataset: str, image: str) -> None:
            progress.update(bar, advance=1, description=f"{dataset}/{image}")

        results = run_evaluation(choice, settings, save_images, on_start=on_start, on_image=on_image)
    for result in results:
        console.print(dataset_table(result, per_image=not quiet))
    if len(results) > 1:
        channel = results[0].channel.upper()
        console.print(
            summary_table(results, title=f"{results[0].model}: PSNR (dB) / SSIM ({channel}), x{results[0].scale}")
        )
    if json_path is not None:
        write_json(json_path, results)
        console.print(f"wrote {json_path}")


def _compare(entries: str, image: str | None, crop: str | None, figure: Path | None, settings, force: bool) -> None:  # noqa: ANN001
    from dckd_cli.errors import DckdError

    if image is None:
        raise DckdError("--compare needs --image NAME (an image of the first --datasets set)")
    dataset = settings.data.test[0]
    figure = figure or Path(f"compare-{Path(dataset).name}-{Path(image).stem}.png")
    if figure.exists() and not force:
        raise OutputExists(f"figure {figure}")
    from dckd_cli.pipelines.compare import compare as run_compare
    from dckd_cli.pipelines.compare import draw_grid, parse_crop

    box = parse_crop(crop) if crop else None
    panels, gt, used = run_compare([e.strip() for e in entries.split(",") if e.strip()], dataset, image, settings, box)
    draw_grid(panels, gt, used, f"{Path(dataset).name} / {image}, crop {used}", figure)
    for p in panels:
        console.print(f"{p.label}: {p.psnr:.2f} dB / {p.ssim:.4f}", highlight=False)
    console.print(f"wrote {figure} (crop x,y,w,h = {','.join(map(str, used))})")
