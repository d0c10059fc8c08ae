"""`distill`: one run from resolved settings, or the offline demo (several runs + a table)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dckd_cli.atomic import atomic_path
from dckd_cli.data.benchmarks import load_benchmark
from dckd_cli.engine.run_folder import RunFolder, RunFolderError
from dckd_cli.engine.trainer import ProgressSink, TrainResult, train
from dckd_cli.metrics.evaluate import DatasetResult, evaluate
from dckd_cli.models.checkpoints import cache_dir
from dckd_cli.pipelines.evaluate import ModelChoice, read_run_settings, resolve_model
from dckd_cli.settings.presets import resolve_settings
from dckd_cli.settings.schema import RunSettings

# The demo's teacher: trained from scratch on the built-in images once, then cached.
DEMO_TEACHER_ITERS = 1000
DEMO_TEACHER_OVERRIDES = {"optim.lr": 1e-3, "data.batch_size": 16}
DEMO_METHODS = ("scratch", "logits", "dckd")
# Every demo method continues from one shared scratch warm-up: from a random start the
# first minutes of training, not the methods, would decide the table (the contrastive term
# in particular pushes a random student away from its own outputs).
DEMO_WARMUP_ITERS = 200

SinkFactory = Callable[[str], ProgressSink | None]


def default_output(settings: RunSettings) -> Path:
    return Path("runs") / f"{settings.task}-{settings.student.arch}-x{settings.scale}-{settings.method.name}"


def distill(
    settings: RunSettings,
    output: Path | None,
    *,
    force: bool = False,
    resume: bool = False,
    iters: int | None = None,
    sink: ProgressSink | None = None,
) -> TrainResult:
    """One run. On ``resume`` the run's saved settings are used (``iters`` may extend it)."""
    folder = output or settings.output or default_output(settings)
    if resume:
        run = RunFolder(folder)
        run.check(force=False, resume=True)
        settings = read_run_settings(folder)
        if iters is not None and iters != settings.optim.iters:
            from dckd_cli.engine.checkpoint import load_checkpoint

            done = int(load_checkpoint(folder).state["iter"]) if run.has_checkpoint() else 0
            if iters < done:
                raise RunFolderError(f"--iters {iters}: {folder} has already done {done} iterations; give more")
            settings.optim.iters = iters
            run.write_settings(settings)  # the longer budget is part of the run now
    settings.output = folder
    return train(settings, folder, force=force, resume=resume, sink=sink)


@dataclass
class DryRun:
    seconds_per_iter: float
    peak_memory_mb: float | None
    iterations: int
    device: str

    @property
    def eta_seconds(self) -> float:
        return self.seconds_per_iter * self.iterations


def dry_run(settings: RunSettings, steps: int = 2) -> DryRun:
    """Check data, checkpoints, encoder and settings, run ``steps`` training steps; write nothing."""
    from dckd_cli.engine.memory import peak_memory_mb, reset_peak_memory
    from dckd_cli.engine.trainer import Trainer

    trainer = Trainer(settings, Path("/nonexistent"))
    trainer.setup()  # every check a real run makes before its folder is touched
    device = trainer.accelerator.device
    reset_peak_memory(device)
    seconds = trainer.time_steps(steps)
    return DryRun(seconds, peak_memory_mb(device), settings.optim.iters, str(device))


@dataclass
class DemoResult:
    results: list[DatasetResult]
    folders: dict[str, Path]


def demo_teacher_path(base: RunSettings) -> Path:
    """Where the demo teacher of ``base``'s architecture, size and scale is cached."""
    spec = base.teacher
    return cache_dir() / "demo" / f"teacher-{spec.arch}-{spec.size}-x{base.scale}-{DEMO_TEACHER_ITERS}.safetensors"


def demo_teacher(base: RunSettings, root: Path, make_sink: SinkFactory) -> Path:
    """The cached demo teacher's weights, trained first (in ``root/teacher``) if the cache has none."""
    cached = demo_teacher_path(base)
    if cached.is_file():
        return cached
    flags = {"method.name": "scratch", "student.size": base.teacher.size, "optim.iters": DEMO_TEACHER_ITERS}
    settings = resolve_settings("demo", {**flags, **DEMO_TEACHER_OVERRIDES}, [f"runtime.seed={base.runtime.seed}"])
    train(settings, root / "teacher", force=True, sink=make_sink("teacher"))
    with atomic_path(cached) as tmp:
        shutil.copyfile(RunFolder(root / "teacher").weights("last"), tmp)
    return cached


def run_demo(
    root: Path, *, force: bool = False, seed: int | None = None, iters: int | None = None, make_sink: SinkFactory
) -> DemoResult:
    """The offline demo: a small teacher, then each demo method distils a tiny student."""
    if root.exists() and any(root.iterdir()) and not force:
        raise RunFolderError(f"{root} already exists; pass --force to overwrite it or choose another --output")
    overrides = [f"runtime.seed={seed}"] if seed is not None else []
    base = resolve_settings("demo", {"optim.iters": iters}, overrides)
    teacher_path = demo_teacher(base, root, make_sink)
    warmup = base.model_copy(deep=True)
    warmup.method.name, warmup.optim.iters = "scratch", DEMO_WARMUP_ITERS
    distill(warmup, root / "warmup", force=True, sink=make_sink("warm-up"))
    folders: dict[str, Path] = {}
    for method in DEMO_METHODS:
        settings = base.model_copy(deep=True)
        settings.method.name = method
        settings.teacher.checkpoint = teacher_path
        settings.student.checkpoint = RunFolder(root / "warmup").weights("last")
        folders[method] = root / method
        distill(settings, folders[method], force=True, sink=make_sink(method))
    bench = load_benchmark("builtin", base.task, base.scale, None)
    choices = {
        "bicubic": ModelChoice(arch="bicubic"),
        "teacher": ModelChoice(arch=base.teacher.arch, size=base.teacher.size, checkpoint=teacher_path),
        "warm-up": ModelChoice(run=root / "warmup"),
        **{method: ModelChoice(run=folder) for method, folder in folders.items()},
    }
    results: list[DatasetResult] = []
    for label, choice in choices.items():
        resolved = resolve_model(choice, base)
        results += evaluate(
            resolved.model, [bench], task=base.task, scale=base.scale, model_name=label, multiple=resolved.multiple
        )
    return DemoResult(results, folders)
