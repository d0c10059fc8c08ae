from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from dckd_cli.models.vqgan import VQGANConfig
from dckd_cli.models.zoo import build_model
from dckd_cli.settings.presets import resolve_settings
from dckd_cli.settings.schema import RunSettings
from tests.models.test_vqgan import official_layout

SMALL_VQ = VQGANConfig(
    ch=32,
    ch_mult=(1, 1, 1, 1, 1),
    num_res_blocks=1,
    attn_resolutions=(),
    z_channels=8,
    embed_dim=8,
    n_embed=32,
    resolution=64,
)


@pytest.fixture
def encoder_file(tmp_path: Path) -> Path:
    """A small random VQGAN in the official key layout, with its config beside it."""
    ckpt, _ = official_layout(SMALL_VQ, seed=3)
    path = tmp_path / "vq.safetensors"
    save_file({k: v.contiguous() for k, v in ckpt["state_dict"].items()}, str(path))
    path.with_suffix(".json").write_text(SMALL_VQ.to_json())
    return path


@pytest.fixture
def dckd_settings(tmp_path: Path, encoder_file: Path):
    teacher = tmp_path / "teacher.safetensors"
    torch.manual_seed(5)
    save_file({k: v.contiguous() for k, v in build_model("rcan", "tiny", 2).state_dict().items()}, str(teacher))

    def make(method: str = "dckd", iters: int = 6, overrides: tuple[str, ...] = ()) -> RunSettings:
        flags = {
            "scale": 2,
            "method.name": method,
            "optim.iters": iters,
            "teacher.size": "tiny",
            "teacher.checkpoint": str(teacher),
            "student.size": "tiny",
            "data.patch_size": 16,
            "data.batch_size": 2,
            "runtime.log_every": 1,
            "runtime.val_every": 1000,
            "runtime.save_every": 1000,
            "optim.scheduler": "constant",
            "optim.lr": 1e-3,
            "method.encoder.checkpoint": str(encoder_file),
            "runtime.device": "cpu",  # values and resumes are pinned bitwise on the CPU
        }
        return resolve_settings("demo", flags, list(overrides))

    return make
