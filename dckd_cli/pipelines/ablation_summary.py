"""The summary of an ablation folder, rebuilt from its cells' ``scores.json`` alone.

Per cell: PSNR / SSIM per test set as mean ± std over seeds, the paired difference to the
baseline cell (per seed, then mean ± std over the seeds both have), seconds per iteration
and peak memory; the best cell (highest mean PSNR on the first test set) is marked.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dckd_cli.atomic import atomic_path
from dckd_cli.engine.ablation_folder import AblationFolder
from dckd_cli.errors import DckdError

METRICS = ("psnr", "ssim")


@dataclass
class Stat:
    mean: float
    std: float
    per_seed: dict[int, float]

    @classmethod
    def of(cls, per_seed: dict[int, float]) -> Stat:
        values = list(per_seed.values())
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(statistics.fmean(values), std, dict(sorted(per_seed.items())))


@dataclass
class CellSummary:
    label: str
    point: dict[str, Any]
    baseline: bool
    method: str
    seeds: list[int]
    scores: dict[str, dict[str, Stat]]  # dataset -> metric -> stat
    delta: dict[str, dict[str, Stat]] = field(default_factory=dict)  # paired, vs the baseline
    seconds_per_iter: float | None = None
    peak_memory_mb: float | None = None
    best: bool = False


@dataclass
class Summary:
    root: Path
    datasets: list[str]
    axes: list[str]
    baseline: str | None
    cells: list[CellSummary]

    def record(self) -> dict[str, Any]:
        out = asdict(self)
        out["root"] = str(self.root)
        return out


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def read_scores(root: Path) -> list[dict[str, Any]]:
    """Every finished cell run under ``root`` (``<cell>/seed-K/scores.json``), warm starts excluded."""
    found = []
    for path in AblationFolder(root).finished_scores():
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            raise DckdError(f"{path}: unreadable scores; delete it to run that cell again") from None
    return found


def summarise(root: Path) -> Summary:
    scores = read_scores(root)
    if not scores:
        raise DckdError(f"{root}: no finished cells to summarise (no <cell>/seed-K/scores.json)")
    baseline_method = (AblationFolder(root).read_record() or {}).get("baseline")
    by_label: dict[str, list[dict[str, Any]]] = {}
    for s in scores:
        by_label.setdefault(s["label"], []).append(s)
    datasets = list(dict.fromkeys(d for s in scores for d in s["results"]))
    axes = list(dict.fromkeys(a for s in scores for a in s["point"]))
    cells = []
    for label, runs in by_label.items():
        first = runs[0]
        per = {
            d: {m: Stat.of({r["seed"]: r["results"][d][m] for r in runs if d in r["results"]}) for m in METRICS}
            for d in datasets
            if any(d in r["results"] for r in runs)
        }
        cells.append(
            CellSummary(
                label=label,
                point=first["point"],
                baseline=first["baseline"],
                method=first["method"],
                seeds=sorted(r["seed"] for r in runs),
                scores=per,
                seconds_per_iter=_median([r.get("seconds_per_iter") for r in runs]),
                peak_memory_mb=_median([r.get("peak_memory_mb") for r in runs]),
            )
        )
    base = next((c for c in cells if c.baseline and c.method == baseline_method), None)
    base = base or next((c for c in cells if c.baseline), None)
    for cell in cells:
        if base is None:
            break
        for d, metrics in cell.scores.items():
            if d not in base.scores:
                continue
            cell.delta[d] = {}
            for m, stat in metrics.items():
                shared = {
                    s: v - base.scores[d][m].per_seed[s]
                    for s, v in stat.per_seed.items()
                    if s in base.scores[d][m].per_seed
                }
                if shared:
                    cell.delta[d][m] = Stat.of(shared)
    studied = [c for c in cells if not c.baseline and datasets[0] in c.scores]
    if studied:
        max(studied, key=lambda c: c.scores[datasets[0]]["psnr"].mean).best = True
    return Summary(root, datasets, axes, base.label if base else None, cells)


def summary_csv(summary: Summary) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = ["cell", *summary.axes, "dataset", "seeds", "psnr_mean", "psnr_std", "ssim_mean", "ssim_std"]
    header += ["dpsnr_mean", "dpsnr_std", "dssim_mean", "dssim_std", "seconds_per_iter", "peak_memory_mb", "best"]
    writer.writerow(header)
    for c in summary.cells:
        for d, metrics in c.scores.items():
            delta = c.delta.get(d, {})
            row = [c.label, *(c.point.get(a, "") for a in summary.axes), d, len(c.seeds)]
            row += [f"{metrics['psnr'].mean:.4f}", f"{metrics['psnr'].std:.4f}"]
            row += [f"{metrics['ssim'].mean:.5f}", f"{metrics['ssim'].std:.5f}"]
            for m, digits in (("psnr", 4), ("ssim", 5)):
                row += [f"{delta[m].mean:.{digits}f}", f"{delta[m].std:.{digits}f}"] if m in delta else ["", ""]
            row += [
                "" if c.seconds_per_iter is None else f"{c.seconds_per_iter:.4f}",
                "" if c.peak_memory_mb is None else f"{c.peak_memory_mb:.1f}",
                int(c.best),
            ]
            writer.writerow(row)
    return buffer.getvalue()


def write_summary(summary: Summary) -> tuple[Path, Path]:
    folder = AblationFolder(summary.root)
    json_path, csv_path = folder.summary_json, folder.summary_csv
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(summary.record(), indent=2) + "\n")
    with atomic_path(csv_path) as tmp:
        tmp.write_text(summary_csv(summary))
    return json_path, csv_path
