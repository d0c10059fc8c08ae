"""The typed run settings: one pydantic model describes a whole run (the method's per-term
settings are in ``settings/method.py``).

Every section forbids unknown keys so that a misspelt ``--set`` fails at once. Defaults
follow the paper and the authors' released code (see ``docs/method.md``); presets in
``presets/`` only state what differs from them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from dckd_cli.catalog.architectures import ARCH_CHOICES, SIZES, archs_for, pad_multiple
from dckd_cli.catalog.tasks import SCALES, TASK_NAMES, TASKS
from dckd_cli.settings.method import MethodSettings, Section
from dckd_cli.settings.migrate import migrate

Task = Literal[TASK_NAMES]  # type: ignore[valid-type]
ARCH_FORM = re.compile(r"[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?")  # a family name or package.module:function
Size = Literal[SIZES]  # type: ignore[valid-type]


class ProgressiveStage(Section):
    """One stage of a progressive schedule: up to iteration ``until``, ``patch``-pixel inputs, batches of ``batch``."""

    until: int = Field(ge=1)
    patch: int = Field(ge=8)
    batch: int = Field(ge=1)


class DataSettings(Section):
    """Where images come from and how training samples are cut."""

    root: Path | None = Field(
        default_factory=lambda: Path(os.environ["DCKD_DATA"]) if os.environ.get("DCKD_DATA") else None,
        description="folder holding the named benchmarks and training sets (env DCKD_DATA)",
    )
    train: list[str] = Field(
        default_factory=lambda: ["builtin"], min_length=1, description="training folders, names or 'builtin'"
    )
    val: str = Field(
        default="builtin-train",
        description="set the periodic validation (and the 'best' checkpoint) uses; not a test set",
    )
    val_limit: int | None = Field(default=None, ge=1, description="validate on the first N images of data.val only")
    val_is_test: bool = Field(
        default=False, description="accept a validation set that is also a test set ('best' is then chosen on it)"
    )
    test: list[str] = Field(default_factory=lambda: ["builtin"], min_length=1, description="benchmarks for `evaluate`")
    lr_source: Literal["auto", "file", "matlab"] = Field(
        default="auto",
        description="SR inputs: official LR files when present (auto), always (file), or made on the fly",
    )
    patch_size: int = Field(default=48, ge=8, description="training patch side in input (LQ) pixels")
    batch_size: int = Field(default=16, ge=1)
    progressive: list[ProgressiveStage] = Field(
        default_factory=list,
        description="progressive patch / batch schedule (Restormer): [{until: ITER, patch: P, batch: B}, ...], "
        "the last stage to the end; empty: data.patch_size and data.batch_size throughout",
    )
    augment: bool = Field(default=True, description="random flips and 90-degree rotations")
    workers: int | None = Field(
        default=None,
        ge=0,
        description="DataLoader worker processes per training process; empty: none on the CPU (the step needs "
        "the cores), else the cores shared among this machine's training processes, at most 8",
    )
    skip_bad_images: bool = Field(
        default=False, description="leave unreadable training images out (with a warning) instead of refusing the run"
    )

    @model_validator(mode="before")
    @classmethod
    def _first_stage(cls, raw: Any) -> Any:
        """With a progressive schedule, patch_size / batch_size are its first stage's (what a dry
        run and the estimates time)."""
        stages = raw.get("progressive") if isinstance(raw, dict) else None
        if isinstance(stages, list) and stages and isinstance(stages[0], dict):
            first = {"patch_size": stages[0].get("patch"), "batch_size": stages[0].get("batch")}
            for key, value in first.items():
                given = raw.get(key)
                if given is not None and value is not None and str(given) != str(value):
                    stage = "patch" if key == "patch_size" else "batch"
                    raise ValueError(
                        f"{key} {given} conflicts with progressive (its first stage's {stage} is {value}); "
                        "set data.progressive=[] to train at one size throughout, or change the stages"
                    )
            raw = {**raw, **first}
        return raw

    def patch_sides(self) -> dict[str, int]:
        """Every training patch side, by the setting that names it (each progressive stage's too)."""
        sides = {"data.patch_size": self.patch_size}
        return sides | {f"data.progressive[{k}].patch": stage.patch for k, stage in enumerate(self.progressive)}

    @model_validator(mode="after")
    def _stages_in_order(self) -> DataSettings:
        untils = [stage.until for stage in self.progressive]
        if any(b <= a for a, b in zip(untils, untils[1:])):
            raise ValueError(f"progressive: the stages' 'until' iterations must increase (got {untils})")
        return self

    @model_validator(mode="after")
    def _val_not_test(self) -> DataSettings:
        def key(name: str) -> str:
            path = Path(name).expanduser()
            return str(path.resolve()) if path.exists() else name.lower()

        if not self.val_is_test and key(self.val) in {key(t) for t in self.test}:
            raise ValueError(
                f"val '{self.val}' is also a test set, so 'best' would be chosen on the test set; validate on "
                "held-out images (e.g. val=DIV2K/DIV2K_valid_HR with val_limit=10) or set data.val_is_test=true"
            )
        return self


class ModelSpec(Section):
    """One network: a family of the architecture table at a named size, any family spandrel
    knows (``dckd models`` lists them), or the user's own ``package.module:function``; with
    constructor options and, optionally, weights."""

    arch: str = Field(
        default="swinir",
        description=f"{', '.join(ARCH_CHOICES)}, any spandrel family (e.g. SPAN; `dckd models`), or "
        "package.module:function returning an nn.Module",
    )
    size: Size = "teacher"
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="constructor options (over the size's hyperparameters; `dckd models FAMILY` lists them)",
    )
    checkpoint: Path | None = Field(
        default=None, description="teacher: weights (official release when empty); student: warm-start weights"
    )

    @field_validator("arch")
    @classmethod
    def _known_form(cls, arch: str) -> str:
        """A table name in any case becomes the table's; a spandrel family is checked when built."""
        if arch.lower() in ARCH_CHOICES:
            return arch.lower()
        if not ARCH_FORM.fullmatch(arch):
            raise ValueError(
                f"'{arch}' is not an architecture: use {', '.join(ARCH_CHOICES)}, a spandrel family name "
                "(`dckd models`) or package.module:function"
            )
        return arch


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
    fused: bool | None = Field(
        default=None, description="the fused (one-kernel) Adam step; empty: on with CUDA, off on the CPU"
    )
    non_finite: Literal["stop", "skip"] = Field(
        default="stop", description="a NaN / infinite loss: stop the run (default) or skip that step with a warning"
    )


