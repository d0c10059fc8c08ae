"""FAKD (He et al., 2020): spatial-affinity feature distillation.

Each feature map ``(N, C, H, W)`` becomes a per-sample ``(HW, HW)`` affinity matrix of
channel-normalised pixel vectors; the loss is the L1 distance between the student's and
the teacher's matrices. Affinities do not depend on channel counts, so a narrow student
can match a wide teacher without an adapter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def spatial_affinity(features: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` to ``(N, HW, HW)`` cosine affinities between pixel vectors."""
    flat = F.normalize(features.flatten(2), dim=1)  # (N, C, HW), unit length per pixel
    return flat.transpose(1, 2) @ flat


def fakd_loss(student_feats: list[torch.Tensor], teacher_feats: list[torch.Tensor]) -> torch.Tensor:
    """Mean over tapped layers of the L1 distance between affinity matrices."""
    if len(student_feats) != len(teacher_feats) or not student_feats:
        raise ValueError("FAKD needs the same, non-zero number of student and teacher feature maps")
    terms = []
    for fs, ft in zip(student_feats, teacher_feats):
        if fs.shape[-2:] != ft.shape[-2:]:
            raise ValueError(f"FAKD feature sizes differ: student {tuple(fs.shape)} vs teacher {tuple(ft.shape)}")
        terms.append(F.l1_loss(spatial_affinity(fs.float()), spatial_affinity(ft.detach().float())))
    return torch.stack(terms).mean()
