from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from dckd_cli.models.checkpoints import CheckpointError
from dckd_cli.models.vqgan import COMPACT_ENCODER, VQGANConfig, build_decoder, load_encoder, resolve_encoder

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from taming.modules.diffusionmodules.model import Encoder

TINY = VQGANConfig(
    ch=32,
    ch_mult=(1, 1, 2),
    num_res_blocks=2,
    attn_resolutions=(8,),
    z_channels=4,
    embed_dim=4,
    n_embed=16,
    resolution=32,
)


def official_layout(config: VQGANConfig, seed: int = 0) -> dict:
    """A full taming checkpoint: state_dict with encoder, decoder, quant convs, codebook and loss keys."""
    torch.manual_seed(seed)
    encoder = Encoder(**config.ddconfig())
    state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    state |= {f"decoder.{k}": v for k, v in build_decoder(config).state_dict().items()}
    state["quant_conv.weight"] = torch.randn(config.embed_dim, config.z_channels, 1, 1)
    state["quant_conv.bias"] = torch.randn(config.embed_dim)
    state["post_quant_conv.weight"] = torch.randn(config.z_channels, config.embed_dim, 1, 1)
    state["post_quant_conv.bias"] = torch.randn(config.z_channels)
    state["quantize.embedding.weight"] = torch.randn(config.n_embed, config.embed_dim)
    state["loss.logvar"] = torch.zeros(())
    return {"state_dict": state}, encoder


def test_official_layout_round_trip_matches_taming(tmp_path: Path):
    ckpt, reference = official_layout(TINY)
    torch.save(ckpt, tmp_path / "last.ckpt")
    model = load_encoder(tmp_path / "last.ckpt", TINY)
    x = torch.rand(2, 3, 32, 32)
    state = ckpt["state_dict"]
    with torch.no_grad():
        want_z = torch.nn.functional.conv2d(reference.eval()(x), state["quant_conv.weight"], state["quant_conv.bias"])
        taps, z = model(x, levels=(0, 1, 2), latents=True)
        # taming's own first ResnetBlock at each level, via hooks on the reference encoder
        seen = []
        hooks = [reference.down[i].block[0].register_forward_hook(lambda m, i, o: seen.append(o)) for i in range(3)]
        reference(x)
        for h in hooks:
            h.remove()
    assert torch.allclose(z, want_z, atol=1e-5)
    assert [t.shape[-1] for t in taps] == [32, 16, 8]
    # dckd's blocks run SiLU as one op: float rounding apart (|taps| ~ 2), the same values
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(taps, seen, strict=True))
    assert torch.equal(model.codebook, state["quantize.embedding.weight"])


def test_early_stop_gives_the_same_taps(tmp_path: Path):
    ckpt, _ = official_layout(TINY)
    torch.save(ckpt, tmp_path / "last.ckpt")
    model = load_encoder(tmp_path / "last.ckpt", TINY)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        full, _ = model(x, levels=(0, 1), latents=True)
        early, z = model(x, levels=(0, 1))
    assert z is None and all(torch.equal(a, b) for a, b in zip(full, early, strict=True))


def test_frozen_and_input_range(tmp_path: Path):
    ckpt, _ = official_layout(TINY)
    torch.save(ckpt, tmp_path / "last.ckpt")
    model = load_encoder(tmp_path / "last.ckpt", TINY)
    model.train()
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    signed = load_encoder(tmp_path / "last.ckpt", TINY, input_range="-1,1")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(signed(x, (0,))[0][0], model(x * 2 - 1, (0,))[0][0], atol=1e-6)


def test_wrong_checkpoint_is_one_line(tmp_path: Path):
    torch.save({"state_dict": {"encoder.conv_in.weight": torch.zeros(1)}}, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match=r"bad.ckpt: not a VQGAN checkpoint .*quantize.embedding.weight"):
        load_encoder(tmp_path / "bad.ckpt", TINY)


def test_packaged_compact_encoder_loads():
    assert COMPACT_ENCODER.is_file() and COMPACT_ENCODER.with_suffix(".json").is_file()
    model = resolve_encoder(None)
    taps, z = model(torch.rand(1, 3, 32, 32), (0, 1, 2, 3, 4), latents=True)
    assert len(taps) == 5 and z is not None and z.shape[-1] == 2


def test_imagenet_offline_error_names_the_url(monkeypatch):
    from dckd_cli.models import vqgan

    monkeypatch.setattr(vqgan, "VQGAN_IMAGENET_URL", "http://127.0.0.1:9/last.ckpt")
    with pytest.raises(CheckpointError, match=r"127\.0\.0\.1:9/last\.ckpt.*vqgan_imagenet_f16_1024\.ckpt"):
        resolve_encoder("imagenet")


def test_fused_blocks_equal_taming_and_keep_less_for_the_backward():
    """dckd's ResnetBlock forward (SiLU as one op) against taming's own: the same taps, latents
    and input gradient; its graph keeps exactly the sigmoid outputs' bytes less."""
    from taming.modules.diffusionmodules.model import ResnetBlock

    from dckd_cli.engine.memory import saved_for_backward
    from dckd_cli.models.vqgan import VQGANEncoder

    torch.manual_seed(0)
    fused = VQGANEncoder(TINY)
    fused.load_state_dict({k: torch.randn_like(v) * 0.2 for k, v in fused.state_dict().items()})
    plain = VQGANEncoder(TINY, fused=False)
    plain.load_state_dict(fused.state_dict())
    norms = [b.norm1 for b in fused.modules() if isinstance(b, ResnetBlock)]
    norms += [b.norm2 for b in fused.modules() if isinstance(b, ResnetBlock)] + [fused.encoder.norm_out]
    silu_inputs: list[int] = []
    hooks = [n.register_forward_hook(lambda m, i, o: silu_inputs.append(o.nbytes)) for n in norms]
    x = torch.rand(2, 3, 32, 32)
    runs = {}
    for name, model in (("fused", fused), ("plain", plain)):
        xin = x.clone().requires_grad_()
        with saved_for_backward() as kept:
            taps, z = model(xin, (0, 1, 2), latents=True)
        (sum(t.square().mean() for t in taps) + z.abs().mean()).backward()
        runs[name] = taps, z, xin.grad, sum(kept.storages.values())
    for h in hooks:
        h.remove()
    (taps_f, z_f, g_f, kept_f), (taps_p, z_p, g_p, kept_p) = runs["fused"], runs["plain"]

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).detach().abs().max() / b.detach().abs().max())

    assert max(rel(a, b) for a, b in zip(taps_f, taps_p, strict=True)) < 1e-5
    assert rel(z_f, z_p) < 1e-5 and rel(g_f, g_p) < 1e-5 and g_f.abs().max() > 0
    assert len(silu_inputs) == 2 * 3 * 2 + 2 * 2 + 1  # 3 levels x 2 blocks, the mid's 2, the head
    assert kept_p - kept_f == sum(silu_inputs) and kept_f < 0.85 * kept_p
    with torch.inference_mode():  # in place without a graph: the same taps
        assert max(rel(a, b) for a, b in zip(fused(x, (0, 1, 2))[0], taps_p, strict=True)) < 1e-5
