"""Rich tables of evaluation results."""

from __future__ import annotations

from rich.table import Table

from dckd_cli.metrics.scoring import DatasetResult
from dckd_cli.pipelines.ablation_summary import Summary as AblationSummary


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
    """The papers' layout (Tables 1-4): models as rows, datasets as PSNR / SSIM columns, and
    with several datasets an average column (the mean of the datasets' means)."""
    datasets = list(dict.fromkeys(r.dataset for r in results))
    average = len(datasets) > 1
    table = Table(title=title, title_justify="left")
    table.add_column("model")
    for name in [*datasets, *(["Average"] if average else [])]:
        table.add_column(f"{name} PSNR/SSIM", justify="right")
    for model in dict.fromkeys(r.model for r in results):
        rows = {r.dataset: r for r in results if r.model == model}
        cells = [f"{rows[d].psnr:.2f} / {rows[d].ssim:.4f}" if d in rows else "-" for d in datasets]
        if average:
            complete = len(rows) == len(datasets)
            psnr = sum(r.psnr for r in rows.values()) / len(rows)
            ssim = sum(r.ssim for r in rows.values()) / len(rows)
            cells.append(f"{psnr:.2f} / {ssim:.4f}" if complete else "-")
        table.add_row(model, *cells)
    return table


def ablation_table(summary: AblationSummary) -> Table:
    """The paper's ablation layout: a row per cell; per test set PSNR / SSIM (mean ± std over
    seeds) and the paired difference to the baseline; the best cell marked with *."""
    seeds = max((len(c.seeds) for c in summary.cells), default=0)
    paired_note = f"; Δ paired vs {summary.baseline}" if summary.baseline else ""
    title = f"Ablation: {summary.root}  (mean ± std over up to {seeds} seed{'s' if seeds != 1 else ''}{paired_note})"
    table = Table(title=title, title_justify="left")
    table.add_column("cell")
    paired = summary.baseline is not None
    for d in summary.datasets:
        table.add_column(f"{d} PSNR / SSIM", justify="right")
        if paired:
            table.add_column(f"Δ {d} PSNR", justify="right")
    table.add_column("s/it", justify="right")
    for c in summary.cells:
        row = [("* " if c.best else "") + c.label + (" (baseline)" if c.baseline else "")]
        for d in summary.datasets:
            stats = c.scores.get(d)
            row.append(f"{stats['psnr'].mean:.2f}±{stats['psnr'].std:.2f} / {stats['ssim'].mean:.4f}" if stats else "-")
            delta = c.delta.get(d, {}).get("psnr")
            if paired:
                row.append("" if c.baseline or delta is None else f"{delta.mean:+.3f}±{delta.std:.3f}")
        row.append("-" if c.seconds_per_iter is None else f"{c.seconds_per_iter:.3f}")
        table.add_row(*row, style="bold" if c.best else None)
    return table
