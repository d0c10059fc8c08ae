"""Training batches from an iteration on: sample i depends on the seed and i alone, so a
resumed run meets exactly the batches an uninterrupted one would have."""

from __future__ import annotations

from torch.utils.data import DataLoader, Subset

from dckd_cli.data.pairs import PairLoader, TrainingPatches
from dckd_cli.data.schedule import Stage, StagedBatches
from dckd_cli.settings.schema import RunSettings


def training_batches(settings: RunSettings, sources: list[PairLoader], processes: int, start: int) -> DataLoader:
    """Batches of every process from iteration ``start`` on (``processes`` share each optimiser step)."""
    s = settings
    if s.data.progressive:
        return _staged_batches(s, sources, processes, start)
    per_step = s.data.batch_size * s.optim.grad_accum * processes
    dataset = TrainingPatches(
        sources, s.scale, s.data.patch_size, s.optim.iters * per_step, s.runtime.seed, s.data.augment
    )
    return DataLoader(
        Subset(dataset, range(start * per_step, len(dataset))),
        batch_size=s.data.batch_size,
        shuffle=False,
        num_workers=s.data.workers,
        drop_last=True,
    )


def _staged_batches(s: RunSettings, sources: list[PairLoader], processes: int, start: int) -> DataLoader:
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
    return DataLoader(dataset, batch_sampler=sampler, num_workers=s.data.workers)
