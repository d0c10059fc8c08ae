"""`distill`: one run from resolved settings, or the offline demo (several runs + a table)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dckd_cli.engine.run_folder import RunFolder, RunFolderError
from dckd_cli.engine.trainer import ProgressSink, TrainResult, train
from dckd_cli.pipelines.demo_teacher import SinkFactory, resolve_demo_teacher
from dckd_cli.pipelines.evaluate import read_run_settings
from dckd_cli.settings.resumable import rounding_changes, values_of, with_changes
from dckd_cli.settings.schema import RunSettings

log = logging.getLogger(__name__)


def default_output(settings: RunSettings) -> Path:
    return Path("runs") / f"{settings.task}-{settings.student.arch}-x{settings.scale}-{settings.method.name}"


def distill(
    settings: RunSettings,
    output: Path | None,
    *,
    force: bool = False,
    resume: bool = False,
    iters: int | None = None,
    changes: Mapping[str, object] | None = None,
    sink: ProgressSink | None = None,
    make_sink: SinkFactory | None = None,
) -> TrainResult:
    """One run. On ``resume`` the run's saved settings are used (``iters`` may extend it, and
    ``changes`` set its speed and memory switches: ``settings/resumable.py``).
    ``teacher.checkpoint=@demo`` becomes the demo teacher's file (trained first if needed,
    with progress on ``make_sink('teacher')``)."""
    folder = output or settings.output or default_output(settings)
    if resume:
        run = RunFolder(folder)
        run.check(force=False, resume=True)
        settings = read_run_settings(folder)
        if changes:
            settings = switched(run, settings, changes)
        if iters is not None and iters != settings.optim.iters:
            from dckd_cli.engine.checkpoint import load_checkpoint

            done = int(load_checkpoint(folder).state["iter"]) if run.has_checkpoint() else 0
            if iters < done:
                raise RunFolderError(f"--iters {iters}: {folder} has already done {done} iterations; give more")
            settings.optim.iters = iters
            run.write_settings(settings)  # the longer budget is part of the run now
    if not resume:
        RunFolder(folder).check(force=force, resume=False)  # refused before a demo teacher trains
        settings = resolve_demo_teacher(settings, make_sink or (lambda _label: sink))
    settings.output = folder
    return train(settings, folder, force=force, resume=resume, sink=sink)


def switched(run: RunFolder, settings: RunSettings, changes: Mapping[str, object]) -> RunSettings:
    """``settings`` with a resume's speed and memory ``changes``, written to the run folder; the
    change is said in one line and noted in ``resumes.jsonl``, with whether the run stays
    bitwise the uninterrupted one (``settings/resumable.py``)."""
    from dckd_cli.engine.checkpoint import load_checkpoint

    was = values_of(settings, list(changes))
    changed = {k: (was[k], v) for k, v in changes.items() if was[k] != v}
    settings = with_changes(settings, changes)
    run.write_settings(settings)  # the run continues with them
    if not changed:
        return settings
    done = int(load_checkpoint(run.root).state["iter"]) if run.has_checkpoint() else 0
    rounding = rounding_changes(changed)
    run.note_resume(done, changed, bitwise=not rounding or done == 0)
    shown = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
    if rounding and done:
        log.warning(
            "%s resumes at iteration %d with %s; %s may round differently, so from here on the run is no longer "
            "bitwise the uninterrupted one (noted in %s)",
            run.root,
            done,
            shown,
            ", ".join(rounding),
            run.resumes.name,
        )
    else:
        log.info("%s resumes at iteration %d with %s (the same numbers)", run.root, done, shown)
    return settings


@dataclass
class DryRun:
    seconds_per_iter: float
    peak_memory_mb: float | None
    iterations: int
    device: str
    done: int = 0  # iterations a resumed run has already done
    # the networks' weights plus the first step's tensors at their peak (gradients, optimiser
    # state, activations): what a GPU would allocate for this run, measured on any device
    # (None under runtime.compile, whose first step the measurement would change)
    need_mb: float | None = None

    @property
    def eta_seconds(self) -> float:
        return self.seconds_per_iter * (self.iterations - self.done)


def dry_run(settings: RunSettings, steps: int = 2, done: int = 0) -> DryRun:
    """Check data, checkpoints, encoder and settings, time ``steps`` training steps; write nothing.
    A demo teacher not trained yet is timed with random weights of its architecture; ``done``:
    the iterations a run to be resumed has already done."""
    import contextlib
    import tempfile
    from functools import partial

    from dckd_cli.engine.build import build_run
    from dckd_cli.engine.memory import TensorPeak, peak_memory_mb, reset_peak_memory, resident_mb, tensor_peak
    from dckd_cli.engine.step import time_steps
    from dckd_cli.pipelines.demo_teacher import with_stand_in_teacher

    resolved = resolve_demo_teacher(settings, lambda _label: None, train_missing=False)
    with tempfile.TemporaryDirectory(prefix="dckd-dry-run-") as tmp:
        run = build_run(with_stand_in_teacher(resolved, Path(tmp)))  # every check a real run makes first
        device = run.accelerator.device
        weights = resident_mb([run.student, run.ema.model, run.teacher, *run.method.resources.networks()])
        record = None if settings.runtime.compile else TensorPeak()
        counted = contextlib.nullcontext if record is None else partial(tensor_peak, record)
        reset_peak_memory(device)
        seconds = time_steps(run, steps, warm_up=counted)
    need = None if record is None else weights + record.mb
    return DryRun(seconds, peak_memory_mb(device), settings.optim.iters, str(device), done, need)
