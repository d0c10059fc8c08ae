"""The offline demo (its teachers: ``pipelines/demo_teacher.py``).

The demo (`dckd distill`, optionally with `--task`): one shared scratch warm-up, then
each demo method continues from it for the same budget and data order; the table puts them
beside the reference row (bicubic / the degraded input), the teacher and the warm-up.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from dckd_cli.catalog.architectures import reference_for
from dckd_cli.data.benchmarks import load_benchmark
from dckd_cli.engine.build import run_device
from dckd_cli.engine.run_folder import RunFolder, RunFolderError
from dckd_cli.metrics.scoring import DatasetResult, evaluate
from dckd_cli.pipelines.demo_teacher import SinkFactory, resolve_demo_teacher
from dckd_cli.pipelines.distill import distill
from dckd_cli.pipelines.evaluate import ModelChoice, resolve_model
from dckd_cli.settings.presets import DEMO_PRESET, resolve_settings

DEMO_METHODS = ("scratch", "logits", "dckd")
# Every demo method continues from one shared scratch warm-up: from a random start the first
# minutes of training, not the methods, would decide the table.
DEMO_WARMUP_ITERS = 1000
DEMO_WARMUP_LR = 1e-3
# Seed-to-seed spread of a paired difference between two demo methods (PSNR dB, the std of
# logits - scratch over seeds 0-2; docs/results.md, "The offline demo"), per task where it has
# been measured: differences below twice this are not a ranking.
DEMO_SEED_SPREAD_DB: dict[str, float] = {"sr": 0.01}


@dataclass
class DemoResult:
    results: list[DatasetResult]
    folders: dict[str, Path]
    task: str
    scale: int
    note: str


def _demo_note(results: list[DatasetResult], task: str) -> str:
    """One honest line on what the table can and cannot say."""
    scores = {r.model: r.psnr for r in results}
    reference, methods = results[0].model, [m for m in DEMO_METHODS if m in scores]
    above = all(scores[m] > scores[reference] for m in methods)
    spread = max(scores[m] for m in methods) - min(scores[m] for m in methods)
    gains = statistics.mean(scores[m] - scores[reference] for m in methods)
    lines = [
        f"every student is {'above' if above else 'NOT above'} {reference} "
        f"(by {gains:+.2f} dB on average); the teacher is at {scores['teacher'] - scores[reference]:+.2f} dB"
    ]
    noise = DEMO_SEED_SPREAD_DB.get(task)
    if noise is None:
        lines.append(
            f"the methods span {spread:.3f} dB on one seed, and this demo's seed-to-seed spread has not been "
            "measured: an illustration, not a ranking (`dckd ablate --seeds 0,1,2` pairs methods over seeds)"
        )
    elif spread < 2 * noise:
        lines.append(
            f"the methods differ by {spread:.3f} dB, less than twice this demo's seed-to-seed spread "
            f"(about {noise} dB): one seed cannot rank them; `dckd ablate --seeds 0,1,2` pairs them over seeds"
        )
    else:
        lines.append(
            f"the methods span {spread:.3f} dB (this demo's seed-to-seed spread: about {noise} dB); one seed "
            "is an illustration, not a ranking: `dckd ablate --seeds 0,1,2` pairs them over seeds"
        )
    return "; ".join(lines)


def run_demo(
    root: Path,
    *,
    task: str | None = None,
    force: bool = False,
    seed: int | None = None,
    iters: int | None = None,
    overrides: list[str] | None = None,
    make_sink: SinkFactory,
) -> DemoResult:
    """The offline demo of ``task`` (default SR): warm-up, each demo method, then one table.
    ``overrides`` (``--set`` lines) change the demo's settings, e.g. a smaller patch."""
    if root.exists() and any(root.iterdir()) and not force:
        raise RunFolderError(f"{root} already exists; pass --force to overwrite it or choose another --output")
    flags = {"task": task, "optim.iters": iters, "runtime.seed": seed}
    base = resolve_demo_teacher(resolve_settings(DEMO_PRESET, flags, overrides or []), make_sink)
    warmup = base.model_copy(deep=True)
    warmup.method.name, warmup.optim.iters, warmup.optim.lr = "scratch", DEMO_WARMUP_ITERS, DEMO_WARMUP_LR
    distill(warmup, root / "warmup", force=True, sink=make_sink("warm-up"))
    folders: dict[str, Path] = {}
    for method in DEMO_METHODS:
        settings = base.model_copy(deep=True)
        settings.method.name = method
        settings.student.checkpoint = RunFolder(root / "warmup").weights("last")
        folders[method] = root / method
        distill(settings, folders[method], force=True, sink=make_sink(method))
    bench = load_benchmark("builtin", base.task, base.scale, None)
    t = base.teacher
    choices = {
        reference_for(base.task): ModelChoice(arch=reference_for(base.task)),
        "teacher": ModelChoice(
            arch=None if t.arch == "auto" else t.arch, size=t.size, checkpoint=t.checkpoint, options=t.options
        ),
        "warm-up": ModelChoice(run=root / "warmup"),
        **{method: ModelChoice(run=folder) for method, folder in folders.items()},
    }
    results: list[DatasetResult] = []
    device = run_device(base)
    for label, choice in choices.items():
        resolved = resolve_model(choice, base)
        results += evaluate(
            resolved.model.to(device),
            [bench],
            task=base.task,
            scale=base.scale,
            model_name=label,
            device=device,
            multiple=resolved.multiple,
        )
    return DemoResult(results, folders, base.task, base.scale, _demo_note(results, base.task))
