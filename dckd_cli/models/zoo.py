"""Teacher and student builders at the paper's sizes (the paper's appendix table; docs/method.md).

Architectures come from spandrel (SwinIR, RCAN, NAFNet) and spandrel-extra-arches
(Restormer); this module only fixes their hyperparameters. Every model maps an
``(N, 3, H, W)`` image in [0, 1] to its restoration in [0, 1] (not clamped).

Sizes and their hyperparameters: ``catalog/architectures.py``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

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
from dckd_cli.models.families import (
    Built,
    build_family,
    build_user,
    check_on_dummy,
    checked_options,
    is_user_model,
    options_key,
)


class ZooError(DckdError):
    """An unknown architecture or size."""


class RCANCopy(RCAN):
    """spandrel's RCAN scales its input in place; give it a copy so callers' tensors survive."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.clone())


def copy_inputs(model: nn.Module) -> nn.Module:
    """``model``, made to leave its input alone where its class writes into it (spandrel's RCAN,
    as spandrel detects it from a checkpoint): the class only changes ``forward``, so it is
    swapped in place, the weights untouched."""
    if type(model) is RCAN:
        model.__class__ = RCANCopy
    return model


def _swinir(hp: dict[str, Any], scale: int) -> nn.Module:
    # img_size 48 and window 8: the official "s48w8" DIV2K models the paper uses as teachers.
    base = {"img_size": 48, "window_size": 8, "img_range": 1.0, "mlp_ratio": 2.0, "upsampler": "pixelshuffle"}
    return SwinIR(upscale=scale, **{**base, "resi_connection": "1conv", **hp})


def _rcan(hp: dict[str, Any], scale: int) -> nn.Module:
    return RCANCopy(scale=scale, **{"rgb_range": 255, **hp})


def _nafnet(hp: dict[str, Any], scale: int) -> nn.Module:
    return NAFNet(img_channel=3, **hp)


def _restormer(hp: dict[str, Any], scale: int) -> nn.Module:
    return Restormer(**hp)


def _bicubic(hp: dict[str, Any], scale: int) -> nn.Module:
    return BicubicUpsampler(scale)


def _input(hp: dict[str, Any], scale: int) -> nn.Module:
    return nn.Identity()  # the degraded input, scored as it is


BUILDERS: dict[str, Callable[[dict[str, Any], int], nn.Module]] = {
    "swinir": _swinir,
    "rcan": _rcan,
    "nafnet": _nafnet,
    "restormer": _restormer,
    "bicubic": _bicubic,
    "input": _input,
}
NETWORK_CLASSES: dict[str, type[nn.Module]] = {"swinir": SwinIR, "rcan": RCAN, "nafnet": NAFNet, "restormer": Restormer}


def build_network(
    arch: str, size: str, scale: int, options: dict[str, Any] | None = None, where: str = "model"
) -> Built:
    """``arch`` for ``scale`` (1 for deblurring / deraining) and what running it needs.

    ``arch``: a family of the architecture table at ``size`` (its hyperparameters, with
    ``options`` on top), any family spandrel knows (its constructor's defaults and ``options``;
    ``size`` does not apply), or ``package.module:function`` (the user's own network). Every
    network but the table's own four is run once on a small input first (``check_on_dummy``).
    ``where``: the setting that named it, for messages (e.g. ``student.arch``).
    """
    options = dict(options or {})
    entry = ARCHITECTURES.get(arch)
    if entry is None:
        built = (
            build_user(arch, options, scale, where)
            if is_user_model(arch)
            else build_family(arch, options, scale, where)
        )
        check_on_dummy(built, scale, arch, where)
        return _tagged(built)
    if size not in SIZES:
        raise ZooError(f"unknown size '{size}'; choose from {', '.join(SIZES)}")
    if size not in entry.sizes:
        raise ZooError(f"{arch} has no size '{size}'; its sizes: {', '.join(entry.sizes)}")
    if "sr" in entry.tasks and scale == 1:
        raise ZooError(f"'{arch}' is a super-resolution model; it needs scale 2, 3 or 4")
    if "sr" not in entry.tasks and scale != 1:
        raise ZooError(f"'{arch}' restores at scale 1 ({' / '.join(entry.tasks)}), not x{scale}")
    hp = {**entry.sizes[size], **options}
    where_options = options_key(where)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.meshgrid", category=UserWarning)  # upstream SwinIR
        if arch in BUILDERS:
            if options:
                checked_options(NETWORK_CLASSES.get(arch, dict), options, arch, where_options)
            return _tagged(Built(BUILDERS[arch](hp, scale), entry.pad_multiple))
        built = build_family(entry.spandrel, hp, scale, where)
    return _tagged(Built(built.model, max(built.multiple, entry.pad_multiple), built.minimum))


def _tagged(built: Built) -> Built:
    tag_input_needs(built.model, built.multiple, built.minimum)
    return built


def tag_input_needs(model: nn.Module, multiple: int, minimum: int = 0) -> None:
    """The network carries its input multiple and minimum side (read by :func:`input_needs`)."""
    model.dckd_input_needs = (multiple, minimum)


def input_needs(model: nn.Module) -> tuple[int, int]:
    """The multiple an input's sides are padded to and the smallest side the network takes."""
    return getattr(model, "dckd_input_needs", (1, 0))


def build_model(arch: str, size: str, scale: int, options: dict[str, Any] | None = None) -> nn.Module:
    """Build ``arch`` at ``size`` for ``scale`` (1 for deblurring / deraining); see :func:`build_network`."""
    return build_network(arch, size, scale, options).model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
