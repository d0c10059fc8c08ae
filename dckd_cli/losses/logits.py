"""L_kd (Eq. 3), "logits" KD: L1 between the student's and the teacher's restorations."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def logits_loss(student_out: torch.Tensor, teacher_out: torch.Tensor) -> torch.Tensor:
    """Mean absolute error to the (detached) teacher output, both ``(N, C, H, W)``."""
    return F.l1_loss(student_out, teacher_out.detach())
