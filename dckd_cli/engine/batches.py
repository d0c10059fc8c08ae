"""Training batches from an iteration on: sample i depends on the seed and i alone, so a
resumed run meets exactly the batches an uninterrupted one would have (whatever the number
of workers: they only decide who cuts which sample)."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from dckd_cli.data.pairs import PairLoader, TrainingPatches
from dckd_cli.data.schedule import Stage, StagedBatches
from dckd_cli.settings.schema import RunSettings


def loader_workers(settings: RunSettings, device: torch.device) -> int:
    """``data.workers``, or by default: none on the CPU (the step itself needs the cores), else
    this machine's cores shared among its training processes (one left for the step), at most 8."""
    if settings.data.workers is not None:
        return settings.data.workers
    if device.type == "cpu":
        return 0
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, min(8, (os.cpu_count() or 2) // max(processes, 1) - 1))


def _loader_options(settings: RunSettings, device: torch.device) -> dict[str, Any]:
    """Workers that stay up between epochs and prefetch; pinned memory on CUDA (copied without blocking)."""
    workers = loader_workers(settings, device)
    options: dict[str, Any] = {"num_workers": workers, "pin_memory": device.type == "cuda"}
    if workers:
        options |= {"persistent_workers": True, "prefetch_factor": 4}
    return options


def training_batches(
    settings: RunSettings, sources: list[PairLoader], processes: int, start: int, device: torch.device
) -> DataLoader:
    """Batches of every process from iteration ``start`` on (``processes`` share each optimiser step)."""
    s = settings
    if s.data.progressive:
        return _staged_batches(s, sources, processes, start, device)
    per_step = s.data.batch_size * s.optim.grad_accum * processes
    dataset = TrainingPatches(
        sources, s.scale, s.data.patch_size, s.optim.iters * per_step, s.runtime.seed, s.data.augment
    )
    return DataLoader(
        Subset(dataset, range(start * per_step, len(dataset))),
        batch_size=s.data.batch_size,
        shuffle=False,
        drop_last=True,
        **_loader_options(s, device),
    )


def _staged_batches(
    s: RunSettings, sources: list[PairLoader], processes: int, start: int, device: torch.device
) -> DataLoader:
    """Batches of a progressive patch / batch schedule (``data.progressive``)."""
    stages = [Stage(st.until, st.patch, st.batch) for st in s.data.progressive]
    sampler = StagedBatches(stages, start, s.optim.iters, s.optim.grad_accum * processes)
    dataset = TrainingPatches(
        sources,
        s.scale,
        stages[0].patch,
        sampler.samples,
        s.runtime.seed,
        s.data.augment,
        patch_of_sample=sampler.patch_of_sample,
    )
    return DataLoader(dataset, batch_sampler=sampler, **_loader_options(s, device))
