"""The targets' encoder pass in chunks (``method.encoder.chunk``): the same terms and gradient as
one batched pass, the negatives' differences no longer kept for the backward, a resume that
is bitwise, and the reduced push equal to Eq. 5's on its own."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dckd_cli.engine.build import build_run
from dckd_cli.losses.contrastive import PushSums, contrastive_loss
from tests.methods.helpers import assert_resumes_bitwise, one_step


@pytest.mark.parametrize(
    ("method", "extra"),
    [("dckd", ()), ("dckd-star", ()), ("csd", ()), ("dckd", ("method.weights.ce=0",))],
)
def test_chunks_keep_the_terms_and_drop_the_negatives_differences(dckd_settings, method, extra):
    # Without the clean negative: at the first step the history model is the student, so that
    # negative's features equal the anchor's and |a - n|'s gradient is the sign of rounding
    # alone, which a pass at another batch size rounds differently (both are right)
    extra = (*extra, "method.dcl.negatives.include_clean=false")
    plain, plain_mb = one_step(dckd_settings(method, overrides=extra))
    assert plain["dcl"] > 0
    # 2 samples: a chunk of 3 splits the positive from the negatives and a negative across chunks
    for chunk in (1, 3, 64):
        chunked, chunked_mb = one_step(dckd_settings(method, overrides=(*extra, f"method.encoder.chunk={chunk}")))
        assert chunked.keys() == plain.keys()
        for key, value in plain.items():
            assert chunked[key] == pytest.approx(value, rel=1e-9), (chunk, key)
        # what is gone: one |a - n_j| input per negative and tapped level (K per level)
        assert chunked_mb < plain_mb
    run = build_run(dckd_settings(method, overrides=extra))
    k = run.settings.method.dcl.negatives.count if method != "csd" else 1  # csd at batch 2: the other image
    encoder = run.method.resources.encoder
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        feats, _ = encoder.network.to(torch.float64)(x, encoder.levels)
    per_negative_mb = sum(f.numel() * 8 for f in feats) / 2**20
    assert plain_mb - chunked_mb == pytest.approx(k * per_negative_mb, rel=0.05)


def test_reduced_push_matches_eq5_and_its_gradient():
    g = torch.Generator().manual_seed(1)
    a = [torch.randn(3, 4, 6, 6, generator=g, dtype=torch.float64, requires_grad=True)]
    p = [torch.randn(3, 4, 6, 6, generator=g, dtype=torch.float64)]
    n = torch.randn(5, 3, 4, 6, 6, generator=g, dtype=torch.float64)
    n[2, 1] = a[0][1].detach()  # a negative equal to the anchor: sign 0, as autograd's |x| at 0
    whole = contrastive_loss(a, p, [n], [0.7])
    (grad_whole,) = torch.autograd.grad(whole, a)
    sums = PushSums(a[0])
    flat = n.flatten(0, 1)
    for start in range(0, flat.shape[0], 4):  # chunks of 4 of the 15 negatives
        sums.add(flat[start : start + 4], start)
    reduced = contrastive_loss(a, p, [sums], [0.7])
    (grad_reduced,) = torch.autograd.grad(reduced, a)
    assert reduced.item() == pytest.approx(whole.item(), rel=1e-12)
    assert torch.allclose(grad_reduced, grad_whole, rtol=1e-12, atol=1e-15)
    assert float(sums.signs.abs().max()) <= 5


def test_a_chunked_run_resumes_bitwise(tmp_path: Path, dckd_settings):
    overrides = ("method.encoder.chunk=4", "runtime.save_every=2")
    assert_resumes_bitwise(lambda n: dckd_settings(iters=n, overrides=overrides), 4, 2, tmp_path)


def test_chunk_must_be_positive(dckd_settings):
    from dckd_cli.settings.presets import SettingsError

    with pytest.raises(SettingsError, match="chunk"):
        dckd_settings(overrides=("method.encoder.chunk=0",))
