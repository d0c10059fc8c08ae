"""L_rec (Eq. 2): L1 between the student's restoration and the ground truth."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_loss(student_out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over ``(N, C, H, W)``."""
    return F.l1_loss(student_out, target)
