"""L_dcl, the contrastive loss of Eq. 5, over the layers of a frozen feature encoder.

Per layer i: ``mean|phi_i(a) - phi_i(p)| / (sum_j mean|phi_i(a) - phi_i(n_j)| + eps)``,
weighted by lambda_i and summed. The anchor ``a`` (student output) carries the gradient;
the positive (teacher output) and negatives are targets.

A layer's negatives come either as features ``(K, N, C, H, W)`` or already reduced
(``PushSums``): the push ``sum_j mean|a - n_j|`` and its gradient ``sum_j sign(a - n_j) / M``
need only the anchor's size, so negatives encoded a chunk at a time (``method.encoder.chunk``)
are added as they come and neither their features nor a per-negative difference is kept for
the backward.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class PushSums:
    """One layer's push, reduced over negatives as they come: ``total`` = sum over the negatives
    and elements of ``|a - n|``, ``signs`` = sum over the negatives of ``sign(a - n)`` (the
    anchor's shape; its integers are exact). ``a`` is the anchor's features, detached."""

    def __init__(self, anchor: torch.Tensor):
        self.anchor = anchor.detach()
        self.total = anchor.new_zeros((), dtype=torch.promote_types(anchor.dtype, torch.float32))
        self.signs = torch.zeros_like(self.anchor)

    def add(self, negatives: torch.Tensor, start: int) -> None:
        """``negatives``: ``(k, C, H, W)``, the flattened ``(K * N)`` negatives from index
        ``start`` on (negative ``j`` of sample ``b`` at ``j * N + b``)."""
        samples = self.anchor.shape[0]
        index = torch.arange(start, start + negatives.shape[0], device=negatives.device) % samples
        diff = self.anchor.index_select(0, index) - negatives.to(self.anchor.dtype)
        self.total += diff.abs().sum(dtype=self.total.dtype)
        self.signs.index_add_(0, index, diff.sign())


class _Push(torch.autograd.Function):
    """The push's value from its sums, with its gradient ``sum_j sign(a - n_j) / M`` on ``a``."""

    @staticmethod
    def forward(ctx, anchor: torch.Tensor, value: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        ctx.grad = grad
        return value.clone()

    @staticmethod
    def backward(ctx, upstream: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # noqa: ANN001
        return upstream * ctx.grad, None, None


def _push(a: torch.Tensor, n: torch.Tensor | PushSums) -> torch.Tensor:
    """``sum_j mean|a - n_j|`` over the layer's negatives (features or their ``PushSums``)."""
    if isinstance(n, PushSums):
        count = a.numel()
        return _Push.apply(a, (n.total / count).to(a.dtype), n.signs / count)
    return (a.unsqueeze(0) - n.detach()).abs().flatten(1).mean(dim=1).sum()


def contrastive_loss(
    anchor: Sequence[torch.Tensor],
    positive: Sequence[torch.Tensor],
    negatives: Sequence[torch.Tensor | PushSums],
    layer_weights: Sequence[float],
    eps: float = 1e-7,
) -> torch.Tensor:
    """Eq. 5.

    ``anchor[i]``, ``positive[i]``: ``(N, C_i, H_i, W_i)`` features of layer i;
    ``negatives[i]``: ``(K, N, C_i, H_i, W_i)``, K negatives per sample, or their ``PushSums``.
    """
    total = anchor[0].new_zeros(())
    for a, p, n, w in zip(anchor, positive, negatives, layer_weights, strict=True):
        if w == 0:
            continue
        pull = (a - p.detach()).abs().mean()
        push = _push(a, n)
        total = total + w * pull / (push + eps)  # Eq. 5
    return total
