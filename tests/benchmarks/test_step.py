"""The step benchmark's rows in one process (benchmarks/step.py --row): each row's switches on
top of the command's, a record per row, and a failing row named while the next one runs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
step = pytest.importorskip("step")


def test_a_rows_switches_go_on_top_of_the_commands():
    args = argparse.Namespace(precision="no", set=["data.workers=0"], memory_batch=4, row=[])
    args.row = ["plain|", "half|--precision bf16 --set runtime.channels_last=true --set 'runtime.compile=[student]'"]
    (plain_name, plain), (half_name, half) = step.row_arguments(args)
    assert (plain_name, plain.precision, plain.set) == ("plain", "no", ["data.workers=0"])
    assert (half_name, half.precision) == ("half", "bf16")
    assert half.set == ["data.workers=0", "runtime.channels_last=true", "runtime.compile=[student]"]
    assert plain.memory_batch is None and args.set == ["data.workers=0"]  # the command's own untouched


def test_rows_run_in_one_process_and_a_failed_row_does_not_stop_the_next(tmp_path: Path, monkeypatch, capsys):
    argv = ["step.py", "--quick", "--methods", "logits", "--batch", "1", "--patch", "16", "--steps", "1"]
    argv += ["--row", "bad|--set runtime.compile=[student] --set runtime.compile_backend=nope", "--row", "good|"]
    monkeypatch.setattr(sys, "argv", [*argv, "--json-dir", str(tmp_path)])
    step.main()
    assert "FAILED: row bad: SwitchError: runtime.compile_backend=nope" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-good.json"]
    record = json.loads((tmp_path / "step-good.json").read_text())
    row = record["methods"]["swinir-x4/logits"]
    assert row["sec_per_iter"] > 0 and row["gflop"] > 0 and record["setting"]["batch"] == 1
