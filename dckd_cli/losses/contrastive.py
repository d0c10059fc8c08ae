"""L_dcl, the contrastive loss of Eq. 5, over the layers of a frozen feature encoder.

Per layer i: ``mean|phi_i(a) - phi_i(p)| / (sum_j mean|phi_i(a) - phi_i(n_j)| + eps)``,
weighted by lambda_i and summed. The anchor ``a`` (student output) carries the gradient;
the positive (teacher output) and negatives are targets.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def contrastive_loss(
    anchor: Sequence[torch.Tensor],
    positive: Sequence[torch.Tensor],
    negatives: Sequence[torch.Tensor],
    layer_weights: Sequence[float],
    eps: float = 1e-7,
) -> torch.Tensor:
    """Eq. 5.

    ``anchor[i]``, ``positive[i]``: ``(N, C_i, H_i, W_i)`` features of layer i;
    ``negatives[i]``: ``(K, N, C_i, H_i, W_i)``, K negatives per sample.
    """
    total = anchor[0].new_zeros(())
    for a, p, n, w in zip(anchor, positive, negatives, layer_weights, strict=True):
        if w == 0:
            continue
        pull = (a - p.detach()).abs().mean()
        push = (a.unsqueeze(0) - n.detach()).abs().flatten(1).mean(dim=1).sum()
        total = total + w * pull / (push + eps)  # Eq. 5
    return total
