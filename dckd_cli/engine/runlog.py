"""The run's JSONL metrics log: one JSON object per logged iteration, with an ``iter`` key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dckd_cli.atomic import atomic_path, write_error


class RunLog:
    def __init__(self, path: Path):
        self.path = path

    def truncate_after(self, iteration: int) -> None:
        """Drop records past ``iteration`` (logged after the checkpoint a resume starts from)."""
        if not self.path.is_file():
            return
        kept = [line for line in self.path.read_text().splitlines() if _iteration(line) <= iteration]
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        """Append one line (a line a full disk cuts short is dropped on resume, see ``_iteration``)."""
        try:
            with self.path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
        except OSError as err:
            raise write_error(self.path, err) from None


def _iteration(line: str) -> float:
    """A record's iteration; a line a kill cut short (or any unreadable line) sorts last, so it is dropped."""
    try:
        return float(json.loads(line)["iter"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return float("inf")
