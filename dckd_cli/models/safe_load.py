"""``torch.load`` with ``weights_only=True`` that also opens training checkpoints.

Lightning-era checkpoints (the official VQGAN ``last.ckpt`` among them) carry more than
tensors: callback states keyed by callback classes, hyper-parameter objects. The restricted
unpickler refuses any class it does not know. Here every such class is replaced by an inert
stand-in that only stores what it is given, so the tensors can be read while no code named
by the file is imported or run. Nothing beyond the restricted unpickler is ever trusted.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import torch


class Inert:
    """Stands in for a class a checkpoint names: keeps its arguments and state, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.__dict__.setdefault("items", {})[key] = value

    def append(self, value: Any) -> None:
        self.__dict__.setdefault("list", []).append(value)

    def extend(self, values: Any) -> None:
        self.__dict__.setdefault("list", []).extend(values)


def stand_in(full_name: str) -> type[Inert]:
    module, _, name = full_name.rpartition(".")
    return type(name or full_name, (Inert,), {"__module__": module or "unknown"})


def load_weights_only(path: Path) -> object:
    """``torch.load(path, weights_only=True)``; unknown classes become inert stand-ins."""
    try:
        with warnings.catch_warnings():  # torch's note on a raw pickle's protocol; the error says what matters
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:  # noqa: BLE001 - not a zip checkpoint: the first error is the real one
            raise err from None
        if not names:
            raise
        with torch.serialization.safe_globals([(stand_in(n), n) for n in names]):
            return torch.load(path, map_location="cpu", weights_only=True)
