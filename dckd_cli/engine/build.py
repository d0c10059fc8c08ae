"""Settings in, a ``Run`` out: everything one run needs, built and checked before any file is
written (a bad checkpoint, data folder, validation image or method setting fails here).

The trainer (``engine/trainer.py``) receives a ``Run`` and loops; timing (``engine/step.py``
``time_steps``) and the golden test take the same ``Run``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed
from torch import nn

from dckd_cli.data.benchmarks import Benchmark, check_benchmark, load_benchmark
from dckd_cli.data.pairs import PairLoader, check_patches_fit, training_loaders
from dckd_cli.engine.ema import ModelEMA
from dckd_cli.engine.optim import build_optimizer, build_scheduler
from dckd_cli.engine.run_folder import RunFolder
from dckd_cli.engine.switches import apply_backend_switches, fused_step
from dckd_cli.engine.threads import apply_threads, cpu_processes
from dckd_cli.engine.trackers import check_tracker
from dckd_cli.errors import DckdError
from dckd_cli.methods.build import build_method, run_needs
from dckd_cli.methods.method import Method
from dckd_cli.models.checkpoints import build_teacher, build_with_weights
from dckd_cli.models.teacher_cache import CachedTeacher
from dckd_cli.models.zoo import input_needs
from dckd_cli.settings.schema import RunSettings


@dataclass
class Run:
    """One run's parts. ``sources`` are the training images (one loader per image); the
    optimiser and student are the raw ones (``accelerator.prepare`` wraps them in the step)."""

    settings: RunSettings
    accelerator: Accelerator
    student: nn.Module
    teacher: nn.Module | None
    method: Method
    ema: ModelEMA
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    sources: list[PairLoader]
    val_bench: Benchmark


def _fresh_accelerator_state(mixed_precision: str, cpu: bool) -> None:
    """Accelerate keeps one precision and device a process and refuses another: a run that asks
    for another than the process's earlier run (``dckd ablate``'s cells over
    ``runtime.mixed_precision``, the step benchmark's rows) starts that state afresh. The
    processes' group (Accelerate's ``PartialState``) stays as it is."""
    from accelerate.state import AcceleratorState

    state = AcceleratorState._shared_state
    if not state:
        return
    device = state.get("device")
    if state.get("_mixed_precision") != mixed_precision or (cpu and device is not None and device.type != "cpu"):
        AcceleratorState._reset_state()


def build_accelerator(settings: RunSettings, folder: Path | None) -> Accelerator:
    """The run's devices and precision (trackers write under the run folder's ``logs/``)."""
    apply_threads(settings.runtime.threads)
    if settings.runtime.deterministic:  # cuBLAS needs a fixed workspace for repeatable sums
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    cpu = settings.runtime.device == "cpu" or cpu_processes()
    _fresh_accelerator_state(settings.runtime.mixed_precision, cpu)
    return Accelerator(
        dataloader_config=DataLoaderConfiguration(non_blocking=torch.cuda.is_available()),  # with pinned memory
        mixed_precision=settings.runtime.mixed_precision,
        gradient_accumulation_steps=settings.optim.grad_accum,
        cpu=cpu,
        log_with=check_tracker(settings.runtime.log_with),
        project_dir=str(RunFolder(folder).logs) if folder is not None else None,
    )


def run_device(settings: RunSettings) -> torch.device:
    """The device a run of ``settings`` trains and is scored on (what Accelerate picks)."""
    return torch.device("cpu") if settings.runtime.device == "cpu" or cpu_processes() else Accelerator().device


class BuildError(DckdError):
    """Settings that do not fit the networks they name (found when they are built)."""


def build_models(settings: RunSettings, needs_teacher: bool) -> tuple[nn.Module, nn.Module | None]:
    """The student (warm-start weights if named) and, when needed, the frozen teacher."""
    s, t = settings.student, settings.teacher
    scale, task = settings.scale, settings.task
    student = build_with_weights(s.arch, s.size, scale, task, s.checkpoint, False, s.options, "student.arch")
    teacher = None
    if needs_teacher:
        teacher = build_teacher(t.arch, t.size, scale, task, t.checkpoint, t.options)
    for role, model in (("student", student), ("teacher", teacher)):
        if model is not None:
            check_patch_sizes(settings, model, role)
    return student, teacher


def check_patch_sizes(settings: RunSettings, model: nn.Module, role: str) -> None:
    """Every training patch side must be a multiple of what the network pads to, and no smaller
    than the smallest input it takes (the table's families are checked with the settings)."""
    multiple, minimum = input_needs(model)
    arch = getattr(settings, role).arch
    for key, patch in settings.data.patch_sides().items():
        if patch % multiple or patch < minimum:
            fit = max(minimum + (-minimum) % multiple, patch + (-patch) % multiple)
            raise BuildError(
                f"{key} {patch}: {role}.arch '{arch}' needs a multiple of {multiple}, at least {minimum}; use {fit}"
            )


def build_run(settings: RunSettings, folder: Path | None = None) -> Run:
    """Every part of a run of ``settings`` (``folder``: where its trackers write; None to time or test it)."""
    s = settings
    accelerator = build_accelerator(s, folder)
    apply_backend_switches(s, accelerator.device)
    needs = run_needs(s)
    set_seed(s.runtime.seed, deterministic=s.runtime.deterministic)
    student, teacher = build_models(s, "teacher" in needs)
    if teacher is not None:
        teacher = teacher.to(accelerator.device)
        if s.runtime.teacher_cache and "taps" not in needs:  # taps need the teacher to really run
            teacher = CachedTeacher(teacher, s.runtime.teacher_cache)
    method = build_method(s, student, teacher)
    ema = ModelEMA(student, s.optim.ema_decay, s.optim.ema_warmup)
    optimizer = build_optimizer(student, s.optim, fused=fused_step(s, accelerator.device))
    scheduler = build_scheduler(optimizer, s.optim)
    sources = training_loaders(s.data.train, s.task, s.scale, s.data.root, s.data.skip_bad_images)
    check_patches_fit(sources, s.data.patch_sides())
    val_bench = load_benchmark(s.data.val, s.task, s.scale, s.data.root, s.data.lr_source)
    if s.data.val_limit is not None:
        val_bench = replace(val_bench, pairs=val_bench.pairs[: s.data.val_limit])
    check_benchmark(val_bench, s.scale)  # a bad validation image fails now, not at the first validation
    return Run(s, accelerator, student, teacher, method, ema, optimizer, scheduler, sources, val_bench)