class RuntimeSettings(Section):
    seed: int = 0
    device: Literal["auto", "cpu"] = Field(
        default="auto", description="auto: what Accelerate finds (GPUs when present); cpu: the CPU even with a GPU"
    )
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    channels_last: bool | None = Field(
        default=None,
        description="networks and inputs in channels-last memory format; empty: on the CPU for the mostly "
        "convolutional networks (faster there, docs/performance.md), off with CUDA",
    )
    compile: list[Literal["student", "teacher", "encoder", "history"]] = Field(
        default_factory=list, description="networks to run through torch.compile, e.g. [student, teacher]"
    )
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = "default"
    compile_backend: str = Field(default="inductor", description="torch.compile backend (inductor; eager to debug)")
    compile_freezing: bool | None = Field(
        default=None,
        description="a compiled teacher or encoder gets its weights folded into its no-grad graphs (inductor "
        "freezing; prepacked for oneDNN on the CPU); empty: on the CPU (the encoder's no-grad pass took 0.93x "
        "the time, docs/performance.md), off with CUDA",
    )
    tf32: bool | None = Field(
        default=None, description="TF32 matmuls and convolutions on CUDA; empty: on with CUDA (off on the CPU)"
    )
    cudnn_benchmark: bool | None = Field(
        default=None,
        description="cuDNN picks the fastest kernels per input shape; empty: on with CUDA unless runtime.deterministic",
    )
    frozen_bf16: bool = Field(
        default=False,
        description="run only the frozen networks (teacher, history model; the encoder's passes too with "
        "method.encoder.autocast) in bfloat16; the student and its gradients stay in the step's precision",
    )
    keep_host_memory: bool | None = Field(
        default=None,
        description="keep freed host memory for the next step instead of returning it to the system (glibc), "
        "which costs a page fault per 4 KB each step; empty: on when computing on the CPU (a DCKD step took "
        "0.82x the time there, for about 15 % more peak memory; docs/performance.md)",
    )
    deterministic: bool = Field(
        default=False,
        description="deterministic GPU kernels, so GPU runs and resumes repeat bitwise (slower; CPU runs always do)",
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        description="CPU threads per process; empty: the cores divided among this machine's training processes. "
        "Several runs side by side: give each cores / runs",
    )
    log_every: int = Field(default=100, ge=1)
    val_every: int = Field(default=5_000, ge=1)
    save_every: int = Field(default=5_000, ge=1)
    log_with: Literal["none", "tensorboard", "wandb"] = Field(
        default="none", description="also log to TensorBoard (run folder's logs/) or Weights & Biases"
    )
    tile: int | None = Field(default=None, ge=8, description="evaluate large images in LQ tiles of this side")
    tile_overlap: int = Field(default=16, ge=0)
    teacher_cache: Path | None = Field(
        default=None,
        description="folder memoising teacher outputs by input (reused across runs on the same data; "
        "not used by methods that read teacher features)",
    )

    @model_validator(mode="after")
    def _tiles(self) -> RuntimeSettings:
        if self.tile is not None and self.tile_overlap >= self.tile:
            raise ValueError(f"tile_overlap {self.tile_overlap} must be smaller than tile {self.tile}")
        return self


