"""The methods, as declarations: which named loss terms, and where negatives come from.

A method is a list of terms evaluated over one per-step context (``methods/context.py``);
each term (``methods/terms.py``) has its weight ``method.weights.<term>`` and its own settings
``method.<term>`` (``settings/method.py``).
Adding a baseline is one entry here plus its tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

NegativeSource = Literal["history", "batch"]


@dataclass(frozen=True)
class MethodSpec:
    terms: tuple[str, ...]
    summary: str
    negatives: NegativeSource | None = None  # for ``dcl``: the history model's, or in-batch teacher outputs


METHODS: dict[str, MethodSpec] = {
    "scratch": MethodSpec(("rec",), "the student alone"),
    "logits": MethodSpec(("rec", "kd"), "L1 to the teacher's output (Eqs. 2-3)"),
    "fakd": MethodSpec(("rec", "kd", "fakd"), "+ spatial-affinity feature distillation"),
    "csd": MethodSpec(("rec", "kd", "dcl"), "+ contrastive term, fixed in-batch negatives", negatives="batch"),
    "dukd": MethodSpec(("rec", "kd", "lcr"), "+ DUKD-style label consistency"),
    "dckd": MethodSpec(("rec", "kd", "dcl", "ce"), "+ dynamic contrastive term and DMM (Eq. 10)", negatives="history"),
    "dckd-star": MethodSpec(("rec", "kd", "dcl", "ce", "lcr"), "DCKD + label consistency (DCKD*)", negatives="history"),
}
METHOD_NAMES = tuple(METHODS)
