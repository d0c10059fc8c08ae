"""Freed host memory kept for reuse (``runtime.keep_host_memory``) against glibc's own policy.

The policy and a process's peak resident memory belong to the whole process, so each policy
runs in a fresh process, in turn (glibc, kept, glibc, kept, ...), so that a change in the
machine's speed falls on both. Each process times the real step (``engine/step.step_clock``)
at the paper setting of ``benchmarks/step.py`` (the SwinIR pair x4, 48² LQ patches, the
ImageNet-size encoder for dckd) and counts its minor page faults per step and its peak
resident memory. On the CPU only: on CUDA the host does little per step.

    python benchmarks/host_memory.py --json host-memory.json     # about 5 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from step import cpu_name, random_imagenet_encoder, random_teacher, settings_for

from dckd_cli.engine.build import build_run
from dckd_cli.engine.step import step_clock

POLICIES = {"glibc": "false", "kept": "true"}


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def child(args: argparse.Namespace) -> None:
    """One process, one policy: a warm-up step, then ``--steps`` steps; one JSON line."""
    step_args = argparse.Namespace(
        patch=48, batch=args.batch, precision="no", set=[f"runtime.keep_host_memory={POLICIES[args.policy]}"]
    )
    encoder = args.encoder if args.method.startswith("dckd") else None
    run = build_run(settings_for("swinir-x4", args.method, encoder, args.teacher, step_args))
    step = step_clock(run)
    step()
    seconds, counts = [], []
    for _ in range(args.steps):
        before = faults()
        seconds.append(step())
        counts.append(faults() - before)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    print(
        json.dumps(
            {"sec_per_iter": statistics.median(seconds), "faults": statistics.median(counts), "peak_mb": peak_mb}
        )
    )


def measure(policy: str, method: str, files: dict[str, Path], args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", policy, "--method", method, "--steps", str(args.steps)]
    command += ["--batch", str(args.batch), "--teacher", str(files["teacher"]), "--encoder", str(files["encoder"])]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{policy} {method} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="logits,dckd")
    parser.add_argument("--rounds", type=int, default=2, help="processes per policy and method, in turn")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per process, after one warm-up")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", choices=list(POLICIES), dest="policy", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--teacher", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--encoder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.policy:
        return child(args)
    if torch.cuda.is_available():
        print("CUDA is available: this benchmark measures the CPU's host-memory policy; nothing to do")
        return
    record: dict[str, object] = {"device": cpu_name(), "batch": args.batch, "steps": args.steps, "rows": {}}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dckd-host-memory-") as tmp:
        files = {
            "teacher": random_teacher("swinir", 4, Path(tmp) / "teacher.safetensors"),
            "encoder": random_imagenet_encoder(Path(tmp) / "imagenet.safetensors"),
        }
        for method in args.methods.split(","):
            runs: dict[str, list[dict[str, float]]] = {p: [] for p in POLICIES}
            for _ in range(args.rounds):
                for policy in POLICIES:
                    runs[policy].append(measure(policy, method, files, args))
                    print(f"{method} {policy}: {runs[policy][-1]}", flush=True)
            row = {p: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for p, rs in runs.items()}
            row["time_ratio"] = row["kept"]["sec_per_iter"] / row["glibc"]["sec_per_iter"]
            row["peak_ratio"] = row["kept"]["peak_mb"] / row["glibc"]["peak_mb"]
            record["rows"][f"swinir-x4/{method}"] = row
    print(f"\n{record['device']}, torch {torch.__version__}, batch {args.batch}, {time.perf_counter() - began:.0f} s")
    print("| row | s / step glibc | s / step kept | kept / glibc | faults / step glibc | kept | peak MB glibc | kept |")
    print("|---|---|---|---|---|---|---|---|")
    for label, r in record["rows"].items():
        g, k = r["glibc"], r["kept"]
        print(
            f"| {label} | {g['sec_per_iter']:.2f} | {k['sec_per_iter']:.2f} | {r['time_ratio']:.2f} "
            f"| {g['faults']:,.0f} | {k['faults']:,.0f} | {g['peak_mb']:,.0f} | {k['peak_mb']:,.0f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
