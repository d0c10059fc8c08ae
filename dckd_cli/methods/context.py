"""One training step's shared quantities, each computed once and only when a term asks.

A term reads ``ctx.teacher_out``, ``ctx.tapped_features``, ``ctx.anchor`` /
``ctx.targets`` (encoder features), ``ctx.negatives`` or ``ctx.lcr_target``; the first read
computes the value from the run's built resources (``methods/resources.py``), later reads
reuse it. So a method that combines terms never runs the teacher, the encoder or the history
model twice in a step, and a term that is off costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from dckd_cli.methods.resources import Resources
from dckd_cli.settings.method import MethodSettings


@dataclass
class EncoderTargets:
    """Encoder features of the positive ``(N, ...)`` and negatives ``(K, N, ...)`` per level, and
    the positive's pre-quantisation latents (None unless ``ce`` is on)."""

    positive: list[torch.Tensor]
    negatives: list[torch.Tensor]
    latents: torch.Tensor | None


class StepContext:
    def __init__(
        self,
        resources: Resources,
        settings: MethodSettings,
        lq: torch.Tensor,
        gt: torch.Tensor,
        student_out: torch.Tensor,
    ):
        self.resources, self.settings = resources, settings
        self.lq, self.gt, self.student_out = lq, gt, student_out

    @cached_property
    def teacher_out(self) -> torch.Tensor:
        """The frozen teacher's restoration of ``lq`` (through the output cache when set); no graph."""
        teacher = self.resources.teacher
        assert teacher is not None
        with torch.no_grad():
            return teacher(self.lq)

    @cached_property
    def tapped_features(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Student and teacher features at the tapped layers (the teacher runs first if it has not)."""
        taps = self.resources.taps
        assert taps is not None
        _ = self.teacher_out  # fills the teacher's taps; the student's filled in the engine's forward
        return taps[0].collect(), taps[1].collect()

    @cached_property
    def negatives(self) -> torch.Tensor:
        """``(K, N, C, H', W')`` negative restorations for ``dcl``."""
        source = self.resources.negatives
        assert source is not None
        return source(self.lq, lambda: self.teacher_out)

    @cached_property
    def anchor(self) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Encoder features (levels of ``dcl``) and latents (for ``ce``) of the student output: with graph."""
        encoder = self.resources.encoder
        assert encoder is not None
        return encoder.network(self.student_out, encoder.levels, latents=encoder.latents)

    @cached_property
    def targets(self) -> EncoderTargets:
        """Positive (and negatives, when ``dcl`` is on) through the encoder in one no-grad pass."""
        encoder = self.resources.encoder
        assert encoder is not None
        positive = self.teacher_out
        n = positive.shape[0]
        batch = torch.cat([positive, self.negatives.flatten(0, 1)]) if encoder.levels else positive
        with torch.no_grad():
            feats, latents = encoder.network(batch, encoder.levels, latents=encoder.latents)
        k = (batch.shape[0] - n) // n
        return EncoderTargets(
            positive=[f[:n] for f in feats],
            negatives=[f[n:].view(k, n, *f.shape[1:]) for f in feats],
            latents=None if latents is None else latents[:n],
        )

    @cached_property
    def lcr_target(self) -> torch.Tensor:
        consistency, teacher = self.resources.consistency, self.resources.teacher
        assert consistency is not None and teacher is not None
        return consistency.target(teacher, self.lq, lambda: self.teacher_out)
