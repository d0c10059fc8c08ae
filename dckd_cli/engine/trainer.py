"""The one training loop every method plugs into; it receives a built ``Run`` and only loops.

Per optimiser step (``engine/step.py``): student forward; the method's named, already-weighted
loss terms (teacher forward inside, frozen and without gradients); sum, backward, step; EMA
update; the method's ``after_step``. Then logging, validation and checkpoints on their
schedules. ``Trainer.run`` is restore -> batches -> (step -> log -> validate and save).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from dckd_cli.catalog.architectures import reference_for
from dckd_cli.engine.batches import loader_workers, training_batches
from dckd_cli.engine.build import Run, build_run
from dckd_cli.engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from dckd_cli.engine.guard import Collapsed, CollapseGuard
from dckd_cli.engine.run_folder import RunFolder
from dckd_cli.engine.runlog import RunLog
from dckd_cli.engine.step import NonFiniteLoss, Stepper, Window, timed_batches
from dckd_cli.engine.stop import Stopped, StopRequest
from dckd_cli.engine.trackers import Trackers
from dckd_cli.folders import FolderLock, refuse_overlap
from dckd_cli.metrics.scoring import DatasetResult, evaluate
from dckd_cli.models.zoo import build_model, input_needs
from dckd_cli.settings.schema import RunSettings

VAL_IMAGES_SAVED = 3
DATA_WAIT_WARNING = 0.10  # warn once when the loop waits this share of its time for batches
log = logging.getLogger(__name__)
__all__ = ["NonFiniteLoss", "ProgressSink", "TrainResult", "Trainer", "train"]


class ProgressSink(Protocol):
    def start(self, total: int, done: int) -> None: ...
    def step(self, iteration: int, record: dict[str, Any] | None) -> None: ...


class _Silent:
    def start(self, total: int, done: int) -> None:
        pass

    def step(self, iteration: int, record: dict[str, Any] | None) -> None:
        pass


@dataclass
class TrainResult:
    folder: Path
    iterations: int
    best_psnr: float | None
    last_psnr: float | None
    seconds: float


class Trainer:
    def __init__(self, run: Run, folder: Path, sink: ProgressSink | None = None):
        self.built, self.settings, self.folder = run, run.settings, folder
        self.accelerator = run.accelerator
        self.run_folder = RunFolder(folder)
        self.sink = sink or _Silent()
        self.trackers = Trackers(self.accelerator, run.settings)
        self.log = RunLog(self.run_folder.metrics)
        self.last_psnr: float | None = None
        self.optimizer = run.optimizer  # the prepared one once the loop starts
        self.warned_data = False
        self.guard = CollapseGuard(run.settings, self._reference_psnr)
        self.last_terms: dict[str, float] = {}  # the loss terms of the last log line (for the guard)

    @property
    def best(self) -> float | None:
        """The best validation PSNR so far (the guard keeps it, with its iteration)."""
        return None if self.guard.best is None else self.guard.best[0]

    @classmethod
    def of(cls, settings: RunSettings, folder: Path, sink: ProgressSink | None = None) -> Trainer:
        """A trainer of a run built from ``settings`` (checked, nothing written yet)."""
        return cls(build_run(settings, folder), folder, sink)

    def load_last(self) -> int:
        """Load the ``last`` checkpoint into every stateful part; the iteration to continue from."""
        built = self.built
        ckpt = load_checkpoint(self.folder)
        damaged = self.run_folder.checkpoint("last")
        if ckpt.source is not None and ckpt.source != damaged:  # resumed from the previous copy:
            shutil.rmtree(damaged, ignore_errors=True)  # the unreadable one must not become the next fallback
        built.student.load_state_dict(ckpt.student)
        built.ema.model.load_state_dict(ckpt.model)
        built.optimizer.load_state_dict(ckpt.state["optimizer"])
        built.scheduler.load_state_dict(ckpt.state["scheduler"])
        built.method.load_state_dict(ckpt.method)
        built.ema.updates = ckpt.state["ema_updates"]
        self.guard.load_state_dict(ckpt.state.get("guard"), ckpt.state["best_psnr"])
        torch.set_rng_state(ckpt.state["rng"])
        return int(ckpt.state["iter"])

    def log_record(self, iteration: int, window: Window, final: bool, first: bool = False) -> dict[str, Any]:
        """The averaged terms since the last log line, on the log schedule, the first and the last
        step (else empty)."""
        if not (iteration % self.settings.runtime.log_every == 0 or final or first):
            return {}
        now = time.perf_counter()
        record: dict[str, Any] = {"iter": iteration, "lr": self.built.scheduler.get_last_lr()[0]}
        record |= window.take_means()
        self.last_terms = {k: v for k, v in record.items() if k in self.built.method.weights}
        elapsed = max(now - window.tick, 1e-9)
        record["it_per_s"] = window.steps / elapsed
        record["data_s"] = window.data_seconds / max(window.steps, 1)  # waited per iteration
        if window.data_seconds > DATA_WAIT_WARNING * elapsed and not self.warned_data and iteration > window.steps:
            self.warned_data = True
            workers = loader_workers(self.settings, self.accelerator.device)
            log.warning(
                "the step waited %.0f %% of its time for data (%.3f s per iteration): raise data.workers "
                "(now %d) or use a faster disk for the data and the dckd cache",
                100 * window.data_seconds / elapsed,
                record["data_s"],
                workers,
            )
        window.data_seconds = 0.0
        if window.skipped:
            record["skipped_steps"] = window.skipped
            window.skipped = 0
        window.steps, window.tick = 0, now
        return record

    def validate_and_save(self, iteration: int, record: dict[str, Any], final: bool) -> list[str]:
        """Validate and save on their schedules; log ``record``; the checkpoints written."""
        s, acc = self.settings, self.accelerator
        saved = []
        if (iteration % s.runtime.val_every == 0 or final) and acc.is_main_process:
            result = self._validate(self.built.ema.model, iteration)
            self.last_psnr = result.psnr
            improved = self.best is None or self.last_psnr > self.best
            record |= {"iter": iteration, "val_psnr": self.last_psnr}
            images = [score.psnr for score in result.per_image]
            collapse = self.guard.check(iteration, self.last_psnr, self.last_terms, images)
            if collapse is not None and s.guard.action == "stop" and not final:
                self.log.write(record)
                self._save("last", iteration)
                raise Collapsed(f"{collapse}; the run stopped (last saved at iteration {iteration})")
            if collapse is not None:
                log.warning(collapse)
            self.trackers.images(self.run_folder.val_images(iteration), iteration)
            if improved:
                self._save("best", iteration)
                saved.append("best")
        if record and acc.is_main_process:
            self.log.write(record)
            self.trackers.log(record, iteration)
        if iteration % s.runtime.save_every == 0 or final:
            acc.wait_for_everyone()  # every process reaches this point; "best" above is main-only
            self._save("last", iteration)
            saved.append("last")
        return saved

    def run(self, resume: bool = False) -> TrainResult:
        s, acc, built = self.settings, self.accelerator, self.built
        start = self.load_last() if resume and self.run_folder.saved_any() else 0  # else resumed from zero
        built.method.iteration = start
        self.log.truncate_after(start)
        batches = training_batches(s, built.sources, acc.num_processes, start, acc.device)
        stepper = Stepper(built, batches)
        stepper.checkpoint_at = start if start else None
        stepper.folder = self.folder
        student, window, self.optimizer = stepper.student, stepper.window, stepper.optimizer
        self.trackers.start()
        iteration, began = start, time.perf_counter()
        self.sink.start(s.optim.iters, start)
        student.train()
        with StopRequest() as stop:
            for lq, gt in timed_batches(stepper.batches, window):
                stepper.micro_step(lq, gt, iteration)
                if not acc.sync_gradients:
                    continue
                iteration += 1
                stepper.end_iteration(iteration)
                final = iteration == s.optim.iters
                record = self.log_record(iteration, window, final, first=iteration == 1)
                saved = self.validate_and_save(iteration, record, final)
                if "last" in saved:
                    stepper.checkpoint_at = iteration
                if stop.name is not None and "last" not in saved:
                    self._save("last", iteration)
                    saved.append("last")
                shown = {**record, "iter": iteration, "saved": ", ".join(saved)} if saved else record
                self.sink.step(iteration, shown or None)
                if stop.name is not None and not final:
                    self.trackers.end()
                    raise Stopped(
                        f"stopped by {stop.name} after iteration {iteration} of {s.optim.iters}; saved. "
                        f"Continue with: dckd distill --output {self.folder} --resume"
                    )
                if final:
                    break
        self.trackers.end()
        return TrainResult(self.folder, iteration, self.best, self.last_psnr, time.perf_counter() - began)

    def _validate(self, model: nn.Module, iteration: int) -> DatasetResult:
        s = self.settings
        (result,) = evaluate(
            model,
            [self.built.val_bench],
            task=s.task,
            scale=s.scale,
            model_name="student",
            device=self.accelerator.device,
            tile=s.runtime.tile,
            overlap=s.runtime.tile_overlap,
            multiple=input_needs(self.built.ema.model)[0],
            save_dir=self.run_folder.val_images(iteration),
            save_limit=VAL_IMAGES_SAVED,
        )
        return result

    def _reference_psnr(self) -> tuple[str, list[float]]:
        """The task's reference row (bicubic / the degraded input) on the validation images:
        its name and per-image PSNRs."""
        s = self.settings
        name = reference_for(s.task)
        (result,) = evaluate(
            build_model(name, "tiny", s.scale), [self.built.val_bench], task=s.task, scale=s.scale, model_name=name
        )
        return name, [score.psnr for score in result.per_image]

    def _save(self, tag: str, iteration: int) -> None:
        acc, built = self.accelerator, self.built
        if not acc.is_main_process:
            return
        state = {
            "iter": iteration,
            "best_psnr": self.best,
            "guard": self.guard.state_dict(),
            "ema_updates": built.ema.updates,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": built.scheduler.state_dict(),
            "rng": torch.get_rng_state(),
        }
        ckpt = Checkpoint(built.ema.model, built.student, built.method.state_dict(), state)
        save_checkpoint(self.folder, tag, ckpt)
        if tag == "last":
            self.run_folder.drop_replaced()  # the new run has a checkpoint: the run --force replaced may go


def train(
    settings: RunSettings, folder: Path, *, force: bool = False, resume: bool = False, sink: ProgressSink | None = None
) -> TrainResult:
    """Run (or resume) one distillation run in ``folder``.

    Everything is built and checked before the folder is touched, so a bad teacher path,
    data root or method setting leaves no half-made run behind.
    """
    refuse_overlap(folder, _inputs(settings), {"data.root": settings.data.root})
    with FolderLock(folder, "dckd distill"):  # a second command on this folder is refused while this one runs
        run_folder = RunFolder(folder)
        run_folder.check(force=force, resume=resume)
        trainer = Trainer.of(settings, folder, sink)
        acc = trainer.accelerator
        acc.wait_for_everyone()  # every process has checked the folder as it was; only then does it change
        if acc.is_main_process:
            run_folder.prepare(force=force, resume=resume)
            if not resume:
                run_folder.write_settings(settings)
        acc.wait_for_everyone()
        return trainer.run(resume=resume)


def _inputs(settings: RunSettings) -> dict[str, Path | None]:
    """What a run reads, which its folder must not be, sit in or hold."""
    found: dict[str, Path | None] = {
        "teacher.checkpoint": settings.teacher.checkpoint,
        "student.checkpoint": settings.student.checkpoint,
    }
    found |= {f"data.train {name}": Path(name) for name in settings.data.train if Path(name).expanduser().exists()}
    return found
