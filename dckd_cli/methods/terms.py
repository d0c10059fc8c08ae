"""The loss terms by name (a plain dict): each reads a step context and returns an
unweighted scalar; the method multiplies by ``method.weights.<name>``.

``needs`` says which networks the method must build for the term (``teacher``, ``taps``,
``encoder``, ``negatives``, ``consistency``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from dckd_cli.losses.contrastive import contrastive_loss
from dckd_cli.losses.distribution import distribution_loss
from dckd_cli.losses.fakd import fakd_loss
from dckd_cli.losses.label_consistency import label_consistency_loss
from dckd_cli.losses.logits import logits_loss
from dckd_cli.losses.reconstruction import reconstruction_loss
from dckd_cli.methods.context import StepContext


@dataclass(frozen=True)
class Term:
    compute: Callable[[StepContext], torch.Tensor]
    needs: frozenset[str] = frozenset()


def _dcl(ctx: StepContext) -> torch.Tensor:
    """Eq. 5: anchor = student output, positive = teacher output, negatives from the method's source."""
    anchor, _ = ctx.anchor
    targets = ctx.targets
    return contrastive_loss(anchor, targets.positive, targets.negatives, ctx.method.layer_weights, ctx.settings.dcl.eps)


def _ce(ctx: StepContext) -> torch.Tensor:
    """Eq. 9: codebook distributions of the teacher's and the student's restorations."""
    _, z_student = ctx.anchor
    z_teacher = ctx.targets.latents
    assert z_student is not None and z_teacher is not None
    cfg = ctx.settings.ce
    return distribution_loss(z_student, z_teacher, ctx.method.encoder.codebook, cfg.sign, cfg.temperature, cfg.form)


TERMS: dict[str, Term] = {
    "rec": Term(lambda ctx: reconstruction_loss(ctx.student_out, ctx.gt)),
    "kd": Term(lambda ctx: logits_loss(ctx.student_out, ctx.teacher_out), frozenset({"teacher"})),
    "fakd": Term(lambda ctx: fakd_loss(*ctx.tapped_features), frozenset({"teacher", "taps"})),
    "dcl": Term(_dcl, frozenset({"teacher", "encoder", "negatives"})),
    "ce": Term(_ce, frozenset({"teacher", "encoder"})),
    "lcr": Term(
        lambda ctx: label_consistency_loss(ctx.student_out, ctx.lcr_target), frozenset({"teacher", "consistency"})
    ),
}
