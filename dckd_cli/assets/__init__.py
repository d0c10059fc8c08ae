"""Files shipped with dckd (the compact VQGAN encoder, the packaged demo teacher); see NOTICE.md."""

from pathlib import Path

ASSETS = Path(__file__).resolve().parent
