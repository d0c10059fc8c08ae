"""Step-cost benchmark: seconds per training step of each method, as ratios to `scratch`
measured in the same run, and DCKD's batched no-grad target pass against the per-image,
autograd-on loop of the released code.

    make bench            # or: python benchmarks/run.py --steps 20 --size small
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from dckd_cli.catalog.methods import METHOD_NAMES as METHODS
from dckd_cli.engine.build import build_run
from dckd_cli.engine.step import time_steps
from dckd_cli.settings.presets import resolve_settings


def step_seconds(method: str, size: str, steps: int, teacher: Path, threads: int | None = None) -> float:
    flags = {"method.name": method, "student.size": size, "teacher.checkpoint": str(teacher), "optim.iters": steps}
    settings = resolve_settings("demo", {**flags, "runtime.threads": threads})
    return time_steps(build_run(settings), steps)


def target_pass_ratio(repeats: int = 5) -> dict[str, float]:
    """Encoder features of positive + 5 negatives: one batched no-grad pass vs a per-image loop with autograd."""
    from dckd_cli.models.vqgan import resolve_encoder

    encoder = resolve_encoder(None)
    images = torch.rand(6, 8, 3, 96, 96)
    levels = (0, 1, 2, 3, 4)

    def batched() -> None:
        with torch.no_grad():
            encoder(images.flatten(0, 1), levels)

    def looped() -> None:
        for group in images:
            for img in group:
                feats, _ = encoder(img[None].requires_grad_(True), levels)
                sum(f.sum() for f in feats).backward()

    out = {}
    for name, fn in (("batched_no_grad", batched), ("per_image_autograd", looped)):
        fn()
        began = time.perf_counter()
        for _ in range(repeats):
            fn()
        out[name] = (time.perf_counter() - began) / repeats
    return out


def latency(teacher: Path, side: int = 64, repeats: int = 10) -> dict[str, float]:
    """Median seconds to restore one side x side LQ image (x4): teacher and student, PyTorch and ONNX Runtime."""
    import tempfile

    from dckd_cli.deploy.formats import load_onnx, write_onnx
    from dckd_cli.deploy.student_file import StudentInfo
    from dckd_cli.models.checkpoints import build_with_weights
    from dckd_cli.models.zoo import build_model

    models = {
        "teacher (rcan small)": (build_with_weights("rcan", "small", 4, "sr", teacher).eval(), "small"),
        "student (rcan tiny)": (build_model("rcan", "tiny", 4).eval(), "tiny"),
    }
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, size) in models.items():
            path = Path(tmp) / f"{size}.onnx"
            write_onnx(model, StudentInfo("rcan", size, 4, "sr"), path, fp16=False)
            runners = {"PyTorch": model, "ONNX Runtime": load_onnx(path)}
            for backend, run in runners.items():
                times = []
                for i in range(repeats + 2):
                    began = time.perf_counter()
                    with torch.no_grad():
                        run(x)
                    if i >= 2:
                        times.append(time.perf_counter() - began)
                out[f"{name}, {backend}"] = sorted(times)[len(times) // 2]
    return out


def side_by_side(teacher: Path, steps: int) -> dict[str, float]:
    """Seconds per logits step: one process alone, then two side by side with torch's default pools
    and with the cores split between them (``runtime.threads``)."""
    import os
    import subprocess
    import sys

    def launch(count: int, threads: int | None) -> float:
        command = [sys.executable, __file__, "--one", "logits", "--steps", str(steps), "--teacher", str(teacher)]
        command += ["--threads", str(threads)] if threads else []
        procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(count)]
        return max(float(p.communicate()[0].strip().splitlines()[-1]) for p in procs)

    cores = os.cpu_count() or 2
    return {
        "one process": launch(1, None),
        "two side by side, default threads": launch(2, None),
        f"two side by side, runtime.threads={max(1, cores // 2)}": launch(2, max(1, cores // 2)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", default="tiny", choices=["tiny", "small"])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child of the side-by-side measurement
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--teacher", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(step_seconds(args.one, args.size, args.steps, args.teacher, args.threads))
        return
    from safetensors.torch import save_file

    from dckd_cli.models.zoo import build_model

    teacher = Path("/tmp/dckd-bench-teacher.safetensors")
    save_file({k: v.contiguous() for k, v in build_model("rcan", "small", 4).state_dict().items()}, str(teacher))
    seconds = {m: step_seconds(m, args.size, args.steps, teacher) for m in METHODS}
    base = seconds["scratch"]
    print(f"step cost, student rcan-{args.size}, demo batch (median of {args.steps} steps)")
    for m, s in seconds.items():
        print(f"  {m:10s} {s * 1000:8.1f} ms   x{s / base:5.2f} of scratch")
    passes = target_pass_ratio()
    ratio = passes["per_image_autograd"] / passes["batched_no_grad"]
    print(f"encoder target pass (6 x 8 images of 96^2): batched no-grad is {ratio:.1f}x faster than the per-image loop")
    threads = side_by_side(teacher, args.steps)
    alone = threads["one process"]
    print(f"threads: seconds per logits step (median of {args.steps}), as ratios to one process alone")
    for name, s in threads.items():
        print(f"  {name:40s} {s * 1000:8.1f} ms   x{s / alone:5.2f}")
    lat = latency(teacher)
    base_name = next(iter(lat))
    print(f"latency, one 64x64 LQ image to 256x256 (x4), median of 10 runs, as ratios to {base_name}")
    for name, s in lat.items():
        print(f"  {name:40s} {s * 1000:8.1f} ms   x{s / lat[base_name]:5.2f}")
    if args.json:
        record = {"seconds": seconds, "target_pass": passes, "threads": threads, "latency": lat}
        args.json.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
