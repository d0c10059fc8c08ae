"""Peak memory of a stretch of work: torch's peak allocation on a GPU; on a Linux CPU the
process's peak resident set (VmHWM), which ``/proc/self/clear_refs`` resets."""

from __future__ import annotations

import sys
from pathlib import Path

import torch


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
