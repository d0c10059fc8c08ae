"""The offline demo and its teachers.

``teacher.checkpoint=@demo`` names the demo teacher of a run's task and scale: the released
model packaged with dckd where there is one (DCTLSA x4 for SR), else a CPU-sized model of the
demo's teacher architecture trained on the built-in images on first use and cached. `distill`,
`ablate` and `--dry-run` resolve it before anything is built; the run folder records the file.

The demo itself (`dckd distill`, optionally with `--task`): one shared scratch warm-up, then
each demo method continues from it for the same budget and data order; the table puts them
beside the reference row (bicubic / the degraded input), the teacher and the warm-up.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dckd_cli.assets import ASSETS
from dckd_cli.atomic import atomic_path
from dckd_cli.catalog.architectures import reference_for
from dckd_cli.catalog.methods import METHODS
from dckd_cli.catalog.tasks import DEMO_TEACHER, TASKS
from dckd_cli.engine.run_folder import RunFolder, RunFolderError
from dckd_cli.engine.trainer import ProgressSink, train
from dckd_cli.metrics.evaluate import DatasetResult, evaluate
from dckd_cli.models.checkpoints import cache_dir
from dckd_cli.settings.presets import DEMO_PRESET, resolve_settings
from dckd_cli.settings.schema import RunSettings

# A trained demo teacher: this many iterations of scratch training on the built-in images, per task.
DEMO_TEACHER_ITERS: dict[str, int] = {"sr": 1000, "deblur": 3000, "derain": 1000}
# Bumped when a built-in stand-in changes, so a teacher cached for older inputs is not reused.
STAND_IN_VERSIONS = {"bicubic": 1, "motion-blur": 2, "rain": 1}
DEMO_TEACHER_OVERRIDES = {"optim.lr": 1e-3, "data.batch_size": 16}
DEMO_METHODS = ("scratch", "logits", "dckd")
# Every demo method continues from one shared scratch warm-up: from a random start the first
# minutes of training, not the methods, would decide the table.
DEMO_WARMUP_ITERS = 1000
DEMO_WARMUP_LR = 1e-3
# Seed-to-seed spread of a paired difference between two demo methods (PSNR dB, the std of
# logits - scratch over seeds 0-2; docs/results.md, "The offline demo"), per task where it has
# been measured: differences below twice this are not a ranking.
DEMO_SEED_SPREAD_DB: dict[str, float] = {"sr": 0.01}

SinkFactory = Callable[[str], ProgressSink | None]


def needs_teacher(settings: RunSettings) -> bool:
    """Whether the run's method, with its weights, runs the teacher at all."""
    from dckd_cli.methods.method import active_weights, needs_of

    return "teacher" in needs_of(active_weights(METHODS[settings.method.name], settings))


def is_demo_teacher(settings: RunSettings) -> bool:
    return settings.teacher.checkpoint is not None and str(settings.teacher.checkpoint) == DEMO_TEACHER


def packaged_teacher(task: str, scale: int) -> Path | None:
    """The released teacher packaged for ``task`` at ``scale`` (None where there is none)."""
    name = TASKS[task].packaged_teachers.get(scale)
    return ASSETS / name if name else None


def demo_teacher_path(settings: RunSettings) -> Path:
    """Where the trained demo teacher of ``settings``' task, architecture, size and scale is cached."""
    t = settings.teacher
    version = STAND_IN_VERSIONS[TASKS[settings.task].stand_in]
    tag = f"{settings.task}-{t.arch}-{t.size}-x{settings.scale}-{DEMO_TEACHER_ITERS[settings.task]}-v{version}"
    name = f"teacher-{tag}.safetensors"
    return cache_dir() / "demo" / name


def train_demo_teacher(settings: RunSettings, make_sink: SinkFactory) -> Path:
    """The cached trained demo teacher of ``settings``; trained first (in a temporary folder) if missing."""
    cached = demo_teacher_path(settings)
    if cached.is_file():
        return cached
    flags = {
        "task": settings.task,
        "scale": settings.scale,
        "method.name": "scratch",
        "student.arch": settings.teacher.arch,
        "student.size": settings.teacher.size,
        "optim.iters": DEMO_TEACHER_ITERS[settings.task],
        **DEMO_TEACHER_OVERRIDES,
    }
    teacher_settings = resolve_settings(DEMO_PRESET, flags, [f"runtime.seed={settings.runtime.seed}"])
    with tempfile.TemporaryDirectory(prefix="dckd-demo-teacher-") as tmp:
        train(teacher_settings, Path(tmp) / "teacher", force=True, sink=make_sink("teacher"))
        with atomic_path(cached) as out:
            shutil.copyfile(RunFolder(Path(tmp) / "teacher").weights("last"), out)
    return cached


def with_demo_teacher(settings: RunSettings, make_sink: SinkFactory, train_missing: bool = True) -> RunSettings:
    """``settings`` with ``teacher.checkpoint=@demo`` replaced by the file it names (a copy;
    other settings are returned as they are). The packaged teacher is detected by its keys
    (``teacher.arch=auto``); a trained one is built from the demo's architecture and size."""
    if not is_demo_teacher(settings) or not needs_teacher(settings):
        return settings
    resolved = settings.model_copy(deep=True)
    packaged = packaged_teacher(settings.task, settings.scale)
    if packaged is not None:
        resolved.teacher.arch, resolved.teacher.checkpoint = "auto", packaged
    elif train_missing or demo_teacher_path(settings).is_file():
        resolved.teacher.checkpoint = train_demo_teacher(settings, make_sink)
    return resolved


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
    from dckd_cli.data.benchmarks import load_benchmark
    from dckd_cli.pipelines.distill import distill
    from dckd_cli.pipelines.evaluate import ModelChoice, resolve_model

    if root.exists() and any(root.iterdir()) and not force:
        raise RunFolderError(f"{root} already exists; pass --force to overwrite it or choose another --output")
    flags = {"task": task, "optim.iters": iters, "runtime.seed": seed}
    base = with_demo_teacher(resolve_settings(DEMO_PRESET, flags, overrides or []), make_sink)
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
        "teacher": ModelChoice(arch=None if t.arch == "auto" else t.arch, size=t.size, checkpoint=t.checkpoint),
        "warm-up": ModelChoice(run=root / "warmup"),
        **{method: ModelChoice(run=folder) for method, folder in folders.items()},
    }
    results: list[DatasetResult] = []
    for label, choice in choices.items():
        resolved = resolve_model(choice, base)
        results += evaluate(
            resolved.model, [bench], task=base.task, scale=base.scale, model_name=label, multiple=resolved.multiple
        )
    return DemoResult(results, folders, base.task, base.scale, _demo_note(results, base.task))
