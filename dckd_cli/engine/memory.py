"""Peak memory of a stretch of work: torch's peak allocation on a GPU; on a Linux CPU the
process's peak resident set (VmHWM), which ``/proc/self/clear_refs`` resets. The bytes
autograd keeps for the backward (the activations), and the peak of the tensors a stretch of
work makes (``tensor_peak``), both the same on every device: what a GPU's allocator would
have to hold for them, without its rounding, workspaces or the memory that lived before."""

from __future__ import annotations

import sys
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


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


@dataclass
class TensorPeak:
    """The most bytes that tensors made inside the block held at once, each storage counted
    once, from its making until it is freed (kept alive by the graph included)."""

    live: int = 0
    peak: int = 0
    storages: dict[tuple[str, int], int] = field(default_factory=dict)  # (device, address) -> bytes

    @property
    def mb(self) -> float:
        return self.peak / 2**20

    def _release(self, key: tuple[str, int]) -> None:
        self.live -= self.storages.pop(key, 0)


def _storage(t: object) -> torch.UntypedStorage | None:
    """A dense tensor's storage; None for anything else (sparse or meta tensors, non-tensors)."""
    if not isinstance(t, torch.Tensor) or t.device.type == "meta" or t.layout != torch.strided:
        return None
    try:
        return t.untyped_storage()
    except (RuntimeError, NotImplementedError):
        return None


def _key(storage: torch.UntypedStorage) -> tuple[str, int]:
    return str(storage.device), storage.data_ptr()


class _TensorPeakMode(TorchDispatchMode):
    def __init__(self, record: TensorPeak):
        super().__init__()
        self.record = record

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        out = func(*args, **(kwargs or {}))
        seen = {_key(s) for s in map(_storage, tree_leaves((args, kwargs))) if s is not None}
        for storage in map(_storage, tree_leaves(out)):
            if storage is None:
                continue
            key = _key(storage)
            if key in seen or key in self.record.storages or storage.nbytes() == 0:
                continue  # a view or an in-place result of an input, or already counted
            self.record.storages[key] = storage.nbytes()
            self.record.live += storage.nbytes()
            self.record.peak = max(self.record.peak, self.record.live)
            weakref.finalize(storage, self.record._release, key)
        return out


@contextmanager
def tensor_peak(record: TensorPeak | None = None) -> Iterator[TensorPeak]:
    """Track the tensors every torch operation inside the block makes (forward and backward,
    any device) and their peak total, in ``record`` (a new one by default); on the CPU this is
    the figure a GPU's peak allocation stands for, which the process's resident set blurs with
    the allocator's retained heap."""
    record = TensorPeak() if record is None else record
    with _TensorPeakMode(record):
        yield record


def resident_mb(networks: list[nn.Module | None]) -> float:
    """The MB of the networks' weights and buffers, each storage once (shared ones included once)."""
    storages: dict[int, int] = {}
    for network in networks:
        if network is None:
            continue
        for t in (*network.parameters(), *network.buffers()):
            storage = t.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values()) / 2**20
