"""Weight averaging shared by the EMA student and the history model."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def blend_into(target: nn.Module, source: nn.Module, keep: float) -> None:
    """``target <- keep * target + (1 - keep) * source`` for float tensors; others are copied."""
    src = source.state_dict()
    for name, value in target.state_dict().items():
        if value.dtype.is_floating_point:
            value.mul_(keep).add_(src[name].detach().to(value.dtype), alpha=1 - keep)
        else:
            value.copy_(src[name])
