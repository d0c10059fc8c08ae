"""The optimiser step: what the training loop runs and what every timing measures.

``Stepper`` prepares the student and optimiser with Accelerate and takes micro-steps under
autocast and gradient accumulation; ``end_iteration`` closes an optimiser step (scheduler,
EMA, the method's ``after_step``). ``time_steps`` runs the same two on synthetic (or given)
batches: the dry run, ablate's estimate, the benchmarks and the golden test's set-up use it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shlex
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from dckd_cli.engine.build import Run
from dckd_cli.engine.switches import SwitchError, channels_last, compiled, fresh_compiles, laid_out
from dckd_cli.errors import DckdError
from dckd_cli.metrics.inference import is_out_of_memory

log = logging.getLogger(__name__)


class NonFiniteLoss(DckdError):
    """A loss term became NaN or infinite; the step was not taken."""


class StepOutOfMemory(DckdError):
    """The training step did not fit in the device's memory; the step was not taken."""


@dataclass
class Window:
    """Loss sums between two log lines, kept on the device (read once, when a line is logged)."""

    names: list[str] = field(default_factory=list)  # the terms, then "loss"
    totals: torch.Tensor | None = None  # float64, one entry per name
    steps: int = 0
    skipped: int = 0  # steps whose loss was not finite (optim.non_finite=skip)
    data_seconds: float = 0.0  # time the loop waited for its batches
    tick: float = field(default_factory=time.perf_counter)

    def add(self, names: list[str], values: torch.Tensor) -> None:
        if self.totals is None or names != self.names:
            self.names, self.totals = names, torch.zeros_like(values)
        self.totals += values

    def take_means(self) -> dict[str, float]:
        """The mean of each sum over the window's steps (one host sync), and a fresh window."""
        if self.totals is None:
            return {}
        means = dict(zip(self.names, (self.totals / max(self.steps, 1)).tolist()))
        self.totals = None
        return means


def timed_batches(batches: Iterable, window: Window) -> Iterator:
    """``batches``, adding the time each one took to arrive to ``window.data_seconds``."""
    source = iter(batches)
    while True:
        began = time.perf_counter()
        try:
            batch = next(source)
        except StopIteration:
            return
        window.data_seconds += time.perf_counter() - began
        yield batch


