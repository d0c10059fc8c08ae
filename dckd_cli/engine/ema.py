"""Exponential moving average of the student (decay 0.999, as the released code)."""

from __future__ import annotations

import copy

from torch import nn

from dckd_cli.models.averaging import blend_into


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

    def update(self, model: nn.Module) -> None:
        blend_into(self.model, model, self.current_decay())
        self.updates += 1
