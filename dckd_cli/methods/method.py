"""A method built from its declaration: the networks its terms need, and the engine contract.

``loss_terms(lq, gt, student_out)`` returns ``{name: weight * term}`` for every declared term
with a non-zero weight, evaluated over one ``StepContext``; ``after_step`` refreshes slow
state (the history model); ``state_dict`` carries what a resume needs (generators, history).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from dckd_cli.catalog.architectures import ARCHITECTURES, DETECTED_TAPS
from dckd_cli.catalog.methods import MethodSpec
from dckd_cli.errors import DckdError
from dckd_cli.methods.context import StepContext
from dckd_cli.methods.feature_taps import FeatureTaps, TapError
from dckd_cli.methods.history_model import HistoryModel
from dckd_cli.methods.label_consistency import ConsistencyTargets
from dckd_cli.methods.negatives import negative_inputs
from dckd_cli.methods.terms import TERMS
from dckd_cli.settings.schema import RunSettings


class MethodError(DckdError):
    """Settings that a method cannot run with (found when it is built, before any step)."""


@dataclass(frozen=True)
class EncoderPlan:
    """What one encoder pass computes: the levels of ``dcl`` (empty if off) and ``ce``'s latents."""

    levels: tuple[int, ...] = ()
    latents: bool = False


def active_weights(spec: MethodSpec, settings: RunSettings) -> dict[str, float]:
    """The declared terms with a non-zero weight, and their weights (a zero weight turns a term off)."""
    weights = settings.method.weights
    return {t: float(getattr(weights, t)) for t in spec.terms if getattr(weights, t) > 0}


def needs_of(terms: Iterable[str]) -> frozenset[str]:
    """The networks and quantities ``terms`` need (``teacher``, ``taps``, ``encoder``, ...)."""
    return frozenset().union(*(TERMS[t].needs for t in terms))


# The released code's per-level weights (VQGAN, 5 levels); an encoder with fewer levels
# takes the last entries (the deepest levels weigh most).
RELEASED_LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


