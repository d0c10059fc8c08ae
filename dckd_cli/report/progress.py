"""Training progress: a Rich bar on a terminal, plain log lines otherwise, nothing with --quiet."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dckd_cli.data.prepared import PrepareProgress
from dckd_cli.settings.method import LossWeights

TERM_ORDER = ("loss", *LossWeights.model_fields)  # the terms in the order they are computed


def describe(record: dict[str, Any]) -> str:
    """``rec 0.0312  kd 0.0101  lr 1.0e-04  5.2 it/s  val 28.71 dB`` from a log record."""
    parts = [f"{k} {record[k]:.4f}" for k in TERM_ORDER if k in record]
    parts += [
        f"{k} {v:.4f}"
        for k, v in record.items()
        if k not in TERM_ORDER and k not in ("iter", "lr", "it_per_s", "data_s", "val_psnr", "saved")
    ]
    if "lr" in record:
        parts.append(f"lr {record['lr']:.1e}")
    if "it_per_s" in record:
        rate = record["it_per_s"]
        parts.append(f"{rate:.1f} it/s" if rate >= 1 else f"{1 / max(rate, 1e-9):.1f} s/it")
    if "data_s" in record:
        parts.append(f"data {record['data_s'] * 1000:.0f} ms/it")
    if "val_psnr" in record:
        parts.append(f"val {record['val_psnr']:.2f} dB")
    if "saved" in record:
        parts.append(f"saved {record['saved']}")
    return "  ".join(parts)


class RichSink:
    """A progress bar with iteration, loss terms, it/s, ETA and the last validation PSNR."""

    def __init__(self, console: Console, label: str):
        self.label = label
        self.progress = Progress(
            TextColumn(f"[bold]{label}[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            transient=False,
        )
        self.task = None
        self.val = ""

    def start(self, total: int, done: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task(self.label, total=total, completed=done, info="")

    def step(self, iteration: int, record: dict[str, Any] | None) -> None:
        assert self.task is not None
        if record:
            if "val_psnr" in record:
                self.val = f"  val {record['val_psnr']:.2f} dB"
            info = describe({k: v for k, v in record.items() if k != "val_psnr"}) + self.val
            self.progress.update(self.task, completed=iteration, info=info)
        else:
            self.progress.update(self.task, completed=iteration)
        if iteration >= (self.progress.tasks[0].total or 0):
            self.progress.stop()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class LineSink:
    """One plain line per logged iteration (for logs and pipes): elapsed time and ETA included."""

    def __init__(self, console: Console, label: str):
        self.console, self.label = console, label
        self.total = self.done = 0
        self.began = time.monotonic()

    def start(self, total: int, done: int) -> None:
        self.total, self.done, self.began = total, done, time.monotonic()
        self.console.print(f"{self.label}: iterations {done} -> {total}", highlight=False)

    def step(self, iteration: int, record: dict[str, Any] | None) -> None:
        if record:
            elapsed = time.monotonic() - self.began
            steps = max(iteration - self.done, 1)
            eta = elapsed / steps * (self.total - iteration)
            timing = f"elapsed {_clock(elapsed)}  eta {_clock(eta)}"
            self.console.print(
                f"{self.label} {iteration}/{self.total}  {describe(record)}  {timing}", highlight=False, soft_wrap=True
            )


def make_sink(console: Console, label: str, quiet: bool) -> RichSink | LineSink | None:
    """A progress sink for ``label``; None (the engine stays silent) with ``quiet``."""
    if quiet:
        return None
    return RichSink(console, label) if console.is_terminal else LineSink(console, label)


def image_progress(console: Console, quiet: bool) -> Progress:
    """A transient bar over images (count, elapsed time); silent with ``quiet`` or off a terminal."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet or not console.is_terminal,
        transient=True,
    )


def show_preparation(console: Console, quiet: bool) -> None:
    """Training-set preparations show a Rich bar (or plain lines off a terminal); silent with ``quiet``."""
    from dckd_cli.data.prepared import use_progress

    if not quiet:
        use_progress(lambda: PrepareBar(console))


class PrepareBar(PrepareProgress):
    """A training set's preparation as a Rich bar with its ETA on a terminal; plain lines otherwise."""

    def __init__(self, console: Console):
        self.console = console
        self.bar: Progress | None = None

    def start(self, label: str, total: int) -> None:
        super().start(label, total)
        if self.console.is_terminal:
            self.bar = Progress(
                TextColumn(f"preparing [bold]{label}[/] (once per machine)"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(label, total=total)

    def advance(self) -> None:
        if self.bar is None:
            super().advance()
        else:
            self.bar.advance(self.task)

    def end(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            seconds = time.perf_counter() - self.began
            self.console.print(f"prepared {self.label}: {self.total} images in {seconds:.0f} s", highlight=False)
