"""A frozen teacher whose outputs are memoised on disk, keyed by what it was given.

Distilling several students (methods, ablations, seeds) from one teacher on the same data
order runs the teacher on the same batches again and again; for a small student the
teacher forward is most of the step. ``CachedTeacher`` stores each output under a hash of
the teacher's weights, the exact input tensor and the autocast dtype it runs under (mixed
precision, ``runtime.frozen_bf16``), so a hit returns the very tensor the teacher computed
(bitwise), and a changed teacher, input or precision can never be served a stale output.
Methods that read the teacher's intermediate features (FAKD) must not use it: a hit skips
the forward pass, and with it the feature taps.

Layout: ``<root>/<teacher fingerprint>/<key[:2]>/<key>.safetensors``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from dckd_cli.atomic import atomic_path


def _add_tensor(digest: hashlib._Hash, prefix: str, tensor: torch.Tensor) -> None:
    """Feed ``prefix``, shape, dtype and the raw bytes of ``tensor`` to ``digest``."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)  # 1-D: 0-dim tensors cannot be viewed as bytes
    digest.update(f"{prefix}{tuple(tensor.shape)}:{flat.dtype};".encode())
    digest.update(flat.view(torch.uint8).numpy().tobytes())


def fingerprint(model: nn.Module) -> str:
    """A short hash of a model's parameters and buffers (names, shapes, dtypes and values)."""
    digest = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        _add_tensor(digest, f"{name}:", tensor)
    return digest.hexdigest()[:16]


def precision(device_type: str) -> str:
    """The autocast dtype the teacher would run in on ``device_type`` ("" outside autocast)."""
    if not torch.is_autocast_enabled(device_type):
        return ""
    return str(torch.get_autocast_dtype(device_type)).removeprefix("torch.")


def input_key(x: torch.Tensor, autocast: str = "") -> str:
    """The hash of ``x`` (shape, dtype, bytes) and, under autocast, of its dtype: an output
    computed in bfloat16 is never served to a float32 run, nor the other way round."""
    digest = hashlib.sha1()
    _add_tensor(digest, "", x)
    if autocast:
        digest.update(f"autocast:{autocast};".encode())
    return digest.hexdigest()


class CachedTeacher(nn.Module):
    """Wraps a frozen ``teacher``; ``forward`` reads ``root`` first and writes what it computes."""

    def __init__(self, teacher: nn.Module, root: Path):
        super().__init__()
        self.teacher = teacher
        self.train(teacher.training)
        self.folder = Path(root) / fingerprint(teacher)
        self.hits = 0
        self.misses = 0

    def path(self, x: torch.Tensor) -> Path:
        key = input_key(x, precision(x.device.type))
        return self.folder / key[:2] / f"{key}.safetensors"

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        path = self.path(x)
        if path.is_file():
            try:
                out = load_file(str(path))["out"].to(x.device)
            except Exception:  # noqa: BLE001 - a damaged entry is a miss: computed again and rewritten
                out = None
            if out is not None:
                self.hits += 1
                return out
        self.misses += 1
        out = self.teacher(x)
        with atomic_path(path) as tmp:
            save_file({"out": out.detach().cpu().contiguous()}, str(tmp))
        return out
