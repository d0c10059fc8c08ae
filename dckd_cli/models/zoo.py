"""Teacher and student builders at the paper's sizes (the paper's appendix table; docs/method.md).

Architectures come from spandrel (SwinIR, RCAN, NAFNet) and spandrel-extra-arches
(Restormer); this module only fixes their hyperparameters. Every model maps an
``(N, 3, H, W)`` image in [0, 1] to its restoration in [0, 1] (not clamped).

Sizes and their hyperparameters: ``catalog/architectures.py``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn

from dckd_cli.catalog.architectures import ARCHITECTURES, SIZES
from dckd_cli.errors import DckdError

with warnings.catch_warnings():
    # Upstream architecture code calls torch.jit.script at import time; the notice is noise here.
    warnings.simplefilter("ignore", FutureWarning)
    from spandrel.architectures.NAFNet import NAFNet
    from spandrel.architectures.RCAN import RCAN
    from spandrel.architectures.SwinIR import SwinIR
    from spandrel_extra_arches.architectures.Restormer import Restormer

from dckd_cli.models.bicubic import BicubicUpsampler


class ZooError(DckdError):
    """An unknown architecture or size."""


class RCANCopy(RCAN):
    """spandrel's RCAN scales its input in place; give it a copy so callers' tensors survive."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.clone())


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
        **ARCHITECTURES["swinir"].sizes[size],
    )


def _rcan(size: str, scale: int) -> nn.Module:
    return RCANCopy(scale=scale, rgb_range=255, **ARCHITECTURES["rcan"].sizes[size])


def _nafnet(size: str, scale: int) -> nn.Module:
    return NAFNet(img_channel=3, **ARCHITECTURES["nafnet"].sizes[size])


def _restormer(size: str, scale: int) -> nn.Module:
    return Restormer(**ARCHITECTURES["restormer"].sizes[size])


def _bicubic(size: str, scale: int) -> nn.Module:
    return BicubicUpsampler(scale)


def _input(size: str, scale: int) -> nn.Module:
    return nn.Identity()  # the degraded input, scored as it is


BUILDERS: dict[str, Callable[[str, int], nn.Module]] = {
    "swinir": _swinir,
    "rcan": _rcan,
    "nafnet": _nafnet,
    "restormer": _restormer,
    "bicubic": _bicubic,
    "input": _input,
}


def build_model(arch: str, size: str, scale: int) -> nn.Module:
    """Build ``arch`` at ``size`` for ``scale`` (1 for deblurring / deraining)."""
    if arch not in BUILDERS:
        raise ZooError(f"unknown architecture '{arch}'; choose from {', '.join(BUILDERS)}")
    if size not in SIZES:
        raise ZooError(f"unknown size '{size}'; choose from {', '.join(SIZES)}")
    tasks = ARCHITECTURES[arch].tasks
    if "sr" in tasks and scale == 1:
        raise ZooError(f"'{arch}' is a super-resolution model; it needs scale 2, 3 or 4")
    if "sr" not in tasks and scale != 1:
        raise ZooError(f"'{arch}' restores at scale 1 ({' / '.join(tasks)}), not x{scale}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.meshgrid", category=UserWarning)  # upstream SwinIR
        return BUILDERS[arch](size, scale)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
