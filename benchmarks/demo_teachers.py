"""The packaged demo teachers of deblurring and deraining: trained here, shipped in float16.

Each is the demo's teacher (its architecture and size in ``presets/demo.yaml`` and
``catalog/tasks.py``) trained from scratch on the built-in images exactly as ``dckd distill
--task deblur`` would train it on first use (``pipelines/demo_teacher.py``: the same
iterations, learning rate, batch and seed), then stored as float16 safetensors in
``dckd_cli/assets/`` with a record in ``dckd_cli/assets/demo_teachers.json``: the command, the
seed, torch, the file's SHA-256, and its scores on the built-in test images in float16 (the
file shipped) and float32. Training on the CPU is deterministic, so on the same machine the
command rebuilds the same bytes; ``--check`` retrains and compares. The training runs live in
``--work`` (default ``runs/demo-teachers``), so a stopped build resumes where it stopped.

    python benchmarks/demo_teachers.py --task deblur --task derain --threads 1
    python benchmarks/demo_teachers.py --task derain --check
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from dckd_cli.assets import ASSETS
from dckd_cli.atomic import atomic_path
from dckd_cli.catalog.tasks import TASKS
from dckd_cli.data.benchmarks import load_benchmark
from dckd_cli.engine.run_folder import RunFolder
from dckd_cli.engine.trainer import train
from dckd_cli.metrics.scoring import evaluate
from dckd_cli.models.checkpoints import build_with_weights
from dckd_cli.models.zoo import count_parameters
from dckd_cli.pipelines.demo_teacher import DEMO_TEACHER_ITERS, STAND_IN_VERSIONS, demo_teacher_settings
from dckd_cli.settings.presets import DEMO_PRESET, resolve_settings

RECORD = ASSETS / "demo_teachers.json"
SEED = 0


def _scores(task: str, weights: Path) -> dict[str, float]:
    settings = resolve_settings(DEMO_PRESET, {"task": task})
    t = settings.teacher
    model = build_with_weights(t.arch, t.size, settings.scale, task, weights)
    bench = load_benchmark("builtin", task, settings.scale, None)
    (result,) = evaluate(model, [bench], task=task, scale=settings.scale, model_name="teacher")
    return {"psnr": round(result.psnr, 4), "ssim": round(result.ssim, 5), "images": result.images}


def build(task: str, threads: int | None, folder: Path, work: Path) -> dict:
    """Train the demo teacher of ``task`` in ``work/<task>`` (resumed there after a stop; the
    resume is bitwise), write it in float16 into ``folder`` and return its record."""
    flags: dict = {"task": task, "runtime.seed": SEED}
    if threads:
        flags["runtime.threads"] = threads
    settings = resolve_settings(DEMO_PRESET, flags)
    run = work / task
    resume = RunFolder(run).has_checkpoint()
    train(demo_teacher_settings(settings), run, force=not resume, resume=resume)
    trained = RunFolder(run).weights("last")
    state = load_file(str(trained))
    half = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in state.items()}
    blob = folder / TASKS[task].packaged_teachers[1]
    with atomic_path(blob) as tmp:
        save_file(half, str(tmp))
    full = _scores(task, trained)
    t = settings.teacher
    model = build_with_weights(t.arch, t.size, settings.scale, task, blob)
    return {
        "file": blob.name,
        "sha256": hashlib.sha256(blob.read_bytes()).hexdigest(),
        "bytes": blob.stat().st_size,
        "arch": t.arch,
        "size": t.size,
        "parameters": count_parameters(model),
        "stand_in": TASKS[task].stand_in,
        "stand_in_version": STAND_IN_VERSIONS[TASKS[task].stand_in],
        "iterations": DEMO_TEACHER_ITERS[task],
        "seed": SEED,
        "command": f"python benchmarks/demo_teachers.py --task {task}" + (f" --threads {threads}" if threads else ""),
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "builtin_scores_float16": _scores(task, blob),
        "builtin_scores_float32": full,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", action="append", choices=["deblur", "derain"], required=True)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (the record names them)")
    parser.add_argument("--check", action="store_true", help="retrain and compare with the shipped file")
    parser.add_argument("--work", type=Path, default=Path("runs/demo-teachers"), help="the training runs (resumable)")
    args = parser.parse_args()
    records = json.loads(RECORD.read_text()) if RECORD.is_file() else {}
    for task in args.task:
        shipped = records.get(task, {}).get("sha256")
        with tempfile.TemporaryDirectory(prefix="dckd-demo-teacher-check-") as scratch:
            work = Path(scratch) / "work" if args.check else args.work
            record = build(task, args.threads, Path(scratch) if args.check else ASSETS, work)
        print(f"{task}: {record['file']}, {record['bytes']} bytes, sha256 {record['sha256']}")
        print(f"{task}: built-in test images, float16 {record['builtin_scores_float16']}")
        if args.check:
            same = shipped == record["sha256"]
            print(f"{task}: {'the same bytes as' if same else 'DIFFERENT from'} the shipped file")
            continue
        records[task] = record
        with atomic_path(RECORD) as tmp:
            tmp.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
