"""Exponential moving average of the student (decay 0.999, as the released code)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """``ema <- d * ema + (1 - d) * student`` after each optimiser step.

    With ``warmup`` the decay is ``min(decay, (1 + t) / (10 + t))``: a fixed 0.999 over a few
    hundred steps would still be mostly the random start.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.warmup = decay, warmup
        self.updates = 0

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        self.updates += 1
        source = model.state_dict()
        for name, value in self.model.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(d).add_(source[name].detach().to(value.dtype), alpha=1 - d)
            else:
                value.copy_(source[name])
