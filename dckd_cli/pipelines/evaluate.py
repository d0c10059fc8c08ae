"""`evaluate`: resolve which model to score, load the benchmarks, score, write records."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from dckd_cli.atomic import atomic_path
from dckd_cli.catalog.architectures import REFERENCE_ARCHS
from dckd_cli.data.benchmarks import Benchmark, check_benchmark, load_benchmark
from dckd_cli.deploy.student_file import read_info
from dckd_cli.engine.build import run_device
from dckd_cli.engine.host_memory import apply_host_memory
from dckd_cli.engine.run_folder import RunFolder
from dckd_cli.engine.switches import laid_out
from dckd_cli.metrics.scoring import DatasetResult, evaluate
from dckd_cli.models.checkpoints import CheckpointError, build_with_weights, require_weights
from dckd_cli.models.zoo import input_needs
from dckd_cli.settings.schema import RunSettings

# --weights for a run folder -> (checkpoint tag, file): the final EMA student is what papers report
RUN_WEIGHTS = {"last": ("last", "model"), "best": ("best", "model"), "student": ("last", "student")}


@dataclass
class ModelChoice:
    """What to evaluate: an architecture (+ size / checkpoint), a checkpoint alone, or a run folder."""

    arch: str | None = None
    size: str = "teacher"
    checkpoint: Path | None = None
    run: Path | None = None
    weights: str = "last"  # for a run: last (final EMA, default), best (best validation EMA), student (online)
    options: dict[str, Any] = field(default_factory=dict)  # the architecture's constructor options


@dataclass
class ResolvedModel:
    model: nn.Module
    label: str
    task: str
    scale: int
    multiple: int


def read_run_settings(run: Path) -> RunSettings:
    return RunFolder(run).read_settings()


def resolve_model(choice: ModelChoice, settings: RunSettings) -> ResolvedModel:
    """Build and load the model a `ModelChoice` names, for ``settings.task`` / ``scale``."""
    task, scale = settings.task, settings.scale
    if choice.run is not None:
        run_settings = read_run_settings(choice.run)
        folder = RunFolder(choice.run)
        if choice.weights not in RUN_WEIGHTS:
            raise CheckpointError(f"--weights {choice.weights}: choose from {', '.join(RUN_WEIGHTS)}")
        weights = folder.weights(*RUN_WEIGHTS[choice.weights])
        if not weights.is_file():
            raise CheckpointError(f"{choice.run}: the run has no '{choice.weights}' weights yet ({weights})")
        spec = run_settings.student
        model = build_with_weights(
            spec.arch, spec.size, run_settings.scale, run_settings.task, weights, options=spec.options
        )
        label = f"{choice.run.name} ({choice.weights})"
        return ResolvedModel(model, label, run_settings.task, run_settings.scale, input_needs(model)[0])
    exported = read_info(choice.checkpoint) if choice.checkpoint is not None and choice.arch is None else None
    if exported is not None:  # a `dckd export` student file rebuilds itself from its metadata
        task, scale = exported.task, exported.scale
        model = build_with_weights(
            exported.arch, exported.size, exported.scale, exported.task, choice.checkpoint, options=exported.options
        )
        return ResolvedModel(model, choice.checkpoint.stem, task, scale, exported.multiple)
    arch = choice.arch or ("auto" if choice.checkpoint else None)
    if arch is None:
        raise CheckpointError("nothing to evaluate: pass --model ARCH, --checkpoint FILE or --run DIR")
    require_weights(arch, choice.size, choice.checkpoint, "--checkpoint")
    official = arch not in REFERENCE_ARCHS and choice.checkpoint is None
    model = build_with_weights(
        arch, choice.size, scale, task, choice.checkpoint, official=official, options=choice.options
    )
    if arch in REFERENCE_ARCHS:
        label = arch
    elif choice.checkpoint is not None:
        label = choice.checkpoint.stem
    else:
        label = f"{arch}-{choice.size}"
    return ResolvedModel(model, label, task, scale, input_needs(model)[0])


def load_benchmarks(names: list[str], settings: RunSettings, task: str, scale: int) -> list[Benchmark]:
    return [load_benchmark(n, task, scale, settings.data.root, settings.data.lr_source) for n in names]


def run_evaluation(
    choice: ModelChoice,
    settings: RunSettings,
    save_images: Path | None = None,
    on_start: Callable[[list[Benchmark]], None] | None = None,
    on_image: Callable[[str, str], None] | None = None,
) -> list[DatasetResult]:
    resolved = resolve_model(choice, settings)
    benchmarks = load_benchmarks(settings.data.test, settings, resolved.task, resolved.scale)
    for bench in benchmarks:  # an unreadable, mismatched or too-small image fails before any scoring
        check_benchmark(bench, resolved.scale)
    if on_start is not None:
        on_start(benchmarks)
    device = run_device(settings)
    apply_host_memory(settings.runtime.keep_host_memory, device)
    return evaluate(
        laid_out(resolved.model.to(device), settings, device),  # as the run's own validation
        benchmarks,
        task=resolved.task,
        scale=resolved.scale,
        model_name=resolved.label,
        device=device,
        tile=settings.runtime.tile,
        overlap=settings.runtime.tile_overlap,
        multiple=resolved.multiple,
        save_dir=save_images,
        on_image=on_image,
    )


def write_json(path: Path, results: list[DatasetResult]) -> None:
    """Write the records atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps([r.record() for r in results], indent=2))
