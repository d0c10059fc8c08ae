"""``dukd`` (logits + label consistency) and the shared L_lcr piece used by ``dckd-star``."""

from __future__ import annotations

import torch
from torch import nn

from dckd_cli.losses.label_consistency import OPS, label_consistency_loss
from dckd_cli.methods.logits import LogitsMethod
from dckd_cli.settings.schema import RunSettings, UpperBoundSettings


class LabelConsistency:
    """``op^-1(T(op(lq)))`` targets with a random op from settings (identity with 1 - prob)."""

    def __init__(self, cfg: UpperBoundSettings, seed: int):
        self.cfg = cfg
        self.generator = torch.Generator().manual_seed(seed + 2)

    @torch.no_grad()
    def target(self, teacher: nn.Module, lq: torch.Tensor) -> torch.Tensor:
        if not self.cfg.ops or torch.rand((), generator=self.generator).item() >= self.cfg.prob:
            return teacher(lq)
        name = self.cfg.ops[int(torch.randint(len(self.cfg.ops), (), generator=self.generator))]
        forward, inverse = OPS[name]
        return inverse(teacher(forward(lq)))

    def term(self, weight: float, teacher: nn.Module, lq: torch.Tensor, student_out: torch.Tensor) -> torch.Tensor:
        return weight * label_consistency_loss(student_out, self.target(teacher, lq))


class WithLabelConsistency:
    """Mixin: adds L_lcr to the terms of the method it is mixed into."""

    def __init__(self, settings: RunSettings, student: nn.Module, teacher: nn.Module | None):
        super().__init__(settings, student, teacher)  # type: ignore[call-arg]
        self.consistency = LabelConsistency(settings.dckd.upper_bound, settings.runtime.seed)

    def loss_terms(self, lq: torch.Tensor, gt: torch.Tensor, student_out: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = super().loss_terms(lq, gt, student_out)  # type: ignore[misc]
        terms["lcr"] = self.consistency.term(self.weights.lcr, self.teacher, lq, student_out)  # type: ignore[attr-defined]
        return terms

    def state_dict(self) -> dict[str, torch.Tensor]:
        return super().state_dict() | {"lcr_generator": self.consistency.generator.get_state()}  # type: ignore[misc]

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        super().load_state_dict(state)  # type: ignore[misc]
        self.consistency.generator.set_state(state["lcr_generator"])


class DukdMethod(WithLabelConsistency, LogitsMethod):
    """DUKD-style upper bound alone: L_rec + L_kd + L_lcr."""
