from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from dckd_cli.catalog.architectures import ARCHITECTURES, Official
from dckd_cli.models import checkpoints
from dckd_cli.models.checkpoints import (
    CheckpointError,
    build_with_weights,
    detect_model,
    load_weights,
    official_checkpoint,
    read_state_dict,
)
from dckd_cli.models.zoo import build_model


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("wrapper", ["params", "params_ema", "state_dict", None])
def test_round_trip_with_official_wrappers(tmp_path: Path, wrapper):
    source = build_model("rcan", "tiny", 2)
    state = {f"module.{k}": v for k, v in source.state_dict().items()}  # DataParallel prefix too
    torch.save({wrapper: state} if wrapper else state, tmp_path / "w.pth")
    target = load_weights(build_model("rcan", "tiny", 2), tmp_path / "w.pth")
    assert _same_weights(source, target)


@pytest.mark.parametrize(
    "arch,task,scale", [("swinir", "sr", 2), ("rcan", "sr", 3), ("nafnet", "deblur", 1), ("restormer", "derain", 1)]
)
def test_safetensors_round_trip_and_detection(tmp_path: Path, arch, task, scale):
    torch.manual_seed(1)
    source = build_model(arch, "tiny", scale).eval()
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(tmp_path / "w.safetensors"))
    loaded = build_with_weights(arch, "tiny", scale, task, tmp_path / "w.safetensors").eval()
    detected, detected_scale = detect_model(tmp_path / "w.safetensors")
    assert _same_weights(source, loaded) and detected_scale == scale
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        expected = source(x)
        assert torch.equal(loaded(x), expected)
        assert torch.allclose(detected.eval()(x), expected, atol=1e-5)


def test_mismatch_is_one_clear_line(tmp_path: Path):
    torch.save(build_model("rcan", "tiny", 4).state_dict(), tmp_path / "x4.pth")
    with pytest.raises(CheckpointError, match=r"x4.pth: does not fit this model .*shape-mismatched"):
        load_weights(build_model("rcan", "tiny", 2), tmp_path / "x4.pth")
    with pytest.raises(CheckpointError, match="not found"):
        read_state_dict(tmp_path / "nope.pth")


def test_detection_recovers_architecture_and_scale(tmp_path: Path):
    source = build_model("swinir", "tiny", 3)
    torch.save({"params": source.state_dict()}, tmp_path / "w.pth")
    model, scale = detect_model(tmp_path / "w.pth")
    assert scale == 3 and type(model).__name__ == "SwinIR"
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), source.eval()(x), atol=1e-6)


def test_official_download_goes_to_the_cache(tmp_path: Path, monkeypatch):
    """The official URL is fetched once into the cache, then loaded from there."""
    served = build_model("swinir", "tiny", 2).state_dict()
    calls = []

    def fake_download(url: str, dst: str, progress: bool = True) -> None:
        calls.append(url)
        torch.save({"params": served}, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    path = official_checkpoint("swinir", "sr", 2)
    assert (
        calls == [ARCHITECTURES["swinir"].official[("sr", 2)].url]
        and path.parent == checkpoints.cache_dir() / "checkpoints"
    )
    assert official_checkpoint("swinir", "sr", 2) == path and len(calls) == 1


def test_offline_error_names_url_and_path(monkeypatch):
    monkeypatch.setitem(
        ARCHITECTURES["swinir"].official, ("sr", 4), Official("SwinIR_x4.pth", "http://127.0.0.1:9/SwinIR_x4.pth")
    )
    with pytest.raises(CheckpointError) as info:
        official_checkpoint("swinir", "sr", 4)
    message = str(info.value)
    assert "http://127.0.0.1:9/SwinIR_x4.pth" in message and str(checkpoints.cache_dir()) in message
    assert "\n" not in message
    assert not (checkpoints.cache_dir() / "checkpoints" / "SwinIR_x4.pth").exists()


def test_rcan_has_no_link_and_says_which_file():
    with pytest.raises(CheckpointError, match="RCAN_BIX4.pt"):
        official_checkpoint("rcan", "sr", 4)


def test_official_dctlsa_detected(shared_weights):
    model, scale = detect_model(shared_weights / "DCTLSA_x4.pt")
    assert scale == 4 and sum(p.numel() for p in model.parameters()) == 885_328


def test_weights_with_nan_or_integer_tensors_are_refused_naming_the_tensor(tmp_path: Path):
    import torch
    from safetensors.torch import save_file

    from dckd_cli.models.checkpoints import CheckpointError, build_with_weights
    from dckd_cli.models.zoo import build_model

    state = {k: v.clone() for k, v in build_model("rcan", "tiny", 2).state_dict().items()}
    key = next(k for k in state if k.endswith(".weight"))
    broken = dict(state)
    broken[key] = broken[key].clone()
    broken[key].view(-1)[3] = float("nan")
    save_file(broken, str(tmp_path / "nan.safetensors"))
    with pytest.raises(CheckpointError, match=rf"nan\.safetensors: tensor '{re.escape(key)}' holds NaN values"):
        build_with_weights("rcan", "tiny", 2, "sr", tmp_path / "nan.safetensors")
    as_int = dict(state)
    as_int[key] = state[key].to(torch.int32)
    save_file(as_int, str(tmp_path / "int.safetensors"))
    with pytest.raises(CheckpointError, match=rf"tensor '{re.escape(key)}' is torch.int32, not floating point"):
        build_with_weights("rcan", "tiny", 2, "sr", tmp_path / "int.safetensors")
    save_file(state, str(tmp_path / "good.safetensors"))
    build_with_weights("rcan", "tiny", 2, "sr", tmp_path / "good.safetensors")  # the same file, intact, loads


def test_a_detected_rcan_leaves_its_input_as_it_was(tmp_path: Path):
    """spandrel's RCAN scales its input in place: a detected one (an official checkpoint, an
    `auto` teacher, `export` of a raw file) must not change the caller's tensor."""
    torch.manual_seed(1)
    source = build_model("rcan", "tiny", 2).eval()
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(tmp_path / "w.safetensors"))
    detected, _ = detect_model(tmp_path / "w.safetensors")
    x = torch.rand(1, 3, 16, 16)
    before = x.clone()
    with torch.no_grad():
        first = detected.eval()(x)
        assert torch.equal(x, before)
        assert torch.equal(detected(x), first)
