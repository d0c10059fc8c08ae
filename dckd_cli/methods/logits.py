"""``logits``: L_rec + L_kd (Eqs. 2-3)."""

from __future__ import annotations

import torch

from dckd_cli.losses.logits import logits_loss
from dckd_cli.methods.base import Method


class LogitsMethod(Method):
    needs_teacher = True

    def loss_terms(self, lq: torch.Tensor, gt: torch.Tensor, student_out: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.logit_terms(gt, student_out, self.teacher_forward(lq))

    def logit_terms(
        self, gt: torch.Tensor, student_out: torch.Tensor, teacher_out: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        terms = super().loss_terms(gt, gt, student_out)
        terms["kd"] = self.weights.kd * logits_loss(student_out, teacher_out)
        return terms