class GuardSettings(Section):
    """The collapse guard: each validation is compared with the task's reference row
    (bicubic / the degraded input, on the same images, the median of the per-image gaps) once
    the warm-up is over, and its mean PSNR with the run's best so far; the first time it falls
    more than ``margin_db`` below either, the run warns (or stops)."""

    action: Literal["warn", "stop", "off"] = Field(
        default="warn", description="warn once, stop the run (after saving 'last'), or off"
    )
    margin_db: float = Field(
        default=1.0, gt=0, description="a fall from the run's best, or below the reference row, that counts"
    )
    warmup: float = Field(
        default=0.25, ge=0, le=1, description="fraction of optim.iters before the reference row is checked"
    )
    min_iters: int = Field(default=100, ge=0, description="and not before this iteration (short runs)")


class RunSettings(Section):
    """Everything one run needs; validated once, written to the run folder."""

    task: Task = "sr"
    scale: Literal[SCALES] = 4  # type: ignore[valid-type]
    data: DataSettings = Field(default_factory=DataSettings)
    teacher: ModelSpec = Field(default_factory=ModelSpec)
    student: ModelSpec = Field(default_factory=ModelSpec)
    method: MethodSettings = Field(default_factory=MethodSettings)
    optim: OptimSettings = Field(default_factory=OptimSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    guard: GuardSettings = Field(default_factory=GuardSettings)
    output: Path | None = Field(default=None, description="run folder")

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, raw: object) -> object:
        # Scale and architectures default by task, so `--task deblur` alone is valid.
        if isinstance(raw, dict):
            raw = migrate(raw)
            task = raw.get("task", "sr")
            spec = TASKS.get(task, TASKS["sr"])  # an unknown task is reported by validation
            raw.setdefault("scale", max(spec.scales))
            default_arch = spec.default_arch
            for role in ("teacher", "student"):
                spec = raw.setdefault(role, {})
                if isinstance(spec, dict):
                    spec.setdefault("arch", default_arch)
                    spec.setdefault("size", role)
        return raw

    @model_validator(mode="after")
    def _task_fits(self) -> RunSettings:
        scales = TASKS[self.task].scales
        if self.scale not in scales:
            if scales == (1,):
                raise ValueError(f"task '{self.task}' restores at scale 1; set scale=1")
            raise ValueError(f"task '{self.task}' needs scale {', '.join(map(str, scales[:-1]))} or {scales[-1]}")
        allowed = archs_for(self.task)
        for role in ("teacher", "student"):
            arch = getattr(self, role).arch
            if arch not in ARCH_CHOICES:  # another family or the user's own: checked when it is built
                continue
            if arch not in allowed:
                raise ValueError(
                    f"{role}.arch '{arch}' does not fit task '{self.task}'; choose from {', '.join(allowed)}"
                )
            multiple = pad_multiple(arch)
            for key, patch in self.data.patch_sides().items():
                if patch % multiple:
                    raise ValueError(
                        f"{key} {patch} is not a multiple of {multiple}, which {role}.arch '{arch}' needs; "
                        f"use {patch - patch % multiple or multiple} or {patch - patch % multiple + multiple}"
                    )
        return self
