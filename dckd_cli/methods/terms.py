"""The loss terms by name (a plain dict, in the order they are computed and logged): each
reads a step context and returns an unweighted scalar; the method multiplies by
``method.weights.<name>``.

``needs`` names what ``methods/build.py`` must build for the term (``NEEDS``); ``active``
says whether the term runs at an iteration (a term that is not active adds a zero).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, get_args

import torch

from dckd_cli.losses.contrastive import contrastive_loss
from dckd_cli.losses.distribution import distribution_loss
from dckd_cli.losses.fakd import fakd_loss
from dckd_cli.losses.label_consistency import label_consistency_loss
from dckd_cli.losses.logits import logits_loss
from dckd_cli.losses.reconstruction import reconstruction_loss
from dckd_cli.methods.context import StepContext
from dckd_cli.settings.method import MethodSettings

# teacher: the frozen teacher; taps: student / teacher feature hooks; features: encoder
# features at the tapped levels; latents: the encoder's pre-quantisation latents and its
# codebook; negatives: a negative source; consistency: label-consistency targets.
Need = Literal["teacher", "taps", "features", "latents", "negatives", "consistency"]
NEEDS: tuple[Need, ...] = get_args(Need)


def _always(cfg: MethodSettings, iteration: int) -> bool:
    return True


@dataclass(frozen=True)
class Term:
    compute: Callable[[StepContext], torch.Tensor]
    needs: frozenset[Need] = frozenset()
    active: Callable[[MethodSettings, int], bool] = _always


def _dcl(ctx: StepContext) -> torch.Tensor:
    """Eq. 5: anchor = student output, positive = teacher output, negatives from the method's source."""
    anchor, _ = ctx.anchor
    targets = ctx.targets
    weights = ctx.resources.encoder.layer_weights
    return contrastive_loss(anchor, targets.positive, targets.negatives, weights, ctx.settings.dcl.eps)


def _ce(ctx: StepContext) -> torch.Tensor:
    """Eq. 9: codebook distributions of the teacher's and the student's restorations."""
    _, z_student = ctx.anchor
    z_teacher = ctx.targets.latents
    assert z_student is not None and z_teacher is not None
    cfg = ctx.settings.ce
    codebook = ctx.resources.encoder.codebook
    return distribution_loss(z_student, z_teacher, codebook, cfg.sign, cfg.temperature, cfg.form)


def _dcl_started(cfg: MethodSettings, iteration: int) -> bool:
    """DCR waits ``method.dcl.start`` iterations (off while a student from scratch is poor)."""
    return iteration >= cfg.dcl.start


TERMS: dict[str, Term] = {
    "rec": Term(lambda ctx: reconstruction_loss(ctx.student_out, ctx.gt)),
    "kd": Term(lambda ctx: logits_loss(ctx.student_out, ctx.teacher_out), frozenset({"teacher"})),
    "fakd": Term(lambda ctx: fakd_loss(*ctx.tapped_features), frozenset({"teacher", "taps"})),
    "dcl": Term(_dcl, frozenset({"teacher", "features", "negatives"}), _dcl_started),
    "ce": Term(_ce, frozenset({"teacher", "latents"})),
    "lcr": Term(
        lambda ctx: label_consistency_loss(ctx.student_out, ctx.lcr_target), frozenset({"teacher", "consistency"})
    ),
}


def needs_of(terms: Iterable[str]) -> frozenset[Need]:
    """What ``terms`` need built, together."""
    return frozenset().union(*(TERMS[t].needs for t in terms))
