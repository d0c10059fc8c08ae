"""Named evaluation sets resolved under a data root, as (LQ, GT) uint8 pairs.

Layouts understood (``ROOT`` = ``--data-root`` or ``$DCKD_DATA``):

* SR (``Set5``, ``Set14``, ``BSD100``/``B100``, ``Urban100``, ``Manga109`` or any folder):
  ``ROOT/NAME/HR/*.png`` with optional official inputs ``ROOT/NAME/LR_bicubic/X{s}/{stem}x{s}.png``
  (the BasicSR layout), or a flat ``ROOT/NAME/*.png`` of HR images. HR is mod-cropped to the
  scale; missing LR files are made by MATLAB-style bicubic downscaling.
* Deblurring / deraining (``GoPro``, ``HIDE``, ``Test100``, ``Rain100H``, ``Rain100L``,
  ``Test2800``, ``Test1200`` or any folder): ``input/`` + ``target/`` with matching file
  stems. Where a name is looked for: ``data/folders.py``.
* ``builtin``: the offline images of :mod:`dckd_cli.data.builtin`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dckd_cli.catalog.tasks import TASKS
from dckd_cli.data import builtin
from dckd_cli.data.degrade import add_rain, motion_blur
from dckd_cli.data.folders import DatasetError, canonical_name, find_set, matched_pairs
from dckd_cli.data.images import ImageError, list_images, read_image
from dckd_cli.data.resize import bicubic_downscale, mod_crop


@dataclass(frozen=True)
class EvalPair:
    name: str
    load: Callable[[], tuple[np.ndarray, np.ndarray]]  # -> (lq, gt), uint8 RGB


@dataclass(frozen=True)
class Benchmark:
    name: str
    pairs: tuple[EvalPair, ...]

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[EvalPair]:
        return iter(self.pairs)


# Built-in deblurring / deraining: each training image is degraded this many times (seeded),
# so a run sees many blur kernels and rain patterns, not one per photograph.
TRAIN_VARIANTS = 8


def builtin_degrade(task: str, gt: np.ndarray, scale: int, seed: int) -> np.ndarray:
    """The synthetic LQ of the built-in set (``data/degrade.py``): bicubic for SR, a random
    motion blur or random rain streaks drawn from ``seed``."""
    kind = TASKS[task].stand_in
    if kind == "bicubic":
        return bicubic_downscale(gt, scale)
    rng = np.random.default_rng((TASK_SEEDS[kind], seed))
    return motion_blur(gt, rng) if kind == "motion-blur" else add_rain(gt, rng)


TASK_SEEDS = {"motion-blur": 1, "rain": 2}
EVAL_SEED = 10_000  # evaluation images draw from seeds above every training variant's


def _builtin(task: str, scale: int, train: bool = False) -> Benchmark:
    """The built-in evaluation images, or (``train``) centre crops of the training photographs
    (``builtin.NOT_VALIDATED`` left out), which validate without touching the test set."""

    def loader(img: np.ndarray, seed: int) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        gt = img if TASKS[task].paired else mod_crop(img, scale)
        return lambda: (builtin_degrade(task, gt, scale, seed), gt)

    if train:  # the first degraded variant of each photograph (the one training also sees)
        images = tuple((n, builtin.centre_crop(img, builtin.EVAL_SIDE)) for n, img in builtin.train_images())
        pairs = (
            EvalPair(n, loader(img, i * TRAIN_VARIANTS))
            for i, (n, img) in enumerate(images)
            if n not in builtin.NOT_VALIDATED
        )
        return Benchmark("builtin-train", tuple(pairs))
    pairs = (EvalPair(n, loader(img, EVAL_SEED + i)) for i, (n, img) in enumerate(builtin.eval_images()))
    return Benchmark("builtin", tuple(pairs))


def _sr_folder(name: str, folder: Path, scale: int, lr_source: str) -> Benchmark:
    hr_dir = folder / "HR" if (folder / "HR").is_dir() else folder
    lr_dir = folder / "LR_bicubic" / f"X{scale}"
    paths = list_images(hr_dir)
    if not paths:
        raise DatasetError(f"{hr_dir}: no images found")
    if lr_source == "file" and not lr_dir.is_dir():
        raise DatasetError(f"{lr_dir}: official LR files asked for (lr_source=file) but the folder is missing")

    def loader(hr_path: Path) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        lr_path = lr_dir / f"{hr_path.stem}x{scale}{hr_path.suffix}"

        def load() -> tuple[np.ndarray, np.ndarray]:
            gt = mod_crop(read_image(hr_path), scale)
            if min(gt.shape[:2]) == 0:
                raise ImageError(f"{hr_path}: smaller than the scale x{scale} a side; remove it from the set")
            use_file = lr_source == "file" or (lr_source == "auto" and lr_path.is_file())
            lq = read_image(lr_path) if use_file else bicubic_downscale(gt, scale)
            if lq.shape[0] * scale != gt.shape[0] or lq.shape[1] * scale != gt.shape[1]:
                raise ImageError(f"{lr_path}: size {lq.shape[:2]} is not HR {gt.shape[:2]} / {scale}")
            return lq, gt

        return load

    return Benchmark(name, tuple(EvalPair(p.stem, loader(p)) for p in paths))


def check_benchmark(bench: Benchmark, scale: int, min_side: int = 11) -> None:
    """Read every pair of ``bench`` once: unreadable, mismatched or too-small images fail now,
    with the file named, not at the first validation hours into a run."""
    for pair in bench:
        lq, gt = pair.load()
        if (lq.shape[0] * scale, lq.shape[1] * scale) != gt.shape[:2]:
            raise DatasetError(
                f"{bench.name}/{pair.name}: input {lq.shape[1]}x{lq.shape[0]} does not match target "
                f"{gt.shape[1]}x{gt.shape[0]} at x{scale}"
            )
        border = scale if scale > 1 else 0
        if min(gt.shape[:2]) - 2 * border < min_side:
            raise DatasetError(
                f"{bench.name}/{pair.name}: {gt.shape[1]}x{gt.shape[0]} is too small to score "
                f"(needs {min_side + 2 * border} pixels a side); remove it from the set"
            )


def _paired_folder(name: str, folder: Path) -> Benchmark:
    def loader(lq_path: Path, gt_path: Path) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        def load() -> tuple[np.ndarray, np.ndarray]:
            lq, gt = read_image(lq_path), read_image(gt_path)
            if lq.shape != gt.shape:
                raise ImageError(f"{lq_path}: size {lq.shape} differs from its target {gt.shape}")
            return lq, gt

        return load

    pairs = sorted(matched_pairs(folder), key=lambda pair: pair[0].stem)
    return Benchmark(name, tuple(EvalPair(lq.stem, loader(lq, gt)) for lq, gt in pairs))


def load_benchmark(name: str, task: str, scale: int, root: Path | None, lr_source: str = "auto") -> Benchmark:
    """Resolve ``name`` (a benchmark name, ``builtin`` or a folder path) to a benchmark."""
    if name in ("builtin", "builtin-train"):
        return _builtin(task, scale, train=name == "builtin-train")
    spec = TASKS[task]
    known = ", ".join((*spec.benchmarks, "builtin"))
    folder = find_set(name, root, "benchmark", spec.paired, f"{spec.layout}; known: {known}")
    if spec.paired:
        return _paired_folder(canonical_name(name), folder)
    return _sr_folder(canonical_name(name), folder, scale, lr_source)
