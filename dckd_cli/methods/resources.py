"""What a method's terms read during a step, built once per run by ``methods/build.py``.

The step context (``methods/context.py``) reads these and nothing else: the frozen teacher,
the feature taps, the encoder with its plan, the negative source, the consistency targets.
A field is None when no active term needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from dckd_cli.methods.consistency_targets import ConsistencyTargets
from dckd_cli.methods.feature_taps import FeatureTaps
from dckd_cli.methods.history_model import HistoryModel

# (lq, positive) -> (K, N, C, H', W') negative restorations; ``positive()`` is the teacher's
# output on ``lq``, computed on first use.
NegativeSource = Callable[[torch.Tensor, Callable[[], torch.Tensor]], torch.Tensor]


@dataclass
class EncoderResource:
    """The frozen feature encoder and what one pass of it computes: the levels ``dcl`` taps
    (empty when it is off) with their weights, whether ``ce``'s latents are needed, and whether
    the anchor's pass is recomputed in the backward (``method.encoder.recompute``), whether its
    passes follow the step's low precision (``method.encoder.autocast``; otherwise float32), and
    the chunk size of the targets' pass (``method.encoder.chunk``; None: one batched pass)."""

    network: nn.Module
    levels: tuple[int, ...]
    layer_weights: list[float]
    latents: bool
    recompute: bool = False
    autocast: bool = False
    chunk: int | None = None

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the encoder's weights, which its inputs get outside autocast."""
        return next(self.network.parameters()).dtype

    @property
    def codebook(self) -> torch.Tensor:
        return self.network.codebook


@dataclass
class Resources:
    teacher: nn.Module | None = None
    taps: tuple[FeatureTaps, FeatureTaps] | None = None  # student's, teacher's
    encoder: EncoderResource | None = None
    negatives: NegativeSource | None = None
    history: HistoryModel | None = None  # the negatives' history model, when they come from one
    consistency: ConsistencyTargets | None = None
    frozen_bf16: bool = False  # run the frozen networks in bfloat16 (runtime.frozen_bf16)

    def networks(self) -> list[nn.Module]:
        """The method's own frozen networks (moved to the run's device with the student)."""
        owned = [self.encoder.network if self.encoder else None, self.history.model if self.history else None]
        return [n for n in owned if n is not None]
