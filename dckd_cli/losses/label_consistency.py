"""L_lcr, DUKD's label-consistency term (the DCKD* upper-bound add-on).

The teacher sees a transformed input (flip, transpose or colour inversion, with
probability p); the transform is undone on its output, and the student's restoration of
the plain input is pulled to it with L1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Op = tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]

OPS: dict[str, Op] = {
    "hflip": (lambda x: x.flip(-1), lambda y: y.flip(-1)),
    "vflip": (lambda x: x.flip(-2), lambda y: y.flip(-2)),
    "transpose": (lambda x: x.transpose(-1, -2), lambda y: y.transpose(-1, -2)),
    "invert": (lambda x: 1.0 - x, lambda y: 1.0 - y),
}


def label_consistency_loss(student_out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(student_out, target.detach())
