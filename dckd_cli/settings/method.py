"""The method's settings: which method, each loss term's weight and each term's own section.

A term's weight is ``method.weights.<term>`` (a field of ``LossWeights``, in the order terms
are computed and logged) and its settings ``method.<term>``. Defaults follow the paper and
the authors' released code (see ``docs/method.md``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dckd_cli.catalog.methods import METHOD_NAMES

MethodName = Literal[METHOD_NAMES]  # type: ignore[valid-type]
Degradation = Literal["noise", "blur", "resize", "mix"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class LossWeights(Section):
    """Weights of the named loss terms (Eq. 10); a zero weight switches a term off (it is not computed)."""

    rec: float = Field(default=1.0, ge=0)
    kd: float = Field(default=1.0, ge=0)
    fakd: float = Field(default=10.0, ge=0)
    dcl: float = Field(default=0.1, ge=0)
    ce: float = Field(default=0.001, ge=0)
    lcr: float = Field(default=1.0, ge=0)


class FakdSettings(Section):
    """Layers tapped (forward hooks, module paths) for FAKD; empty = the architecture's default."""

    student_layers: list[str] = Field(default_factory=list)
    teacher_layers: list[str] = Field(default_factory=list)


class EncoderSettings(Section):
    """The frozen VQGAN feature encoder that ``dcl`` and ``ce`` measure images with."""

    checkpoint: str | None = Field(
        default=None,
        description="VQGAN weights file, 'imagenet' (official f16-1024, cached or downloaded), or empty: packaged",
    )
    input_range: Literal["0,1", "-1,1"] = Field(
        default="0,1", description="'0,1' feeds images as the released code does; '-1,1' is what VQGAN was trained on"
    )
    layers: list[int] | None = Field(
        default=None, description="resolution levels tapped; empty: every level of the encoder"
    )
    layer_weights: list[float] | None = Field(
        default=None,
        description="weight per tapped level; empty: the released [1/32, 1/16, 1/8, 1/4, 1], its last entries "
        "for an encoder with fewer levels",
    )
    recompute: bool = Field(
        default=False,
        description="activation checkpointing of the student output's encoder pass, block by block: only each "
        "block's input is kept and its activations are recomputed in the backward, one block at a time (less "
        "memory, one more encoder forward per step)",
    )
    chunk: int | None = Field(
        default=None,
        ge=1,
        description="encode the targets (teacher output, negatives) this many images at a time and reduce each "
        "chunk of negatives to dcl's sums at once: their features are never all held and no per-negative "
        "difference is kept for the backward (less memory; dcl equal to float rounding); empty: one batched pass",
    )
    autocast: bool = Field(
        default=False,
        description="run the encoder's passes (the student output's and the targets') in the step's low "
        "precision (runtime.mixed_precision, runtime.frozen_bf16); off: in float32 whatever the step's "
        "precision (TF32 on CUDA with runtime.tf32), because bfloat16 rounds the features by about as much "
        "as a student near its teacher differs from it, and dcl and its gradient lose that difference",
    )

    @model_validator(mode="after")
    def _same_length(self) -> EncoderSettings:
        if self.layers is not None and (not self.layers or min(self.layers) < 0):
            raise ValueError("layers are resolution levels counted from 0 (at least one)")
        if self.layer_weights is not None and len(self.layer_weights) != len(self.layers or self.layer_weights):
            raise ValueError("layers and layer_weights need the same length")
        if self.layer_weights is not None and self.layers is None:
            raise ValueError("layer_weights needs layers (the levels they weigh)")
        return self


class NegativeSettings(Section):
    """Negatives of the dynamic contrastive regularisation: degraded LQ through the history model."""

    count: int = Field(default=5, ge=1, description="N, the clean LQ included (released: clean + 4 noisy)")
    include_clean: bool = True
    degradation: Degradation = "noise"
    noise_sigma: tuple[float, float] = Field(default=(1.0, 30.0), description="sigma range, in 8-bit levels")
    grey_prob: float = Field(default=0.5, ge=0, le=1)
    blur_kernel: tuple[int, int] = (3, 11)
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    resize_scale: tuple[float, float] = Field(default=(0.5, 0.9), description="down-then-up resize factor range")


class HistorySettings(Section):
    """theta_his <- alpha * theta_his + (1 - alpha) * theta_src when t % s == 0."""

    alpha: float = Field(default=0.1, ge=0, le=1)
    source: Literal["ema", "student"] = Field(default="ema", description="released code: ema; paper: student")
    steps: list[int] = Field(default_factory=lambda: [1000, 2000, 3000], description="update interval s per phase")
    breakpoints: list[float] = Field(
        default_factory=lambda: [0.4, 0.8],
        description="phase ends as fractions of optim.iters (released: 100k, 200k of 250k)",
    )

    @model_validator(mode="after")
    def _phases(self) -> HistorySettings:
        if len(self.steps) != len(self.breakpoints) + 1 or min(self.steps) < 1:
            raise ValueError("steps needs one positive interval per phase (len(breakpoints) + 1)")
        return self


class DclSettings(Section):
    """``dcl``, the contrastive term (Eq. 5), and where its negatives come from."""

    eps: float = Field(default=1e-7, gt=0)
    start: int = Field(
        default=0,
        ge=0,
        description="iterations before DCR switches on (L_dcl is not computed before); for runs from scratch",
    )
    negatives: NegativeSettings = Field(default_factory=NegativeSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)


class CeSettings(Section):
    """``ce``, the distribution mapping module: C = softmax(sign * d / temperature)."""

    sign: Literal[-1, 1] = Field(default=-1, description="-1: nearest code most likely (default); +1: as printed")
    temperature: float = Field(default=1.0, gt=0)
    form: Literal["paper", "released"] = Field(
        default="paper",
        description="paper: Eq. 9, -sum C_T log C_S; released: the authors' code, a cross-entropy that takes the "
        "already-softmaxed C_S as logits (a second softmax; see docs/method.md for its gradient)",
    )


class LcrSettings(Section):
    """``lcr``, DUKD-style label consistency: the teacher sees a transformed input."""

    prob: float = Field(default=0.5, ge=0, le=1)
    ops: list[Literal["hflip", "vflip", "transpose", "invert"]] = Field(
        default_factory=lambda: ["hflip", "vflip", "transpose", "invert"]
    )
    mode: Literal["batch", "per-sample"] = Field(
        default="batch",
        description="batch: with probability prob one op for the whole batch; per-sample (released code): each op "
        "applied to each sample independently with probability prob, so ops combine",
    )


class MethodSettings(Section):
    """Which method (a list of terms), each term's weight, and each term's own settings."""

    name: MethodName = "dckd"
    weights: LossWeights = Field(default_factory=LossWeights)
    fakd: FakdSettings = Field(default_factory=FakdSettings)
    encoder: EncoderSettings = Field(default_factory=EncoderSettings)
    dcl: DclSettings = Field(default_factory=DclSettings)
    ce: CeSettings = Field(default_factory=CeSettings)
    lcr: LcrSettings = Field(default_factory=LcrSettings)
