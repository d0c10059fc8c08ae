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
from safetensors.torch import save_file
from torch import nn

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

    @property
    def multiple(self) -> int:
        """Inputs are padded to this multiple (a detected model carries spandrel's in ``extra``)."""
        return int(self.extra.get("multiple") or pad_multiple(self.arch))

    def hyperparameters(self) -> dict[str, Any]:
        entry = ARCHITECTURES.get(self.arch)
        return dict(entry.sizes.get(self.size, {})) if entry else {}

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


def save_student(model: nn.Module, info: StudentInfo, path: Path) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata=info.metadata())


def load_student(path: Path) -> tuple[nn.Module, StudentInfo]:
    """Rebuild the network a student file describes, with its weights."""
    info = read_info(path)
    if info is None:
        raise CheckpointError(f"{path}: not a dckd student file (export one with `dckd export`)")
    model = build_with_weights(info.arch, info.size, info.scale, info.task, Path(path))
    return model.eval(), info
