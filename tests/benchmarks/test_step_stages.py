"""The stage breakdown of a DCKD step (benchmarks/step_stages.py): every network's passes found
by its hooks, each stage's FLOPs the network's own, and the stages adding up to the step."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
stages = pytest.importorskip("step_stages")


def test_each_stage_has_its_networks_flops_and_the_stages_add_up_to_the_step():
    args = argparse.Namespace(batch=1, patch=16, steps=1, precision="no", set=[])
    record = stages.measure(args)
    rows = record["stages"]
    assert list(rows) == [*stages.STAGES, stages.REST]

    from dckd_cli.models.zoo import build_model

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        build_model("swinir", "teacher", 4)(torch.rand(1, 3, 16, 16))  # the FLOPs do not depend on the weights
    assert rows["teacher"]["gflop"] * 1e9 == pytest.approx(counter.get_total_flops(), rel=1e-9)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        build_model("swinir", "student", 4)(torch.rand(1, 3, 16, 16))
    student = counter.get_total_flops()
    assert rows["student"]["gflop"] * 1e9 == pytest.approx(student, rel=1e-9)
    negatives = record["negatives"]  # K restorations by the history model, a copy of the student
    assert rows["negatives"]["gflop"] * 1e9 == pytest.approx(negatives * student, rel=1e-9)

    # the frozen encoder passes (positive and K negatives) hold most of the forward FLOPs
    assert rows["encoder, targets"]["gflop"] > rows["encoder, anchor"]["gflop"] > 0
    assert sum(r["gflop"] for r in rows.values()) == pytest.approx(record["gflop"], rel=1e-9)
    assert sum(r["sec_per_iter"] for r in rows.values()) == pytest.approx(record["sec_per_iter"], rel=1e-6)
    assert all(r["sec_per_iter"] > 0 for r in rows.values())
