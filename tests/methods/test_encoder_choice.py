"""DCKD's encoder choice and the released-code forms: tiny-autoencoder encoders (detected by
their keys), the DMM refusal without a codebook, dcl.start, the released DMM loss and the
released per-sample label consistency."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from dckd_cli.engine.build import build_run
from dckd_cli.losses.distribution import code_logits, distribution_loss
from dckd_cli.methods.build import MethodError
from dckd_cli.methods.consistency_targets import ConsistencyTargets
from dckd_cli.models.tiny_ae import TinyAEEncoder, is_tiny_ae
from dckd_cli.models.vqgan import resolve_encoder
from dckd_cli.settings.method import LcrSettings


def _tiny_ae_state(f32: bool = False, pooled: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random encoder of the family's layout (8x: conv, block, [s2 conv, 2 blocks] x 2, conv)."""
    g = torch.Generator().manual_seed(seed)
    c, state, i = 8, {}, 0

    def conv(cin: int, cout: int, bias: bool) -> None:
        nonlocal i
        state[f"{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * 0.2
        if bias:
            state[f"{i}.bias"] = torch.zeros(cout)
        i += 1

    def block(pool: bool = False) -> None:
        nonlocal i
        for k in (0, 2, 4):
            state[f"{i}.conv.{k}.weight"] = torch.randn(c, c, 3, 3, generator=g) * 0.1
            state[f"{i}.conv.{k}.bias"] = torch.zeros(c)
        if pool:
            state[f"{i}.pool.0.weight"] = torch.randn(4 * c, c, 1, 1, generator=g) * 0.1
            state[f"{i}.pool.1.weight"], state[f"{i}.pool.1.bias"] = torch.ones(4 * c), torch.zeros(4 * c)
            state[f"{i}.pool.3.weight"] = torch.randn(c, 4 * c, 1, 1, generator=g) * 0.1
        i += 1

    if f32:
        state["0.weight"], state["0.bias"] = torch.randn(32, 3, 3, 3, generator=g) * 0.2, torch.zeros(32)
        i = 2  # index 1: a ReLU
        conv(32, c, True)
        i += 1  # index 3: a ReLU
    else:
        conv(3, c, True)
    block()
    for level in range(2):
        conv(c, c, False)
        block(pooled and level == 1)
        block(pooled and level == 1)
    conv(c, 4, True)
    return state


@pytest.mark.parametrize("f32", [False, True])
def test_tiny_ae_layout_is_read_from_the_keys(f32: bool, tmp_path: Path):
    state = _tiny_ae_state(f32=f32, pooled=not f32)
    assert is_tiny_ae(state)
    path = tmp_path / "tae.safetensors"
    save_file(state, str(path))
    encoder = resolve_encoder(str(path))
    assert isinstance(encoder, TinyAEEncoder) and encoder.levels == 3 and encoder.codebook is None
    x = torch.rand(2, 3, 32, 32)
    taps, z = encoder(x, (0, 1, 2), latents=True)
    first = 8 if f32 else 32
    assert [t.shape[-1] for t in taps] == [first, first // 2, first // 4] and z.shape == (2, 4, first // 4, first // 4)
    shallow, none = encoder(x, (0,))
    assert none is None and torch.equal(shallow[0], taps[0])  # the pass stops at the deepest tap
    assert not any(p.requires_grad for p in encoder.parameters())


def test_real_tiny_ae_encoders(shared_weights: Path):
    from dckd_cli.data import builtin
    from dckd_cli.data.images import uint8_to_tensor_array

    img = torch.from_numpy(uint8_to_tensor_array(builtin.eval_images()[0][1]))[None]
    sides = {"taef2": [256, 128, 64, 32], "taesana": [64, 32, 16, 8]}
    for name, expected in sides.items():
        encoder = resolve_encoder(str(shared_weights / f"{name}_encoder.pth"))
        taps, z = encoder(img, (0, 1, 2, 3), latents=True)
        assert [t.shape[-1] for t in taps] == expected and z.shape[1] == 32
        assert 0.5 < float(z.std()) < 2.0 and float(z.abs().max()) < 8  # latents "roughly in [-3, 3]"
        # pretrained features respond to noise less at deeper levels (a random net does not)
        noisy = (img + 0.1 * torch.randn_like(img)).clamp(0, 1)
        change = [float((a - b).norm() / a.norm()) for a, b in zip(taps, encoder(noisy, (0, 1, 2, 3))[0])]
        assert change[3] < change[0], change


def test_dmm_refused_without_a_codebook_and_dcr_runs(dckd_settings, tmp_path: Path):
    path = tmp_path / "tae.safetensors"
    save_file(_tiny_ae_state(), str(path))
    extra = (
        f"method.encoder.checkpoint={path}",
        "method.encoder.layers=[0,1,2]",
        "method.encoder.layer_weights=[1,1,1]",
    )
    with pytest.raises(MethodError, match="has no codebook.*method.weights.ce=0"):
        build_run(dckd_settings("dckd", overrides=extra))
    trainer = build_run(dckd_settings("dckd", overrides=(*extra, "method.weights.ce=0")))
    lq, gt = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 32, 32)
    out = trainer.student(lq)
    terms = trainer.method.loss_terms(lq, gt, out)
    assert set(terms) == {"rec", "kd", "dcl"} and float(terms["dcl"]) > 0
    terms["dcl"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.student.parameters())


def test_dcl_waits_for_its_start(dckd_settings, tmp_path: Path):
    trainer = build_run(dckd_settings("dckd", overrides=("method.dcl.start=3",)))
    lq, gt = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 32, 32)
    out = trainer.student(lq)
    assert float(trainer.method.loss_terms(lq, gt, out)["dcl"]) == 0.0
    trainer.method.after_step(3, trainer.ema.model)
    assert float(trainer.method.loss_terms(lq, gt, out)["dcl"]) > 0


