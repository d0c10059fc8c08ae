"""How a frozen encoder runs its blocks in a pass with a graph: directly (every block's
activations kept for the backward), or each block recomputed in the backward
(``method.encoder.recompute``): only the blocks' inputs are kept, and the backward holds one
block's activations at a time, not the whole pass's."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.checkpoint import checkpoint

Block = Callable[[torch.Tensor], torch.Tensor]
Segment = Callable[[Block, torch.Tensor], torch.Tensor]


def direct(block: Block, h: torch.Tensor) -> torch.Tensor:
    return block(h)


def recomputed(block: Block, h: torch.Tensor) -> torch.Tensor:
    """``block(h)``, its activations recomputed in the backward (only ``h`` kept); a pass
    without a graph runs it directly."""
    if not (torch.is_grad_enabled() and h.requires_grad):
        return block(h)
    return checkpoint(block, h, use_reentrant=False)
