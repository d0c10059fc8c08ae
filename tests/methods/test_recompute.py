"""Activation checkpointing of the anchor's encoder pass (``method.encoder.recompute``), block
by block: the same terms and gradient, only the blocks' inputs kept for the backward, and the
backward holding one block's activations at a time (a lower peak than recomputing the pass
whole). And the two memory counters these are measured with."""

from __future__ import annotations

import pytest
import torch

from dckd_cli.engine.build import build_run
from dckd_cli.engine.memory import saved_for_backward, tensor_peak
from dckd_cli.models.segments import direct
from dckd_cli.models.segments import recomputed as by_block
from dckd_cli.models.tiny_ae import TinyAEEncoder
from tests.methods.helpers import one_step
from tests.methods.test_encoder_choice import _tiny_ae_state


def _encoder_pass(network, levels, latents, segment, size: int = 32):  # noqa: ANN001, ANN202
    """The anchor's encoder pass alone on an output-sized input: the MB it keeps for the
    backward, the peak MB of its forward and backward, and the input's gradient."""
    x = torch.rand(2, 3, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x.requires_grad_(True)
    with tensor_peak() as peak:
        with saved_for_backward() as saved:
            feats, z = network(x, levels, latents=latents, segment=segment)
        loss = sum(f.square().mean() for f in feats) + (0 if z is None else z.square().mean())
        loss.backward()
    return saved.mb, peak.mb, x.grad


def _encoder_activations_mb(settings, segment=direct) -> float:  # noqa: ANN001
    run = build_run(settings)
    encoder = run.method.resources.encoder
    return _encoder_pass(encoder.network.to(torch.float64), encoder.levels, encoder.latents, segment)[0]


@pytest.mark.parametrize("method", ["dckd", "dckd-star"])
def test_recompute_keeps_the_numbers_and_drops_the_encoder_activations(dckd_settings, method):
    plain, plain_mb = one_step(dckd_settings(method))
    recomputed, recomputed_mb = one_step(dckd_settings(method, overrides=("method.encoder.recompute=true",)))
    assert recomputed.keys() == plain.keys()
    for key, value in plain.items():
        assert recomputed[key] == pytest.approx(value, rel=1e-9), key
    encoder_mb = _encoder_activations_mb(dckd_settings(method))
    blocks_mb = _encoder_activations_mb(dckd_settings(method), by_block)
    assert encoder_mb > 0.5  # here about half of what the step keeps
    assert blocks_mb < encoder_mb / 2  # the blocks' inputs, not their activations
    # the step no longer keeps the encoder's activations, only its blocks' inputs
    assert plain_mb - recomputed_mb == pytest.approx(encoder_mb - blocks_mb, rel=0.1)


def test_block_recompute_lowers_the_peak_below_a_whole_pass_recompute(dckd_settings):
    from torch.utils.checkpoint import checkpoint

    run = build_run(dckd_settings("dckd"))
    encoder = run.method.resources.encoder
    network, levels = encoder.network.to(torch.float64), encoder.levels
    kept, plain_peak, grad = _encoder_pass(network, levels, True, direct, size=64)
    blocks_kept, blocks_peak, blocks_grad = _encoder_pass(network, levels, True, by_block, size=64)

    def whole(block, h):  # noqa: ANN001, ANN202 - the pass recomputed as one piece
        return block(h)

    def whole_network(x, lv, latents, segment):  # noqa: ANN001, ANN202
        return checkpoint(network, x, lv, latents, use_reentrant=False)

    _, whole_peak, whole_grad = _encoder_pass(whole_network, levels, True, whole, size=64)
    assert torch.equal(blocks_grad, grad) and torch.equal(whole_grad, grad)
    assert blocks_kept < kept / 2
    # the whole-pass recompute rebuilds every activation in the backward, so it peaks near the
    # plain pass; block by block the backward holds one block's
    assert whole_peak > 0.8 * plain_peak
    assert blocks_peak < 0.75 * plain_peak and blocks_peak < 0.8 * whole_peak


def test_tiny_ae_blocks_recompute_with_the_same_gradient():
    network = TinyAEEncoder(_tiny_ae_state(pooled=True)).to(torch.float64)
    kept, _, grad = _encoder_pass(network, (0, 1, 2), True, direct)
    blocks_kept, _, blocks_grad = _encoder_pass(network, (0, 1, 2), True, by_block)
    assert torch.equal(blocks_grad, grad)
    assert blocks_kept < kept / 2
    with torch.no_grad(), saved_for_backward() as nothing:  # without a graph: run directly
        network(torch.rand(1, 3, 16, 16, dtype=torch.float64), (0,), segment=by_block)
    assert nothing.mb == 0


def test_tensor_peak_counts_what_lives_at_once():
    x = torch.randn(256, 1024, requires_grad=True)  # 1 MB, made before: not counted
    with tensor_peak() as peak:
        y = x.exp()  # 1 MB, kept by exp's backward
        z = (y * 2).sum()  # y * 2: 1 MB, freed once summed
        z.backward()  # the gradient of y (1 MB), then x's (1 MB) while y still lives
    assert peak.mb == pytest.approx(3.0, abs=0.01)
    assert peak.live / 2**20 == pytest.approx(2.0, abs=0.01)  # y and x.grad
    del y
    assert peak.live / 2**20 == pytest.approx(1.0, abs=0.01)
    with torch.inference_mode(), tensor_peak() as chain:
        a = torch.zeros(256, 1024)
        for _ in range(4):
            a = a + 1  # the new sum and the old one, never more
        a += 1  # in place: nothing new
        _ = a.view(-1)[:10]  # a view: nothing new
    assert chain.mb == pytest.approx(2.0, abs=0.01)


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


def test_the_dry_run_says_what_a_gpu_would_allocate(dckd_settings):
    from dckd_cli.engine.memory import resident_mb
    from dckd_cli.pipelines.distill import dry_run

    plain = dry_run(dckd_settings("dckd"))
    small = dry_run(dckd_settings("dckd", overrides=("method.encoder.recompute=true", "method.encoder.chunk=1")))
    run = build_run(dckd_settings("dckd"))
    res = run.method.resources
    weights = resident_mb([run.student, run.ema.model, run.teacher, *res.networks()])
    assert weights > 0.1 and plain.need_mb > weights + 0.5  # and the step's tensors: activations, Adam's state
    assert weights < small.need_mb < plain.need_mb
    compiled = dckd_settings("dckd", overrides=("runtime.compile=[student]", "runtime.compile_backend=eager"))
    assert dry_run(compiled).need_mb is None  # the count would change what compile sees
