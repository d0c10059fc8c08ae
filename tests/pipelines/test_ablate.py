from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from dckd_cli.cli.app import app
from dckd_cli.engine.run_folder import RunFolder
from dckd_cli.engine.trainer import train
from dckd_cli.pipelines.ablate import AblationSpec, plan_ablation, run_ablation
from dckd_cli.pipelines.ablation_grid import GridError, expand, parse_axis, parse_grid_option
from dckd_cli.pipelines.ablation_summary import summarise

runner = CliRunner()


@pytest.fixture
def tiny_overrides(tiny_run_overrides: list[str]) -> list[str]:
    # a resumed cell is compared bitwise on the CPU
    return [
        *tiny_run_overrides,
        "data.patch_size=12",
        "data.batch_size=2",
        "runtime.save_every=2",
        "runtime.device=cpu",
    ]


def _plan(root: Path, overrides: list[str], axes, seeds=(0, 1), warm_iters=2):
    spec = AblationSpec("demo", overrides, "dckd", 4, warm_iters, "logits")
    return plan_ablation(root, spec, expand(axes, "logits"), list(seeds))


def test_grid_expands_shortcuts_and_any_key():
    axes = [parse_axis("components", "none,dcr+dmm"), parse_grid_option("optim.lr=1e-3,[2e-3]")]
    cells = expand(axes, "logits")
    assert [c.label for c in cells] == [
        "components=none,optim.lr=0.001",
        "components=none,optim.lr=[0.002]",
        "components=dcr+dmm,optim.lr=0.001",
        "components=dcr+dmm,optim.lr=[0.002]",
        "baseline-logits",
    ]
    assert cells[0].changes == {"method.weights.dcl": 0.0, "method.weights.ce": 0.0, "optim.lr": 0.001}
    assert parse_axis("init-step", "500").changes(500) == {"method.dcl.history.steps": [500, 1000, 1500]}
    with pytest.raises(GridError, match="choose from none, dcr, dmm, dcr\\+dmm"):
        parse_axis("components", "dcr,everything")


def test_two_by_two_grid_runs_skips_resumes_and_summarises(tmp_path: Path, tiny_overrides):
    axes = [parse_axis("lambda-dcl", "0.1,1"), parse_axis("negatives", "2,3")]
    said: list[str] = []
    plan = _plan(tmp_path / "abl", tiny_overrides, axes)
    assert len(plan.runs) == 10  # (4 cells + baseline) x 2 seeds
    killed = plan.runs[3]
    run_ablation(plan, make_sink=lambda label: None, say=said.append)
    assert sum("running" in s for s in said) == 10

    summary = summarise(plan.root)
    labels = {c.label for c in summary.cells}
    assert labels == {c.cell.label for c in plan.runs}
    for cell in summary.cells:
        assert cell.seeds == [0, 1]
        stats = cell.scores["builtin"]["psnr"]
        assert 15 < stats.mean < 45 and stats.std >= 0
        delta = cell.delta["builtin"]["psnr"]
        base = next(c for c in summary.cells if c.baseline).scores["builtin"]["psnr"]
        expected = {s: stats.per_seed[s] - base.per_seed[s] for s in (0, 1)}
        assert delta.per_seed == pytest.approx(expected)
    assert sum(c.best for c in summary.cells) == 1 and not next(c for c in summary.cells if c.baseline).best

    # Re-run: every cell is skipped. Then one cell loses its scores and is killed mid-run: it resumes
    # from its checkpoint and ends bitwise where the uninterrupted run ended.
    said.clear()
    run_ablation(_plan(tmp_path / "abl", tiny_overrides, axes), make_sink=lambda label: None, say=said.append)
    assert sum("skipped" in s for s in said) == 10
    folder = RunFolder(killed.folder)
    finished = load_file(str(folder.weights("last", "student")))
    folder.scores.unlink()
    partial = killed.settings.model_copy(deep=True)
    partial.optim.iters = 2  # the same run stopped at its first checkpoint (its history schedule is per-step)
    train(partial, killed.folder, force=True)
    said.clear()
    run_ablation(_plan(tmp_path / "abl", tiny_overrides, axes), make_sink=lambda label: None, say=said.append)
    assert [s for s in said if "resuming" in s] == [f"[4/10] {killed.cell.label}, seed {killed.seed}: resuming"]
    resumed = load_file(str(folder.weights("last", "student")))
    assert all(torch.equal(finished[k], resumed[k]) for k in finished)

    # A grown grid runs only its new cells.
    said.clear()
    grown = [parse_axis("lambda-dcl", "0.1,1,0.01"), parse_axis("negatives", "2,3")]
    run_ablation(_plan(tmp_path / "abl", tiny_overrides, grown), make_sink=lambda label: None, say=said.append)
    assert sum("running" in s for s in said) == 4 and sum("skipped" in s for s in said) == 10


