"""Teacher and student builders at the paper's sizes (METHOD.md, appendix table).

Architectures come from spandrel (SwinIR, RCAN, NAFNet) and spandrel-extra-arches
(Restormer); this module only fixes their hyperparameters. Every model maps an
``(N, 3, H, W)`` image in [0, 1] to its restoration in [0, 1] (not clamped).

Sizes: ``teacher`` and ``student`` are the paper's pairs (11.9M/1.2M SwinIR, 15.6M/5.2M
RCAN, 17.1M/2.7M NAFNet, 26.1M/3.8M Restormer); ``small`` and ``tiny`` are CPU-sized
members of the same families for demos, tests and small experiments.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

with warnings.catch_warnings():
    # Upstream architecture code calls torch.jit.script at import time; the notice is noise here.
    warnings.simplefilter("ignore", FutureWarning)
    from spandrel.architectures.NAFNet import NAFNet
    from spandrel.architectures.RCAN import RCAN
    from spandrel.architectures.SwinIR import SwinIR
    from spandrel_extra_arches.architectures.Restormer import Restormer

from dckd_cli.models.bicubic import BicubicUpsampler


class ZooError(ValueError):
    """An unknown architecture or size."""


class RCANCopy(RCAN):
    """spandrel's RCAN scales its input in place; give it a copy so callers' tensors survive."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.clone())


SWINIR_SIZES: dict[str, dict[str, Any]] = {
    "teacher": {"embed_dim": 180, "depths": [6] * 6, "num_heads": [6] * 6},
    "student": {"embed_dim": 60, "depths": [6] * 4, "num_heads": [6] * 4},
    "small": {"embed_dim": 48, "depths": [4] * 2, "num_heads": [4] * 2},
    "tiny": {"embed_dim": 24, "depths": [2], "num_heads": [4]},
}
RCAN_SIZES: dict[str, dict[str, Any]] = {
    "teacher": {"n_feats": 64, "n_resgroups": 10, "n_resblocks": 20},
    "student": {"n_feats": 64, "n_resgroups": 10, "n_resblocks": 6},
    "small": {"n_feats": 32, "n_resgroups": 3, "n_resblocks": 4, "reduction": 8},
    "tiny": {"n_feats": 16, "n_resgroups": 2, "n_resblocks": 2, "reduction": 4},
}
NAFNET_SIZES: dict[str, dict[str, Any]] = {
    "teacher": {"width": 32, "enc_blk_nums": [1, 1, 1, 28], "middle_blk_num": 1, "dec_blk_nums": [1, 1, 1, 1]},
    "student": {"width": 16, "enc_blk_nums": [1, 1, 1, 14], "middle_blk_num": 1, "dec_blk_nums": [1, 1, 1, 1]},
    "small": {"width": 16, "enc_blk_nums": [1, 1, 1, 2], "middle_blk_num": 1, "dec_blk_nums": [1, 1, 1, 1]},
    "tiny": {"width": 8, "enc_blk_nums": [1, 1], "middle_blk_num": 1, "dec_blk_nums": [1, 1]},
}
RESTORMER_SIZES: dict[str, dict[str, Any]] = {
    "teacher": {"dim": 48, "num_blocks": [4, 6, 6, 8], "num_refinement_blocks": 4},
    "student": {"dim": 24, "num_blocks": [2, 3, 3, 4], "num_refinement_blocks": 2},
    "small": {"dim": 16, "num_blocks": [1, 1, 2, 2], "num_refinement_blocks": 1},
    "tiny": {"dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1},
}


def _swinir(size: str, scale: int) -> nn.Module:
    # img_size 48 and window 8: the official "s48w8" DIV2K models the paper uses as teachers.
    return SwinIR(
        upscale=scale,
        img_size=48,
        window_size=8,
        img_range=1.0,
        mlp_ratio=2.0,
        upsampler="pixelshuffle",
        resi_connection="1conv",
        **SWINIR_SIZES[size],
    )


def _rcan(size: str, scale: int) -> nn.Module:
    return RCANCopy(scale=scale, rgb_range=255, **RCAN_SIZES[size])


def _nafnet(size: str, scale: int) -> nn.Module:
    return NAFNet(img_channel=3, **NAFNET_SIZES[size])


def _restormer(size: str, scale: int) -> nn.Module:
    return Restormer(**RESTORMER_SIZES[size])


def _bicubic(size: str, scale: int) -> nn.Module:
    return BicubicUpsampler(scale)


BUILDERS: dict[str, Callable[[str, int], nn.Module]] = {
    "swinir": _swinir,
    "rcan": _rcan,
    "nafnet": _nafnet,
    "restormer": _restormer,
    "bicubic": _bicubic,
}
SR_ONLY = {"swinir", "rcan", "bicubic"}
SIZES = ("teacher", "student", "small", "tiny")


def build_model(arch: str, size: str, scale: int) -> nn.Module:
    """Build ``arch`` at ``size`` for ``scale`` (1 for deblurring / deraining)."""
    if arch not in BUILDERS:
        raise ZooError(f"unknown architecture '{arch}'; choose from {', '.join(BUILDERS)}")
    if size not in SIZES:
        raise ZooError(f"unknown size '{size}'; choose from {', '.join(SIZES)}")
    if arch in SR_ONLY and scale == 1:
        raise ZooError(f"'{arch}' is a super-resolution model; it needs scale 2, 3 or 4")
    if arch not in SR_ONLY and scale != 1:
        raise ZooError(f"'{arch}' restores at scale 1 (deblurring / deraining), not x{scale}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.meshgrid", category=UserWarning)  # upstream SwinIR
        return BUILDERS[arch](size, scale)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
