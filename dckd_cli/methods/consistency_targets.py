"""Targets of the ``lcr`` term: ``op^-1(T(op(lq)))``.

``mode="batch"``: with probability ``prob`` one op, drawn uniformly, for the whole batch
(identity otherwise). ``mode="per-sample"`` (the released code): each op is applied to each
sample independently with probability ``prob`` (so ops combine, e.g. invert + transpose),
in the order of ``ops``; the inverse undoes them in reverse order.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dckd_cli.losses.label_consistency import OPS
from dckd_cli.settings.method import LcrSettings


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
        if self.cfg.mode == "per-sample":
            return self._per_sample(teacher, lq, plain)
        if not self.cfg.ops or torch.rand((), generator=self.generator).item() >= self.cfg.prob:
            return plain()
        name = self.cfg.ops[int(torch.randint(len(self.cfg.ops), (), generator=self.generator))]
        forward, inverse = OPS[name]
        return inverse(teacher(forward(lq)))

    def _per_sample(
        self, teacher: Callable[[torch.Tensor], torch.Tensor], lq: torch.Tensor, plain: Callable[[], torch.Tensor]
    ) -> torch.Tensor:
        chosen = torch.rand((lq.shape[0], len(self.cfg.ops)), generator=self.generator) < self.cfg.prob
        if not chosen.any():
            return plain()

        order = list(enumerate(self.cfg.ops))

        def apply(i: int, sample: torch.Tensor, inverse: bool) -> torch.Tensor:
            for k, name in reversed(order) if inverse else order:
                if chosen[i, k]:
                    sample = OPS[name][1 if inverse else 0](sample)
            return sample

        seen = [apply(i, lq[i : i + 1], inverse=False) for i in range(lq.shape[0])]
        # A non-square batch has two shapes once some samples are transposed: the teacher
        # sees each shape as its own batch, and the outputs go back to their samples' places.
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, sample in enumerate(seen):
            groups.setdefault(tuple(sample.shape), []).append(i)
        out: list[torch.Tensor | None] = [None] * lq.shape[0]
        for members in groups.values():
            restored = teacher(torch.cat([seen[i] for i in members]))
            for j, i in enumerate(members):
                out[i] = apply(i, restored[j : j + 1], inverse=True)
        return torch.cat(out)
