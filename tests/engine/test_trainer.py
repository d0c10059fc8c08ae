from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dckd_cli.engine.build import build_run
from dckd_cli.engine.checkpoint import RunFolderError, load_checkpoint
from dckd_cli.engine.trainer import Trainer, train
from dckd_cli.methods.method import Method


def _log(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_loss_falls_on_a_tiny_run(tmp_path: Path, tiny_settings):
    train(tiny_settings("scratch", iters=40, **{"runtime.log_every": 10}), tmp_path / "run")
    rec = [r["rec"] for r in _log(tmp_path / "run") if "rec" in r]
    assert len(rec) == 5  # the first step, then every 10th
    assert rec[-1] < 0.7 * rec[1]


@pytest.mark.parametrize(
    "method,terms", [("scratch", {"rec"}), ("logits", {"rec", "kd"}), ("fakd", {"rec", "kd", "fakd"})]
)
def test_each_method_logs_its_terms(tmp_path: Path, tiny_settings, method, terms):
    train(tiny_settings(method, iters=6), tmp_path / method)
    records = _log(tmp_path / method)
    assert [r["iter"] for r in records] == [1, 2, 4, 6]  # the first step is always logged
    losses = records[0]
    assert terms <= losses.keys() and {"lr", "it_per_s", "loss"} <= losses.keys()
    assert losses["loss"] == pytest.approx(sum(losses[t] for t in terms), rel=1e-5)
    assert "val_psnr" in records[-1]
    assert not ({"rec", "kd", "fakd"} - terms) & losses.keys()


def test_teacher_gets_no_gradient_and_stays_unchanged(tmp_path: Path, tiny_settings, teacher_file: Path, monkeypatch):
    seen = []
    original = Method.loss_terms

    def spy(self, lq, gt, student_out):
        terms = original(self, lq, gt, student_out)
        teacher = self.resources.teacher
        if teacher is not None:
            seen.append(all(p.grad is None and not p.requires_grad for p in teacher.parameters()))
            seen.append(not teacher.training)
        return terms

    monkeypatch.setattr(Method, "loss_terms", spy)
    before = load_file(str(teacher_file))
    trainer = Trainer.of(tiny_settings("logits", iters=5), tmp_path / "run")
    (tmp_path / "run").mkdir()
    trainer.run()
    assert seen and all(seen)
    student = load_file(str(tmp_path / "run" / "checkpoints" / "last" / "student.safetensors"))
    assert any(not torch.equal(student[k], before[k]) for k in before)  # the student did learn
    assert all(torch.equal(v, load_file(str(teacher_file))[k]) for k, v in before.items())


def test_resume_equals_an_uninterrupted_run(tmp_path: Path, tiny_settings):
    """Killed after iteration 6 (last checkpoint), resumed to 12: bitwise equal weights."""
    whole = tmp_path / "whole"
    train(tiny_settings("logits", iters=12), whole)

    part = tmp_path / "part"
    train(tiny_settings("logits", iters=6), part)
    # What a kill leaves behind: log lines past the checkpoint are dropped on resume.
    with (part / "metrics.jsonl").open("a") as handle:
        handle.write(json.dumps({"iter": 7, "rec": 1.0}) + "\n")
    settings = tiny_settings("logits", iters=12)
    settings.output = part
    Trainer.of(settings, part).run(resume=True)

    a, b = load_checkpoint(whole), load_checkpoint(part)
    assert a.state["iter"] == b.state["iter"] == 12
    for name in ("student", "model"):
        wa, wb = getattr(a, name), getattr(b, name)
        assert all(torch.equal(wa[k], wb[k]) for k in wa), name
    assert [r["iter"] for r in _log(part)] == [r["iter"] for r in _log(whole)]
    assert _log(part)[-1]["rec"] == pytest.approx(_log(whole)[-1]["rec"], abs=0)


def test_existing_folder_refused_without_force(tmp_path: Path, tiny_settings):
    folder = tmp_path / "run"
    train(tiny_settings(iters=3), folder)
    stamp = (folder / "settings.yaml").read_text()
    with pytest.raises(RunFolderError, match="--force"):
        train(tiny_settings(iters=3), folder)
    assert (folder / "settings.yaml").read_text() == stamp
    train(tiny_settings(iters=3), folder, force=True)
    with pytest.raises(RunFolderError, match="nothing to resume"):
        train(tiny_settings(iters=3), tmp_path / "empty", resume=True)


def test_run_folder_layout(tmp_path: Path, tiny_settings):
    folder = tmp_path / "run"
    train(tiny_settings(iters=6), folder)
    for tag in ("last", "best"):
        files = sorted(p.name for p in (folder / "checkpoints" / tag).iterdir())
        assert files == ["method.safetensors", "model.safetensors", "state.pt", "student.safetensors"]
    hidden = {p.name for p in (folder / "checkpoints").iterdir() if p.name.startswith(".")}
    assert hidden <= {".prev-last", ".prev-best"}  # the fallback copies; never a temporary folder
    assert len(list((folder / "val_images" / "iter_000006" / "builtin-train").iterdir())) == 3
    state = torch.load(folder / "checkpoints" / "last" / "state.pt", weights_only=True)
    assert state["iter"] == 6


def test_bad_fakd_layer_and_teacher_without_weights_fail_before_any_file(tmp_path: Path, tiny_settings):
    from dckd_cli.methods.feature_taps import TapError
    from dckd_cli.models.checkpoints import CheckpointError

    with pytest.raises(TapError, match=r"student has no layer 'body\.99'; top-level layers: .*head"):
        train(tiny_settings("fakd", **{"method.fakd.student_layers": ["body.99"]}), tmp_path / "a")
    settings = tiny_settings("logits")
    settings.teacher.checkpoint = None
    with pytest.raises(CheckpointError, match="has no official weights"):
        train(settings, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_teacher_cache_gives_the_same_run_and_is_reused(tmp_path: Path, tiny_settings):
    cache = tmp_path / "cache"
    plain = train(tiny_settings("logits", iters=6), tmp_path / "plain")
    cached = train(tiny_settings("logits", iters=6, **{"runtime.teacher_cache": str(cache)}), tmp_path / "a")
    files = sorted(cache.rglob("*.safetensors"))
    assert len(files) >= 6  # one per training batch at least
    again = train(tiny_settings("dckd", iters=6, **{"runtime.teacher_cache": str(cache)}), tmp_path / "b")
    assert sorted(cache.rglob("*.safetensors")) == files  # same data order: every teacher call was a hit
    for run in (cached, again):
        assert run.iterations == 6
    weights = [load_file(str(f / "checkpoints/last/student.safetensors")) for f in (tmp_path / "plain", tmp_path / "a")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert plain.iterations == 6
    fakd = tiny_settings("fakd", iters=2, **{"runtime.teacher_cache": str(tmp_path / "unused")})
    train(fakd, tmp_path / "fakd")
    assert not (tmp_path / "unused").exists()  # fakd reads teacher features: never cached


def test_timing_runs_the_loops_own_step_with_accumulation(tiny_settings, monkeypatch):
    """time_steps goes through Stepper (prepare, autocast, accumulation, end of iteration)."""
    from dckd_cli.engine import step as step_module

    run = build_run(tiny_settings("logits", iters=5, **{"optim.grad_accum": 2}))
    calls = []
    micro = step_module.Stepper.micro_step
    monkeypatch.setattr(
        step_module.Stepper, "micro_step", lambda self, lq, gt, i: calls.append(i) or micro(self, lq, gt, i)
    )
    before = [p.detach().clone() for p in run.student.parameters()]
    seconds = step_module.time_steps(run, steps=2)
    assert seconds > 0
    assert calls == [0, 0, 1, 1, 2, 2]  # one warm-up and two timed iterations of two micro-batches each
    assert run.ema.updates == 3 and run.method.iteration == 3  # end_iteration ran after each
    assert any(not torch.equal(a, b) for a, b in zip(before, run.student.parameters()))


def test_log_lines_carry_the_data_wait_and_a_starving_loader_is_named(
    tmp_path: Path, tiny_settings, monkeypatch, caplog
):
    import time

    from dckd_cli.data.pairs import TrainingPatches

    cut = TrainingPatches.__getitem__
    monkeypatch.setattr(TrainingPatches, "__getitem__", lambda self, i: time.sleep(0.02) or cut(self, i))
    with caplog.at_level("WARNING"):
        train(tiny_settings("scratch", iters=6), tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    waited = [(r["iter"], r["data_s"]) for r in records if "data_s" in r]
    assert [i for i, _ in waited] == [1, 2, 4, 6]  # on every log line
    steps = {1: 1, 2: 1, 4: 2, 6: 2}  # iterations each line averages over
    total = sum(wait * steps[i] for i, wait in waited)
    assert total > 6 * 4 * 0.02 * 0.9  # six batches of four 20 ms samples, all waited for
    assert caplog.text.count("waited") == 1 and "raise data.workers (now 0)" in caplog.text


def test_loader_workers_default_to_none_on_the_cpu_and_to_the_cores_on_a_gpu(tiny_settings, monkeypatch):
    import torch

    from dckd_cli.engine.batches import loader_workers

    settings = tiny_settings("scratch")
    assert settings.data.workers is None
    assert loader_workers(settings, torch.device("cpu")) == 0
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert loader_workers(settings, torch.device("cuda")) == 3  # 16 cores / 4 processes, one left for the step
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert loader_workers(settings, torch.device("cuda")) == 8
    settings.data.workers = 2
    assert loader_workers(settings, torch.device("cuda")) == 2
