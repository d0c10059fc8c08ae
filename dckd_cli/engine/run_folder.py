"""The run folder: its layout, written once, and the rules for creating, reusing and reading it.

Layout::

    settings.yaml                 resolved settings
    metrics.jsonl                 one JSON object per logged iteration
    checkpoints/last/, best/      (and .prev-last/, .prev-best/: the copies before, kept as fallbacks)
                                  model.safetensors (EMA student: evaluate / export),
                                  student.safetensors (online weights), method.safetensors
                                  (e.g. the history model), state.pt (optimiser, scheduler,
                                  iteration, RNG, EMA step count; tensors and numbers only)
    val_images/iter_NNNNNN/       a few validation restorations
    scores.json                   the final model's test scores (written by ``dckd ablate``)
    resumes.jsonl                 one line per resume that changed a switch: the iteration,
                                  each setting as it was and is now, and whether the run
                                  stays bitwise the uninterrupted one
    logs/                         TensorBoard event files (runtime.log_with=tensorboard)

Every module that reads or writes a run folder (trainer, checkpoints, evaluate, distill,
the benchmarks) goes through ``RunFolder``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from dckd_cli.atomic import atomic_path, check_writable, write_error
from dckd_cli.errors import DckdError
from dckd_cli.folders import refuse_foreign
from dckd_cli.settings.presets import format_errors, settings_yaml
from dckd_cli.settings.schema import RunSettings
from dckd_cli.settings.strict_yaml import StrictYamlError, load_yaml

RUN_ENTRIES = frozenset({"settings.yaml", "metrics.jsonl", "checkpoints", "val_images", "logs", "resumes.jsonl"})
CHECKPOINT_FILES = ("model.safetensors", "student.safetensors", "method.safetensors", "state.pt")


class RunFolderError(DckdError):
    """A run folder that cannot be created, reused, resumed or read."""


@dataclass(frozen=True)
class RunFolder:
    root: Path

    @property
    def settings(self) -> Path:
        return self.root / "settings.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def logs(self) -> Path:
        """Tracker files (TensorBoard event files under ``logs/dckd``)."""
        return self.root / "logs"

    @property
    def scores(self) -> Path:
        return self.root / "scores.json"

    @property
    def resumes(self) -> Path:
        return self.root / "resumes.jsonl"

    def checkpoint(self, tag: str = "last") -> Path:
        return self.checkpoints / tag

    def weights(self, tag: str = "last", which: str = "model") -> Path:
        """``model`` (the EMA student) or ``student`` (online weights) of checkpoint ``tag``."""
        return self.checkpoint(tag) / f"{which}.safetensors"

    def val_images(self, iteration: int) -> Path:
        return self.root / "val_images" / f"iter_{iteration:06d}"

    def has_checkpoint(self, tag: str = "last") -> bool:
        """A ``tag`` checkpoint, or its previous copy, is on disk."""
        return any((self.checkpoints / name / "state.pt").is_file() for name in (tag, f".prev-{tag}"))

    # -- creating and reusing -----------------------------------------------------------

    def check(self, force: bool, resume: bool) -> None:
        """Refuse to reuse an existing run without ``force``, or to resume a missing one."""
        if resume:
            if not self.settings.is_file():
                raise RunFolderError(
                    f"{self.root}: nothing to resume (no {self.settings.name}); drop --resume to start a run"
                )
            return
        if self.root.exists() and not self.root.is_dir():
            raise RunFolderError(f"{self.root} is a file, not a run folder; choose another --output")
        check_writable(self.root / "settings.yaml")
        if self.root.exists() and any(self.root.iterdir()) and not force and not self.never_saved():
            raise RunFolderError(f"{self.root} already exists; pass --resume to continue it or --force to overwrite it")
        if force:
            refuse_foreign(self.root)

    def saved_any(self) -> bool:
        """A checkpoint a resume can start from (``last``, or ``best`` which it falls back to)."""
        return self.has_checkpoint("last") or self.has_checkpoint("best")

    def never_saved(self) -> bool:
        """A dckd run stopped before its first checkpoint (killed, or failed early): it holds only
        the files a run writes, and nothing a rerun could not make again, so the same command
        may start it afresh without ``--force``."""
        if not self.settings.is_file() or self.saved_any():
            return False
        return all(entry.name in RUN_ENTRIES for entry in self.root.iterdir())

    @property
    def replaced(self) -> Path:
        """Where ``--force`` keeps the run it replaces until the new run's first checkpoint."""
        return self.root.parent / f".{self.root.name}.replaced"

    def prepare(self, force: bool, resume: bool) -> None:
        """Create the folder; an existing run is kept for ``resume`` and replaced only with ``force``
        (or when it never saved a checkpoint): it is moved aside, and deleted only once the new run
        has saved its first checkpoint (``drop_replaced``), so a new run that fails early loses nothing."""
        self.check(force, resume)
        if resume:
            for leftover in self.checkpoints.glob(".tmp-*"):  # a save that was killed half-way
                shutil.rmtree(leftover, ignore_errors=True)
            return
        if self.root.exists() and any(self.root.iterdir()):
            # An earlier --force that never got this far left the user's run aside, and a run that
            # never saved holds nothing to keep: the folder is made afresh.
            if self.replaced.exists() or self.never_saved():
                shutil.rmtree(self.root)
            else:
                self.root.rename(self.replaced)
        self.root.mkdir(parents=True, exist_ok=True)

    def drop_replaced(self) -> None:
        shutil.rmtree(self.replaced, ignore_errors=True)

    # -- settings -----------------------------------------------------------------------

    def write_settings(self, settings: RunSettings) -> None:
        with atomic_path(self.settings) as tmp:
            tmp.write_text(settings_yaml(settings))

    def note_resume(self, iteration: int, changed: dict[str, tuple[object, object]], bitwise: bool) -> None:
        """Append a resume that changed switches: ``changed`` maps each setting to (was, now)."""
        record = {"iter": iteration, "changed": {k: {"was": a, "now": b} for k, (a, b) in changed.items()}}
        record["bitwise"] = bitwise
        try:
            with self.resumes.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
        except OSError as err:
            raise write_error(self.resumes, err) from None

    def read_settings(self) -> RunSettings:
        if not self.settings.is_file():
            raise RunFolderError(f"{self.root}: not a dckd run folder (no {self.settings.name})")
        try:
            raw = load_yaml(self.settings.read_bytes())
        except StrictYamlError as err:
            raise RunFolderError(f"{self.settings}: {err}") from None
        if not isinstance(raw, dict):
            raise RunFolderError(f"{self.settings}: expected a mapping of settings")
        try:
            return RunSettings.model_validate(raw)
        except ValidationError as err:
            raise RunFolderError(f"{self.settings}: {format_errors(err)[0]}") from None
