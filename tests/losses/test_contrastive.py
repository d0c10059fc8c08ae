from __future__ import annotations

import pytest
import torch

from dckd_cli.losses.contrastive import contrastive_loss


def test_matches_eq5_by_hand():
    a = [torch.zeros(1, 1, 2, 2)]
    p = [torch.full((1, 1, 2, 2), 0.5)]
    n = [torch.stack([torch.full((1, 1, 2, 2), 1.0), torch.full((1, 1, 2, 2), 3.0)])]
    # 0.5 / (1 + 3 + eps), layer weight 2
    assert contrastive_loss(a, p, n, [2.0]).item() == pytest.approx(2 * 0.5 / 4.0, rel=1e-6)


def test_gradient_only_through_the_anchor():
    a = [torch.rand(2, 3, 4, 4, requires_grad=True), torch.rand(2, 5, 2, 2, requires_grad=True)]
    p = [torch.rand(2, 3, 4, 4, requires_grad=True), torch.rand(2, 5, 2, 2, requires_grad=True)]
    n = [torch.rand(4, 2, 3, 4, 4, requires_grad=True), torch.rand(4, 2, 5, 2, 2, requires_grad=True)]
    contrastive_loss(a, p, n, [0.5, 1.0]).backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in a)
    assert all(t.grad is None for t in p + n)


def test_pushing_negatives_away_lowers_the_loss():
    a, p = [torch.zeros(1, 1, 3, 3)], [torch.full((1, 1, 3, 3), 0.1)]
    near = [torch.full((2, 1, 1, 3, 3), 0.2)]
    far = [torch.full((2, 1, 1, 3, 3), 0.9)]
    assert contrastive_loss(a, p, far, [1.0]) < contrastive_loss(a, p, near, [1.0])
