"""The run's JSONL metrics log: one JSON object per logged iteration, with an ``iter`` key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class RunLog:
    def __init__(self, path: Path):
        self.path = path

    def truncate_after(self, iteration: int) -> None:
        """Drop records past ``iteration`` (logged after the checkpoint a resume starts from)."""
        if not self.path.is_file():
            return
        kept = [line for line in self.path.read_text().splitlines() if line and json.loads(line)["iter"] <= iteration]
        self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
