"""Targets of the ``lcr`` term: ``op^-1(T(op(lq)))`` with a random op (identity with 1 - prob)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from dckd_cli.losses.label_consistency import OPS
from dckd_cli.settings.schema import LcrSettings


class ConsistencyTargets:
    """Draws the op from its own generator (``seed + 2``), so other randomness is untouched."""

    def __init__(self, cfg: LcrSettings, seed: int):
        self.cfg = cfg
        self.generator = torch.Generator().manual_seed(seed + 2)

    @torch.no_grad()
    def target(
        self, teacher: Callable[[torch.Tensor], torch.Tensor], lq: torch.Tensor, plain: Callable[[], torch.Tensor]
    ) -> torch.Tensor:
        """``plain()`` is the teacher's output on ``lq`` itself, reused when the identity is drawn."""
        if not self.cfg.ops or torch.rand((), generator=self.generator).item() >= self.cfg.prob:
            return plain()
        name = self.cfg.ops[int(torch.randint(len(self.cfg.ops), (), generator=self.generator))]
        forward, inverse = OPS[name]
        return inverse(teacher(forward(lq)))
