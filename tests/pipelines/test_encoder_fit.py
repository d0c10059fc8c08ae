from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dckd_cli.cli.app import app
from dckd_cli.data.folders import DatasetError
from dckd_cli.data.images import write_image
from dckd_cli.models.vqgan import VQGANConfig, load_encoder
from dckd_cli.pipelines.encoder_fit import fit_encoder

SMALL = VQGANConfig(
    ch=32, ch_mult=(1, 1, 2), num_res_blocks=1, attn_resolutions=(), z_channels=8, embed_dim=8, n_embed=16
)


def _folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for i in range(3):
        smooth = np.kron(rng.integers(0, 256, (8, 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
        write_image(tmp_path / "imgs" / f"{i}.png", smooth)
    return tmp_path / "imgs"


def test_fit_writes_a_loadable_encoder_with_its_figures(tmp_path: Path):
    losses = []
    out = tmp_path / "vq.safetensors"
    report = fit_encoder(
        str(_folder(tmp_path)),
        out,
        config=SMALL,
        iters=60,
        batch=4,
        patch=32,
        lr=1e-3,
        on_step=lambda it, info: losses.append(info["loss"]),
    )
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["fit"]["iterations"] == 60 and meta["command"]["source"].endswith("imgs")
    assert 0 < report.codebook_usage <= 1 and report.recon_psnr > 10
    encoder = load_encoder(out)  # config from the .json beside it
    assert encoder.config == SMALL
    _, z = encoder(torch.rand(1, 3, 32, 32), latents=True)
    assert z is not None and z.shape == (1, 8, 8, 8)
    with pytest.raises(DatasetError, match="no images"):
        (tmp_path / "empty").mkdir()
        fit_encoder(str(tmp_path / "empty"), tmp_path / "x.safetensors", config=SMALL, iters=1)


def test_cli_refuses_to_overwrite(tmp_path: Path):
    out = tmp_path / "vq.safetensors"
    out.write_bytes(b"mine")
    result = CliRunner().invoke(app, ["encoder", "fit", "--output", str(out), "--iters", "1"])
    assert result.exit_code == 1 and "--force" in result.output and out.read_bytes() == b"mine"
