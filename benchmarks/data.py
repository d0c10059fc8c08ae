"""Training-data benchmark: patches per second and memory of the loader's process tree, on a
DIV2K-sized set this script makes itself (2040x1356 PNGs), for 0, 1, 2 and 4 workers.

Two loaders, measured in the same run: the in-process one dckd had before (each worker decodes
every image it touches, makes its LQ and keeps both in its own cache) and the prepared set
(``data/prepared.py``: decoded once into one memory-mapped file). Memory is the PSS of the
main process and its workers together (shared pages counted once), with and without the
file-backed part (the prepared file's page cache). ``docs/performance.md`` has a run.

    python benchmarks/data.py --quick      # 12 images, under 3 minutes on 2 cores
    python benchmarks/data.py              # 40 images
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from skimage import data as skdata
from torch.utils.data import DataLoader

SIDE = (1356, 2040)  # DIV2K's typical HR size (height, width)
SCALE, PATCH, BATCH = 4, 48, 16


def make_set(folder: Path, count: int) -> list[Path]:
    """``count`` photo-like 2040x1356 PNGs (a photograph scaled up, with seeded grain)."""
    folder.mkdir(parents=True, exist_ok=True)
    base = cv2.resize(skdata.astronaut(), SIDE[::-1], interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        img = np.clip(np.roll(base, 97 * i, axis=1) + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
        path = folder / f"{i:04d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


class InProcess:
    """The loader dckd had before: decode and downscale in the worker; each worker caches its own."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self) -> tuple[np.ndarray, np.ndarray]:
        from dckd_cli.data.images import read_image
        from dckd_cli.data.resize import bicubic_downscale, mod_crop

        gt = mod_crop(read_image(self.path), SCALE)
        return bicubic_downscale(gt, SCALE), gt


def _pss(pid: int) -> tuple[int, int]:
    """(PSS, PSS of anonymous memory) of ``pid`` in bytes."""
    total = anon = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            total = int(line.split()[1]) * 1024
        elif line.startswith("Pss_Anon:"):
            anon = int(line.split()[1]) * 1024
    return total, anon


def tree_memory() -> tuple[float, float]:
    """PSS of this process and its children (the loader's workers), and its anonymous part, in MB."""
    me = os.getpid()
    pids = [me] + [int(p) for p in Path(f"/proc/{me}/task/{me}/children").read_text().split()]
    sums = [0, 0]
    for pid in pids:
        try:
            total, anon = _pss(pid)
        except OSError:
            continue
        sums[0] += total
        sums[1] += anon
    return sums[0] / 1e6, sums[1] / 1e6


def measure(loaders: list, workers: int, batches: int) -> dict[str, float]:
    """Time to the first batch, patches per second after it, and the tree's memory at the end."""
    from dckd_cli.data.pairs import TrainingPatches

    dataset = TrainingPatches(loaders, SCALE, PATCH, (batches + 1) * BATCH, seed=0)
    options = {"persistent_workers": True, "prefetch_factor": 4} if workers else {}
    began = time.perf_counter()
    loader = DataLoader(dataset, batch_size=BATCH, num_workers=workers, **options)
    source = iter(loader)
    next(source)
    first = time.perf_counter() - began
    began = time.perf_counter()
    count = sum(1 for _ in source)
    rate = count * BATCH / (time.perf_counter() - began)
    pss, anon = tree_memory()
    del source, loader
    return {"first_batch_s": first, "patches_per_s": rate, "pss_mb": pss, "pss_anon_mb": anon}


def child(args: argparse.Namespace) -> None:
    """One measurement in a fresh process, so each starts from the same memory."""
    import json
    import warnings

    from dckd_cli.data.images import list_images
    from dckd_cli.data.pairs import training_loaders

    warnings.filterwarnings("ignore", message="This DataLoader will create")
    torch.set_num_threads(1)
    folder = Path(args.root) / "set"
    if args.one == "prepared":
        loaders = training_loaders([str(folder)], "sr", SCALE, None)  # prepared by the parent
    else:
        loaders = [InProcess(p) for p in list_images(folder)]  # TrainingPatches caches each load, per worker
    _, before = tree_memory()
    result = measure(loaders, int(args.workers), args.batches)
    result["loader_anon_mb"] = result["pss_anon_mb"] - before
    print(json.dumps(result))


def run_child(name: str, workers: int, root: Path, batches: int) -> dict[str, float]:
    import json
    import subprocess
    import sys

    command = [sys.executable, __file__, "--one", name, "--workers", str(workers), "--root", str(root)]
    done = subprocess.run([*command, "--batches", str(batches)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="12 images and fewer batches (under 3 minutes)")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--batches", type=int, default=None, help="batches timed per measurement")
    parser.add_argument("--workers", default="0,1,2,4")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child measurement
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return child(args)
    count = args.images or (12 if args.quick else 40)
    batches = args.batches or (60 if args.quick else 200)
    with tempfile.TemporaryDirectory(prefix="dckd-data-bench-") as tmp:
        os.environ["DCKD_CACHE"] = str(Path(tmp) / "cache")  # the children inherit it
        from dckd_cli.data.pairs import training_loaders

        began = time.perf_counter()
        make_set(Path(tmp) / "set", count)
        print(f"made {count} PNGs of {SIDE[1]}x{SIDE[0]} in {time.perf_counter() - began:.0f} s")
        began = time.perf_counter()
        training_loaders([str(Path(tmp) / "set")], "sr", SCALE, None)
        prepare_s = time.perf_counter() - began
        began = time.perf_counter()
        training_loaders([str(Path(tmp) / "set")], "sr", SCALE, None)
        again_s = time.perf_counter() - began
        rows = []
        for workers in [int(w) for w in args.workers.split(",")]:
            for name in ("in-process", "prepared"):
                rows.append((name, workers, run_child(name, workers, Path(tmp), batches)))
    zero = next(r for n, w, r in rows if n == "prepared" and w == 0)["first_batch_s"]
    first_use, later = prepare_s + zero, again_s + zero
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; one thread per process")
    print(f"set: {count} x {SIDE[1]}x{SIDE[0]} PNG, x{SCALE}, {PATCH}² LQ patches, batch {BATCH}, {batches} batches")
    print(f"preparation (first use): {prepare_s:.1f} s; a later use finds it in {again_s * 1000:.1f} ms")
    print(
        f"time to the first batch (0 workers): first use {first_use:.2f} s, later {later:.3f} s "
        f"({first_use / max(later, 1e-9):.0f}x sooner)"
    )
    header = ["loader", "workers", "patches / s", "per worker", "first batch s", "tree PSS MB", "anonymous PSS MB"]
    print("| " + " | ".join([*header, "of it the loader's"]) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for name, workers, r in rows:
        per = r["patches_per_s"] / max(workers, 1)
        print(
            f"| {name} | {workers} | {r['patches_per_s']:.0f} | {per:.0f} | {r['first_batch_s']:.2f} | "
            f"{r['pss_mb']:.0f} | {r['pss_anon_mb']:.0f} | {r['loader_anon_mb']:.0f} |"
        )
    for name in ("in-process", "prepared"):
        own = {w: r for n, w, r in rows if n == name}
        if 0 in own and 4 in own:
            ratio = own[4]["pss_anon_mb"] / own[0]["pss_anon_mb"]
            print(f"{name}: total memory (anonymous PSS of the tree) with 4 workers is {ratio:.2f}x that with 0")


if __name__ == "__main__":
    main()
