"""What a distillation method is: which loss terms, their weights, and what they need.

The engine runs the student; a method turns ``(lq, gt, student_out)`` into a dict of named,
already-weighted loss terms. The engine sums and logs them without knowing what they are.
"""

from __future__ import annotations

import torch
from torch import nn

from dckd_cli.losses.reconstruction import reconstruction_loss
from dckd_cli.settings.schema import RunSettings


class Method:
    """Base method: L_rec only (training from scratch)."""

    needs_teacher = False
    reads_teacher_features = False  # True: the teacher must really run (feature taps); no output cache

    def __init__(self, settings: RunSettings, student: nn.Module, teacher: nn.Module | None):
        self.settings = settings
        self.weights = settings.method.weights
        self.student = student
        self.teacher = teacher

    @torch.no_grad()
    def teacher_forward(self, lq: torch.Tensor) -> torch.Tensor:
        """The frozen teacher's restoration; never part of the autograd graph."""
        assert self.teacher is not None
        return self.teacher(lq)

    def loss_terms(self, lq: torch.Tensor, gt: torch.Tensor, student_out: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"rec": self.weights.rec * reconstruction_loss(student_out, gt)}

    def to(self, device: torch.device) -> None:
        """Move the method's own networks (encoders, history models) to ``device``."""

    def after_step(self, iteration: int, ema_student: nn.Module) -> None:
        """Called once per optimiser step (history models and other slow state live here)."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors the method must carry across a resume."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what ``state_dict`` returned."""
