"""Training sets prepared once per machine: every image decoded once, its LQ made once, both
stored raw in one file that every worker and process maps from the OS page cache.

Format: a folder in the dckd cache (``prepared/<set>-<task>-x<scale>-<key>/``) holding
``pairs.u8``, the uint8 HWC arrays of every pair back to back, and ``index.json``, each pair's
offsets and shapes. A crop is a slice of a ``numpy.memmap``: no decoding, no per-worker copy
(the pages are the kernel's, shared by every process on the machine), nothing to install.
LMDB was the alternative: it stores encoded records (a decode per sample) or raw ones under
one key each, and needs a dependency, for no gain when samples are crops of whole images.

The key hashes every file's resolved path, size and modification time, the task, the scale
and the LQ recipe (MATLAB-exact bicubic for SR; the paired input as it is otherwise), so an
edited file or another scale is a new preparation. Preparation checks the free space first,
decodes in parallel threads (OpenCV and the resize release the GIL), writes into a partial
folder renamed into place only when complete (a kill leaves nothing that looks valid; the
next use starts again), and holds a file lock: of several processes preparing one set, one
prepares and the others wait for it. A file that does not decode is refused in one line
(or, with ``data.skip_bad_images``, left out with a warning), before any run folder exists.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dckd_cli.cache import cache_dir
from dckd_cli.data.folders import DatasetError
from dckd_cli.data.images import ImageError, declared_too_large, image_size, read_image
from dckd_cli.data.resize import bicubic_downscale, mod_crop
from dckd_cli.limits import max_pixels

log = logging.getLogger(__name__)
FORMAT = 2  # 2: each pair records its source file
DATA, INDEX = "pairs.u8", "index.json"
Source = tuple[Path, Path | None]  # (target or HR image, paired input or None for SR)


class PrepareProgress:
    """Preparation progress; the library logs plain lines, the CLI shows a Rich bar
    (``use_progress``)."""

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.done, self.began, self.said = label, total, 0, time.perf_counter(), 0.0

    def advance(self) -> None:
        self.done += 1
        now = time.perf_counter() - self.began
        if self.done == self.total or now - self.said > 10:
            self.said = now
            eta = now / self.done * (self.total - self.done)
            log.warning(
                "preparing %s: %d / %d images, %.0f s, about %.0f s left", self.label, self.done, self.total, now, eta
            )

    def end(self) -> None:
        pass


_progress: list[Callable[[], PrepareProgress]] = [PrepareProgress]


def use_progress(factory: Callable[[], PrepareProgress]) -> None:
    """Report preparations with ``factory()`` (the CLI's Rich bar) instead of log lines."""
    _progress[0] = factory


@dataclass(frozen=True)
class Pair:
    source: str  # the input file (SR: the HR image), for messages
    lq: tuple[int, int, int, int]  # offset, height, width, channels
    gt: tuple[int, int, int, int]


_maps: dict[tuple[str, int], np.memmap] = {}


def _mapped(path: Path) -> np.memmap:
    """The set's file mapped once per process (a worker forked from a parent maps its own)."""
    key = (str(path), os.getpid())
    if key not in _maps:
        _maps[key] = np.memmap(path, dtype=np.uint8, mode="r")
    return _maps[key]


class PreparedPair:
    """Loads one pair as read-only views of the mapped file (a crop copies only its pixels)."""

    def __init__(self, data: Path, pair: Pair):
        self.data, self.pair = data, pair
        self.source = pair.source

    def __call__(self) -> tuple[np.ndarray, np.ndarray]:
        mm = _mapped(self.data)

        def view(spec: tuple[int, int, int, int]) -> np.ndarray:
            offset, h, w, c = spec
            return mm[offset : offset + h * w * c].reshape(h, w, c)

        return view(self.pair.lq), view(self.pair.gt)


def _key(sources: list[Source], task: str, scale: int, recipe: str) -> str:
    files = []
    for source in sources:
        for path in source:
            if path is not None:
                st = path.stat()
                files.append([str(path.resolve()), st.st_size, st.st_mtime_ns])
    limit = max_pixels()  # a set prepared without its too-large files is another set under another limit
    text = json.dumps(
        {"format": FORMAT, "task": task, "scale": scale, "recipe": recipe, "limit": limit, "files": files}
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _load_pair(source: Source, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(lq, gt) exactly as the in-process loaders make them."""
    gt_path, lq_path = source
    if lq_path is None:
        gt = mod_crop(read_image(gt_path), scale)
        return bicubic_downscale(gt, scale), gt
    return read_image(lq_path), read_image(gt_path)


def _planned_shapes(source: Source, scale: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """LQ and GT (height, width) from the headers, or None when a header cannot say."""
    gt_path, lq_path = source
    size = image_size(gt_path)
    if size is None:
        return None
    if lq_path is None:
        h, w = size[0] - size[0] % scale, size[1] - size[1] % scale
        return (h // scale, w // scale), (h, w)
    lq_size = image_size(lq_path)
    return (lq_size, size) if lq_size is not None else None


def prepare_set(
    label: str, sources: list[Source], task: str, scale: int, skip_bad: bool, workers: int | None = None
) -> list[PreparedPair]:
    """The pairs of ``sources`` from their prepared file (prepared now if it is not yet)."""
    recipe = f"matlab-bicubic-x{scale}" if sources and sources[0][1] is None else "paired-input"
    root = cache_dir() / "prepared"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{label}-{task}-x{scale}-{_key(sources, task, scale, recipe)}"
    with open(final.with_name(f"{final.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process preparing it: wait for it
        if not (final / INDEX).is_file():
            for stale in root.glob(f"{final.name}.partial-*"):  # a killed preparation
                shutil.rmtree(stale, ignore_errors=True)
            _prepare(final, label, sources, scale, recipe, skip_bad, workers)
    index = json.loads((final / INDEX).read_text())
    for skipped in index["skipped"]:
        _refuse_or_skip(skipped, skip_bad)
    pairs = [Pair(p["source"], tuple(p["lq"]), tuple(p["gt"])) for p in index["pairs"]]
    return [PreparedPair(final / DATA, p) for p in pairs]


def _refuse_or_skip(reason: str, skip_bad: bool) -> None:
    if not skip_bad:
        raise DatasetError(f"{reason}; remove it, or set data.skip_bad_images=true to leave it out")
    log.warning("left out of training: %s", reason)


def _prepare(
    final: Path, label: str, sources: list[Source], scale: int, recipe: str, skip_bad: bool, workers: int | None
) -> None:
    skipped: list[str] = []  # why files were left out (recorded: a later use without skip_bad refuses them)
    kept = []
    for source in sources:  # too many pixels declared: refused from the header, never decoded or sized in
        reasons = [declared_too_large(path) for path in source if path is not None]
        reason = next((r for r in reasons if r is not None), None)
        if reason is None:
            kept.append(source)
            continue
        if not skip_bad:
            _refuse_or_skip(reason, skip_bad)
        skipped.append(reason)
    sources = kept
    planned = [_planned_shapes(s, scale) for s in sources]
    unknown = [s for s, p in zip(sources, planned) if p is None]
    if unknown:  # not PNG / JPEG: decode to learn the size (rare; the pixels are decoded again below)
        learned = {}
        for s in unknown:
            try:
                lq, gt = _load_pair(s, scale)
                learned[s] = (lq.shape[:2], gt.shape[:2])
            except ImageError:
                learned[s] = ((0, 0), (0, 0))  # found again, and reported, below
        planned = [p if p is not None else learned[s] for s, p in zip(sources, planned)]
    offsets, total = [], 0
    for (lh, lw), (gh, gw) in planned:
        offsets.append((total, total + lh * lw * 3))
        total += (lh * lw + gh * gw) * 3
    free = shutil.disk_usage(final.parent).free
    if total > free - 2**28:
        raise DatasetError(
            f"preparing training set {label} needs {total / 2**30:.1f} GiB in {final.parent} and "
            f"{free / 2**30:.1f} GiB are free; free space there or set DCKD_CACHE to a larger disk"
        )
    partial = final.with_name(f"{final.name}.partial-{os.getpid()}")
    partial.mkdir()
    try:
        data = partial / DATA
        with open(data, "wb") as handle:
            handle.truncate(max(total, 1))
        mm = np.memmap(data, dtype=np.uint8, mode="r+", shape=(max(total, 1),))
        report = _progress[0]()
        report.start(label, len(sources))
        lock = threading.Lock()
        pairs: list[dict[str, object] | None] = [None] * len(sources)

        def fill(i: int) -> None:
            source, ((lh, lw), (gh, gw)), (lq_at, gt_at) = sources[i], planned[i], offsets[i]
            try:
                lq, gt = _load_pair(source, scale)
            except ImageError as err:
                with lock:
                    skipped.append(str(err))
                    report.advance()
                return
            paired_mismatch = source[1] is not None and lq.shape != gt.shape
            if paired_mismatch or lq.shape != (lh, lw, 3) or gt.shape != (gh, gw, 3):
                reason = f"{source[1] or source[0]}: input {lq.shape[1]}x{lq.shape[0]} differs from its target "
                reason += f"{gt.shape[1]}x{gt.shape[0]}" + (f" at x{scale}" if source[1] is None else "")
                with lock:
                    skipped.append(reason)
                    report.advance()
                return
            mm[lq_at : lq_at + lq.size] = lq.reshape(-1)
            mm[gt_at : gt_at + gt.size] = gt.reshape(-1)
            pairs[i] = {"source": str(source[1] or source[0]), "lq": [lq_at, lh, lw, 3], "gt": [gt_at, gh, gw, 3]}
            with lock:
                report.advance()

        with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
            list(pool.map(fill, range(len(sources))))
        report.end()
        if skipped and not skip_bad:  # refused now, before any run folder exists
            _refuse_or_skip(sorted(skipped)[0], skip_bad)
        mm.flush()
        index = {
            "format": FORMAT,
            "recipe": recipe,
            "pairs": [p for p in pairs if p is not None],
            "skipped": sorted(skipped),
            "bytes": total,
        }
        (partial / INDEX).write_text(json.dumps(index))
        for path in (data, partial / INDEX):
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        partial.rename(final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


@dataclass(frozen=True)
class PreparedInfo:
    folder: Path
    pairs: int
    skipped: int
    bytes: int


def prepared_sets() -> list[PreparedInfo]:
    """The complete prepared sets in the dckd cache (what ``dckd data list`` shows)."""
    found = []
    for index in sorted((cache_dir() / "prepared").glob("*/" + INDEX)):
        record = json.loads(index.read_text())
        found.append(PreparedInfo(index.parent, len(record["pairs"]), len(record["skipped"]), record["bytes"]))
    return found