def test_cli_report_writes_table_csv_json_and_plots(tmp_path: Path, tiny_overrides):
    sets = [arg for o in tiny_overrides for arg in ("--set", o)]
    args = ["ablate", "--preset", "demo", "--iters", "2", "--seeds", "0", "--components", "dcr,dcr+dmm", *sets]
    result = runner.invoke(app, [*args, "--output", str(tmp_path / "abl"), "-q"])
    assert result.exit_code == 0, result.output
    assert "s/step (measured)" in result.output and "logits" in result.output and "baseline-logits" in result.output
    summary = json.loads((tmp_path / "abl" / "summary.json").read_text())
    assert {c["label"] for c in summary["cells"]} == {"components=dcr", "components=dcr+dmm", "baseline-logits"}
    rows = list(csv.DictReader((tmp_path / "abl" / "summary.csv").open()))
    assert len(rows) == 3 and all(r["psnr_mean"] for r in rows)
    plot = tmp_path / "abl" / "plots" / "components.png"
    assert plot.stat().st_size > 5000 and plot.read_bytes()[:4] == b"\x89PNG"
    plot.unlink()
    again = runner.invoke(app, ["ablate", "--output", str(tmp_path / "abl"), "--report"])
    assert again.exit_code == 0 and plot.is_file() and "components=dcr+dmm" in again.output


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--degradation", "noise,smear"], "degradation"),
        (["--components", "dcr,all"], "choose from none, dcr, dmm"),
        (["--grid", "optim.nope=1,2"], "optim.nope"),
        (["--grid", "method.weights.dcl=-1,1"], "method.weights.dcl"),
        (["--negatives", "2", "--seeds", "a"], "--seeds"),
        (["--negatives", "2", "--set", "teacher.checkpoint=/nope.safetensors"], "not found"),
    ],
)
def test_bad_axis_fails_before_any_cell(tmp_path: Path, tiny_overrides, extra, message):
    sets = [arg for o in tiny_overrides for arg in ("--set", o)]
    out = tmp_path / "abl"
    result = runner.invoke(app, ["ablate", "--preset", "demo", *sets, *extra, "--output", str(out)])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_an_ablation_over_a_student_outside_the_table(tmp_path: Path, tiny_overrides):
    """The grid's cells carry the student's family and options; a warm start and every cell use them."""
    overrides = [*tiny_overrides, "student.arch=Compact", "student.options={num_feat: 8, num_conv: 2}"]
    plan = _plan(tmp_path / "abl", overrides, [parse_axis("lambda-dcl", "0.1")], seeds=(0,), warm_iters=2)
    assert all(
        r.settings.student.arch == "Compact" and r.settings.student.options == {"num_feat": 8, "num_conv": 2}
        for r in plan.runs
    )
    run_ablation(plan, make_sink=lambda label: None, say=lambda text: None)
    assert all((r.folder / "scores.json").is_file() for r in plan.runs)


def test_cells_of_another_precision_run_in_one_process(tmp_path: Path, tiny_overrides, monkeypatch):
    """Accelerate keeps one precision a process: an ablation over runtime.mixed_precision trains
    each cell in its own (the second cell was refused before the state was started afresh)."""
    from dckd_cli.engine import switches

    monkeypatch.setattr(switches, "cpu_has_bf16", lambda: True)  # the precision, on any CPU
    axes = [parse_grid_option("runtime.mixed_precision=no,bf16")]
    plan = _plan(tmp_path / "abl", tiny_overrides, axes, seeds=(0,), warm_iters=0)
    run_ablation(plan, make_sink=lambda label: None, say=lambda text: None)
    precisions = {}
    for run in plan.runs:
        recorded = RunFolder(run.folder).read_settings()
        scores = json.loads(RunFolder(run.folder).scores.read_text())
        precisions[recorded.runtime.mixed_precision] = scores
    assert set(precisions) == {"no", "bf16"}
    assert all(s["seconds_per_iter"] > 0 for s in precisions.values())
