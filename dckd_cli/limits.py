"""Limits a user sets in the environment, read without importing anything heavy (the CLI checks
them before any command runs)."""

from __future__ import annotations

import os

from dckd_cli.errors import DckdError

DEFAULT_MAX_PIXELS = 2**28  # 16384 x 16384


class LimitError(DckdError):
    """An environment limit that is not a usable value."""


def max_pixels() -> int:
    """The most pixels an image may declare (``$DCKD_MAX_PIXELS``; default 2**28, 16384 x 16384)."""
    text = os.environ.get("DCKD_MAX_PIXELS", str(DEFAULT_MAX_PIXELS))
    if not text.strip().isdigit() or int(text) <= 0:
        example = f"e.g. {DEFAULT_MAX_PIXELS} for 16384x16384"
        raise LimitError(f"DCKD_MAX_PIXELS={text!r}: not a positive whole number of pixels ({example})")
    return int(text)
