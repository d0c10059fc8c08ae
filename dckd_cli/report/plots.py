"""PNG plots of an ablation, like the paper's Fig. 8: PSNR against the swept value, with
seconds per iteration and peak memory on second axes."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from dckd_cli.atomic import atomic_path
from dckd_cli.pipelines.ablation_summary import CellSummary, Summary


def _by_value(cells: list[CellSummary], axis: str, dataset: str) -> dict[str, dict[str, Any]]:
    """Per value of ``axis``: PSNR mean / std, s/it and memory, averaged over the other axes."""
    groups: dict[str, list[CellSummary]] = {}
    for c in cells:
        if axis in c.point and dataset in c.scores:
            groups.setdefault(str(c.point[axis]), []).append(c)

    def mean(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.fmean(present) if present else None

    return {
        value: {
            "psnr": mean([c.scores[dataset]["psnr"].mean for c in group]),
            "std": mean([c.scores[dataset]["psnr"].std for c in group]),
            "seconds": mean([c.seconds_per_iter for c in group]),
            "memory": mean([c.peak_memory_mb for c in group]),
        }
        for value, group in groups.items()
    }


def _ordered(labels: list[str]) -> list[str]:
    """Numeric values in numeric order; others as they are."""
    try:
        return sorted(labels, key=float)
    except ValueError:
        return labels


def ablation_plots(summary: Summary, folder: Path) -> list[Path]:
    """One PNG per swept axis (PSNR on the first test set), written atomically; their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dataset = summary.datasets[0]
    studied = [c for c in summary.cells if not c.baseline]
    base = next((c for c in summary.cells if c.baseline), None)
    written = []
    for axis in summary.axes:
        points = _by_value(studied, axis, dataset)
        if not points:
            continue
        labels = _ordered(list(points))
        xs = list(range(len(labels)))
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
        ax.errorbar(
            xs,
            [points[v]["psnr"] for v in labels],
            yerr=[points[v]["std"] for v in labels],
            marker="o",
            color="tab:blue",
            capsize=3,
            label="PSNR",
        )
        if base is not None and dataset in base.scores:
            ax.axhline(base.scores[dataset]["psnr"].mean, color="tab:gray", linestyle="--", label=base.label)
        crowded = len(labels) > 4 or max(map(len, labels)) > 6
        ax.set_xticks(xs, labels, rotation=30 if crowded else 0, ha="right" if crowded else "center")
        ax.set_xlabel(axis)
        ax.set_ylabel(f"PSNR on {dataset} (dB)", color="tab:blue")
        handles, names = ax.get_legend_handles_labels()
        seconds = [points[v]["seconds"] for v in labels]
        if all(s is not None for s in seconds):
            right = ax.twinx()
            handles += right.plot(xs, seconds, marker="s", color="tab:orange", label="s / iteration")
            right.set_ylabel("seconds per iteration", color="tab:orange")
            right.ticklabel_format(axis="y", useOffset=False)
            names.append("s / iteration")
        memory = [points[v]["memory"] for v in labels]
        if all(m is not None for m in memory):
            third = ax.twinx()
            third.spines["right"].set_position(("axes", 1.18))
            handles += third.plot(xs, memory, marker="^", color="tab:green", label="peak memory")
            third.set_ylabel("peak memory (MB)", color="tab:green")
            third.ticklabel_format(axis="y", useOffset=False, style="plain")
            names.append("peak memory")
        ax.legend(handles, names, loc="best", fontsize="small")
        ax.set_title(f"{axis} (mean over the other axes and seeds)", fontsize="medium")
        fig.tight_layout()
        path = folder / f"{axis.replace('/', '_')}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        written.append(path)
    return written