class Method:
    def __init__(
        self, name: str, spec: MethodSpec, settings: RunSettings, student: nn.Module, teacher: nn.Module | None
    ):
        self.name, self.spec, self.settings = name, spec, settings
        self.iteration = 0  # iterations done (the engine sets it on resume, after_step after each step)
        cfg = settings.method
        self.weights = active_weights(spec, settings)
        if not self.weights:
            keys = ", ".join(f"method.weights.{t}" for t in spec.terms)
            raise MethodError(f"method '{name}': every term has weight 0; set one of {keys} above 0")
        needs = needs_of(self.weights)
        self.student, self.teacher = student, teacher
        if "teacher" in needs and teacher is None:
            raise MethodError(f"method '{name}' needs a teacher")
        self.taps = self._taps(settings, student, teacher) if "taps" in needs else None
        self.encoder = None
        self.encoder_plan = EncoderPlan()
        if "encoder" in needs:
            self.encoder = self._encoder(settings)
            if "ce" in self.weights and getattr(self.encoder, "codebook", None) is None:
                raise MethodError(
                    f"method.weights.ce: the encoder {settings.method.encoder.checkpoint} has no codebook, so the "
                    "distribution mapping (L_ce) cannot run; set method.weights.ce=0 (DCR only) or use a VQGAN encoder"
                )
            levels = tuple(self.layers) if "dcl" in self.weights else ()
            self.encoder_plan = EncoderPlan(levels, latents="ce" in self.weights)
        self.history: HistoryModel | None = None
        self.generator: torch.Generator | None = None
        self.negative_source: Callable[[StepContext], torch.Tensor] = _no_negatives
        if "negatives" in needs:
            self._negatives(settings)
        self.consistency = ConsistencyTargets(cfg.lcr, settings.runtime.seed) if "consistency" in needs else None

    # -- building -----------------------------------------------------------------------

    @staticmethod
    def _taps(settings: RunSettings, student: nn.Module, teacher: nn.Module | None) -> tuple[FeatureTaps, FeatureTaps]:
        assert teacher is not None
        cfg = settings.method.fakd
        s_paths = cfg.student_layers or _default_taps(settings.student.arch, student)
        t_paths = cfg.teacher_layers or _default_taps(settings.teacher.arch, teacher)
        if not s_paths or len(s_paths) != len(t_paths):
            raise TapError(
                "fakd needs as many teacher as student layers: set method.fakd.student_layers "
                "and method.fakd.teacher_layers (module paths)"
            )
        return FeatureTaps(student, s_paths, "student"), FeatureTaps(teacher, t_paths, "teacher")

    def _encoder(self, settings: RunSettings) -> nn.Module:
        from dckd_cli.models.vqgan import resolve_encoder

        cfg = settings.method.encoder
        encoder = resolve_encoder(cfg.checkpoint, cfg.input_range)
        layers = cfg.layers if cfg.layers is not None else list(range(encoder.levels))
        if max(layers) >= encoder.levels:
            raise MethodError(
                f"method.encoder.layers {layers}: this encoder has levels 0..{encoder.levels - 1}; "
                f"choose layers among them"
            )
        weights = cfg.layer_weights if cfg.layer_weights is not None else RELEASED_LAYER_WEIGHTS[-len(layers) :]
        if len(weights) != len(layers):
            raise MethodError(
                f"method.encoder.layers {layers}: give method.encoder.layer_weights, one weight per layer"
            )
        self.layers, self.layer_weights = layers, list(weights)
        return encoder

    def _negatives(self, settings: RunSettings) -> None:
        cfg = settings.method.dcl
        if self.spec.negatives == "batch":
            if settings.data.batch_size < 2:
                raise MethodError(
                    f"method '{self.name}' takes its negatives from the other images of a batch; "
                    "set data.batch_size to 2 or more"
                )
            self.negative_source = _in_batch_negatives
            return
        self.history = HistoryModel(self.student, cfg.history, settings.optim.iters)
        self.generator = torch.Generator().manual_seed(settings.runtime.seed + 1)
        self.negative_source = _history_negatives

    # -- the engine contract ------------------------------------------------------------

    def loss_terms(self, lq: torch.Tensor, gt: torch.Tensor, student_out: torch.Tensor) -> dict[str, torch.Tensor]:
        ctx = StepContext(self, lq, gt, student_out)
        return {
            name: weight * TERMS[name].compute(ctx) if self._on(name) else student_out.new_zeros(())
            for name, weight in self.weights.items()
        }

    def _on(self, term: str) -> bool:
        """``dcl`` waits ``method.dcl.start`` iterations (DCR off while a student from scratch is poor)."""
        return term != "dcl" or self.iteration >= self.settings.method.dcl.start

    def to(self, device: torch.device) -> None:
        """Move the method's own networks (encoder, history model) to ``device``."""
        if self.encoder is not None:
            self.encoder.to(device)
        if self.history is not None:
            self.history.model.to(device)

    def after_step(self, iteration: int, ema_student: nn.Module) -> None:
        self.iteration = iteration
        if self.history is not None:
            source = ema_student if self.settings.method.dcl.history.source == "ema" else self.student
            self.history.maybe_update(iteration, source)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state: dict[str, torch.Tensor] = {}
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        if self.history is not None:
            state |= {f"history.{k}": v for k, v in self.history.model.state_dict().items()}
        if self.consistency is not None:
            state["lcr_generator"] = self.consistency.generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if self.generator is not None:
            self.generator.set_state(state["generator"])
        if self.history is not None:
            self.history.model.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("history.")})
        if self.consistency is not None:
            self.consistency.generator.set_state(state["lcr_generator"])


def _default_taps(arch: str, model: nn.Module) -> list[str]:
    """The catalog's FAKD taps for ``arch``; for a detected model, by its class name."""
    if arch == "auto":
        return list(DETECTED_TAPS.get(type(model).__name__, ()))
    return list(ARCHITECTURES[arch].feature_taps) if arch in ARCHITECTURES else []


def _no_negatives(ctx: StepContext) -> torch.Tensor:
    raise AssertionError("this method has no negatives")


def _history_negatives(ctx: StepContext) -> torch.Tensor:
    """The history model's restorations of K degraded copies of the LQ input, in one batched pass."""
    method = ctx.method
    assert method.history is not None and method.generator is not None
    inputs = negative_inputs(ctx.lq, ctx.settings.dcl.negatives, method.generator)
    out = method.history(inputs.flatten(0, 1))
    return out.view(inputs.shape[0], ctx.lq.shape[0], *out.shape[1:])


def _in_batch_negatives(ctx: StepContext) -> torch.Tensor:
    """CSD-style fixed negatives: the teacher's restorations of the other images (shifts 1..K)."""
    positive = ctx.teacher_out
    shifts = range(1, min(ctx.settings.dcl.negatives.count, positive.shape[0] - 1) + 1)
    return torch.stack([positive.roll(s, dims=0) for s in shifts])
