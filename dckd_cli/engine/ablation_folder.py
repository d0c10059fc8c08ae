"""The layout of an ablation folder: the one place its file and folder names are spelled.

ablation.json                 what every cell shares (preset, flags, --set, method, warm start)
warmstart/seed-K/             the shared scratch warm start of seed K (when warm_iters > 0)
teacher-cache/                teacher outputs shared by every cell (methods without feature taps)
<cell>/seed-K/                one run folder per cell and seed, plus its scores.json
summary.json, summary.csv, plots/*.png
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dckd_cli.atomic import atomic_path
from dckd_cli.engine.run_folder import RunFolder

WARM_START = "warmstart"


class AblationFolder:
    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def record(self) -> Path:
        return self.root / "ablation.json"

    @property
    def teacher_cache(self) -> Path:
        return self.root / "teacher-cache"

    @property
    def summary_json(self) -> Path:
        return self.root / "summary.json"

    @property
    def summary_csv(self) -> Path:
        return self.root / "summary.csv"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    def cell(self, name: str, seed: int) -> RunFolder:
        """The run folder of cell ``name`` on ``seed``."""
        return RunFolder(self.root / name / f"seed-{seed}")

    def warm_start(self, seed: int) -> RunFolder:
        return self.cell(WARM_START, seed)

    def read_record(self) -> dict[str, Any] | None:
        return json.loads(self.record.read_text()) if self.record.is_file() else None

    def write_record(self, record: dict[str, Any]) -> None:
        with atomic_path(self.record) as tmp:
            tmp.write_text(json.dumps(record, indent=2) + "\n")

    def finished_scores(self) -> list[Path]:
        """Every finished cell run's ``scores.json`` (``<cell>/seed-K/``), warm starts excluded."""
        found = sorted(self.root.glob("*/seed-*/scores.json"))
        return [p for p in found if p.parent.parent.name != WARM_START]
