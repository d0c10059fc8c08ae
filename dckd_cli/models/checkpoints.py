"""Weights: read safely, find official releases, cache downloads, detect architectures.

Checkpoints are read with ``torch.load(weights_only=True)`` (classes the restricted
unpickler does not know become inert stand-ins, see ``safe_load``) or safetensors only:
nothing is ever unpickled. Official weights come from a path, the user cache, or, when online,
their release URL (downloaded atomically into the cache).
"""

from __future__ import annotations

import re
import urllib.error
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from dckd_cli.cache import cache_dir
from dckd_cli.catalog.architectures import ARCHITECTURES, REFERENCE_ARCHS
from dckd_cli.errors import DckdError
from dckd_cli.models.safe_load import load_weights_only
from dckd_cli.models.zoo import build_network, copy_inputs, tag_input_needs

# Keys that wrap the state dict in BasicSR / Lightning / EDSR-style files, in order of preference.
WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model", "net")


class CheckpointError(DckdError):
    """A checkpoint that cannot be found, read or matched to a model."""


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` or ``.pt/.pth/.ckpt`` file, unwrapped and unprefixed."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        if path.suffix == ".safetensors":
            data: object = load_file(str(path))
        else:
            data = load_weights_only(path)
    except Exception as err:  # noqa: BLE001 - any failure here means an unusable file
        raise CheckpointError(f"{path}: cannot be read as weights ({_reason(err)})") from None
    for key in WRAPPER_KEYS:
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
            break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{path}: no state dict of tensors inside (looked for {', '.join(WRAPPER_KEYS)})")
    prefix = "module."
    state = {k.removeprefix(prefix): v for k, v in data.items()}
    check_tensors(state, path)
    return state


def check_tensors(state: dict[str, torch.Tensor], path: Path) -> None:
    """Weights a network can run with: a weight or bias that is not floating point (an integer
    file passes shape checks and loads as garbage), or a NaN / infinite value, is refused
    naming the file and the tensor."""
    for key, value in state.items():
        if key.rsplit(".", 1)[-1] in ("weight", "bias") and not value.is_floating_point():
            raise CheckpointError(f"{path}: tensor '{key}' is {value.dtype}, not floating point; not usable weights")
        if value.is_floating_point() and value.numel() and not bool(torch.isfinite(value).all()):
            bad = "NaN" if bool(torch.isnan(value).any()) else "infinite"
            raise CheckpointError(f"{path}: tensor '{key}' holds {bad} values; these weights are broken")


def _reason(err: Exception) -> str:
    """One line on why a file did not load; for a refused pickle, the global that was blocked
    (torch's own text advises the unsafe ``weights_only=False``, which dckd never does)."""
    text = str(err).strip()
    blocked = re.search(r"unsupported GLOBAL (\S+)", text)
    if blocked:
        return f"it would run code: its pickle asks for {blocked.group(1)}, refused; use a file of weights only"
    detail = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\s*\n|Check the documentation|$)", text, re.S)
    if detail or "Weights only load failed" in text:
        why = f" (torch: {detail.group(1).splitlines()[0][:120]})" if detail else ""
        return (
            f"not a weights file that loads safely{why}; save a state dict with torch.save(model.state_dict()) "
            "or as safetensors"
        )
    first = text.splitlines()[0] if text else type(err).__name__
    return first[:200]


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    """Load ``path`` into ``model`` strictly, with a one-line error on any mismatch."""
    state = read_state_dict(path)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or mismatched:
        sample = (mismatched or missing or unexpected)[0]
        raise CheckpointError(
            f"{path}: does not fit this model ({len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(mismatched)} shape-mismatched keys, e.g. '{sample}'); check the architecture, size and scale"
        )
    model.load_state_dict(state, strict=True)
    return model


def detect_model(path: Path) -> tuple[nn.Module, int]:
    """Architecture and scale detected from the weights alone (spandrel), weights loaded."""
    model, scale, _, _ = detect_model_info(path)
    return model, scale


def detect_model_info(path: Path) -> tuple[nn.Module, int, int, str]:
    """Detected model, scale, the input-size multiple it needs, and spandrel's architecture name."""
    from spandrel import ModelLoader, UnsupportedModelError
    from spandrel_extra_arches import install

    install(ignore_duplicates=True)
    state = read_state_dict(path)
    try:
        descriptor = ModelLoader().load_from_state_dict(state)
    except UnsupportedModelError:
        raise CheckpointError(f"{path}: architecture not recognised; name it with --model ARCH") from None
    except Exception as err:  # noqa: BLE001 - spandrel matched keys but the shapes do not build
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise CheckpointError(f"{path}: looks like a known architecture but does not build ({first})") from None
    requirements = getattr(descriptor, "size_requirements", None)
    multiple = int(getattr(requirements, "multiple_of", 1) or 1)
    model = copy_inputs(descriptor.model)  # spandrel's RCAN would scale the caller's tensor in place
    return model, int(descriptor.scale), multiple, str(descriptor.architecture.id)


def official_checkpoint(arch: str, task: str, scale: int, download: bool = True) -> Path:
    """Path of the official teacher weights: the cache, or downloaded into it when online."""
    entry = ARCHITECTURES[arch].official.get((task, scale)) if arch in ARCHITECTURES else None
    if entry is None:
        raise CheckpointError(
            f"no official {arch} checkpoint for task '{task}' x{scale}; pass a checkpoint path (--teacher-checkpoint)"
        )
    target = cache_dir() / "checkpoints" / entry.filename
    if entry.url is None and not target.is_file():
        raise CheckpointError(
            f"{arch} weights have no direct download link: get {entry.filename} from {entry.where} "
            f"and pass its path with --teacher-checkpoint (or place it at {target})"
        )
    return fetch_to_cache(entry.url or "", entry.filename, download)


def fetch_to_cache(url: str, filename: str, download: bool = True, flag: str = "--teacher-checkpoint FILE") -> Path:
    """``<cache>/checkpoints/<filename>``, downloaded from ``url`` first if it is not there.
    ``flag`` is what the user passes instead (named in the offline error)."""
    target = cache_dir() / "checkpoints" / filename
    if target.is_file():
        return target
    if not download:
        raise CheckpointError(f"{target} is missing; download {url} there or pass {flag}")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Writes to a temporary file and renames it, so an interrupted download leaves nothing behind.
        torch.hub.download_url_to_file(url, str(target), progress=True)
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise CheckpointError(
            f"cannot download {url} ({reason}); download it by hand to {target} or pass {flag}"
        ) from None
    return target


def build_with_weights(
    arch: str,
    size: str,
    scale: int,
    task: str,
    checkpoint: Path | None,
    official: bool = False,
    options: dict[str, Any] | None = None,
    where: str = "model",
) -> nn.Module:
    """A model (``models/zoo.build_network``), with ``checkpoint`` loaded (or the official one
    when ``official``)."""
    if arch == "auto":
        if checkpoint is None:
            raise CheckpointError("arch 'auto' detects the architecture from a checkpoint; pass one")
        model, detected, multiple, _ = detect_model_info(checkpoint)
        if detected != scale:
            raise CheckpointError(f"{checkpoint}: a x{detected} model, but the run is x{scale}")
        tag_input_needs(model, multiple)
        return model
    model = build_network(arch, size, scale, options, where).model
    if checkpoint is None and official:
        checkpoint = official_checkpoint(arch, task, scale)
    return load_weights(model, checkpoint) if checkpoint is not None else model


def require_weights(arch: str, size: str, checkpoint: Path | None, flag: str) -> None:
    """Official releases exist for the paper's teacher size only; any other size needs a file."""
    if checkpoint is None and arch not in ARCHITECTURES and arch != "auto":
        raise CheckpointError(f"{arch}: dckd knows no official weights of this network; pass {flag} FILE")
    if checkpoint is None and size != "teacher" and arch not in (*REFERENCE_ARCHS, "auto"):
        raise CheckpointError(
            f"{arch} size '{size}' has no official weights; pass {flag} FILE "
            "(official releases exist for size 'teacher')"
        )


def build_teacher(
    arch: str, size: str, scale: int, task: str, checkpoint: Path | None, options: dict[str, Any] | None = None
) -> nn.Module:
    """A frozen teacher: ``checkpoint``, else the official release (only size 'teacher' has one)."""
    require_weights(arch, size, checkpoint, "--teacher-checkpoint")
    teacher = build_with_weights(arch, size, scale, task, checkpoint, True, options, "teacher.arch")
    return teacher.eval().requires_grad_(False)
