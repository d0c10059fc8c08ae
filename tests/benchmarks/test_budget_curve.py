"""The budget curve's bookkeeping (benchmarks/budget_curve.py): the paired differences its
table reports, and parking an unfinished cell so that another machine resumes it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
budget_curve = pytest.importorskip("budget_curve")


@pytest.fixture
def kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The kept files under ``tmp_path`` (the working folder there, as the script runs from the root)."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "docs" / "results" / "budget"
    root.mkdir(parents=True)
    for name, value in (("KEPT", root), ("CURVE", root / "curve.json"), ("CHECKS", root / "machine-checks.json")):
        monkeypatch.setattr(budget_curve, name, value)
    monkeypatch.setattr(budget_curve, "PARKED", root / "in-progress")
    monkeypatch.setattr(budget_curve, "PLOT", Path("docs") / "results" / "budget-curve.png")
    return root


def _entry(cell: str, iters: int, seed: int, set5: float, set14: float, seconds: float = 2.0) -> dict[str, object]:
    scores = {"Set5": set5, "Set14": set14}
    return {"cell": cell, "iters": iters, "seed": seed, "scores": scores, "seconds_per_step": seconds, "machine": "m"}


def test_the_table_pairs_cells_by_seed(kept: Path):
    entries = [
        _entry("logits", 1000, 0, 30.0, 27.0),
        _entry("logits", 1000, 1, 30.5, 27.2),
        _entry("dckd-taesana", 1000, 0, 29.8, 27.1, seconds=5.0),
        _entry("dckd-taesana", 1000, 1, 30.1, 27.1, seconds=7.0),
        _entry("logits", 2000, 0, 31.0, 28.0),  # no dckd cell at 2000 yet: no row for it
    ]
    (kept / "curve.json").write_text(json.dumps(entries))
    report = kept.parents[1] / "results.md"
    report.write_text("# results\n\nthe reading\n")
    budget_curve.write_report(report)
    text = report.read_text()
    # seed 0: -0.2 / +0.1, seed 1: -0.4 / -0.1 -> mean -0.3 ± 0.141, 0.0 ± 0.141
    assert "| 1000 | dckd-taesana − logits | -0.300 ± 0.141 | +0.000 ± 0.141 | 2 |" in text
    assert "| 2000 | dckd-taesana − logits" not in text
    assert "| 1000 |  | 2.00 | 6.00 |  |" in text  # s / step: median of the cell's seeds
    assert text.startswith("# results\n\nthe reading\n") and text.count(budget_curve.BEGIN) == 1
    budget_curve.write_report(report)  # again: the block is replaced, not appended
    assert report.read_text() == text
    assert budget_curve.PLOT.stat().st_size > 10_000


def _cell(root: Path, cell: str, seed: int, *, checkpoint: bool, finished: bool = False) -> Path:
    folder = root / "lite-2000" / cell / f"seed-{seed}"
    folder.mkdir(parents=True)
    (folder / "settings.yaml").write_text(f"cell: {cell}\n")
    (folder / "metrics.jsonl").write_text('{"iter": 900}\n')
    if checkpoint:
        (folder / "checkpoints" / "last").mkdir(parents=True)
        (folder / "checkpoints" / "last" / "state.pt").write_bytes(b"state at 900")
    if finished:
        (folder / "scores.json").write_text("{}")
    return folder


def test_park_copies_unfinished_cells_and_unpark_puts_them_back(kept: Path):
    output = Path("runs") / "budget-curve"
    unfinished = _cell(output, "dckd-random", 1, checkpoint=True)
    _cell(output, "logits", 1, checkpoint=True, finished=True)  # kept in the curve already
    _cell(output, "dckd-taesana", 1, checkpoint=False)  # nothing to resume from
    assert budget_curve.park([output]) == [str(unfinished)]
    parked = kept / "in-progress" / "runs-budget-curve-lite-2000-dckd-random-seed-1"
    assert sorted(p.name for p in parked.iterdir()) == ["checkpoints", "metrics.jsonl", "settings.yaml"]
    assert (parked / "checkpoints" / "last" / "state.pt").read_bytes() == b"state at 900"

    (unfinished / "checkpoints" / "last" / "state.pt").write_bytes(b"state at 1000")
    assert not budget_curve.unpark(unfinished)  # the folder has a checkpoint of its own: left alone
    assert (unfinished / "checkpoints" / "last" / "state.pt").read_bytes() == b"state at 1000"

    for path in sorted(unfinished.rglob("*"), reverse=True):  # a new machine: the folder is gone
        path.unlink() if path.is_file() else path.rmdir()
    unfinished.rmdir()
    assert budget_curve.unpark(unfinished)
    assert (unfinished / "checkpoints" / "last" / "state.pt").read_bytes() == b"state at 900"
    assert (unfinished / "settings.yaml").read_text() == "cell: dckd-random\n"


def test_a_cell_outside_the_working_folder_parks_under_its_whole_path(kept: Path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "lite-250" / "dckd-taesana" / "seed-1"
    assert not outside.is_relative_to(Path.cwd())
    assert budget_curve._parked(outside) == kept / "in-progress" / "-".join(outside.parts[1:])
    inside = (Path.cwd() / "runs" / "lite-250" / "logits" / "seed-0").resolve()
    assert budget_curve._parked(inside).name == "runs-lite-250-logits-seed-0"
    assert not budget_curve.unpark(outside)  # nothing parked for it: left alone, no error


def test_rerun_other_machines_runs_only_their_cells_and_keeps_their_scores_as_checks(kept: Path, monkeypatch):
    import argparse

    from dckd_cli.engine.ablation_folder import AblationFolder

    here = budget_curve.machine()
    other = {**_entry("scratch", 250, 0, 28.60, 26.20), "machine": "an earlier machine"}
    local = {**_entry("logits", 250, 0, 28.70, 26.30), "machine": here}
    (kept / "curve.json").write_text(json.dumps([other, local]))
    ran, imported = [], []

    def fake_cell(args, root, iters, cell, seed):  # noqa: ANN001, ANN202 - a finished cell, without training
        ran.append((cell, iters, seed))
        scores = AblationFolder(root).cell(cell, seed).scores
        scores.parent.mkdir(parents=True)
        results = {"Set5": {"psnr": 28.65}, "Set14": {"psnr": 26.18}}
        scores.write_text(json.dumps({"results": results, "seconds_per_iter": 0.5, "machine": here}))

    monkeypatch.setattr(budget_curve, "_run_cell", fake_cell)
    monkeypatch.setattr(budget_curve, "import_folder", lambda root: imported.append(root) or [])
    args = argparse.Namespace(output=Path("runs") / "curve", seeds=[0], cells=["scratch", "logits"])
    args.rerun_other_machines = False
    budget_curve.run_budgets(args, [250])
    assert ran == []  # both kept: nothing runs
    args.rerun_other_machines = True
    budget_curve.run_budgets(args, [250])
    assert ran == [("scratch", 250, 0)]  # the other machine's cell only
    [check] = json.loads((kept / "machine-checks.json").read_text())
    assert (check["kept_machine"], check["machine"]) == ("an earlier machine", here)
    assert check["difference_db"]["Set5"] == pytest.approx(0.05) and check["difference_db"]["Set14"] == pytest.approx(
        -0.02
    )
    assert imported == [Path("runs") / "curve" / "lite-250"]


def _check(cell: str, iters: int, seed: int, machine: str, set5: float, kept: dict[str, float]) -> dict[str, object]:
    scores = {"Set5": set5, "Set14": kept["Set14"]}
    return {
        "cell": cell,
        "iters": iters,
        "seed": seed,
        "kept_machine": "m",
        "machine": machine,
        "kept_scores": kept,
        "scores": scores,
        "difference_db": {d: scores[d] - kept[d] for d in scores},
        "seconds_per_step": 3.0,
    }


def test_cells_run_again_give_paired_differences_per_machine():
    entries = [_entry("logits", 250, s, 30.0 + s, 27.0) for s in (0, 1, 2)]
    entries += [_entry("dckd-taesana", 250, s, 29.9 + s, 27.0) for s in (0, 1, 2)]  # -0.1 on every seed
    kept = {s: {"Set5": 29.9 + s, "Set14": 27.0} for s in (0, 1, 2)}
    checks = [_check("dckd-taesana", 250, s, "other", 29.9 + s + d, kept[s]) for s, d in ((0, -0.2), (1, -0.4))]
    checks.append(_check("logits", 250, 0, "other", 30.0, {"Set5": 30.0, "Set14": 27.0}))
    checks.append(_check("dckd-taesana", 250, 2, "third", 31.0, kept[2]))  # one seed: no paired row
    lines = budget_curve.machine_rows({budget_curve._key(e): e["scores"] for e in entries}, checks)
    assert "| dckd-taesana | 250 | 1 | other | 30.500 | 27.000 | -0.4000 | +0.0000 |" in lines
    # seeds 0, 1 on "other": -0.3, -0.5 -> -0.400 ± 0.141; seed 1's logits is the kept one (*)
    assert "| 250 | dckd-taesana − logits * | other | -0.400 ± 0.141 | +0.000 ± 0.000 | -0.100 ± 0.000 | " in "\n".join(
        lines
    )
    assert not [line for line in lines if "| third |" in line and "±" in line]
    assert budget_curve.machine_rows({}, []) == []
