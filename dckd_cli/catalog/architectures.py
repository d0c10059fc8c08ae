"""One table of the architectures: sizes, parameter counts, official weights, feature taps,
pad multiple and the spandrel architecture each comes from.

Sizes: ``teacher`` and ``student`` are the paper's pairs (the paper's appendix table, docs/method.md);
``lite`` (about 0.25M parameters), ``small`` and ``tiny`` are CPU-sized members of the same
families: ``lite`` for CPU experiments in a regime where a student is capacity-limited
but not starved, ``small`` and ``tiny`` for demos and tests.
``models/zoo.py`` builds from these hyperparameters; settings, FAKD and help texts read
the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SIZES = ("teacher", "student", "lite", "small", "tiny")

_SWINIR_URL = (
    "https://github.com/JingyunLiang/SwinIR/releases/download/v0.0/001_classicalSR_DIV2K_s48w8_SwinIR-M_x{s}.pth"
)
_FIXED_SIZE = "exported graph keeps the traced input size (onnxruntime refuses any other); use safetensors"
_RESTORMER_URL = "https://github.com/swz30/Restormer/releases/download/v1.0/{name}.pth"


@dataclass(frozen=True)
class Official:
    """An official checkpoint: its file name and direct URL (None: no direct link, see ``where``)."""

    filename: str
    url: str | None = None
    where: str = ""


@dataclass(frozen=True)
class Architecture:
    tasks: tuple[str, ...]
    sizes: dict[str, dict[str, Any]]
    params: dict[str, str]  # paper sizes, as the README states them
    spandrel: str  # module under spandrel(_extra_arches).architectures
    official: dict[tuple[str, int], Official] = field(default_factory=dict)  # (task, scale) -> weights
    feature_taps: tuple[str, ...] = ()  # FAKD default: the deepest body features before reconstruction
    pad_multiple: int = 1  # inputs must be a multiple of this (U-Net depth)
    export_refused: dict[str, str] = field(default_factory=dict)  # format -> why it cannot be exported
    reference: bool = False  # a weightless reference row (bicubic for SR, the degraded input otherwise)


ARCHITECTURES: dict[str, Architecture] = {
    "swinir": Architecture(
        tasks=("sr",),
        sizes={
            "teacher": {"embed_dim": 180, "depths": [6] * 6, "num_heads": [6] * 6},
            "student": {"embed_dim": 60, "depths": [6] * 4, "num_heads": [6] * 4},
            "lite": {"embed_dim": 24, "depths": [2] * 2, "num_heads": [4] * 2},
            "small": {"embed_dim": 48, "depths": [4] * 2, "num_heads": [4] * 2},
            "tiny": {"embed_dim": 24, "depths": [2], "num_heads": [4]},
        },
        params={"teacher": "11.9M", "student": "1.2M"},
        spandrel="SwinIR",
        official={
            ("sr", s): Official(_SWINIR_URL.format(s=s).rsplit("/", 1)[1], _SWINIR_URL.format(s=s)) for s in (2, 3, 4)
        },
        feature_taps=("conv_after_body",),
        export_refused={
            reason_format: "SwinIR computes its shifted-window attention mask and window padding in Python from "
            "the input size, so the exported graph is right at one size only (torch.export fails; tracing bakes "
            "one size in); use safetensors"
            for reason_format in ("onnx", "torchscript")
        },
    ),
    "rcan": Architecture(
        tasks=("sr",),
        sizes={
            "teacher": {"n_feats": 64, "n_resgroups": 10, "n_resblocks": 20},
            "student": {"n_feats": 64, "n_resgroups": 10, "n_resblocks": 6},
            "lite": {"n_feats": 32, "n_resgroups": 2, "n_resblocks": 4, "reduction": 8},
            "small": {"n_feats": 32, "n_resgroups": 3, "n_resblocks": 4, "reduction": 8},
            "tiny": {"n_feats": 16, "n_resgroups": 2, "n_resblocks": 2, "reduction": 4},
        },
        params={"teacher": "15.6M", "student": "5.2M"},
        spandrel="RCAN",
        official={
            ("sr", s): Official(
                f"RCAN_BIX{s}.pt",
                where="the RCAN repository's README (models_ECCV2018RCAN.zip on Dropbox / Google Drive)",
            )
            for s in (2, 3, 4)
        },
        feature_taps=("body",),
    ),
    "nafnet": Architecture(
        tasks=("deblur", "derain"),
        sizes={
            "teacher": {"width": 32, "enc_blk_nums": [1, 1, 1, 28], "middle_blk_num": 1, "dec_blk_nums": [1, 1, 1, 1]},
            "student": {"width": 16, "enc_blk_nums": [1, 1, 1, 14], "middle_blk_num": 1, "dec_blk_nums": [1, 1, 1, 1]},
            "lite": {"width": 12, "enc_blk_nums": [1, 1, 1], "middle_blk_num": 1, "dec_blk_nums": [1, 1, 1]},
            "small": {"width": 16, "enc_blk_nums": [1, 1, 1, 2], "middle_blk_num": 1, "dec_blk_nums": [1, 1, 1, 1]},
            "tiny": {"width": 8, "enc_blk_nums": [1, 1], "middle_blk_num": 1, "dec_blk_nums": [1, 1]},
        },
        params={"teacher": "17.1M", "student": "2.7M"},
        spandrel="NAFNet",
        official={
            ("deblur", 1): Official(
                "NAFNet-GoPro-width32.pth", where="the NAFNet repository's README (Google Drive, GoPro width 32)"
            )
        },
        feature_taps=("middle_blks",),
        pad_multiple=16,
        export_refused={
            "torchscript": "NAFNet's layer norm is a custom autograd Function, which TorchScript cannot save; "
            "use safetensors or onnx"
        },
    ),
    "restormer": Architecture(
        tasks=("deblur", "derain"),
        sizes={
            "teacher": {"dim": 48, "num_blocks": [4, 6, 6, 8], "num_refinement_blocks": 4},
            "student": {"dim": 24, "num_blocks": [2, 3, 3, 4], "num_refinement_blocks": 2},
            "lite": {"dim": 8, "num_blocks": [1, 1, 1, 2], "num_refinement_blocks": 1},
            "small": {"dim": 16, "num_blocks": [1, 1, 2, 2], "num_refinement_blocks": 1},
            "tiny": {"dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1},
        },
        params={"teacher": "26.1M", "student": "3.8M"},
        spandrel="Restormer",
        official={
            ("deblur", 1): Official("motion_deblurring.pth", _RESTORMER_URL.format(name="motion_deblurring")),
            ("derain", 1): Official("deraining.pth", _RESTORMER_URL.format(name="deraining")),
        },
        feature_taps=("latent",),
        pad_multiple=8,
    ),
    # Efficient SR students the community trains (spandrel's families; built by models/families.py).
    # "student": the released configuration; parameter counts are checked in tests/catalog.
    "span": Architecture(
        tasks=("sr",),
        sizes={"student": {"feature_channels": 48}, "lite": {"feature_channels": 24}, "tiny": {"feature_channels": 8}},
        params={"student": "426K"},  # at inference, re-parameterised; 2.24M while training
        spandrel="SPAN",
        feature_taps=("conv_cat",),
        export_refused={
            "onnx": "SPAN re-parameterises its convolutions inside forward, which crashes torch's ONNX exporter "
            "(torch 2.14); use safetensors or torchscript"
        },
    ),
    "safmn": Architecture(
        tasks=("sr",),
        sizes={
            "student": {"dim": 36, "n_blocks": 8, "ffn_scale": 2.0},
            "lite": {"dim": 24, "n_blocks": 4, "ffn_scale": 2.0},
            "tiny": {"dim": 8, "n_blocks": 2, "ffn_scale": 2.0},
        },
        params={"student": "240K"},
        spandrel="SAFMN",
        feature_taps=("feats",),
        pad_multiple=8,
        export_refused={"onnx": "SAFMN's " + _FIXED_SIZE},
    ),
    "omnisr": Architecture(
        tasks=("sr",),
        sizes={
            "student": {"num_feat": 64, "block_num": 1, "res_num": 5, "window_size": 8},
            "lite": {"num_feat": 32, "block_num": 1, "res_num": 2, "window_size": 8},
            "tiny": {"num_feat": 16, "block_num": 1, "res_num": 1, "window_size": 8},
        },
        params={"student": "792K"},
        spandrel="OmniSR",
        feature_taps=("output",),
        export_refused={
            "onnx": "OmniSR's " + _FIXED_SIZE,
            "torchscript": "OmniSR's layer norm is a Python autograd Function, which tracing cannot save; "
            "use safetensors",
        },
    ),
    "dctlsa": Architecture(
        tasks=("sr",),
        sizes={
            "student": {"nf": 55, "num_modules": 6, "num_head": 5},
            "lite": {"nf": 24, "num_modules": 6, "num_head": 4},
            "tiny": {"nf": 16, "num_modules": 6, "num_head": 2},
        },
        params={"student": "885K"},
        spandrel="DCTLSA",
        feature_taps=("LR_conv",),
        export_refused={
            "onnx": "DCTLSA's " + _FIXED_SIZE,
            "torchscript": "DCTLSA's traced graph fails at other input sizes; use safetensors",
        },
    ),
    "bicubic": Architecture(tasks=("sr",), sizes={s: {} for s in SIZES}, params={}, spandrel="", reference=True),
    # The degraded input itself, scored against the target: the "Input" row of deraining tables.
    "input": Architecture(
        tasks=("deblur", "derain"), sizes={s: {} for s in SIZES}, params={}, spandrel="", reference=True
    ),
}
# 'auto': detect the architecture from a checkpoint's keys (spandrel).
ARCH_CHOICES = (*ARCHITECTURES, "auto")


def pad_multiple(arch: str) -> int:
    entry = ARCHITECTURES.get(arch)
    return entry.pad_multiple if entry else 1


# FAKD taps of detected (``arch=auto``) models, by spandrel's class name: the zoo's own
# families, and released models dckd packages or reproduces with (DCTLSA: its body output).
DETECTED_TAPS: dict[str, tuple[str, ...]] = {
    **{a.spandrel: a.feature_taps for a in ARCHITECTURES.values() if a.spandrel},
    "DCTLSA": ("LR_conv",),
}
REFERENCE_ARCHS = tuple(name for name, a in ARCHITECTURES.items() if a.reference)
MODEL_ARCHS = tuple(name for name, a in ARCHITECTURES.items() if not a.reference)


def archs_for(task: str) -> tuple[str, ...]:
    """The architectures (and 'auto') that restore ``task``."""
    return (*(name for name, a in ARCHITECTURES.items() if task in a.tasks), "auto")


def reference_for(task: str) -> str:
    """The weightless reference row of ``task``: bicubic (SR) or the input (scale-1 tasks)."""
    return next(name for name in REFERENCE_ARCHS if task in ARCHITECTURES[name].tasks)