class Stepper:
    """The prepared student and optimiser of ``run`` (and its batches, when given), stepped."""

    def __init__(self, run: Run, batches: DataLoader | None = None):
        self.run = run
        acc, s = run.accelerator, run.settings
        self.channels_last_input = channels_last(run.student, s, acc.device)
        fresh_compiles(run.student, s)
        self._switch_networks()
        student = compiled(run.student, "student", s, acc.device)  # shares run.student's weights (saved and averaged)
        if batches is None:
            self.student, self.optimizer = acc.prepare(student, run.optimizer)
            self.batches: Iterable = ()
        else:
            self.student, self.optimizer, self.batches = acc.prepare(student, run.optimizer, batches)
        run.ema.model.to(acc.device)
        run.method.to(acc.device)
        self.window = Window()
        self.checkpoint_at: int | None = None  # the iteration of the run's last checkpoint (messages)
        self.folder: Path | None = None  # the run folder, when a trainer runs it (messages)

    def _switch_networks(self) -> None:
        """channels-last memory and torch.compile on the networks ``runtime`` names (before the first step)."""
        run, s = self.run, self.run.settings
        res = run.method.resources
        device = run.accelerator.device
        for network in (run.student, run.ema.model, res.teacher, *res.networks()):
            if network is not None:
                laid_out(network, s, device)
        if res.teacher is not None:
            res.teacher = compiled(res.teacher, "teacher", s, device)
        if res.encoder is not None:
            res.encoder.network = compiled(res.encoder.network, "encoder", s, device)
        if res.history is not None:
            res.history.runner = compiled(res.history.runner, "history", s, device)

    def forward(self, lq: torch.Tensor, gt: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The student's restoration and the method's weighted terms, under the step's autocast."""
        if self.channels_last_input:
            lq = lq.contiguous(memory_format=torch.channels_last)
        with self.run.accelerator.autocast():
            out = self.student(lq)
            terms = self.run.method.loss_terms(lq, gt, out)
            return terms, torch.stack(list(terms.values())).sum()

    def micro_step(self, lq: torch.Tensor, gt: torch.Tensor, iteration: int) -> None:
        """One forward / backward / optimiser step (one micro-batch under gradient accumulation);
        ``iteration``: the optimiser steps done before it."""
        try:
            self._micro_step(lq, gt, iteration)
        except (MemoryError, RuntimeError) as err:
            if not is_out_of_memory(err):
                raise
            raise StepOutOfMemory(self._out_of_memory_message(iteration)) from None

    def _micro_step(self, lq: torch.Tensor, gt: torch.Tensor, iteration: int) -> None:
        s, acc, student, window = self.run.settings, self.run.accelerator, self.student, self.window
        with acc.accumulate(student):
            if s.runtime.compile:
                terms, loss = self._compiled_forward(lq, gt)
            else:
                terms, loss = self.forward(lq, gt)
            names = [*terms, "loss"]
            stacked = torch.stack([v.detach() for v in terms.values()] + [loss.detach()]).double()
            bad = None
            if not bool(torch.isfinite(stacked).all()):  # the step's one host sync
                values = dict(zip(names, stacked.tolist()))
                bad = next(name for name, v in values.items() if not math.isfinite(v))
            if bad is not None and s.optim.non_finite == "skip":
                log.warning("loss term '%s' is %s at iteration %d: step skipped", bad, values[bad], iteration + 1)
                self.optimizer.zero_grad(set_to_none=True)
                window.skipped += 1
                return
            if bad is not None:
                raise NonFiniteLoss(self._non_finite_message(lq, bad, values[bad], iteration))
            acc.backward(loss)
            if acc.sync_gradients and s.optim.grad_clip:
                acc.clip_grad_norm_(student.parameters(), s.optim.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        window.add(names, stacked / s.optim.grad_accum)

    def _out_of_memory_message(self, iteration: int) -> str:
        """What did not fit and the settings that make a step smaller, those not in use yet:
        the memory switches a resume accepts, then those only a new run can take."""
        s, res = self.run.settings, self.run.method.resources
        device = self.run.accelerator.device
        switches = []  # settings/resumable.py: a resume may change these
        if res.encoder is not None and not res.encoder.recompute:
            switches.append("method.encoder.recompute=true")
        if res.encoder is not None and res.encoder.levels and res.encoder.chunk is None:
            switches.append(f"method.encoder.chunk={max(1, s.data.batch_size)}")
        fresh = []  # they change the run's numbers: a new run
        if device.type == "cuda" and s.runtime.mixed_precision == "no":
            fresh.append("runtime.mixed_precision=bf16")
        if s.data.batch_size > 1:  # half the micro-batch, twice the accumulation: about the same batch per step
            half, accum = s.data.batch_size // 2, s.optim.grad_accum * 2
            fresh.append(f"data.batch_size={half} with optim.grad_accum={accum}")
        fresh = fresh or ["a smaller data.patch_size"]
        head = (
            f"the training step ran out of {device.type} memory at data.batch_size={s.data.batch_size}, "
            f"data.patch_size={s.data.patch_size} after {iteration} iterations; the run stopped"
        )
        flags = " ".join(f"--set {switch}" for switch in switches)
        if self.checkpoint_at is None:
            return f"{head} (no checkpoint was written yet): run the same command again with " + ", or ".join(
                ([flags] if flags else []) + fresh
            )
        kept = f"the last checkpoint, at iteration {self.checkpoint_at}, is intact"
        if not flags:
            return f"{head} ({kept}): start a new run with " + ", or ".join(fresh)
        resume = "--resume"
        if self.folder is not None:  # the command to copy
            resume = f"dckd distill --output {shlex.quote(str(self.folder))} --resume"
        return f"{head}: {resume} {flags} continues it ({kept}); a new run can also use " + ", or ".join(fresh)

    def _non_finite_message(self, lq: torch.Tensor, bad: str, value: float, iteration: int) -> str:
        """Why a loss term is not finite, as far as one more look at the batch tells (the
        input, the teacher's output, the student's output), and what to do next."""
        s, res = self.run.settings, self.run.method.resources
        precision = ", use mixed_precision=no" if s.runtime.mixed_precision != "no" else ""
        with torch.inference_mode(), self.run.accelerator.autocast():
            if not bool(torch.isfinite(lq).all()):
                cause, fix = "the training input is not finite", "check the training images"
            elif res.teacher is not None and not bool(torch.isfinite(res.teacher(lq)).all()):
                checkpoint = s.teacher.checkpoint or f"the {s.teacher.arch} {s.teacher.size} weights"
                cause = "the teacher's output is not finite"
                fix = f"check the teacher ({checkpoint}) with dckd evaluate{precision}"
            elif not bool(torch.isfinite(self.run.student(lq)).all()):
                cause, fix = "the student's output is not finite", f"lower optim.lr (now {s.optim.lr:g})"
                fix += f", set optim.grad_clip or optim.non_finite=skip{precision}"
            else:
                cause, fix = "its inputs are finite", f"lower optim.lr (now {s.optim.lr:g}) or the term's weight"
                fix += f", set optim.grad_clip or optim.non_finite=skip{precision}"
        head = f"loss term '{bad}' became {value} after {iteration} iterations ({cause}); the run stopped: {fix}"
        if self.checkpoint_at is None:
            return f"{head}, then run the same command again (no checkpoint was written yet)"
        return f"{head}, then --resume (the last checkpoint, at iteration {self.checkpoint_at}, is intact)"

    def _compiled_forward(self, lq: torch.Tensor, gt: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        import torch._dynamo

        try:
            return self.forward(lq, gt)
        except torch._dynamo.exc.TorchDynamoException as err:
            r = self.run.settings.runtime
            lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
            first = lines[0]
            if first.endswith("raised:") and len(lines) > 1:  # "backend='inductor' raised:" + the cause
                first = f"{first} {lines[1]}"
            first = first[:200]
            fix = "drop that network from runtime.compile "
            fix += "(or try runtime.compile_backend=eager to check it is the compiler)"
            if "ImportError" in first or "file too short" in first:  # a compiled kernel that cannot be loaded
                from torch._inductor.runtime.cache_dir_utils import cache_dir

                fix = f"its kernel cache may be damaged: delete {cache_dir()} and run again, or {fix}"
            raise SwitchError(
                f"runtime.compile={r.compile}: torch.compile ({r.compile_backend}) failed: {first}; {fix}"
            ) from None

    def end_iteration(self, iteration: int) -> None:
        """After optimiser step ``iteration``: the schedule, the EMA and the method's slow state."""
        run = self.run
        run.scheduler.step()
        self.window.steps += 1
        run.ema.update(run.student)  # the raw module (compiled or wrapped for DDP, it holds the same weights)
        run.method.after_step(iteration, run.ema.model)


def synthetic_batches(run: Run) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Seeded random (lq, gt) batches of the run's first batch and patch size, endlessly."""
    s = run.settings
    g = torch.Generator().manual_seed(0)
    lq = torch.rand(s.data.batch_size, 3, s.data.patch_size, s.data.patch_size, generator=g)
    gt = torch.rand(lq.shape[0], 3, lq.shape[2] * s.scale, lq.shape[3] * s.scale, generator=g)
    lq, gt = lq.to(run.accelerator.device), gt.to(run.accelerator.device)
    while True:
        yield lq, gt


def synced_seconds(device: torch.device, work: Callable[[], object]) -> float:
    """Seconds ``work()`` takes on ``device`` (CUDA synchronised before and after)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    began = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - began


def step_clock(run: Run, batches: Iterable | None = None) -> Callable[[], float]:
    """A function that takes one optimiser step of ``run`` (all its micro-batches; the loop's
    own step) and returns its seconds on the run's device; a benchmark can interleave it with
    other work. Changes the run's weights and state."""
    stepper = Stepper(run)
    device = run.accelerator.device
    source = iter(batches) if batches is not None else synthetic_batches(run)
    stepper.student.train()
    done = 0

    def step() -> None:
        nonlocal done
        while True:
            lq, gt = next(source)
            stepper.micro_step(lq.to(device), gt.to(device), done)
            if run.accelerator.sync_gradients:
                break
        done += 1
        stepper.end_iteration(done)

    return lambda: synced_seconds(device, step)


def time_steps(
    run: Run,
    steps: int = 2,
    batches: Iterable | None = None,
    warm_up: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> float:
    """Median seconds of an optimiser step of ``run`` after one warm-up step (``step_clock``),
    which runs inside ``warm_up()`` (a measurement that would distort the timed steps)."""
    step = step_clock(run, batches)
    with warm_up():
        step()
    return statistics.median(step() for _ in range(steps))
