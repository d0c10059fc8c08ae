"""CPU thread and process policy: how many threads torch uses, and when several processes
without CUDA must be told they are CPU training."""

from __future__ import annotations

import os

import torch

DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice (physical cores, or OMP_NUM_THREADS)


def apply_threads(threads: int | None) -> int:
    """Size torch's CPU thread pools: ``threads``, or the cores shared among the processes that
    ``accelerate launch`` started on this machine. Oversubscribed pools make every run slower."""
    if threads is None:
        processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        threads = max(1, DEFAULT_THREADS // max(processes, 1))
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:
        pass  # fixed once parallel work has started in this process; the intra-op pool is what counts
    return threads


def cpu_processes() -> bool:
    """Launched as several processes on a machine without CUDA: Accelerate must be told it is
    CPU training, or each process trains alone (gloo DDP, as `torchrun --nproc_per_node N`)."""
    return not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
