from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dckd_cli.engine.build import build_run
from dckd_cli.engine.trainer import Trainer, train
from dckd_cli.methods.context import StepContext
from dckd_cli.methods.history_model import HistoryModel
from dckd_cli.methods.negatives import negative_inputs
from dckd_cli.settings.method import HistorySettings, NegativeSettings
from tests.methods.helpers import assert_resumes_bitwise


def _build(settings):
    return build_run(settings)


def test_gradients_reach_only_the_student(dckd_settings):
    t = _build(dckd_settings("dckd-star"))
    method, student = t.method, t.student
    lq, gt = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 32, 32)
    terms = method.loss_terms(lq, gt, student(lq))
    assert set(terms) == {"rec", "kd", "dcl", "ce", "lcr"}
    sum(terms.values()).backward()
    assert all(p.grad is not None for p in student.parameters())
    for frozen in (method.resources.teacher, *method.resources.networks()):
        assert all(p.grad is None and not p.requires_grad for p in frozen.parameters())


def test_each_term_carries_gradient_to_the_student(dckd_settings):
    t = _build(dckd_settings())
    lq, gt = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 32, 32)
    for name in ("dcl", "ce"):
        t.student.zero_grad()
        t.method.loss_terms(lq, gt, t.student(lq))[name].backward()
        assert sum(p.grad.abs().sum() for p in t.student.parameters() if p.grad is not None) > 0, name


def test_one_batched_history_forward_per_step(dckd_settings, monkeypatch):
    t = _build(dckd_settings(overrides=("method.dcl.negatives.count=5",)))
    calls = []
    original = t.method.resources.history.model.forward
    monkeypatch.setattr(t.method.resources.history.model, "forward", lambda x: calls.append(x.shape) or original(x))
    lq = torch.rand(2, 3, 16, 16)
    t.method.loss_terms(lq, torch.rand(2, 3, 32, 32), t.student(lq))
    assert calls == [torch.Size([10, 3, 16, 16])]  # 5 negatives x batch 2, one call


def test_negatives_clean_first_then_noisy_within_range():
    cfg = NegativeSettings(count=5, noise_sigma=(1.0, 30.0))
    lq = torch.full((3, 3, 8, 8), 0.5)
    g = torch.Generator().manual_seed(0)
    negs = negative_inputs(lq, cfg, g)
    assert negs.shape == (5, 3, 3, 8, 8) and torch.equal(negs[0], lq)
    spread = (negs[1:] - 0.5).flatten(2).std(dim=2)
    assert (spread > 0.5 / 255).all() and (spread < 45 / 255).all() and negs.min() >= 0 and negs.max() <= 1
    again = negative_inputs(lq, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(negs, again)
    for kind in ("blur", "resize", "mix"):
        out = negative_inputs(torch.rand(2, 3, 16, 16), NegativeSettings(count=3, degradation=kind), g)
        assert out.shape == (3, 2, 3, 16, 16)


def test_history_changes_only_at_update_steps_by_the_ema_formula():
    source = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        source.weight.fill_(0.0)
    history = HistoryModel(source, HistorySettings(alpha=0.1, steps=[3, 5], breakpoints=[0.5]), total_iters=20)
    with torch.no_grad():
        source.weight.fill_(1.0)
    values = []
    for t in range(1, 21):
        history.maybe_update(t, source)
        values.append(history.model.weight.item())
    # s = 3 up to t = 10, then 5: updates at 3, 6, 9, 15, 20
    changed = [t for t in range(2, 21) if values[t - 1] != values[t - 2]]
    assert changed == [3, 6, 9, 15, 20] and values[0] == 0.0
    assert values[-1] == pytest.approx(1 - 0.1**5, rel=1e-6)


def test_history_follows_the_ema_student_in_training(tmp_path: Path, dckd_settings):
    settings = dckd_settings(iters=4, overrides=("method.dcl.history.steps=[2]", "method.dcl.history.breakpoints=[]"))
    t = Trainer.of(settings, tmp_path / "run")
    (tmp_path / "run").mkdir()
    snapshots = {}
    method = t.built.method
    hook = method.after_step

    def spy(iteration, ema):
        before = {k: v.clone() for k, v in method.resources.history.model.state_dict().items()}
        hook(iteration, ema)
        after = method.resources.history.model.state_dict()
        expected = {k: 0.1 * before[k] + 0.9 * ema.state_dict()[k] for k in before}
        snapshots[iteration] = (
            any(not torch.equal(before[k], after[k]) for k in before),
            all(torch.allclose(after[k], expected[k], atol=1e-7) for k in before if before[k].is_floating_point()),
        )

    method.after_step = spy
    t.run()
    assert [snapshots[i][0] for i in (1, 2, 3, 4)] == [False, True, False, True]
    assert snapshots[2][1] and snapshots[4][1]


def test_switches_and_weights_turn_terms_off(dckd_settings):
    lq, gt = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 32, 32)
    for overrides, expected in [
        (("method.weights.dcl=0",), {"rec", "kd", "ce"}),
        (("method.weights.ce=0",), {"rec", "kd", "dcl"}),
        (("dckd.dcr=false",), {"rec", "kd", "ce"}),  # the keys of earlier versions still work
        (("dckd.dmm=false",), {"rec", "kd", "dcl"}),
        (("method.weights.dcl=0", "method.weights.ce=0"), {"rec", "kd"}),
    ]:
        t = _build(dckd_settings(overrides=overrides))
        assert set(t.method.loss_terms(lq, gt, t.student(lq))) == expected
    t = _build(dckd_settings("csd"))
    assert set(t.method.loss_terms(lq, gt, t.student(lq))) == {"rec", "kd", "dcl"}
    assert t.method.resources.history is None and t.method.resources.encoder.latents is False
    ctx = StepContext(t.method.resources, t.method.settings, lq, gt, t.student(lq))
    ctx.teacher_out = positive = torch.rand(2, 3, 32, 32)
    assert torch.equal(ctx.negatives, positive.roll(1, dims=0)[None])  # fixed in-batch


def test_short_run_lowers_dcl_and_ce(tmp_path: Path, dckd_settings):
    settings = dckd_settings(iters=30, overrides=("runtime.log_every=10", "data.batch_size=4"))
    train(settings, tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in records if "dcl" in r and r["iter"] > 1]  # windows of 10 steps after the first step
    assert len(logged) == 3
    assert logged[-1]["dcl"] < logged[0]["dcl"] and logged[-1]["ce"] < logged[0]["ce"]


def test_resume_restores_history_and_negatives(tmp_path: Path, dckd_settings):
    overrides = ("method.dcl.history.steps=[2]", "method.dcl.history.breakpoints=[]", "runtime.save_every=3")
    assert_resumes_bitwise(lambda n: dckd_settings(iters=n, overrides=overrides), 6, 3, tmp_path)


def test_dckd_distils_into_a_family_outside_the_table(tmp_path: Path, dckd_settings):
    settings = dckd_settings("dckd", iters=2, overrides=("student.arch=SPAN", "student.options={feature_channels: 8}"))
    assert train(settings, tmp_path / "run").iterations == 2
