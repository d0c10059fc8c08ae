"""Progressive patch / batch schedule (Restormer's progressive learning), as a batch sampler.

Stage k runs until iteration ``until_k`` with ``patch_k`` x ``patch_k`` inputs in batches of
``batch_k``; the last stage runs to the end. Samples keep their global index, so a sample is
still a function of ``(seed, index)`` and a resumed run sees what an uninterrupted one would.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from torch.utils.data import Sampler


@dataclass(frozen=True)
class Stage:
    until: int  # first iteration after this stage
    patch: int
    batch: int


class StagedBatches(Sampler[list[int]]):
    """Micro-batches of sample indices from iteration ``start`` to ``iters``; each iteration is
    ``micro`` micro-batches (gradient accumulation x processes) of its stage's batch size."""

    def __init__(self, stages: Sequence[Stage], start: int, iters: int, micro: int = 1):
        self.stages, self.start, self.iters, self.micro = list(stages), start, iters, micro
        self.ends = [s.until for s in self.stages[:-1]] + [max(iters, self.stages[-1].until)]
        self.first_sample = [0]  # global index of each stage's first sample
        begin = 0
        for stage, end in zip(self.stages, self.ends):
            self.first_sample.append(self.first_sample[-1] + (end - begin) * stage.batch * micro)
            begin = end

    def stage_of_iter(self, it: int) -> int:
        return min(bisect.bisect_right(self.ends, it), len(self.stages) - 1)

    def patch_of_sample(self, index: int) -> int:
        k = min(bisect.bisect_right(self.first_sample, index) - 1, len(self.stages) - 1)
        return self.stages[k].patch

    @property
    def samples(self) -> int:
        return self.first_sample[-1]

    def _offset(self, it: int) -> int:
        k = self.stage_of_iter(it)
        begin = self.ends[k - 1] if k else 0
        return self.first_sample[k] + (it - begin) * self.stages[k].batch * self.micro

    def __iter__(self) -> Iterator[list[int]]:
        offset = self._offset(self.start)
        for it in range(self.start, self.iters):
            batch = self.stages[self.stage_of_iter(it)].batch
            for _ in range(self.micro):
                yield list(range(offset, offset + batch))
                offset += batch

    def __len__(self) -> int:
        return (self.iters - self.start) * self.micro
