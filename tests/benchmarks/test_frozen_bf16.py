"""The frozen-bf16 comparison (benchmarks/frozen_bf16.py) pairs its cells: per seed, float32,
bfloat16 frozen networks with and without the encoder, every other setting equal, all before
the next seed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
frozen_bf16 = pytest.importorskip("frozen_bf16")


def test_each_seed_is_a_set_that_differs_only_in_the_precision(tmp_path: Path):
    cells = frozen_bf16.cells(tmp_path / "shared", tmp_path / "runs", [0, 2])
    labels = ["float32", "frozen-bf16", "frozen-bf16-encoder-float32"]
    assert [(c.label, c.seeds) for c in cells] == [(label, (s,)) for s in (0, 2) for label in labels]
    switches = {"runtime.frozen_bf16", "method.encoder.autocast"}
    for group in (cells[:3], cells[3:]):
        full, *low = group
        assert full.baseline and not any(c.baseline for c in low)
        assert (full.changes["runtime.frozen_bf16"], full.changes["method.encoder.autocast"]) == (False, False)
        assert [(c.changes["runtime.frozen_bf16"], c.changes["method.encoder.autocast"]) for c in low] == [
            (True, True),
            (True, False),
        ]
        for cell in low:
            assert {k: v for k, v in cell.changes.items() if k not in switches} == {
                k: v for k, v in full.changes.items() if k not in switches
            }
        assert full.changes["method.name"] == "dckd" and full.changes["method.weights.ce"] == 0.0
