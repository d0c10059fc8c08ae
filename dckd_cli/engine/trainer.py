"""The one training loop every method plugs into (Accelerate owns devices).

Per optimiser step: student forward; the method's named, already-weighted loss terms
(teacher forward inside, frozen and without gradients); sum, backward, step; EMA update;
the method's ``after_step``; then logging, validation and checkpoints on their schedules.
``Trainer.run`` is restore -> batches -> (step -> log -> validate and save) per iteration.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader, Subset

from dckd_cli.catalog.architectures import pad_multiple
from dckd_cli.data.benchmarks import check_benchmark, load_benchmark
from dckd_cli.data.pairs import TrainingPatches, training_loaders
from dckd_cli.data.schedule import Stage, StagedBatches
from dckd_cli.engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from dckd_cli.engine.ema import ModelEMA
from dckd_cli.engine.optim import build_optimizer, build_scheduler
from dckd_cli.engine.run_folder import RunFolder
from dckd_cli.engine.runlog import RunLog
from dckd_cli.engine.stop import Stopped, StopRequest
from dckd_cli.engine.trackers import Trackers, check_tracker
from dckd_cli.errors import DckdError
from dckd_cli.methods.method import active_weights, needs_of
from dckd_cli.methods.registry import build_method, method_spec
from dckd_cli.metrics.evaluate import evaluate
from dckd_cli.models.checkpoints import build_teacher, build_with_weights
from dckd_cli.models.teacher_cache import CachedTeacher
from dckd_cli.settings.schema import RunSettings

log = logging.getLogger(__name__)
VAL_IMAGES_SAVED = 3


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


def build_models(settings: RunSettings, needs_teacher: bool) -> tuple[nn.Module, nn.Module | None]:
    """The student (warm-start weights if named) and, when needed, the frozen teacher."""
    s, t = settings.student, settings.teacher
    student = build_with_weights(s.arch, s.size, settings.scale, settings.task, s.checkpoint)
    teacher = build_teacher(t.arch, t.size, settings.scale, settings.task, t.checkpoint) if needs_teacher else None
    return student, teacher


@dataclass
class _Window:
    """Loss sums between two log lines."""

    sums: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    steps: int = 0
    skipped: int = 0  # steps whose loss was not finite (optim.non_finite=skip)
    tick: float = field(default_factory=time.perf_counter)


class NonFiniteLoss(DckdError):
    """A loss term became NaN or infinite; the step was not taken."""


DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice (physical cores, or OMP_NUM_THREADS)


def apply_threads(threads: int | None) -> int:
    """Size torch's CPU thread pools: ``threads``, or the cores shared among the processes that
    ``accelerate launch`` started on this machine. Oversubscribed pools make every run slower."""
    if threads is None:
        processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        threads = max(1, DEFAULT_THREADS // max(processes, 1))
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:
        pass  # fixed once parallel work has started in this process; the intra-op pool is what counts
    return threads


def _cpu_processes() -> bool:
    """Launched as several processes on a machine without CUDA: Accelerate must be told it is
    CPU training, or each process trains alone (gloo DDP, as `torchrun --nproc_per_node N`)."""
    return not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1


class Trainer:
    def __init__(self, settings: RunSettings, folder: Path, sink: ProgressSink | None = None):
        apply_threads(settings.runtime.threads)
        if settings.runtime.deterministic:  # cuBLAS needs a fixed workspace for repeatable sums
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        self.settings, self.folder = settings, folder
        self.run_folder = RunFolder(folder)
        self.sink = sink or _Silent()
        self.accelerator = Accelerator(
            mixed_precision=settings.runtime.mixed_precision,
            gradient_accumulation_steps=settings.optim.grad_accum,
            cpu=settings.runtime.device == "cpu" or _cpu_processes(),
            log_with=check_tracker(settings.runtime.log_with),
            project_dir=str(self.run_folder.logs),
        )
        self.trackers = Trackers(self.accelerator, settings)
        self.log = RunLog(self.run_folder.metrics)
        self.best: float | None = None
        self.iteration = 0
        self.last_psnr: float | None = None

    def setup(self) -> None:
        """Build models, method, optimiser and data; every user error surfaces here, before any file is written."""
        s = self.settings
        needs = needs_of(active_weights(method_spec(s.method.name), s))
        set_seed(s.runtime.seed, deterministic=s.runtime.deterministic)
        self.student, teacher = build_models(s, "teacher" in needs)
        if teacher is not None:
            teacher = teacher.to(self.accelerator.device)
            if s.runtime.teacher_cache and "taps" not in needs:  # taps need the teacher to really run
                teacher = CachedTeacher(teacher, s.runtime.teacher_cache)
        self.teacher = teacher
        self.method = build_method(s, self.student, self.teacher)
        self.ema = ModelEMA(self.student, s.optim.ema_decay, s.optim.ema_warmup)
        self.optimizer = build_optimizer(self.student, s.optim)
        self.scheduler = build_scheduler(self.optimizer, s.optim)
        self.loaders = training_loaders(s.data.train, s.task, s.scale, s.data.root, s.data.skip_bad_images)
        self.val_bench = load_benchmark(s.data.val, s.task, s.scale, s.data.root, s.data.lr_source)
        if s.data.val_limit is not None:
            self.val_bench = replace(self.val_bench, pairs=self.val_bench.pairs[: s.data.val_limit])
        check_benchmark(self.val_bench, s.scale)  # a bad validation image fails now, not at the first validation

    # -- the pieces of a run --------------------------------------------------------------

    def restore(self) -> int:
        """Load the ``last`` checkpoint into every stateful part; the iteration to continue from."""
        ckpt = load_checkpoint(self.folder)
        damaged = self.run_folder.checkpoint("last")
        if ckpt.source is not None and ckpt.source != damaged:  # resumed from the previous copy:
            shutil.rmtree(damaged, ignore_errors=True)  # the unreadable one must not become the next fallback
        self.student.load_state_dict(ckpt.student)
        self.ema.model.load_state_dict(ckpt.model)
        self.optimizer.load_state_dict(ckpt.state["optimizer"])
        self.scheduler.load_state_dict(ckpt.state["scheduler"])
        self.method.load_state_dict(ckpt.method)
        self.best, self.ema.updates = ckpt.state["best_psnr"], ckpt.state["ema_updates"]
        torch.set_rng_state(ckpt.state["rng"])
        return int(ckpt.state["iter"])

    def batches(self, start: int) -> DataLoader:
        """Training batches from iteration ``start`` on: sample i depends on the seed and i alone."""
        s, acc = self.settings, self.accelerator
        if s.data.progressive:
            return self._staged_batches(start)
        per_step = s.data.batch_size * s.optim.grad_accum * acc.num_processes
        dataset = TrainingPatches(
            self.loaders, s.scale, s.data.patch_size, s.optim.iters * per_step, s.runtime.seed, s.data.augment
        )
        return DataLoader(
            Subset(dataset, range(start * per_step, len(dataset))),
            batch_size=s.data.batch_size,
            shuffle=False,
            num_workers=s.data.workers,
            drop_last=True,
        )

    def _staged_batches(self, start: int) -> DataLoader:
        """Batches of a progressive patch / batch schedule (``data.progressive``)."""
        s, acc = self.settings, self.accelerator
        stages = [Stage(st.until, st.patch, st.batch) for st in s.data.progressive]
        sampler = StagedBatches(stages, start, s.optim.iters, s.optim.grad_accum * acc.num_processes)
        dataset = TrainingPatches(
            self.loaders,
            s.scale,
            stages[0].patch,
            sampler.samples,
            s.runtime.seed,
            s.data.augment,
            patch_of_sample=sampler.patch_of_sample,
        )
        return DataLoader(dataset, batch_sampler=sampler, num_workers=s.data.workers)

    def step(self, student: nn.Module, lq: torch.Tensor, gt: torch.Tensor, window: _Window) -> None:
        """One forward / backward / optimiser step (one micro-batch under gradient accumulation)."""
        s, acc = self.settings, self.accelerator
        with acc.accumulate(student):
            with acc.autocast():
                out = student(lq)
                terms = self.method.loss_terms(lq, gt, out)
                loss = torch.stack(list(terms.values())).sum()
            values = {name: float(value.detach()) for name, value in terms.items()}
            total = float(loss.detach())
            bad = next((name for name, v in values.items() if not math.isfinite(v)), None)
            if bad is not None and s.optim.non_finite == "skip":
                log.warning("loss term '%s' is %s at iteration %d: step skipped", bad, values[bad], self.iteration + 1)
                self.optimizer.zero_grad(set_to_none=True)
                window.skipped += 1
                return
            if bad is not None:
                raise NonFiniteLoss(
                    f"loss term '{bad}' became {values[bad]} after {self.iteration} iterations; the run stopped "
                    f"(its last checkpoint is intact): lower optim.lr (now {s.optim.lr:g}), set optim.grad_clip or "
                    f"optim.non_finite=skip"
                    f"{', use mixed_precision=no' if s.runtime.mixed_precision != 'no' else ''}, then --resume"
                )
            acc.backward(loss)
            if acc.sync_gradients and s.optim.grad_clip:
                acc.clip_grad_norm_(student.parameters(), s.optim.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        for name, value in values.items():
            window.sums[name] += value / s.optim.grad_accum
        window.sums["loss"] += total / s.optim.grad_accum

    def log_record(self, iteration: int, window: _Window, final: bool, first: bool = False) -> dict[str, Any]:
        """The averaged terms since the last log line, on the log schedule, the first and the last
        step (else empty)."""
        if not (iteration % self.settings.runtime.log_every == 0 or final or first):
            return {}
        now = time.perf_counter()
        record: dict[str, Any] = {"iter": iteration, "lr": self.scheduler.get_last_lr()[0]}
        record |= {k: v / window.steps for k, v in window.sums.items()}
        record["it_per_s"] = window.steps / max(now - window.tick, 1e-9)
        if window.skipped:
            record["skipped_steps"] = window.skipped
            window.skipped = 0
        window.sums.clear()
        window.steps, window.tick = 0, now
        return record

    def validate_and_save(self, student: nn.Module, iteration: int, record: dict[str, Any], final: bool) -> list[str]:
        """Validate and save on their schedules; log ``record``; the checkpoints written."""
        s, acc = self.settings, self.accelerator
        saved = []
        if (iteration % s.runtime.val_every == 0 or final) and acc.is_main_process:
            self.last_psnr = self._validate(self.ema.model, iteration)
            record |= {"iter": iteration, "val_psnr": self.last_psnr}
            self.trackers.images(self.run_folder.val_images(iteration), iteration)
            if self.best is None or self.last_psnr > self.best:
                self.best = self.last_psnr
                self._save("best", student, iteration)
                saved.append("best")
        if record and acc.is_main_process:
            self.log.write(record)
            self.trackers.log(record, iteration)
        if iteration % s.runtime.save_every == 0 or final:
            acc.wait_for_everyone()  # every process reaches this point; "best" above is main-only
            self._save("last", student, iteration)
            saved.append("last")
        return saved

    def time_steps(self, steps: int = 2) -> float:
        """Median seconds of a training step on a random batch, on this trainer's device (after one
        warm-up step). Moves the student and method there and changes the student's weights."""
        s, device = self.settings, self.accelerator.device
        student = self.student.to(device)
        self.method.to(device)
        g = torch.Generator().manual_seed(0)
        lq = torch.rand(s.data.batch_size, 3, s.data.patch_size, s.data.patch_size, generator=g)
        gt = torch.rand(lq.shape[0], 3, lq.shape[2] * s.scale, lq.shape[3] * s.scale, generator=g)
        lq, gt = lq.to(device), gt.to(device)
        times = []
        for i in range(steps + 1):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            began = time.perf_counter()
            loss = torch.stack(list(self.method.loss_terms(lq, gt, student(lq)).values())).sum()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.method.after_step(i + 1, self.ema.model.to(device))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i:
                times.append(time.perf_counter() - began)
        return sorted(times)[len(times) // 2]

    def run(self, resume: bool = False) -> TrainResult:
        if not hasattr(self, "student"):
            self.setup()
        s, acc = self.settings, self.accelerator
        start = self.restore() if resume else 0
        self.method.iteration = start
        self.log.truncate_after(start)
        student, self.optimizer, batches = acc.prepare(self.student, self.optimizer, self.batches(start))
        self.ema.model.to(acc.device)
        self.method.to(acc.device)

        self.trackers.start()
        iteration, window, began = start, _Window(), time.perf_counter()
        self.iteration = start
        self.sink.start(s.optim.iters, start)
        student.train()
        with StopRequest() as stop:
            for lq, gt in batches:
                self.step(student, lq, gt, window)
                if not acc.sync_gradients:
                    continue
                self.scheduler.step()
                iteration = self.iteration = iteration + 1
                window.steps += 1
                self.ema.update(acc.unwrap_model(student))
                self.method.after_step(iteration, self.ema.model)
                final = iteration == s.optim.iters
                record = self.log_record(iteration, window, final, first=iteration == 1)
                saved = self.validate_and_save(student, iteration, record, final)
                if stop.name is not None and "last" not in saved:
                    self._save("last", student, iteration)
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

    def _validate(self, model: nn.Module, iteration: int) -> float:
        s = self.settings
        (result,) = evaluate(
            model,
            [self.val_bench],
            task=s.task,
            scale=s.scale,
            model_name="student",
            device=self.accelerator.device,
            tile=s.runtime.tile,
            overlap=s.runtime.tile_overlap,
            multiple=pad_multiple(s.student.arch),
            save_dir=self.run_folder.val_images(iteration),
            save_limit=VAL_IMAGES_SAVED,
        )
        return result.psnr

    def _save(self, tag: str, student: nn.Module, iteration: int) -> None:
        acc = self.accelerator
        if not acc.is_main_process:
            return
        state = {
            "iter": iteration,
            "best_psnr": self.best,
            "ema_updates": self.ema.updates,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": torch.get_rng_state(),
        }
        ckpt = Checkpoint(self.ema.model, acc.unwrap_model(student), self.method.state_dict(), state)
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
    run_folder = RunFolder(folder)
    run_folder.check(force=force, resume=resume)
    trainer = Trainer(settings, folder, sink)
    trainer.setup()
    acc = trainer.accelerator
    acc.wait_for_everyone()  # every process has checked the folder as it was; only then does it change
    if acc.is_main_process:
        run_folder.prepare(force=force, resume=resume)
        if not resume:
            run_folder.write_settings(settings)
    acc.wait_for_everyone()
    return trainer.run(resume=resume)
