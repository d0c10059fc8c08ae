"""Activation checkpointing of the anchor's encoder pass (``method.encoder.recompute``): the
same terms and gradient, and the encoder's activations no longer kept for the backward."""

from __future__ import annotations

import pytest
import torch

from dckd_cli.engine.build import build_run
from dckd_cli.engine.memory import saved_for_backward
from dckd_cli.engine.step import Stepper


def _step(settings) -> tuple[dict[str, float], float]:  # noqa: ANN001
    """One step's terms and gradient in float64, and the MB its graph kept for the backward."""
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


def _encoder_activations_mb(settings) -> float:  # noqa: ANN001
    """What the anchor's encoder pass alone keeps for the backward, on an output-sized input."""
    run = build_run(settings)
    encoder = run.method.resources.encoder
    encoder.network.to(torch.float64)
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    with saved_for_backward() as saved:
        encoder.network(x, encoder.levels, latents=encoder.latents)
    return saved.mb


@pytest.mark.parametrize("method", ["dckd", "dckd-star"])
def test_recompute_keeps_the_numbers_and_drops_the_encoder_activations(dckd_settings, method):
    plain, plain_mb = _step(dckd_settings(method))
    recomputed, recomputed_mb = _step(dckd_settings(method, overrides=("method.encoder.recompute=true",)))
    assert recomputed.keys() == plain.keys()
    for key, value in plain.items():
        assert recomputed[key] == pytest.approx(value, rel=1e-9), key
    encoder_mb = _encoder_activations_mb(dckd_settings(method))
    assert encoder_mb > 0.5  # here about half of what the step keeps
    # the step no longer keeps the encoder's activations (its input, the student output, stays)
    assert plain_mb - recomputed_mb == pytest.approx(encoder_mb, rel=0.1)


def test_saved_for_backward_counts_activations_not_weights():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    with saved_for_backward() as saved:
        conv(x).relu()
    # the conv keeps its input (48 KB), the relu its output (128 KB); the weight is not counted
    assert saved.mb * 2**20 == pytest.approx(3 * 64 * 64 * 4 + 8 * 64 * 64 * 4)
    with torch.no_grad(), saved_for_backward() as nothing:
        conv(x)
    assert nothing.mb == 0
