from __future__ import annotations

import pytest
import torch

from dckd_cli.losses.distribution import code_distribution, distribution_loss


def _naive(fs: torch.Tensor, ft: torch.Tensor, book: torch.Tensor, sign: int) -> torch.Tensor:
    """Reference: materialise every (pixel, code, channel) difference."""

    def dist(f: torch.Tensor) -> torch.Tensor:
        pix = f.permute(0, 2, 3, 1).reshape(f.shape[0], -1, f.shape[1])  # (B, HW, C)
        return ((pix[:, :, None, :] - book[None, None]) ** 2).sum(-1)  # (B, HW, K)

    ct = torch.softmax(sign * dist(ft), dim=-1)
    cs = torch.softmax(sign * dist(fs), dim=-1)
    return -(ct * cs.log()).sum(-1).mean()


@pytest.mark.parametrize("sign", [-1, 1])
def test_equals_the_naive_reference(sign):
    g = torch.Generator().manual_seed(0)
    fs, ft = torch.randn(2, 4, 3, 3, generator=g), torch.randn(2, 4, 3, 3, generator=g)
    book = torch.randn(7, 4, generator=g)
    got = distribution_loss(fs, ft, book, sign=sign)
    assert got.item() == pytest.approx(_naive(fs, ft, book, sign).item(), rel=1e-5)


def test_teacher_distribution_peaks_at_the_nearest_code():
    book = torch.tensor([[0.0, 0.0], [1.0, 1.0], [3.0, -2.0]])
    feats = torch.tensor([[0.9, 1.2], [2.8, -1.9], [0.1, -0.1]]).t().reshape(1, 2, 1, 3)
    probs = code_distribution(feats, book)
    assert probs.argmax(dim=1).tolist() == [1, 2, 0]
    assert torch.allclose(probs.sum(1), torch.ones(3))


def test_gradient_reaches_student_features_only():
    fs = torch.randn(1, 3, 2, 2, requires_grad=True)
    ft = torch.randn(1, 3, 2, 2, requires_grad=True)
    book = torch.randn(5, 3, requires_grad=True)
    distribution_loss(fs, ft, book).backward()
    assert fs.grad is not None and fs.grad.abs().sum() > 0
    assert ft.grad is None and book.grad is None  # the codebook is the frozen encoder's: fixed categories


def test_loss_is_smallest_when_student_matches_teacher():
    g = torch.Generator().manual_seed(1)
    ft, book = torch.randn(1, 3, 2, 2, generator=g), torch.randn(6, 3, generator=g)
    other = torch.randn(1, 3, 2, 2, generator=g)
    assert distribution_loss(ft.clone(), ft, book) < distribution_loss(other, ft, book)
