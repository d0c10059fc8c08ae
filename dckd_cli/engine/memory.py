"""Peak memory of a stretch of work: torch's peak allocation on a GPU; on a Linux CPU the
process's peak resident set (VmHWM), which ``/proc/self/clear_refs`` resets. And the bytes
autograd keeps for the backward (the activations), the same on every device."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    elif sys.platform.startswith("linux"):
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak resident set
        except OSError:
            pass


def peak_memory_mb(device: torch.device) -> float | None:
    """CUDA: peak allocated by torch. Linux CPU: the process's peak resident set since the reset."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


@dataclass
class SavedForBackward:
    """Bytes of the tensors autograd saved for the backward, each storage counted once;
    parameters (which live anyway) left out."""

    storages: dict[int, int] = field(default_factory=dict)

    @property
    def mb(self) -> float:
        return sum(self.storages.values()) / 2**20


@contextmanager
def saved_for_backward() -> Iterator[SavedForBackward]:
    """Count what the graph built inside the block keeps for its backward (its activations)."""
    saved = SavedForBackward()

    def pack(t: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, nn.Parameter) and t.device.type != "meta":
            storage = t.untyped_storage()
            saved.storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield saved
