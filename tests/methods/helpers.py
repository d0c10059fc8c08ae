"""What several method tests measure: one step's numbers in float64, and a run stopped
half-way and resumed against an uninterrupted one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from dckd_cli.engine.build import build_run
from dckd_cli.engine.checkpoint import load_checkpoint
from dckd_cli.engine.memory import saved_for_backward
from dckd_cli.engine.step import Stepper
from dckd_cli.engine.trainer import Trainer, train
from dckd_cli.settings.schema import RunSettings


def one_step(settings: RunSettings) -> tuple[dict[str, float], float]:
    """One step's terms and the gradient checksum in float64 (the golden test's precision),
    and the MB its graph kept for the backward."""
    run = build_run(settings)
    for network in (run.student, run.teacher, *run.method.resources.networks()):
        if network is not None:
            network.to(torch.float64)
    stepper = Stepper(run)
    g = torch.Generator().manual_seed(5)
    lq, gt = (torch.rand(2, 3, s, s, generator=g, dtype=torch.float64) for s in (16, 32))
    with saved_for_backward() as saved:
        terms, loss = stepper.forward(lq, gt)
    loss.backward()
    out = {name: float(value.detach()) for name, value in terms.items()}
    out["grad"] = float(sum(p.grad.abs().sum() for p in run.student.parameters() if p.grad is not None))
    return out, saved.mb


def assert_resumes_bitwise(make: Callable[[int], RunSettings], iters: int, stop: int, folder: Path) -> None:
    """A run of ``iters`` iterations, and one stopped at ``stop`` and resumed: the same
    student and method state, bit for bit (``make(n)``: the settings of an n-iteration run)."""
    train(make(iters), folder / "whole")
    train(make(stop), folder / "part")
    Trainer.of(make(iters), folder / "part").run(resume=True)
    a, b = load_checkpoint(folder / "whole"), load_checkpoint(folder / "part")
    for part in ("student", "method"):
        wa, wb = getattr(a, part), getattr(b, part)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), part
