"""The typed run settings: one pydantic model describes a whole run.

Every section forbids unknown keys so that a misspelt ``--set`` fails at once. Defaults
follow the paper and the authors' released code (see ``docs/method.md``); presets in
``presets/`` only state what differs from them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Task = Literal["sr", "deblur", "derain"]
Arch = Literal["swinir", "rcan", "nafnet", "restormer", "bicubic", "auto"]
Size = Literal["teacher", "student", "small", "tiny"]
MethodName = Literal["scratch", "logits", "fakd", "csd", "dukd", "dckd", "dckd-star"]

SR_ARCHS = ("swinir", "rcan", "bicubic", "auto")
RESTORATION_ARCHS = ("nafnet", "restormer", "auto")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataSettings(Section):
    """Where images come from and how training samples are cut."""

    root: Path | None = Field(
        default_factory=lambda: Path(os.environ["DCKD_DATA"]) if os.environ.get("DCKD_DATA") else None,
        description="folder holding the named benchmarks and training sets (env DCKD_DATA)",
    )
    train: list[str] = Field(default_factory=lambda: ["builtin"], description="training folders, names or 'builtin'")
    val: str = Field(default="builtin", description="benchmark used for periodic validation")
    test: list[str] = Field(default_factory=lambda: ["builtin"], description="benchmarks for `evaluate`")
    lr_source: Literal["auto", "file", "matlab"] = Field(
        default="auto",
        description="SR inputs: official LR files when present (auto), always (file), or made on the fly",
    )
    patch_size: int = Field(default=48, ge=8, description="training patch side in input (LQ) pixels")
    batch_size: int = Field(default=16, ge=1)
    augment: bool = Field(default=True, description="random flips and 90-degree rotations")
    workers: int = Field(default=0, ge=0, description="DataLoader worker processes")


class ModelSpec(Section):
    """One network: an architecture from the zoo at a paper size, optionally with weights."""

    arch: Arch = "swinir"
    size: Size = "teacher"
    checkpoint: Path | None = Field(
        default=None, description="teacher: weights (official release when empty); student: warm-start weights"
    )


class LossWeights(Section):
    """Weights of the named loss terms (Eq. 10); a zero weight switches a term off."""

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


class MethodSettings(Section):
    name: MethodName = "dckd"
    weights: LossWeights = Field(default_factory=LossWeights)
    fakd: FakdSettings = Field(default_factory=FakdSettings)


class OptimSettings(Section):
    """Optimiser and schedule; the SR default is the paper's Adam recipe."""

    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = Field(default=1e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = Field(default=1e-8, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    scheduler: Literal["multistep", "cosine", "constant"] = "multistep"
    milestones: list[int] = Field(default_factory=lambda: [100_000, 200_000])
    gamma: float = Field(default=0.1, gt=0)
    eta_min: float = Field(default=1e-7, ge=0)
    iters: int = Field(default=250_000, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    ema_decay: float = Field(default=0.999, ge=0, lt=1)
    ema_warmup: bool = Field(
        default=True, description="decay min(ema_decay, (1+t)/(10+t)) so short runs track the student"
    )
    grad_clip: float | None = Field(default=None, gt=0)


class RuntimeSettings(Section):
    seed: int = 0
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    log_every: int = Field(default=100, ge=1)
    val_every: int = Field(default=5_000, ge=1)
    save_every: int = Field(default=5_000, ge=1)
    tile: int | None = Field(default=None, ge=8, description="evaluate large images in LQ tiles of this side")
    tile_overlap: int = Field(default=16, ge=0)


class RunSettings(Section):
    """Everything one run needs; validated once, written to the run folder."""

    task: Task = "sr"
    scale: Literal[1, 2, 3, 4] = 4
    data: DataSettings = Field(default_factory=DataSettings)
    teacher: ModelSpec = Field(default_factory=ModelSpec)
    student: ModelSpec = Field(default_factory=ModelSpec)
    method: MethodSettings = Field(default_factory=MethodSettings)
    optim: OptimSettings = Field(default_factory=OptimSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    output: Path | None = Field(default=None, description="run folder")

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, raw: object) -> object:
        # Scale and architectures default by task, so `--task deblur` alone is valid.
        if isinstance(raw, dict):
            task = raw.get("task", "sr")
            raw.setdefault("scale", 4 if task == "sr" else 1)
            default_arch = "swinir" if task == "sr" else "nafnet"
            for role in ("teacher", "student"):
                spec = raw.setdefault(role, {})
                if isinstance(spec, dict):
                    spec.setdefault("arch", default_arch)
                    spec.setdefault("size", role)
        return raw

    @model_validator(mode="after")
    def _task_fits(self) -> RunSettings:
        if self.task == "sr" and self.scale == 1:
            raise ValueError("task 'sr' needs scale 2, 3 or 4")
        if self.task != "sr" and self.scale != 1:
            raise ValueError(f"task '{self.task}' restores at scale 1; set scale=1")
        allowed = SR_ARCHS if self.task == "sr" else RESTORATION_ARCHS
        for role in ("teacher", "student"):
            arch = getattr(self, role).arch
            if arch not in allowed:
                raise ValueError(
                    f"{role}.arch '{arch}' does not fit task '{self.task}'; choose from {', '.join(allowed)}"
                )
        return self
