"""Rich tables of evaluation results."""

from __future__ import annotations

from rich.table import Table

from dckd_cli.metrics.evaluate import DatasetResult


def dataset_table(result: DatasetResult, per_image: bool = True) -> Table:
    """One table per dataset: each image, then the mean."""
    title = f"{result.dataset}  x{result.scale}  {result.model}  ({result.channel.upper()})"
    table = Table(title=title, title_justify="left")
    table.add_column("image")
    table.add_column("PSNR (dB)", justify="right")
    table.add_column("SSIM", justify="right")
    if per_image:
        for score in result.per_image:
            table.add_row(score.name, f"{score.psnr:.2f}", f"{score.ssim:.4f}")
        table.add_section()
    table.add_row(f"[bold]mean of {result.images}[/]", f"[bold]{result.psnr:.2f}[/]", f"[bold]{result.ssim:.4f}[/]")
    return table


def summary_table(results: list[DatasetResult], title: str = "Results") -> Table:
    """Models as rows, datasets as PSNR / SSIM columns."""
    datasets = list(dict.fromkeys(r.dataset for r in results))
    table = Table(title=title, title_justify="left")
    table.add_column("model")
    for name in datasets:
        table.add_column(f"{name} PSNR/SSIM", justify="right")
    for model in dict.fromkeys(r.model for r in results):
        cells = {r.dataset: f"{r.psnr:.2f} / {r.ssim:.4f}" for r in results if r.model == model}
        table.add_row(model, *[cells.get(d, "-") for d in datasets])
    return table
