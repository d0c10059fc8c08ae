"""The one place that builds a method from settings: its active terms, then what they need.

Each need (``terms.NEEDS``) has one builder here; a need that cannot be met (no teacher, an
encoder without a codebook for ``latents``, a batch too small for in-batch negatives) is a
``MethodError`` naming the setting, raised before any step. Declarations: ``catalog/methods.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from torch import nn

from dckd_cli.catalog.architectures import ARCHITECTURES, DETECTED_TAPS
from dckd_cli.catalog.methods import METHODS, MethodSpec
from dckd_cli.errors import DckdError
from dckd_cli.methods.consistency_targets import ConsistencyTargets
from dckd_cli.methods.feature_taps import FeatureTaps, TapError, derived_taps
from dckd_cli.methods.history_model import HistoryModel
from dckd_cli.methods.method import Method
from dckd_cli.methods.negatives import HistoryNegatives, InBatchNegatives
from dckd_cli.methods.resources import EncoderResource, Resources
from dckd_cli.methods.terms import NEEDS, TERMS, Need, needs_of
from dckd_cli.models.zoo import input_needs
from dckd_cli.settings.schema import RunSettings

# The released code's per-level weights (VQGAN, 5 levels); an encoder with fewer levels
# takes the last entries (the deepest levels weigh most).
RELEASED_LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


log = logging.getLogger(__name__)

# A run on real data with the packaged compact encoder (docs/results.md, docs/method.md).
PACKAGED_ENCODER_WARNING = (
    "method.encoder.checkpoint is empty: the packaged compact encoder is for the offline demos; on real data "
    "it made every DCKD student collapse in docs/results.md (22.4 dB on Set5, 6 dB below bicubic). Set "
    "method.encoder.checkpoint to 'imagenet' (the official VQGAN, downloaded once) or a pretrained "
    "tiny-autoencoder encoder file (README, 'Which encoder')"
)


class MethodError(DckdError):
    """Settings that a method cannot run with (found when it is built, before any step)."""


def method_spec(name: str) -> MethodSpec:
    if name not in METHODS:
        raise DckdError(f"method '{name}' is unknown; choose from {', '.join(METHODS)}")
    return METHODS[name]


def active_weights(settings: RunSettings) -> dict[str, float]:
    """The method's declared terms with a non-zero weight, and their weights (a zero weight turns a term off)."""
    weights = settings.method.weights
    return {t: float(getattr(weights, t)) for t in method_spec(settings.method.name).terms if getattr(weights, t) > 0}


def run_needs(settings: RunSettings) -> frozenset[Need]:
    """What the run's method, with its weights, needs built (``teacher`` among them or not)."""
    return needs_of(active_weights(settings))


FROZEN_BF16_WARNING = (
    "runtime.frozen_bf16 with dcl: bfloat16 rounds the teacher's and the history model's outputs by about as "
    "much as the distances dcl compares, and the DCKD students trained with it lost accuracy "
    "(docs/performance.md, 'bfloat16 and DCKD'); set runtime.frozen_bf16=false unless step time matters more"
)


