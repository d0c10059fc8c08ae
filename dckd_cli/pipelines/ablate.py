"""`ablate`: a grid of ordinary distill runs under one folder, resumable cell by cell.

The folder's layout is ``engine/ablation_folder.py``'s.

Every cell of a seed meets the same batches (samples depend on the seed and index only) and
starts from the same warm start. A cell whose ``scores.json`` exists is finished and skipped;
one with a checkpoint resumes; a grown grid runs only its new cells.
"""

from __future__ import annotations

import json
import shutil
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dckd_cli.atomic import atomic_path
from dckd_cli.data.benchmarks import load_benchmark
from dckd_cli.engine.ablation_folder import AblationFolder
from dckd_cli.engine.build import build_run, run_device
from dckd_cli.engine.memory import peak_memory_mb, reset_peak_memory
from dckd_cli.engine.run_folder import RunFolder, RunFolderError
from dckd_cli.engine.step import time_steps
from dckd_cli.engine.trainer import ProgressSink, train
from dckd_cli.folders import FolderLock, refuse_foreign
from dckd_cli.metrics.scoring import evaluate
from dckd_cli.pipelines.ablation_grid import Cell, GridError, show_value
from dckd_cli.pipelines.demo import DEMO_WARMUP_ITERS, DEMO_WARMUP_LR
from dckd_cli.pipelines.demo_teacher import is_demo_teacher, resolve_demo_teacher
from dckd_cli.pipelines.evaluate import ModelChoice, resolve_model
from dckd_cli.settings.presets import resolve_settings
from dckd_cli.settings.schema import RunSettings

Say = Callable[[str], None]


@dataclass
class AblationSpec:
    """What every cell shares; stored in ``ablation.json`` and compared on every re-run."""

    preset: str | None  # a preset name or YAML file; None: the settings' defaults
    overrides: list[str]
    method: str
    iters: int | None
    warm_iters: int
    baseline: str | None
    warm_overrides: list[str] = field(default_factory=list)  # the warm start's own settings (e.g. its lr)
    warm_shared: bool = False  # one warm start (the first seed's) for every seed, instead of one per seed
    demo_teacher: bool = False  # on the demo preset (its teacher: teacher.checkpoint=@demo)

    def record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CellRun:
    cell: Cell
    seed: int
    folder: Path
    settings: RunSettings


@dataclass
class AblationPlan:
    root: Path
    spec: AblationSpec
    runs: list[CellRun]

    @property
    def demo(self) -> bool:
        """Some cell's teacher is the demo teacher (``@demo``), not resolved to its file yet."""
        return any(is_demo_teacher(r.settings) for r in self.runs)

    @property
    def pending(self) -> list[CellRun]:
        return [r for r in self.runs if not RunFolder(r.folder).scores.is_file()]


def _cell_settings(spec: AblationSpec, extra: dict[str, Any], seed: int) -> RunSettings:
    flags: dict[str, Any] = {"method.name": spec.method, "optim.iters": spec.iters, "runtime.seed": seed}
    cell = [f"{key}={show_value(value)}" for key, value in extra.items()]
    return resolve_settings(spec.preset, flags, [*spec.overrides, *cell])


def plan_ablation(
    root: Path,
    spec: AblationSpec,
    cells: list[Cell],
    seeds: list[int],
    *,
    force: bool = False,
) -> AblationPlan:
    """Resolve and validate every cell's settings (nothing runs, nothing is written)."""
    if not seeds:
        raise GridError("--seeds: give at least one seed, e.g. --seeds 0,1,2")
    folder = AblationFolder(root)
    stored = folder.read_record()
    if stored is not None and not force:
        if stored != spec.record():
            changed = ", ".join(k for k in spec.record() if stored.get(k) != spec.record()[k])
            raise RunFolderError(
                f"{root} holds an ablation with other shared settings ({changed}); "
                "use another --output, or --force to start it again"
            )
    elif root.exists() and any(root.iterdir()) and stored is None and not force:
        raise RunFolderError(f"{root} exists and is not an ablation folder; choose another --output or pass --force")
    if force:
        refuse_foreign(root)
    runs = []
    for cell in cells:
        for seed in cell.seeds if cell.seeds is not None else seeds:
            settings = _cell_settings(spec, cell.changes, seed)
            run_root = folder.cell(cell.folder_name, seed).root
            settings.output = run_root
            settings.runtime.teacher_cache = settings.runtime.teacher_cache or folder.teacher_cache
            runs.append(CellRun(cell, seed, run_root, settings))
    return AblationPlan(root, spec, runs)


def seconds_per_step(settings: RunSettings, steps: int = 2) -> float:
    """Seconds per training step of ``settings`` on a random batch, on the device the run will use."""
    return time_steps(build_run(settings), steps)


def _seconds_per_iter(folder: Path) -> float | None:
    """Median seconds per iteration over the logged windows of a run."""
    rates = []
    for line in RunFolder(folder).metrics.read_text().splitlines():
        rate = json.loads(line).get("it_per_s")
        if rate:
            rates.append(1.0 / rate)
    return statistics.median(rates) if rates else None


