"""Where a DCKD step's time goes, stage by stage, through the loop's own step (``Stepper``).

The paper setting of ``step.py`` (SwinIR-M teacher -> SwinIR-S student x4, 48² LQ patches,
the ImageNet-size encoder with random weights). Forward hooks on the run's networks (the
student, the teacher, the history model, the encoder; compiled or not) time each network's
passes in the step: the student's restoration, the teacher's, the history model's negatives,
the encoder's pass on the student output (the anchor, with its graph) and its frozen passes
(the positive and the negatives, no graph); "backward, optimiser, rest" is the step's time less
those. One step under torch's FLOP counter gives each stage's GFLOP (the backward's are the
step's less the forwards'), so each stage's achieved GFLOP/s, and with ``--peak-gflops`` (the
chip's dense peak in the step's precision) its share of that peak. On CUDA each hook
synchronises, so the stages add up to the step.

    python benchmarks/step_stages.py --steps 4                         # the CPU, batch 2
    python benchmarks/step_stages.py --batch 16 --precision bf16 --peak-gflops 989000 --json F
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
from step import PRECISIONS, cpu_name, random_imagenet_encoder, random_teacher, settings_for
from torch import nn

from dckd_cli.engine.build import Run, build_run
from dckd_cli.engine.step import step_clock

STAGES = ("student", "teacher", "negatives", "encoder, anchor", "encoder, targets")
REST = "backward, optimiser, rest"


class StageClock:
    """Seconds (and, under a FLOP counter, FLOPs) of every pass of the hooked networks, by stage."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)
        self.flops: dict[str, float] = defaultdict(float)
        self.counter: Callable[[], int] | None = None  # the FLOP counter's running total, when one counts
        self._open: list[tuple[float, int]] = []

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def hook(self, network: nn.Module, stage: Callable[[], str]) -> None:
        """Time ``network``'s passes as ``stage()`` (read when a pass ends)."""

        def before(module: nn.Module, args: object) -> None:
            self._sync()
            self._open.append((time.perf_counter(), self.counter() if self.counter else 0))

        def after(module: nn.Module, args: object, out: object) -> None:
            self._sync()
            began, flops = self._open.pop()
            if not self._open:  # a network called inside another's pass is counted there
                name = stage()
                self.seconds[name] += time.perf_counter() - began
                if self.counter:
                    self.flops[name] += self.counter() - flops

        network.register_forward_pre_hook(before)
        network.register_forward_hook(after)

    def take(self) -> dict[str, float]:
        seconds = dict(self.seconds)
        self.seconds.clear()
        return seconds


def hooked_step(args: argparse.Namespace, tmp: Path) -> tuple[Callable[[], float], StageClock, Run]:
    """A dckd run's step clock with its networks hooked into a ``StageClock``."""
    encoder = random_imagenet_encoder(tmp / "imagenet.safetensors")
    teacher = random_teacher("swinir", 4, tmp / "teacher.safetensors")
    run = build_run(settings_for("swinir-x4", "dckd", encoder, teacher, args))
    device = run.accelerator.device
    step = step_clock(run)  # applies the switches (compiled networks are wrapped by now)
    clock = StageClock(device)
    res = run.method.resources
    assert res.teacher is not None and res.encoder is not None and res.history is not None
    clock.hook(run.student, lambda: "student")
    clock.hook(res.teacher, lambda: "teacher")
    clock.hook(res.history.runner, lambda: "negatives")
    clock.hook(res.encoder.network, lambda: "encoder, anchor" if torch.is_grad_enabled() else "encoder, targets")
    return step, clock, run


def measure(args: argparse.Namespace) -> dict[str, object]:
    from torch.utils.flop_counter import FlopCounterMode

    with tempfile.TemporaryDirectory(prefix="dckd-step-stages-") as tmp:
        step, clock, run = hooked_step(args, Path(tmp))
        with FlopCounterMode(display=False) as counter:  # one step's FLOPs (and the warm-up)
            clock.counter = counter.get_total_flops
            step()
            total_flops = counter.get_total_flops()
        clock.counter = None
        step_flops = dict(clock.flops)
        step_flops[REST] = total_flops - sum(step_flops.values())
        clock.take()
        rounds = []
        for _ in range(args.steps):
            seconds = step()
            stages = clock.take()
            stages[REST] = seconds - sum(stages.values())
            rounds.append((seconds, stages))
    step_s = statistics.median(s for s, _ in rounds)
    rows = {}
    for name in (*STAGES, REST):
        sec = statistics.median(r.get(name, 0.0) for _, r in rounds)
        gflop = step_flops.get(name, 0.0) / 1e9
        rows[name] = {"sec_per_iter": sec, "share": sec / step_s, "gflop": gflop, "gflops": gflop / sec if sec else 0}
    device = run.accelerator.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {
        "device": name,
        "setting": {"batch": args.batch, "patch": args.patch, "precision": args.precision, "set": args.set},
        "negatives": run.settings.method.dcl.negatives.count,  # K restorations per image
        "sec_per_iter": step_s,
        "gflop": total_flops / 1e9,
        "stages": rows,
    }


def report(record: dict, peak: float | None) -> None:
    print(f"\ndevice: {record['device']}, torch {torch.__version__}, {record['setting']}")
    share = " | of peak" if peak else ""
    print(f"| stage | s / step | share of the step | GFLOP | GFLOP/s{share} |")
    print("|---|---|---|---|---|" + ("---|" if peak else ""))
    for name, r in record["stages"].items():
        of_peak = f" | {r['gflops'] / peak:.0%}" if peak else ""
        print(
            f"| {name} | {r['sec_per_iter']:.3f} | {r['share']:.0%} | {r['gflop']:.1f} | {r['gflops']:.0f}{of_peak} |"
        )
    whole = record["gflop"] / record["sec_per_iter"]
    of_peak = f" ({whole / peak:.0%} of the peak)" if peak else ""
    print(f"the step: {record['sec_per_iter']:.3f} s, {record['gflop']:.1f} GFLOP, {whole:.0f} GFLOP/s{of_peak}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--patch", type=int, default=48)
    parser.add_argument("--steps", type=int, default=3, help="timed steps after the counted one (medians)")
    parser.add_argument("--precision", default="no", choices=PRECISIONS)
    parser.add_argument("--set", action="append", default=[], help="a settings override (switches)")
    parser.add_argument("--peak-gflops", type=float, default=None, help="the chip's dense peak, for a share")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    record = measure(args)
    report(record, args.peak_gflops)
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