class _Builder:
    """Fills ``Resources`` need by need, in ``NEEDS`` order (the order fixes the RNG draws)."""

    def __init__(self, settings: RunSettings, student: nn.Module, teacher: nn.Module | None, terms: list[str]):
        self.settings, self.student, self.terms = settings, student, terms
        self.resources = Resources(teacher=teacher, frozen_bf16=settings.runtime.frozen_bf16)

    def terms_needing(self, need: Need) -> list[str]:
        return [t for t in self.terms if need in TERMS[t].needs]

    def teacher(self) -> None:
        if self.resources.teacher is None:
            raise MethodError(f"method '{self.settings.method.name}' needs a teacher")

    def taps(self) -> None:
        s, teacher = self.settings, self.resources.teacher
        assert teacher is not None
        cfg = s.method.fakd
        s_paths = cfg.student_layers or _default_taps(s.student.arch, self.student)
        t_paths = cfg.teacher_layers or _default_taps(s.teacher.arch, teacher)
        for role, paths in (("student", s_paths), ("teacher", t_paths)):
            if not paths:
                arch = getattr(s, role).arch
                raise TapError(
                    f"fakd: no layer of {role}.arch '{arch}' keeps the input's size with feature channels; "
                    f"name one with method.fakd.{role}_layers (a module path)"
                )
        if len(s_paths) != len(t_paths):
            raise TapError(
                "fakd needs as many teacher as student layers: set method.fakd.student_layers "
                "and method.fakd.teacher_layers (module paths)"
            )
        self.resources.taps = FeatureTaps(self.student, s_paths, "student"), FeatureTaps(teacher, t_paths, "teacher")

    def features(self) -> None:
        self._encoder()

    def latents(self) -> None:
        encoder = self._encoder()
        if getattr(encoder.network, "codebook", None) is None:
            term = self.terms_needing("latents")[0]
            raise MethodError(
                f"method.weights.{term}: the encoder {self.settings.method.encoder.checkpoint} has no codebook, so "
                f"term '{term}' cannot run; set method.weights.{term}=0 or use a VQGAN encoder"
            )

    def _encoder(self) -> EncoderResource:
        """The encoder, built once for ``features`` and ``latents`` together."""
        if self.resources.encoder is not None:
            return self.resources.encoder
        from dckd_cli.models.vqgan import resolve_encoder

        cfg = self.settings.method.encoder
        if cfg.checkpoint is None and list(self.settings.data.train) != ["builtin"]:
            log.warning(PACKAGED_ENCODER_WARNING)
        network = resolve_encoder(cfg.checkpoint, cfg.input_range)
        layers = cfg.layers if cfg.layers is not None else list(range(network.levels))
        if max(layers) >= network.levels:
            raise MethodError(
                f"method.encoder.layers {layers}: this encoder has levels 0..{network.levels - 1}; "
                f"choose layers among them"
            )
        weights = cfg.layer_weights if cfg.layer_weights is not None else RELEASED_LAYER_WEIGHTS[-len(layers) :]
        if len(weights) != len(layers):
            raise MethodError(
                f"method.encoder.layers {layers}: give method.encoder.layer_weights, one weight per layer"
            )
        levels = tuple(layers) if self.terms_needing("features") else ()
        latents = bool(self.terms_needing("latents"))
        self.resources.encoder = EncoderResource(
            network, levels, list(weights), latents, cfg.recompute, cfg.autocast, cfg.chunk
        )
        return self.resources.encoder

    def negatives(self) -> None:
        s = self.settings
        cfg = s.method.dcl
        if method_spec(s.method.name).negatives == "batch":
            if s.data.batch_size < 2:
                raise MethodError(
                    f"method '{s.method.name}' takes its negatives from the other images of a batch; "
                    "set data.batch_size to 2 or more"
                )
            self.resources.negatives = InBatchNegatives(cfg.negatives.count)
            return
        if s.runtime.frozen_bf16:
            log.warning(FROZEN_BF16_WARNING)
        history = HistoryModel(self.student, cfg.history, s.optim.iters)
        self.resources.history = history
        self.resources.negatives = HistoryNegatives(history, cfg.negatives, s.runtime.seed)

    def consistency(self) -> None:
        self.resources.consistency = ConsistencyTargets(self.settings.method.lcr, self.settings.runtime.seed)


BUILDERS: dict[Need, Callable[[_Builder], None]] = {
    "teacher": _Builder.teacher,
    "taps": _Builder.taps,
    "features": _Builder.features,
    "latents": _Builder.latents,
    "negatives": _Builder.negatives,
    "consistency": _Builder.consistency,
}
assert tuple(BUILDERS) == NEEDS, "one builder per need, in the order of terms.NEEDS"


def build_method(settings: RunSettings, student: nn.Module, teacher: nn.Module | None) -> Method:
    weights = active_weights(settings)
    if not weights:
        keys = ", ".join(f"method.weights.{t}" for t in method_spec(settings.method.name).terms)
        raise MethodError(f"method '{settings.method.name}': every term has weight 0; set one of {keys} above 0")
    builder = _Builder(settings, student, teacher, list(weights))
    needs = needs_of(weights)
    for need in NEEDS:
        if need in needs:
            BUILDERS[need](builder)
    return Method(settings.method, weights, builder.resources, student)


def _default_taps(arch: str, model: nn.Module) -> list[str]:
    """The catalog's FAKD taps for ``arch`` (for a detected model, by its class name); for any
    other network, the rule of :func:`derived_taps`."""
    entry = ARCHITECTURES.get(arch)
    if entry is not None and entry.feature_taps:
        return list(entry.feature_taps)
    known = DETECTED_TAPS.get(type(model).__name__)
    return list(known) if known else derived_taps(model, input_needs(model))
