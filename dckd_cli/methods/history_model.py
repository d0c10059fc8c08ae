"""The history model S_his: a slowly refreshed copy of the student that makes the negatives.

``theta_his <- alpha * theta_his + (1 - alpha) * theta_src`` only when ``t % s == 0``; the
source is the EMA student (released code) or the online student (paper). The interval s
grows by phase; phase ends are fractions of the run (released: s = 1000 until 100k, 2000
until 200k, 3000 after, of 250k iterations), so short runs keep the same shape.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from dckd_cli.models.averaging import blend_into
from dckd_cli.settings.method import HistorySettings


class HistoryModel:
    def __init__(self, source: nn.Module, cfg: HistorySettings, total_iters: int):
        self.model = copy.deepcopy(source).eval().requires_grad_(False)
        self.cfg, self.total = cfg, total_iters
        self.updates = 0
        self.runner: nn.Module = self.model  # what restores (torch.compile may wrap it; the weights are ``model``'s)

    def interval(self, iteration: int) -> int:
        """The update step s in force at ``iteration``."""
        for end, step in zip(self.cfg.breakpoints, self.cfg.steps):
            if iteration <= end * self.total:
                return step
        return self.cfg.steps[-1]

    def maybe_update(self, iteration: int, source: nn.Module) -> bool:
        if iteration % self.interval(iteration) != 0:
            return False
        blend_into(self.model, source, self.cfg.alpha)
        self.updates += 1
        return True

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.runner(x)
