"""Training pairs and the random patches cut from them.

A sample is a pure function of ``(seed, index)``: which image, where the crop sits and
which flip / rotation applies all come from ``numpy.random.default_rng((seed, index))``.
So the data order does not depend on worker processes, and a resumed run that continues
at sample ``k`` sees exactly what an uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dckd_cli.catalog.tasks import TASKS
from dckd_cli.data import builtin
from dckd_cli.data.benchmarks import TRAIN_VARIANTS, builtin_degrade
from dckd_cli.data.folders import DatasetError, find_set, matched_pairs
from dckd_cli.data.images import list_images, uint8_to_tensor_array
from dckd_cli.data.prepared import prepare_set
from dckd_cli.data.resize import mod_crop

log = logging.getLogger(__name__)

PairLoader = Callable[[], tuple[np.ndarray, np.ndarray]]  # -> (lq, gt) uint8 RGB


def _label(folder: Path) -> str:
    """A readable name for a set's prepared file (its key tells sets apart)."""
    text = f"{folder.parent.name}-{folder.name}" if folder.parent.name else folder.name
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _folder_loaders(folder: Path, task: str, scale: int, skip_bad: bool) -> list[PairLoader]:
    """The pairs of one training folder, read from its prepared file (``data/prepared.py``)."""
    if TASKS[task].paired:
        sources = [(gt, lq) for lq, gt in matched_pairs(folder)]
    else:
        sources = [(p, None) for p in list_images(folder)]
        if not sources:
            raise DatasetError(f"{folder}: no training images found")
    return list(prepare_set(_label(folder), sources, task, scale, skip_bad))


def training_loaders(
    names: Sequence[str], task: str, scale: int, root: Path | None, skip_bad: bool = False
) -> list[PairLoader]:
    """One loader per training image of every named set (``builtin``, a name or a folder)."""
    loaders: list[PairLoader] = []
    for name in names:
        if name == "builtin":
            variants = TRAIN_VARIANTS if TASKS[task].paired else 1  # bicubic has one form
            for i, (_, img) in enumerate(builtin.train_images()):
                gt = img if TASKS[task].paired else mod_crop(img, scale)
                for v in range(variants):
                    seed = i * TRAIN_VARIANTS + v
                    loaders.append(lambda gt=gt, seed=seed: (builtin_degrade(task, gt, scale, seed), gt))
            continue
        layout = "NAME/input + NAME/target" if TASKS[task].paired else "a folder of HR images"
        folder = find_set(name, root, "training", TASKS[task].paired, layout)
        loaders += _folder_loaders(folder, task, scale, skip_bad)
    return loaders


def check_patches_fit(loaders: Sequence[PairLoader], patches: dict[str, int]) -> None:
    """Refuse a patch side (``{setting: side}``) larger than every training image's LQ, before
    any run starts; a prepared pair's size comes from its index, others are loaded (until one fits)."""
    need, largest = max(patches.values()), 0
    for loader in loaders:
        pair = getattr(loader, "pair", None)
        side = min(pair.lq[1:3]) if pair is not None else min(loader()[0].shape[:2])
        largest = max(largest, side)
        if largest >= need:
            return
    for key, patch in patches.items():
        if patch > largest:
            raise DatasetError(
                f"{key} {patch}: larger than every training image (the largest is {largest} LQ pixels a side); "
                f"lower {key}"
            )


def augment(lq: np.ndarray, gt: np.ndarray, code: int) -> tuple[np.ndarray, np.ndarray]:
    """One of the 8 flip / 90-degree-rotation variants (``code`` in 0..7), applied to both."""

    def op(img: np.ndarray) -> np.ndarray:
        if code & 1:
            img = img[:, ::-1]
        if code & 2:
            img = img[::-1, :]
        if code & 4:
            img = img.transpose(1, 0, 2)
        return img

    return op(lq), op(gt)


class TrainingPatches(Dataset):
    """Random ``patch``-sized LQ crops with their ``patch * scale`` GT crops.

    ``len()`` is the number of samples the run will draw (iterations x batch); sample
    ``index`` is determined by ``(seed, index)`` alone. A loader is called once per image
    and worker (a prepared set's loader returns views of its mapped file, so nothing is copied).
    """

    def __init__(
        self,
        loaders: Sequence[PairLoader],
        scale: int,
        patch: int,
        length: int,
        seed: int = 0,
        flip_rotate: bool = True,
        patch_of_sample: Callable[[int], int] | None = None,
    ):
        if not loaders:
            raise DatasetError("no training images")
        self.loaders = list(loaders)
        self.scale, self.patch, self.length, self.seed, self.flip_rotate = scale, patch, length, seed, flip_rotate
        self.patch_of_sample = patch_of_sample  # a progressive schedule's patch side per sample index
        self._image = lru_cache(maxsize=None)(self._load)

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray] | None:
        lq, gt = self.loaders[i]()
        if min(lq.shape[:2]) < self.patch:
            name = getattr(self.loaders[i], "source", f"built-in training image {i}")
            log.warning("%s (%dx%d LQ) is smaller than patch %d; skipped", name, *lq.shape[1::-1], self.patch)
            return None
        return lq, gt

    def _draw(self, rng: np.random.Generator, patch: int) -> tuple[np.ndarray, np.ndarray]:
        # Images smaller than a patch are skipped by drawing again (still a function of seed and index).
        for _ in range(64):
            pair = self._image(int(rng.integers(len(self.loaders))))
            if pair is not None and min(pair[0].shape[:2]) >= patch:
                return pair
        raise DatasetError(f"training images are smaller than the {patch}-pixel patch; lower data.patch_size")

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, index))
        p, s = self.patch if self.patch_of_sample is None else self.patch_of_sample(index), self.scale
        lq, gt = self._draw(rng, p)
        top = int(rng.integers(lq.shape[0] - p + 1))
        left = int(rng.integers(lq.shape[1] - p + 1))
        lq_patch = lq[top : top + p, left : left + p]
        gt_patch = gt[top * s : (top + p) * s, left * s : (left + p) * s]
        if self.flip_rotate:
            lq_patch, gt_patch = augment(lq_patch, gt_patch, int(rng.integers(8)))
        return torch.from_numpy(uint8_to_tensor_array(lq_patch)), torch.from_numpy(uint8_to_tensor_array(gt_patch))
