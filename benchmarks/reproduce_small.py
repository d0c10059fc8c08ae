"""A paired, warm-started small-scale reproduction: does DCKD beat logits KD and scratch?

Protocol (x4 SR):
  * teacher: the official DCTLSA x4 checkpoint (DIV2K-trained), loaded through the zoo's
    checkpoint detection; student: RCAN-tiny from the zoo (46k parameters, 19x smaller);
  * training data: T91 + BSD200; evaluation: Set5 and Set14 with dckd's own evaluate;
  * one scratch warm start (cached, resumable); every method continues from it for the
    same budget, with the same data order for a given seed; seeds are paired;
  * methods: scratch (continued), logits, fakd, dckd, dckd-star, with their real defaults
    and the packaged compact encoder; the history-model schedule is scaled to the budget.

Every run folder is resumable: re-running the command continues where it stopped.

    python benchmarks/reproduce_small.py --shared ../shared --output runs/reproduce
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from dckd_cli.data.benchmarks import load_benchmark
from dckd_cli.engine.checkpoint import load_checkpoint
from dckd_cli.engine.trainer import train
from dckd_cli.metrics.evaluate import evaluate
from dckd_cli.models.zoo import count_parameters
from dckd_cli.pipelines.evaluate import ModelChoice, resolve_model
from dckd_cli.settings.presets import resolve_settings
from dckd_cli.settings.schema import RunSettings

METHODS = ("scratch", "logits", "fakd", "dckd", "dckd-star")
DATASETS = ("Set5", "Set14")


def base_settings(shared: Path, args: argparse.Namespace) -> RunSettings:
    data = shared / "data"
    flags = {
        "task": "sr",
        "scale": 4,
        "teacher.arch": "auto",
        "teacher.checkpoint": str(shared / "weights" / "DCTLSA_x4.pt"),
        "student.arch": "rcan",
        "student.size": "tiny",
        "data.root": str(data),
        "data.train": [str(data / "T91"), str(data / "BSD200")],
        "data.val": "Set5",
        "method.fakd.teacher_layers": ["LR_conv"],  # DCTLSA's body output, before its upsampler
        "data.patch_size": args.patch,
        "data.batch_size": args.batch,
        "runtime.log_every": 50,
        "runtime.val_every": 10**9,  # validation only at the end; evaluation is separate
        "runtime.save_every": 100,
    }
    return resolve_settings(None, flags)


def finished(folder: Path, iters: int) -> bool:
    try:
        return load_checkpoint(folder).state["iter"] >= iters
    except Exception:  # noqa: BLE001 - no or unreadable checkpoint: not finished
        return False


def run(settings: RunSettings, folder: Path) -> None:
    """Start, resume or skip ``folder`` so that it ends at ``settings.optim.iters``."""
    if finished(folder, settings.optim.iters):
        return
    resume = (folder / "checkpoints" / "last" / "state.pt").is_file()
    print(f"{'resuming' if resume else 'starting'} {folder}", flush=True)
    train(settings, folder, force=not resume, resume=resume)


def scores(choice: ModelChoice, settings: RunSettings, cache: Path) -> dict[str, dict[str, float]]:
    if cache.is_file():
        return json.loads(cache.read_text())
    resolved = resolve_model(choice, settings)
    benches = [load_benchmark(d, "sr", 4, settings.data.root, "file") for d in DATASETS]
    results = evaluate(
        resolved.model, benches, task="sr", scale=4, model_name=resolved.label, multiple=resolved.multiple
    )
    out = {r.dataset: {"psnr": r.psnr, "ssim": r.ssim} for r in results}
    cache.write_text(json.dumps(out))
    return out


def step_seconds(folder: Path) -> float:
    rates = [
        json.loads(line)["it_per_s"]
        for line in (folder / "metrics.jsonl").read_text().splitlines()
        if "it_per_s" in line
    ]
    return 1.0 / statistics.median(rates)


def mean_std(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--output", type=Path, default=Path("runs/reproduce"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--warm-iters", type=int, default=3000)
    parser.add_argument("--iters", type=int, default=600)
    parser.add_argument("--patch", type=int, default=24)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--history-steps", default="50,100,150")
    parser.add_argument("--report", type=Path, default=Path("docs/results.md"))
    args = parser.parse_args()
    began = time.perf_counter()
    seeds = [int(s) for s in args.seeds.split(",")]
    base = base_settings(args.shared, args)
    root = args.output

    warm = base.model_copy(deep=True)
    warm.method.name = "scratch"
    warm.optim.iters, warm.optim.lr, warm.optim.scheduler = args.warm_iters, 5e-4, "cosine"
    warm.optim.eta_min = 1e-4
    run(warm, root / "warmstart")
    warm_weights = root / "warmstart" / "checkpoints" / "last" / "model.safetensors"

    table: dict[str, dict[int, dict]] = {m: {} for m in METHODS}
    seconds: dict[str, float] = {}
    for seed in seeds:
        for method in METHODS:
            s = base.model_copy(deep=True)
            s.method.name, s.runtime.seed = method, seed
            s.student.checkpoint = warm_weights
            s.optim.iters, s.optim.lr, s.optim.scheduler = args.iters, 1e-4, "constant"
            s.dckd.history.steps = [int(v) for v in args.history_steps.split(",")]
            folder = root / f"seed{seed}" / method
            run(s, folder)
            table[method][seed] = scores(ModelChoice(run=folder), s, folder / "scores.json")
            seconds.setdefault(method, step_seconds(folder))

    teacher = scores(ModelChoice(checkpoint=base.teacher.checkpoint), base, root / "teacher-scores.json")
    warm_scores = scores(ModelChoice(run=root / "warmstart"), base, root / "warmstart-scores.json")
    params = count_parameters(resolve_model(ModelChoice(run=root / "warmstart"), base).model)
    write_report(args, table, seconds, teacher, warm_scores, params, time.perf_counter() - began)


def write_report(args, table, seconds, teacher, warm, params, wall) -> None:  # noqa: ANN001
    seeds = sorted(next(iter(table.values())))
    lines = [
        "# Small-scale reproduction: paired, warm-started, x4 SR on CPU",
        "",
        f"Command: `python benchmarks/reproduce_small.py --seeds {args.seeds} --warm-iters {args.warm_iters} "
        f"--iters {args.iters} --patch {args.patch} --batch {args.batch} --history-steps {args.history_steps}`",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
        f"wall time of this invocation {wall / 60:.1f} min (runs already finished are reused).",
        "",
        f"Teacher DCTLSA x4 (885k parameters); student RCAN-tiny ({params / 1e3:.0f}k parameters); "
        f"warm start: scratch for {args.warm_iters} iterations, then each method {args.iters} iterations "
        f"(Adam 1e-4, constant); batch {args.batch} of {args.patch}² LR patches from T91 + BSD200; "
        f"DCKD history update steps {args.history_steps} per third of the budget.",
        "",
        "## PSNR / SSIM (Y, mean ± std over seeds " + ", ".join(map(str, seeds)) + ")",
        "",
        "| model | " + " | ".join(f"{d} PSNR | {d} SSIM" for d in DATASETS) + " | s / step |",
        "|---|" + "---|---|" * len(DATASETS) + "---|",
        "| teacher | " + " | ".join(f"{teacher[d]['psnr']:.3f} | {teacher[d]['ssim']:.4f}" for d in DATASETS) + " | |",
        "| warm start | " + " | ".join(f"{warm[d]['psnr']:.3f} | {warm[d]['ssim']:.4f}" for d in DATASETS) + " | |",
    ]
    for method, per_seed in table.items():
        cells = []
        for d in DATASETS:
            cells.append(mean_std([per_seed[s][d]["psnr"] for s in seeds]))
            cells.append(mean_std([per_seed[s][d]["ssim"] for s in seeds]))
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {seconds[method]:.3f} |")
    lines += ["", "## Paired differences (PSNR dB, per seed, then mean ± std)", ""]
    lines.append("| difference | dataset | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std |")
    lines.append("|---|---|" + "---|" * len(seeds) + "---|")
    for a, b in (("dckd", "logits"), ("dckd-star", "logits"), ("logits", "scratch"), ("fakd", "logits")):
        for d in DATASETS:
            diffs = [table[a][s][d]["psnr"] - table[b][s][d]["psnr"] for s in seeds]
            lines.append(f"| {a} − {b} | {d} | " + " | ".join(f"{x:+.3f}" for x in diffs) + f" | {mean_std(diffs)} |")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
