"""Behaviour pinned across refactors: every method's term values and student gradient.

Tiny seeded models and a fixed batch, in float64 (so the values depend on the CPU and the
torch version only at rounding level: the signed gradient checksum moved by 1e-8 between two
x86 machines, within 1e-6 of the absolute one); two consecutive steps (so generators and history
updates advance). ``golden_terms.json`` was recorded once, on the code before methods became
terms; regenerate it only for an intended change of behaviour, with
``DCKD_WRITE_GOLDEN=1 pytest tests/methods/test_golden.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from dckd_cli.catalog.methods import METHODS
from dckd_cli.engine.build import build_run

GOLDEN = Path(__file__).with_name("golden_terms.json")
RTOL = 1e-6
# Settings variants beyond the defaults (keys as they were when the values were recorded).
VARIANTS = {
    "dckd/no-dmm": ("dckd", ("dckd.dmm=false",)),
    "dckd/no-dcr": ("dckd", ("dckd.dcr=false",)),
    "dckd-star/always-transform": ("dckd-star", ("dckd.upper_bound.prob=1",)),
}


def _record(settings) -> dict[str, list[float]]:
    run = build_run(settings)
    student, method = run.student, run.method
    for network in (student, run.teacher, *method.resources.networks()):
        if network is not None:
            network.double()
    g = torch.Generator().manual_seed(11)
    weights = [torch.randn(p.shape, generator=g) for p in student.parameters()]
    out: dict[str, list[float]] = {}
    for step in (1, 2):
        lq = torch.rand(2, 3, 16, 16, generator=g, dtype=torch.float64)
        gt = torch.rand(2, 3, 32, 32, generator=g, dtype=torch.float64)
        student.zero_grad()
        terms = method.loss_terms(lq, gt, student(lq))
        sum(terms.values()).backward()
        for name, value in terms.items():
            out[f"{step}.{name}"] = [float(value.detach())]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in student.parameters()]
        out[f"{step}.grad"] = [
            float(sum(gr.double().abs().sum() for gr in grads)),
            float(sum((gr.double() * w.double()).sum() for gr, w in zip(grads, weights))),
        ]
        with torch.no_grad():  # a step moves the student, so step 2 sees different weights
            for p in student.parameters():
                p -= 1e-2 * p.grad
        method.after_step(step, student)
    return out


def test_every_method_matches_the_recorded_terms_and_gradient(dckd_settings):
    overrides = ("dckd.history.steps=[1]", "dckd.history.breakpoints=[]")
    recorded = {m: _record(dckd_settings(m, overrides=overrides)) for m in METHODS}
    for name, (method, extra) in VARIANTS.items():
        recorded[name] = _record(dckd_settings(method, overrides=overrides + extra))
    if os.environ.get("DCKD_WRITE_GOLDEN"):
        GOLDEN.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert sorted(recorded) == sorted(expected)
    for method, values in expected.items():
        assert sorted(recorded[method]) == sorted(values), method
        for key, numbers in values.items():
            # a signed checksum can cancel to near zero: its error scales with the absolute sum
            scale = abs(numbers[0]) * RTOL if key.endswith(".grad") else 0.0
            assert recorded[method][key] == pytest.approx(numbers, rel=RTOL, abs=scale), f"{method} {key}"
