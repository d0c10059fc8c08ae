"""Experiment trackers through Accelerate (``runtime.log_with``): TensorBoard or Weights & Biases,
alongside ``metrics.jsonl``. Every logged loss term, the learning rate, the speed and the
validation PSNR go to the tracker at their iteration; with TensorBoard, the validation
restorations too."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from dckd_cli.errors import DckdError
from dckd_cli.settings.schema import RunSettings

PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}


def check_tracker(name: str) -> str | None:
    """The Accelerate tracker name, or None; a missing package fails here, before any work."""
    if name == "none":
        return None
    if importlib.util.find_spec(PACKAGES[name]) is None:
        raise DckdError(f"runtime.log_with={name} needs the {PACKAGES[name]} package: pip install 'dckd[{name}]'")
    return name


def flat_config(settings: RunSettings) -> dict[str, Any]:
    """Settings as ``section.key: scalar`` (what trackers store as hyperparameters)."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif isinstance(value, (int, float, bool, str)):
            out[prefix] = value
        else:
            out[prefix] = str(value)

    walk("", settings.model_dump(mode="json"))
    return out


class Trackers:
    def __init__(self, accelerator: Accelerator, settings: RunSettings):
        self.accelerator, self.settings = accelerator, settings
        self.on = settings.runtime.log_with != "none"

    def start(self) -> None:
        if self.on:
            self.accelerator.init_trackers("dckd", config=flat_config(self.settings))

    def log(self, record: dict[str, Any], iteration: int) -> None:
        values = {k: v for k, v in record.items() if k != "iter" and isinstance(v, (int, float))}
        if self.on and values:
            self.accelerator.log(values, step=iteration)

    def images(self, folder: Path, iteration: int) -> None:
        """The validation restorations saved in ``folder`` (TensorBoard only)."""
        if self.settings.runtime.log_with != "tensorboard":
            return
        from dckd_cli.data.images import read_image

        writer = self.accelerator.get_tracker("tensorboard", unwrap=True)
        for path in sorted(folder.rglob("*.png")):
            writer.add_image(f"val/{path.parent.name}/{path.stem}", read_image(path), iteration, dataformats="HWC")

    def end(self) -> None:
        if self.on:
            self.accelerator.end_training()
