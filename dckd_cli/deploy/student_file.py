"""A student as one ``.safetensors`` file that carries what rebuilds it.

The metadata (strings, as safetensors requires) names the architecture, zoo size, scale,
task and the hyperparameters, so ``dckd evaluate --checkpoint FILE`` and ``dckd restore``
rebuild the network without a run folder. Models spandrel detected (arch ``auto``) are
rebuilt by detecting them again from the same weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import save
from torch import nn

from dckd_cli.atomic import atomic_path
from dckd_cli.catalog.architectures import ARCHITECTURES, pad_multiple
from dckd_cli.models.checkpoints import CheckpointError, build_with_weights

FORMAT = "dckd-student/1"


@dataclass
class StudentInfo:
    """What an exported student is; stored as the file's metadata and in the model card."""

    arch: str
    size: str
    scale: int
    task: str
    weights: str = "ema"  # ema (the exponential moving average, the default) or student (online weights)
    extra: dict[str, Any] = field(default_factory=dict)  # teacher, method, source: for the model card
    options: dict[str, Any] = field(default_factory=dict)  # constructor options (over the size's)

    @property
    def multiple(self) -> int:
        """Inputs are padded to this multiple (a detected model carries spandrel's in ``extra``)."""
        return int(self.extra.get("multiple") or pad_multiple(self.arch))

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments: the size's (for a family of the table) with the options on top."""
        entry = ARCHITECTURES.get(self.arch)
        return {**(entry.sizes.get(self.size, {}) if entry else {}), **self.options}

    def metadata(self) -> dict[str, str]:
        from dckd_cli import __version__

        return {
            "format": FORMAT,
            "arch": self.arch,
            "size": self.size,
            "scale": str(self.scale),
            "task": self.task,
            "weights": self.weights,
            "hyperparameters": json.dumps(self.hyperparameters()),
            "options": json.dumps(self.options),
            "dckd_version": __version__,
            "extra": json.dumps(self.extra, default=str),
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> StudentInfo:
        return cls(
            arch=meta["arch"],
            size=meta["size"],
            scale=int(meta["scale"]),
            task=meta["task"],
            weights=meta.get("weights", "ema"),
            extra=json.loads(meta.get("extra", "{}")),
            options=json.loads(meta.get("options", "{}")),
        )


def read_info(path: Path) -> StudentInfo | None:
    """The metadata of a dckd student file, or None for any other checkpoint."""
    if Path(path).suffix != ".safetensors" or not Path(path).is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
    except Exception:  # noqa: BLE001 - not a readable safetensors file: not ours
        return None
    if meta.get("format") != FORMAT:
        return None
    try:
        return StudentInfo.from_metadata(meta)
    except (KeyError, ValueError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: damaged dckd metadata; export the student again") from None


def _canonical_header(blob: bytes) -> bytes:
    """``blob`` (safetensors bytes) with its JSON header in one fixed order.

    safetensors writes the metadata in hash-map order, so the same student saved twice gives
    different bytes (and SHA-256). The header is rewritten with the metadata keys sorted and
    the tensors in the order of their data; the tensor data is untouched.
    """
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    meta = header.pop("__metadata__", None)
    ordered: dict[str, Any] = {"__metadata__": dict(sorted(meta.items()))} if meta else {}
    ordered |= dict(sorted(header.items(), key=lambda item: (item[1]["data_offsets"], item[0])))
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)  # the format aligns the data to 8 bytes with spaces
    return len(text).to_bytes(8, "little") + text + blob[8 + size :]


def save_student(model: nn.Module, info: StudentInfo, path: Path) -> None:
    """Write ``model`` with ``info`` atomically; the same student always gives the same bytes."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    blob = _canonical_header(save(tensors, metadata=info.metadata()))
    with atomic_path(Path(path)) as tmp:
        tmp.write_bytes(blob)


def load_student(path: Path) -> tuple[nn.Module, StudentInfo]:
    """Rebuild the network a student file describes, with its weights."""
    info = read_info(path)
    if info is None:
        raise CheckpointError(f"{path}: not a dckd student file (export one with `dckd export`)")
    model = build_with_weights(info.arch, info.size, info.scale, info.task, Path(path), options=info.options)
    return model.eval(), info
