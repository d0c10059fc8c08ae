"""Where dckd keeps what it can compute again: ``$DCKD_CACHE``, else ``$XDG_CACHE_HOME/dckd``
(``~/.cache/dckd``). A leaf module, so every layer can use it."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    if os.environ.get("DCKD_CACHE"):
        return Path(os.environ["DCKD_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dckd"
