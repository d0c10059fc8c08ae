"""Settings a resumed run may change: how its steps compute, not what they compute.

A run resumed with ``--resume`` keeps its recorded settings, so it continues the run that was
set up; the speed and memory switches below are the exception. A step that runs out of memory
is continued with ``method.encoder.recompute`` or ``method.encoder.chunk``, and a run moved to
another machine with that machine's switches. Each keeps the loss terms to float rounding
(``docs/performance.md``), so a resumed run that changes one is not bitwise the uninterrupted
one (except for `SAME_NUMBERS`), and the change is written into the run's settings and noted
in its ``resumes.jsonl`` (``engine/run_folder.RunFolder.note_resume``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dckd_cli.settings.schema import RunSettings

RESUMABLE: tuple[str, ...] = (
    "data.workers",
    "optim.fused",
    "runtime.channels_last",
    "runtime.compile",
    "runtime.compile_mode",
    "runtime.compile_backend",
    "runtime.compile_freezing",
    "runtime.tf32",
    "runtime.cudnn_benchmark",
    "runtime.keep_host_memory",
    "method.encoder.recompute",
    "method.encoder.chunk",
)
# switches that cannot change a number: who cuts which sample (each sample depends on the seed
# and its index alone, engine/batches.py), and what the C library does with freed memory
SAME_NUMBERS: frozenset[str] = frozenset({"data.workers", "runtime.keep_host_memory"})


def _parent(record: dict[str, Any], dotted: str) -> tuple[dict[str, Any], str]:
    """The section of a settings record that holds ``dotted``, and the key in it."""
    *path, last = dotted.split(".")
    for part in path:
        record = record[part]
    return record, last


def values_of(settings: RunSettings, keys: list[str]) -> dict[str, Any]:
    """The values of the dotted ``keys`` in ``settings`` (as a settings file writes them)."""
    record = settings.model_dump(mode="json")
    found = {}
    for dotted in keys:
        section, last = _parent(record, dotted)
        found[dotted] = section[last]
    return found


def with_changes(settings: RunSettings, changes: Mapping[str, Any]) -> RunSettings:
    """``settings`` with the resumable ``changes`` (dotted keys) applied, validated again."""
    record = settings.model_dump(mode="json")
    for dotted, value in changes.items():
        assert dotted in RESUMABLE, dotted
        section, last = _parent(record, dotted)
        section[last] = value
    return RunSettings.model_validate(record)


def rounding_changes(changes: Mapping[str, Any]) -> list[str]:
    """The ``changes`` that may round the run's numbers differently from here on."""
    return [k for k in changes if k not in SAME_NUMBERS]
