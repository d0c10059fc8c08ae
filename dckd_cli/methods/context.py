"""One training step's shared quantities, each computed once and only when a term asks.

A term reads ``ctx.teacher_out``, ``ctx.tapped_features``, ``ctx.anchor`` /
``ctx.targets`` (encoder features), ``ctx.negatives`` or ``ctx.lcr_target``; the first read
computes the value from the run's built resources (``methods/resources.py``), later reads
reuse it. So a method that combines terms never runs the teacher, the encoder or the history
model twice in a step, and a term that is off costs nothing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import cached_property

import torch

from dckd_cli.losses.contrastive import PushSums
from dckd_cli.methods.resources import Resources
from dckd_cli.models.segments import recomputed
from dckd_cli.settings.method import MethodSettings


@dataclass
class EncoderTargets:
    """Encoder features of the positive ``(N, ...)`` and negatives ``(K, N, ...)`` per level (or,
    with ``method.encoder.chunk``, the negatives already reduced to ``dcl``'s push sums), and the
    positive's pre-quantisation latents (None unless ``ce`` is on)."""

    positive: list[torch.Tensor]
    negatives: list[torch.Tensor] | list[PushSums]
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

    def frozen(self) -> contextlib.AbstractContextManager:
        """Where frozen networks run: inference mode (no graph, no version counters), and in
        bfloat16 when ``runtime.frozen_bf16`` asks for it (otherwise in the step's autocast); the
        encoder's passes then leave autocast unless ``method.encoder.autocast`` (``_encoding``)."""
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.resources.frozen_bf16:
            stack.enter_context(torch.autocast(self.lq.device.type, dtype=torch.bfloat16))
        return stack

    def _float(self, x: torch.Tensor) -> torch.Tensor:
        """A frozen network's output in the student's dtype (a no-op unless ``frozen_bf16``)."""
        return x.to(self.student_out.dtype) if self.resources.frozen_bf16 else x

    @cached_property
    def teacher_out(self) -> torch.Tensor:
        """The frozen teacher's restoration of ``lq`` (through the output cache when set); no graph."""
        teacher = self.resources.teacher
        assert teacher is not None
        with self.frozen():
            return self._float(teacher(self.lq))

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
        with self.frozen():
            return self._float(source(self.lq, lambda: self.teacher_out))

    def _encoding(self) -> contextlib.AbstractContextManager:
        """Where the encoder's passes compute: in float32 whatever the step's autocast, unless
        ``method.encoder.autocast`` (bfloat16 features lose a near student's difference to its
        teacher: docs/performance.md)."""
        assert self.resources.encoder is not None
        if self.resources.encoder.autocast:
            return contextlib.nullcontext()
        return torch.autocast(self.lq.device.type, enabled=False)

    def _encoder_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the encoder weights' dtype when the pass runs outside autocast."""
        encoder = self.resources.encoder
        assert encoder is not None
        return x if encoder.autocast else x.to(encoder.dtype)

    def _feature(self, x: torch.Tensor) -> torch.Tensor:
        """An encoder target as the loss takes it: in the student's dtype only when the targets
        followed ``frozen_bf16`` (outside autocast they are float32, as the anchor's are)."""
        assert self.resources.encoder is not None
        return self._float(x) if self.resources.encoder.autocast else x

    @cached_property
    def anchor(self) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Encoder features (levels of ``dcl``) and latents (for ``ce``) of the student output: with
        graph; with ``recompute``, only each encoder block's input is kept and the block runs again
        in the backward (one block's activations at a time, not the whole pass's)."""
        encoder = self.resources.encoder
        assert encoder is not None
        x = self._encoder_input(self.student_out)
        with self._encoding():
            if encoder.recompute:
                return encoder.network(x, encoder.levels, latents=encoder.latents, segment=recomputed)
            return encoder.network(x, encoder.levels, latents=encoder.latents)

    @cached_property
    def targets(self) -> EncoderTargets:
        """Positive and negatives (when ``dcl`` is on) through the frozen encoder: one batched pass
        for the tapped levels; the latents (``ce``), which need the whole encoder, for the positive only."""
        encoder = self.resources.encoder
        assert encoder is not None
        levels = encoder.levels
        positive = self._encoder_input(self.teacher_out)  # teacher and negatives in their own precision
        negatives = self._encoder_input(self.negatives) if levels else None
        if negatives is not None and encoder.chunk is not None:
            return self._streamed_targets(positive, negatives.flatten(0, 1))
        n = positive.shape[0]
        with self.frozen(), self._encoding():
            if negatives is None:  # ce alone
                _, latents = encoder.network(positive, (), latents=True)
                return EncoderTargets([], [], self._feature(latents))
            if encoder.latents:
                pos_feats, latents = encoder.network(positive, levels, latents=True)
                neg_feats, _ = encoder.network(negatives.flatten(0, 1), levels, latents=False)
            else:
                feats, latents = encoder.network(torch.cat([positive, negatives.flatten(0, 1)]), levels)
                pos_feats, neg_feats = [f[:n] for f in feats], [f[n:] for f in feats]
        k = negatives.shape[0]
        return EncoderTargets(
            positive=[self._feature(f) for f in pos_feats],
            negatives=[self._feature(f).view(k, n, *f.shape[1:]) for f in neg_feats],
            latents=None if latents is None else self._feature(latents),
        )

    def _streamed_targets(self, positive: torch.Tensor, negatives: torch.Tensor) -> EncoderTargets:
        """The targets pass in chunks of ``method.encoder.chunk`` images (positive first, then the
        ``(K * N)`` negatives), each chunk's negatives added to the anchor's ``PushSums`` and dropped."""
        encoder = self.resources.encoder
        assert encoder is not None and encoder.chunk is not None
        anchor, _ = self.anchor  # with graph, so outside the frozen context
        sums = [PushSums(a) for a in anchor]
        n, levels = positive.shape[0], encoder.levels
        pos_parts: list[list[torch.Tensor]] = [[] for _ in levels]
        latent_parts: list[torch.Tensor] = []
        with self.frozen(), self._encoding():
            if encoder.latents:  # the whole encoder for the positive only
                for part in positive.split(encoder.chunk):
                    feats, z = encoder.network(part, levels, latents=True)
                    latent_parts.append(z)
                    for kept, f in zip(pos_parts, feats, strict=True):
                        kept.append(self._feature(f))
                stream, leading = negatives, 0
            else:
                stream, leading = torch.cat([positive, negatives]), n
            start = 0
            for part in stream.split(encoder.chunk):
                feats, _ = encoder.network(part, levels, latents=False)
                own = min(max(leading - start, 0), part.shape[0])  # the positive's images in this chunk
                for kept, total, f in zip(pos_parts, sums, feats, strict=True):
                    if own:
                        kept.append(self._feature(f[:own]))
                    if own < part.shape[0]:
                        total.add(f[own:], start + own - leading)
                start += part.shape[0]
        return EncoderTargets(
            positive=[torch.cat(kept) for kept in pos_parts],
            negatives=sums,
            latents=torch.cat(latent_parts) if latent_parts else None,
        )

    @cached_property
    def lcr_target(self) -> torch.Tensor:
        consistency, teacher = self.resources.consistency, self.resources.teacher
        assert consistency is not None and teacher is not None
        with self.frozen():
            return self._float(consistency.target(teacher, self.lq, lambda: self.teacher_out))
