"""Optimisers and schedules from settings, so each paper recipe is a preset."""

from __future__ import annotations

import math

import torch
from torch import nn

from dckd_cli.settings.schema import OptimSettings


def build_optimizer(model: nn.Module, cfg: OptimSettings, fused: bool = False) -> torch.optim.Optimizer:
    """Adam / AdamW over the trainable parameters; ``fused``: the one-kernel step."""
    params = [p for p in model.parameters() if p.requires_grad]
    kind = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    options = {"fused": True} if fused else {}
    return kind(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay, **options)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimSettings) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-iteration multiplier of the base LR: multistep (x gamma at each milestone),
    cosine (to ``eta_min`` at ``iters``) or constant."""

    def factor(step: int) -> float:
        if cfg.scheduler == "multistep":
            return cfg.gamma ** sum(step >= m for m in cfg.milestones)
        if cfg.scheduler == "cosine":
            floor = cfg.eta_min / cfg.lr
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step, cfg.iters) / cfg.iters))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