def test_released_dmm_form_is_a_second_softmax_with_a_damped_gradient():
    torch.manual_seed(0)
    book = torch.randn(16, 4)
    zs = torch.randn(2, 4, 5, 5, requires_grad=True)
    zt = torch.randn(2, 4, 5, 5)
    released = distribution_loss(zs, zt, book, form="released")
    target = F.softmax(code_logits(zt, book), dim=1)
    probs = F.softmax(code_logits(zs, book), dim=1)
    assert torch.allclose(released, F.cross_entropy(probs, target))  # the authors' call, as written
    (g_released,) = torch.autograd.grad(released, zs)
    (g_paper,) = torch.autograd.grad(distribution_loss(zs, zt, book), zs)
    assert g_released.norm() < g_paper.norm() / 4


def test_per_sample_label_consistency_combines_ops_and_undoes_them():
    cfg = LcrSettings(prob=0.5, ops=["hflip", "vflip", "transpose", "invert"], mode="per-sample")
    targets = ConsistencyTargets(cfg, seed=0)
    lq = torch.rand(8, 3, 6, 6)
    seen = []

    def teacher(x: torch.Tensor) -> torch.Tensor:
        seen.append(x)
        return x * 1.0  # equivariant to every op: each target must come back as the input

    out = targets.target(teacher, lq, plain=lambda: lq)
    assert torch.allclose(out, lq)
    from itertools import product

    from dckd_cli.losses.label_consistency import OPS

    def combo_of(i: int) -> tuple[bool, ...]:  # which ops (in order) turn lq[i] into what the teacher saw
        for combo in product([False, True], repeat=4):
            x = lq[i : i + 1]
            for on, name in zip(combo, cfg.ops):
                x = OPS[name][0](x) if on else x
            if torch.allclose(x[0], seen[0][i]):
                return combo
        raise AssertionError(i)

    combos = [combo_of(i) for i in range(8)]
    assert len(set(combos)) > 1  # drawn per sample, not per batch
    assert max(sum(c) for c in combos) >= 2  # ops combine


def test_per_sample_label_consistency_works_on_non_square_batches():
    cfg = LcrSettings(prob=0.5, ops=["hflip", "transpose"], mode="per-sample")
    targets = ConsistencyTargets(cfg, seed=1)
    lq = torch.rand(8, 3, 4, 7)
    shapes = []

    def teacher(x: torch.Tensor) -> torch.Tensor:  # a x2 upscaler, equivariant to flips and transposes
        shapes.append(tuple(x.shape))
        return x.repeat_interleave(2, -1).repeat_interleave(2, -2)

    out = targets.target(teacher, lq, plain=lambda: teacher(lq))
    assert torch.equal(out, lq.repeat_interleave(2, -1).repeat_interleave(2, -2))
    assert sorted(s[-2:] for s in shapes) == [(4, 7), (7, 4)]  # some samples transposed, some not
    assert sum(s[0] for s in shapes) == 8


def test_the_packaged_encoder_on_real_data_warns_and_the_demo_does_not(dckd_settings, caplog, tmp_path):
    import logging

    from dckd_cli.methods.build import build_method
    from dckd_cli.models.zoo import build_model

    for train_sets, expected in ((["builtin"], 0), ([str(tmp_path)], 1)):
        settings = dckd_settings("dckd", overrides=("method.encoder.checkpoint=null",))
        settings.data.train = train_sets
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="dckd_cli.methods.build"):
            student, teacher = build_model("rcan", "tiny", 2), build_model("rcan", "tiny", 2)
            build_method(settings, student, teacher)
        warned = [r.getMessage() for r in caplog.records if "packaged compact encoder" in r.getMessage()]
        assert len(warned) == expected, warned
    assert "22.4 dB on Set5" in warned[0] and "'imagenet'" in warned[0]
