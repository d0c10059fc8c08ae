"""The one training loop every method plugs into (Accelerate owns devices).

Per optimiser step: student forward; the method's named, already-weighted loss terms
(teacher forward inside, frozen and without gradients); sum, backward, step; EMA update;
the method's ``after_step``; then logging, validation and checkpoints on their schedules.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader, Subset

from dckd_cli.data.benchmarks import load_benchmark
from dckd_cli.data.pairs import TrainingPatches, training_loaders
from dckd_cli.engine.checkpoint import (
    Checkpoint,
    check_run_folder,
    load_checkpoint,
    prepare_run_folder,
    save_checkpoint,
)
from dckd_cli.engine.ema import ModelEMA
from dckd_cli.engine.optim import build_optimizer, build_scheduler
from dckd_cli.engine.runlog import RunLog
from dckd_cli.methods.registry import build_method, method_class
from dckd_cli.metrics.evaluate import evaluate
from dckd_cli.models.checkpoints import CheckpointError, build_with_weights, pad_multiple
from dckd_cli.models.teacher_cache import CachedTeacher
from dckd_cli.settings.presets import settings_yaml
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


def build_teacher(settings: RunSettings) -> nn.Module:
    spec = settings.teacher
    if spec.checkpoint is None and spec.size != "teacher" and spec.arch != "bicubic":
        raise CheckpointError(
            f"teacher size '{spec.size}' has no official weights; pass --teacher-checkpoint FILE "
            "(official releases exist for size 'teacher')"
        )
    teacher = build_with_weights(spec.arch, spec.size, settings.scale, settings.task, spec.checkpoint, official=True)
    return teacher.eval().requires_grad_(False)


def build_student(settings: RunSettings) -> nn.Module:
    spec = settings.student
    return build_with_weights(spec.arch, spec.size, settings.scale, settings.task, spec.checkpoint)


class Trainer:
    def __init__(self, settings: RunSettings, folder: Path, sink: ProgressSink | None = None):
        self.settings, self.folder = settings, folder
        self.sink = sink or _Silent()
        self.accelerator = Accelerator(
            mixed_precision=settings.runtime.mixed_precision, gradient_accumulation_steps=settings.optim.grad_accum
        )
        self.log = RunLog(folder / "metrics.jsonl")

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
            save_dir=self.folder / "val_images" / f"iter_{iteration:06d}",
            save_limit=VAL_IMAGES_SAVED,
        )
        return result.psnr

    def setup(self) -> None:
        """Build models, method, optimiser and data; every user error surfaces here, before any file is written."""
        s = self.settings
        method_cls = method_class(s.method.name)
        set_seed(s.runtime.seed)
        self.student = build_student(s)
        self.teacher = build_teacher(s).to(self.accelerator.device) if method_cls.needs_teacher else None
        if self.teacher is not None and s.runtime.teacher_cache and not method_cls.reads_teacher_features:
            self.teacher = CachedTeacher(self.teacher, s.runtime.teacher_cache)
        self.method = build_method(s, self.student, self.teacher)
        self.ema = ModelEMA(self.student, s.optim.ema_decay, s.optim.ema_warmup)
        self.optimizer = build_optimizer(self.student, s.optim)
        self.scheduler = build_scheduler(self.optimizer, s.optim)
        self.loaders = training_loaders(s.data.train, s.task, s.scale, s.data.root)
        self.val_bench = load_benchmark(s.data.val, s.task, s.scale, s.data.root, s.data.lr_source)

    def run(self, resume: bool = False) -> TrainResult:
        if not hasattr(self, "student"):
            self.setup()
        s, acc = self.settings, self.accelerator
        student, method, ema = self.student, self.method, self.ema
        optimizer, scheduler = self.optimizer, self.scheduler
        start, best = 0, None
        if resume:
            ckpt = load_checkpoint(self.folder)
            student.load_state_dict(ckpt.student)
            ema.model.load_state_dict(ckpt.model)
            optimizer.load_state_dict(ckpt.state["optimizer"])
            scheduler.load_state_dict(ckpt.state["scheduler"])
            method.load_state_dict(ckpt.method)
            start, best, ema.updates = ckpt.state["iter"], ckpt.state["best_psnr"], ckpt.state["ema_updates"]
            torch.set_rng_state(ckpt.state["rng"])
        self.log.truncate_after(start)

        per_step = s.data.batch_size * s.optim.grad_accum * acc.num_processes
        dataset = TrainingPatches(
            self.loaders, s.scale, s.data.patch_size, s.optim.iters * per_step, s.runtime.seed, s.data.augment
        )
        batches = DataLoader(
            Subset(dataset, range(start * per_step, len(dataset))),
            batch_size=s.data.batch_size,
            shuffle=False,
            num_workers=s.data.workers,
            drop_last=True,
        )
        student, optimizer, batches = acc.prepare(student, optimizer, batches)
        ema.model.to(acc.device)
        method.to(acc.device)

        iteration, last_psnr = start, None
        sums: dict[str, float] = defaultdict(float)
        counted, tick, began = 0, time.perf_counter(), time.perf_counter()
        self.sink.start(s.optim.iters, start)
        student.train()
        for lq, gt in batches:
            with acc.accumulate(student):
                with acc.autocast():
                    out = student(lq)
                    terms = method.loss_terms(lq, gt, out)
                    loss = torch.stack(list(terms.values())).sum()
                acc.backward(loss)
                if acc.sync_gradients and s.optim.grad_clip:
                    acc.clip_grad_norm_(student.parameters(), s.optim.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            for name, value in terms.items():
                sums[name] += float(value.detach()) / s.optim.grad_accum
            sums["loss"] += float(loss.detach()) / s.optim.grad_accum
            if not acc.sync_gradients:
                continue
            scheduler.step()
            iteration += 1
            counted += 1
            ema.update(acc.unwrap_model(student))
            method.after_step(iteration, ema.model)

            record: dict[str, Any] = {}
            final = iteration == s.optim.iters
            if iteration % s.runtime.log_every == 0 or final:
                now = time.perf_counter()
                record = {"iter": iteration, "lr": scheduler.get_last_lr()[0]}
                record |= {k: v / counted for k, v in sums.items()}
                record["it_per_s"] = counted / max(now - tick, 1e-9)
                sums.clear()
                counted, tick = 0, now
            if (iteration % s.runtime.val_every == 0 or final) and acc.is_main_process:
                last_psnr = self._validate(ema.model, iteration)
                record = {"iter": iteration, **record, "val_psnr": last_psnr}
                if best is None or last_psnr > best:
                    best = last_psnr
                    self._save(acc, "best", ema, student, optimizer, scheduler, method, iteration, best)
            if record and acc.is_main_process:
                self.log.write(record)
            if iteration % s.runtime.save_every == 0 or final:
                acc.wait_for_everyone()  # every process reaches this point; "best" above is main-only
                self._save(acc, "last", ema, student, optimizer, scheduler, method, iteration, best)
            self.sink.step(iteration, record or None)
            if final:
                break
        return TrainResult(self.folder, iteration, best, last_psnr, time.perf_counter() - began)

    def _save(self, acc, tag, ema, student, optimizer, scheduler, method, iteration, best) -> None:  # noqa: ANN001
        if not acc.is_main_process:
            return
        state = {
            "iter": iteration,
            "best_psnr": best,
            "ema_updates": ema.updates,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": torch.get_rng_state(),
        }
        ckpt = Checkpoint(ema.model, acc.unwrap_model(student), method.state_dict(), state)
        save_checkpoint(self.folder, tag, ckpt)


def train(
    settings: RunSettings, folder: Path, *, force: bool = False, resume: bool = False, sink: ProgressSink | None = None
) -> TrainResult:
    """Run (or resume) one distillation run in ``folder``.

    Everything is built and checked before the folder is touched, so a bad teacher path or
    data root leaves no half-made run behind.
    """
    check_run_folder(folder, force=force, resume=resume)
    trainer = Trainer(settings, folder, sink)
    trainer.setup()
    prepare_run_folder(folder, force=force, resume=resume)
    if not resume:
        (folder / "settings.yaml").write_text(settings_yaml(settings))
    return trainer.run(resume=resume)
