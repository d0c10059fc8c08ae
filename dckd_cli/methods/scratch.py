"""``scratch``: the student trained alone, L_rec only."""

from __future__ import annotations

from dckd_cli.methods.base import Method


class ScratchMethod(Method):
    needs_teacher = False
