"""Shared fixtures: the optional ../shared data and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from dckd_cli.models.zoo import build_model
from dckd_cli.settings.presets import resolve_settings
from dckd_cli.settings.schema import RunSettings

SHARED = Path(os.environ.get("DCKD_SHARED", Path(__file__).resolve().parents[2] / "shared"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (Set5, Set14, T91, BSD200); tests using it skip when it is absent."""
    root = SHARED / "data"
    if not (root / "Set5" / "HR").is_dir():
        pytest.skip("benchmark data in ../shared/data not available")
    return root


@pytest.fixture(scope="session")
def shared_weights() -> Path:
    root = SHARED / "weights"
    if not (root / "DCTLSA_x4.pt").is_file():
        pytest.skip("official weights in ../shared/weights not available")
    return root


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoint downloads go to a temporary cache, never the user's."""
    monkeypatch.setenv("DCKD_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("DCKD_DATA", raising=False)
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _fresh_accelerator_state():
    """Accelerate keeps one process-wide state; tests on the CPU and on a GPU each start afresh."""
    yield
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()  # a run stopped inside accumulate() leaves its gradient-sync state behind


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` run only where CUDA is available."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def tiny_run_overrides(tmp_path: Path) -> list[str]:
    """``--set`` lines for seconds-long x2 dckd runs: a tiny random RCAN teacher saved as a file,
    a tiny student, the history model refreshed every 2 steps, validation only at the end."""
    from safetensors.torch import save_file

    from dckd_cli.models.zoo import build_model

    teacher = tmp_path / "tiny-teacher.safetensors"
    torch.manual_seed(5)
    save_file({k: v.contiguous() for k, v in build_model("rcan", "tiny", 2).state_dict().items()}, str(teacher))
    return [
        "scale=2",
        "teacher.size=tiny",
        f"teacher.checkpoint={teacher}",
        "student.size=tiny",
        "runtime.log_every=1",
        "runtime.val_every=1000",
        "optim.scheduler=constant",
        "method.dcl.history.steps=[2]",
        "method.dcl.history.breakpoints=[]",
    ]


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