def score_run(run: CellRun, peak_mb: float | None) -> dict[str, Any]:
    """The final (``last``) EMA student's scores on the test sets, with the cell's costs."""
    s = run.settings
    folder = RunFolder(run.folder)
    spec = s.student
    choice = ModelChoice(arch=spec.arch, size=spec.size, checkpoint=folder.weights("last"), options=spec.options)
    resolved = resolve_model(choice, s)
    benches = [load_benchmark(name, s.task, s.scale, s.data.root, s.data.lr_source) for name in s.data.test]
    device = run_device(s)
    results = evaluate(
        resolved.model.to(device),
        benches,
        task=s.task,
        scale=s.scale,
        model_name=run.cell.label,
        device=device,
        tile=s.runtime.tile,
        overlap=s.runtime.tile_overlap,
        multiple=resolved.multiple,
    )
    return {
        "label": run.cell.label,
        "point": run.cell.point,
        "baseline": run.cell.baseline,
        "method": s.method.name,
        "seed": run.seed,
        "iterations": s.optim.iters,
        "seconds_per_iter": _seconds_per_iter(run.folder),
        "peak_memory_mb": peak_mb,
        "results": {r.dataset: {"psnr": r.psnr, "ssim": r.ssim} for r in results},
    }


def _warm_start(plan: AblationPlan, seed: int, sink: ProgressSink | None, say: Say) -> Path | None:
    """The shared scratch warm start of ``seed`` (trained once, resumed if killed)."""
    if plan.spec.warm_iters <= 0:
        return None
    folder = AblationFolder(plan.root).warm_start(seed)
    weights = folder.weights("last")
    if folder.scores.is_file() and weights.is_file():
        return weights
    spec = plan.spec
    flags = {"method.name": "scratch", "optim.iters": spec.warm_iters, "runtime.seed": seed}
    base = resolve_settings(spec.preset, flags, [*spec.overrides, *spec.warm_overrides])
    base.output, base.runtime.teacher_cache = folder.root, None
    resume = folder.has_checkpoint() and folder.settings.is_file()
    say(f"warm start, seed {seed}: {plan.spec.warm_iters} iterations of scratch training")
    train(base, folder.root, force=not resume, resume=resume, sink=sink)
    with atomic_path(folder.scores) as tmp:
        tmp.write_text(json.dumps({"warm_start": True, "iterations": plan.spec.warm_iters}) + "\n")
    return weights


def start_folder(plan: AblationPlan, fresh: bool = False) -> None:
    """Create the ablation folder (``fresh``, from ``--force``: empty it first; only a folder dckd
    made) and record its spec."""
    if fresh and plan.root.exists():
        refuse_foreign(plan.root)
        shutil.rmtree(plan.root)
    plan.root.mkdir(parents=True, exist_ok=True)
    AblationFolder(plan.root).write_record(plan.spec.record())


def resolve_demo_teachers(plan: AblationPlan, make_sink: Callable[[str], ProgressSink | None]) -> None:
    """Replace ``teacher.checkpoint=@demo`` in every cell by the demo teacher's file (the packaged
    one, or one trained once on first use and cached); cells already resolved stay as they are."""
    for run in plan.runs:
        run.settings = resolve_demo_teacher(run.settings, make_sink)


def run_ablation(
    plan: AblationPlan, make_sink: Callable[[str], ProgressSink | None], say: Say, fresh: bool = False
) -> None:
    """Run every pending cell of ``plan`` (``fresh``, from ``--force``: in an emptied folder);
    finished cells are skipped, killed ones resumed. A second ``ablate`` on the same folder is
    refused while this one runs."""
    with FolderLock(plan.root, "dckd ablate"):
        if fresh or AblationFolder(plan.root).read_record() != plan.spec.record():
            start_folder(plan, fresh)
        _run_cells(plan, make_sink, say)


def _run_cells(plan: AblationPlan, make_sink: Callable[[str], ProgressSink | None], say: Say) -> None:
    if plan.demo:
        resolve_demo_teachers(plan, make_sink)
    seeds = sorted({r.seed for r in plan.runs})
    if plan.spec.warm_shared:
        shared = _warm_start(plan, seeds[0], make_sink("warm-up"), say)
        warm = dict.fromkeys(seeds, shared)
    else:
        warm = {seed: _warm_start(plan, seed, make_sink("warm-up"), say) for seed in seeds}
    total = len(plan.runs)
    for index, run in enumerate(plan.runs, 1):
        folder = RunFolder(run.folder)
        name = f"[{index}/{total}] {run.cell.label}, seed {run.seed}"
        if folder.scores.is_file():
            say(f"{name}: finished earlier, skipped")
            continue
        if warm[run.seed] is not None:
            run.settings.student.checkpoint = warm[run.seed]
        resume = folder.has_checkpoint() and folder.settings.is_file()
        say(f"{name}: {'resuming' if resume else 'running'}")
        device = run_device(run.settings)
        reset_peak_memory(device)
        train(run.settings, run.folder, force=not resume, resume=resume, sink=make_sink(run.cell.label))
        scores = score_run(run, peak_memory_mb(device))
        with atomic_path(folder.scores) as tmp:
            tmp.write_text(json.dumps(scores, indent=2) + "\n")


def default_spec(
    preset: str | None, overrides: list[str], method: str, iters: int | None, warm_iters: int | None, baseline: str
) -> AblationSpec:
    """The shared settings; with no preset the offline demo setting and its warm start."""
    if warm_iters is None:
        warm_iters = DEMO_WARMUP_ITERS if preset is None else 0
    base = None if baseline == "none" else baseline
    demo = preset is None
    warm = [f"optim.lr={DEMO_WARMUP_LR}"] if demo else []  # the demo's own warm-up recipe
    return AblationSpec(preset or "demo", overrides, method, iters, warm_iters, base, warm, demo_teacher=demo)
