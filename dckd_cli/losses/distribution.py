"""L_ce of the distribution mapping module (Eqs. 7-9).

Per pixel p of the encoder's pre-quantisation features F and codebook entry e_k,
``d(p, k) = ||F(p) - e_k||^2``; the category distribution is ``softmax_k(-d / T)`` (nearest
code most likely; the paper prints ``+d``, selectable with ``sign=+1``). The loss is the
cross-entropy of Eq. 9 as written, ``-sum_k C_T log C_S``, averaged over pixels: no second
softmax. Distances come from ``|F|^2 - 2 F.e + |e|^2`` (one matmul), never an
``(N, HW, K, C)`` tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def code_logits(
    features: torch.Tensor, codebook: torch.Tensor, sign: int = -1, temperature: float = 1.0
) -> torch.Tensor:
    """``(N, C, H, W)`` features, ``(K, C)`` codebook -> ``(N * H * W, K)`` logits ``sign * d / T``."""
    flat = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1]).float()
    book = codebook.float()
    dist = flat.pow(2).sum(1, keepdim=True) - 2.0 * flat @ book.t() + book.pow(2).sum(1)[None]
    return sign * dist / temperature


def code_distribution(
    features: torch.Tensor, codebook: torch.Tensor, sign: int = -1, temperature: float = 1.0
) -> torch.Tensor:
    """Eq. 8: per-pixel category distribution over the codebook, ``(N * H * W, K)``."""
    return F.softmax(code_logits(features, codebook, sign, temperature), dim=1)


def distribution_loss(
    student_features: torch.Tensor,
    teacher_features: torch.Tensor,
    codebook: torch.Tensor,
    sign: int = -1,
    temperature: float = 1.0,
    form: str = "paper",
) -> torch.Tensor:
    """Eq. 9: ``-sum_k C_T(p, k) log C_S(p, k)``, averaged over pixels p.

    ``form="released"`` is the authors' code: ``cross_entropy(C_S, C_T)`` with the already
    softmaxed ``C_S`` taken as logits, i.e. ``-sum_k C_T log softmax(C_S)``. Its logits lie in
    [0, 1], so the second softmax is nearly uniform; the gradient on the student's code
    logits becomes ``C_S * (g - <C_S, g>)`` with ``g = softmax(C_S) - C_T`` and is much
    weaker than the paper form's ``C_S - C_T`` (docs/method.md).
    """
    codebook = codebook.detach()
    target = code_distribution(teacher_features.detach(), codebook, sign, temperature)
    logits = code_logits(student_features, codebook, sign, temperature)
    if form == "released":
        logits = F.softmax(logits, dim=1)  # the released code's cross_entropy sees probabilities
    log_student = F.log_softmax(logits, dim=1)
    return -(target * log_student).sum(dim=1).mean()
