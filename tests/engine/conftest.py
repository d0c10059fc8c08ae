from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import save_file

from dckd_cli.models.zoo import build_model
from dckd_cli.settings.presets import resolve_settings
from dckd_cli.settings.schema import RunSettings


@pytest.fixture
def teacher_file(tmp_path: Path) -> Path:
    """A small random RCAN teacher saved as safetensors (no download, no training)."""
    path = tmp_path / "teacher.safetensors"
    save_file({k: v.contiguous() for k, v in build_model("rcan", "tiny", 2).state_dict().items()}, str(path))
    return path


@pytest.fixture
def tiny_settings(teacher_file: Path):
    """Settings for a seconds-long x2 run on the built-in data."""

    def make(method: str = "scratch", iters: int = 12, **extra: object) -> RunSettings:
        flags = {
            "scale": 2,
            "method.name": method,
            "optim.iters": iters,
            "teacher.size": "tiny",
            "teacher.checkpoint": str(teacher_file),
            "student.size": "tiny",
            "data.patch_size": 12,
            "data.batch_size": 4,
            "runtime.log_every": 2,
            "runtime.val_every": 6,
            "runtime.save_every": 3,
            "optim.scheduler": "constant",
            "optim.lr": 2e-3,
            "runtime.device": "cpu",  # resumes and caches are compared bitwise on the CPU
        }
        return resolve_settings("demo", {**flags, **extra})

    return make
