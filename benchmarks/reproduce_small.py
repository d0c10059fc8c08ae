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
from safetensors.torch import save_file

from dckd_cli.atomic import atomic_path
from dckd_cli.data.benchmarks import load_benchmark
from dckd_cli.engine.checkpoint import load_checkpoint
from dckd_cli.engine.run_folder import RunFolder
from dckd_cli.engine.trainer import train
from dckd_cli.metrics.evaluate import evaluate
from dckd_cli.models.vqgan import COMPACT_ENCODER, VQGANConfig, VQGANEncoder
from dckd_cli.models.zoo import count_parameters
from dckd_cli.pipelines.evaluate import ModelChoice, resolve_model
from dckd_cli.settings.presets import resolve_settings
from dckd_cli.settings.schema import RunSettings

METHODS = ("scratch", "logits", "fakd", "dckd", "dckd-star")
READING = "## Reading"  # a report's hand-written part starts here and survives regeneration
PAIRS = (("dckd", "logits"), ("dckd-star", "logits"), ("logits", "scratch"), ("fakd", "logits"), ("dckd", "scratch"))
DATASETS = ("Set5", "Set14")
WARM_LR = 5e-4  # warm start: cosine from WARM_LR down to METHOD_LR
METHOD_LR = 2e-4  # each method: cosine from METHOD_LR down to 1e-6 (the annealing phase)
METHOD_EMA = 0.99  # an EMA window (~100 steps) short against the method budget


# The investigation: dckd with one thing changed at a time (folder name -> settings).
VARIANTS: dict[str, dict[str, object]] = {
    "dckd-dcl0.01": {"method.weights.dcl": 0.01},
    "dckd-dcl1": {"method.weights.dcl": 1.0},
    "dckd-no-dmm": {"method.weights.ce": 0.0},
    "dckd-no-dcr": {"method.weights.dcl": 0.0},
    "dckd-neg-weak": {"method.dcl.negatives.noise_sigma": [1.0, 10.0]},
    "dckd-neg-strong": {"method.dcl.negatives.noise_sigma": [20.0, 50.0]},
    "dckd-history-10": {"method.dcl.history.steps": [10, 10, 10]},
    "dckd-history-frozen": {"method.dcl.history.steps": [10**9] * 3},
    "dckd-encoder-random": {"method.encoder.checkpoint": "RANDOM"},
}
VARIANT_NOTES = {
    "dckd-dcl0.01": "λ_dcl = 0.01 (default 0.1)",
    "dckd-dcl1": "λ_dcl = 1",
    "dckd-no-dmm": "L_ce off (DCR only)",
    "dckd-no-dcr": "L_dcl off (DMM only)",
    "dckd-neg-weak": "negatives: noise σ 1–10 (default 1–30)",
    "dckd-neg-strong": "negatives: noise σ 20–50",
    "dckd-history-10": "history model refreshed every 10 steps",
    "dckd-history-frozen": "history model never refreshed (stays the warm start)",
    "dckd-encoder-random": "a randomly initialised encoder of the compact shape",
}


def base_flags(shared: Path, args: argparse.Namespace) -> dict[str, object]:
    data = shared / "data"
    return {
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
        "runtime.teacher_cache": str(args.output / "teacher-cache"),  # same data order: shared outputs
    }


def method_settings(
    flags: dict[str, object], args: argparse.Namespace, method: str, seed: int, warm: Path, iters: int
) -> RunSettings:
    """One method's continuation; the history schedule is scaled with the budget (``iters / --iters``)."""
    s = resolve_settings(None, {**flags, "method.name": method, "runtime.seed": seed})
    s.student.checkpoint = warm
    s.optim.iters, s.optim.lr, s.optim.scheduler = iters, METHOD_LR, "cosine"
    s.optim.eta_min, s.optim.ema_decay = 1e-6, METHOD_EMA
    if "method.dcl.history.steps" not in flags:  # a variant's own schedule stands as given
        s.method.dcl.history.steps = [max(1, int(v) * iters // args.iters) for v in args.history_steps.split(",")]
    return s


def random_encoder(path: Path) -> Path:
    """A randomly initialised encoder of the packaged compact shape (the encoder-quality control)."""
    if path.is_file():
        return path
    config = VQGANConfig.from_json(COMPACT_ENCODER.with_suffix(".json").read_text())
    torch.manual_seed(0)
    model = VQGANEncoder(config)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "codebook"}
    state["quantize.embedding.weight"] = torch.randn(config.n_embed, config.embed_dim)
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(config.to_json())
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))
    return path


def finished(folder: Path, iters: int) -> bool:
    try:
        return load_checkpoint(folder).state["iter"] >= iters
    except Exception:  # noqa: BLE001 - no or unreadable checkpoint: not finished
        return False


def run(settings: RunSettings, folder: Path) -> None:
    """Start, resume or skip ``folder`` so that it ends at ``settings.optim.iters``."""
    if finished(folder, settings.optim.iters):
        return
    resume = RunFolder(folder).has_checkpoint("last")
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
    with atomic_path(cache) as tmp:  # an interrupted scoring must not leave a half file to reuse
        tmp.write_text(json.dumps(out))
    return out


def step_seconds(folder: Path) -> float:
    rates = [
        json.loads(line)["it_per_s"]
        for line in RunFolder(folder).metrics.read_text().splitlines()
        if "it_per_s" in line
    ]
    return 1.0 / statistics.median(rates)


def mean_std(values: list[float], digits: int = 3) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--output", type=Path, default=Path("runs/reproduce"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--warm-iters", type=int, default=12000)
    parser.add_argument("--iters", type=int, default=600)
    parser.add_argument("--patch", type=int, default=24)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--history-steps", default="50,100,150")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="dckd variants to run ('' for none)")
    parser.add_argument("--variant-seeds", default="0", help="seeds the variants run on")
    parser.add_argument("--long-iters", type=int, default=1200, help="budget check: logits and dckd this long (0: off)")
    parser.add_argument("--report", type=Path, default=Path("docs/results.md"))
    args = parser.parse_args()
    began = time.perf_counter()
    seeds = [int(s) for s in args.seeds.split(",")]
    variant_seeds = [int(s) for s in args.variant_seeds.split(",") if s]
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    flags = base_flags(args.shared, args)
    base = resolve_settings(None, flags)
    root = args.output

    warm = base.model_copy(deep=True)
    warm.method.name = "scratch"
    warm.optim.iters, warm.optim.lr, warm.optim.scheduler = args.warm_iters, WARM_LR, "cosine"
    warm.optim.eta_min = METHOD_LR
    run(warm, root / "warmstart")
    warm_weights = RunFolder(root / "warmstart").weights("last")

    table: dict[str, dict[int, dict]] = {m: {} for m in METHODS}
    per_run: dict[str, list[float]] = {}
    n, long = args.iters, args.long_iters
    jobs = [(seed, m, m, {}, n) for seed in seeds for m in METHODS]
    jobs += [(seed, m, m, {}, n) for seed in variant_seeds for m in ("logits", "dckd") if seed not in seeds]
    jobs += [(seed, v, "dckd", VARIANTS[v], n) for seed in variant_seeds for v in variants]
    jobs += [(seed, f"{m}-{long}", m, {}, long) for seed in variant_seeds for m in ("logits", "dckd") if long]
    for seed, name, method, extra, iters in jobs:
        if extra.get("method.encoder.checkpoint") == "RANDOM":
            extra = {**extra, "method.encoder.checkpoint": str(random_encoder(root / "encoder-random.safetensors"))}
        s = method_settings({**flags, **extra}, args, method, seed, warm_weights, iters)
        folder = root / f"seed{seed}" / name
        run(s, folder)
        table.setdefault(name, {})[seed] = scores(ModelChoice(run=folder), s, folder / "scores.json")
        per_run.setdefault(name, []).append(step_seconds(folder))
    seconds = {name: statistics.median(values) for name, values in per_run.items()}

    teacher = scores(ModelChoice(checkpoint=base.teacher.checkpoint), base, root / "teacher-scores.json")
    warm_scores = scores(ModelChoice(run=root / "warmstart"), base, root / "warmstart-scores.json")
    params = count_parameters(resolve_model(ModelChoice(run=root / "warmstart"), base).model)
    write_report(args, table, seconds, teacher, warm_scores, params, time.perf_counter() - began)


def write_report(args, table, seconds, teacher, warm, params, wall) -> None:  # noqa: ANN001
    seeds = [int(s) for s in args.seeds.split(",")]
    psnr = lambda name, seed, d: table[name][seed][d]["psnr"]  # noqa: E731
    lines = [
        "# Small-scale reproduction: paired, warm-started, x4 SR on CPU",
        "",
        f"Command: `python benchmarks/reproduce_small.py --seeds {args.seeds} --warm-iters {args.warm_iters} "
        f"--iters {args.iters} --patch {args.patch} --batch {args.batch} --history-steps {args.history_steps} "
        f"--variant-seeds {args.variant_seeds} --variants {args.variants} --long-iters {args.long_iters}`",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
        f"wall time of this invocation {wall / 60:.1f} min (runs already finished are reused).",
        "",
        f"Teacher DCTLSA x4 (885k parameters); student RCAN-tiny ({params / 1e3:.0f}k parameters). "
        f"Warm start: scratch for {args.warm_iters} iterations (Adam, cosine {WARM_LR:g} → {METHOD_LR:g}); "
        f"then each method {args.iters} iterations from it (Adam, cosine {METHOD_LR:g} → 1e-6, "
        f"EMA {METHOD_EMA}; the EMA weights are scored); batch {args.batch} of {args.patch}² LR patches from "
        f"T91 + BSD200, the same order for every method of a seed; DCKD history update steps "
        f"{args.history_steps} over the run's phases (40% / 70% / rest). Teacher outputs are memoised "
        "(`runtime.teacher_cache`): on each seed the first run meets the teacher forward, later ones "
        "read it, so s / step (median over seeds) counts it for logits, and for dckd-star's flipped "
        "label-consistency inputs (half of its steps); fakd always runs the teacher (it reads its features).",
        "",
        "## PSNR / SSIM (Y, mean ± std over seeds " + ", ".join(map(str, seeds)) + ")",
        "",
        "| model | " + " | ".join(f"{d} PSNR | {d} SSIM" for d in DATASETS) + " | s / step |",
        "|---|" + "---|---|" * len(DATASETS) + "---|",
        "| teacher | " + " | ".join(f"{teacher[d]['psnr']:.3f} | {teacher[d]['ssim']:.4f}" for d in DATASETS) + " | |",
        "| warm start | " + " | ".join(f"{warm[d]['psnr']:.3f} | {warm[d]['ssim']:.4f}" for d in DATASETS) + " | |",
    ]
    for method in METHODS:
        cells = []
        for d in DATASETS:
            cells.append(mean_std([psnr(method, s, d) for s in seeds]))
            cells.append(mean_std([table[method][s][d]["ssim"] for s in seeds], 4))
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {seconds[method]:.3f} |")
    lines += ["", "## Paired differences (PSNR dB, per seed, then mean ± std)", ""]
    lines.append("| difference | dataset | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std |")
    lines.append("|---|---|" + "---|" * len(seeds) + "---|")
    for a, b in PAIRS:
        for d in DATASETS:
            diffs = [psnr(a, s, d) - psnr(b, s, d) for s in seeds]
            lines.append(f"| {a} − {b} | {d} | " + " | ".join(f"{x:+.3f}" for x in diffs) + f" | {mean_std(diffs)} |")
    done = [v for v in VARIANTS if v in table]
    if done:
        vseeds = sorted(set.intersection(*(set(table[v]) for v in done)))
        lines += [
            "",
            "## Investigation: dckd with one thing changed (seeds " + ", ".join(map(str, vseeds)) + ")",
            "",
            "Each row is dckd with the one change named, paired with logits and with default dckd on the "
            "same seed(s) (PSNR dB; mean over those seeds).",
            "",
            "| variant | change | "
            + " | ".join(f"{d} PSNR | {d} − logits | {d} − dckd" for d in DATASETS)
            + " | s / step |",
            "|---|---|" + "---|---|---|" * len(DATASETS) + "---|",
        ]
        for v in ["dckd", *done]:
            cells = []
            for d in DATASETS:
                own = statistics.mean(psnr(v, s, d) for s in vseeds)
                cells.append(f"{own:.3f}")
                for ref in ("logits", "dckd"):
                    cells.append(f"{own - statistics.mean(psnr(ref, s, d) for s in vseeds):+.3f}")
            note = VARIANT_NOTES.get(v, "defaults")
            lines.append(f"| {v} | {note} | " + " | ".join(cells) + f" | {seconds[v]:.3f} |")
    long = args.long_iters
    if f"dckd-{long}" in table:
        bseeds = sorted(table[f"dckd-{long}"])
        lines += [
            "",
            f"## Budget: {args.iters} against {long} iterations (seeds " + ", ".join(map(str, bseeds)) + ")",
            "",
            "Same warm start, schedule shape and data order; the history steps scale with the budget.",
            "",
            "| iterations | " + " | ".join(f"logits {d} | dckd {d} | dckd − logits {d}" for d in DATASETS) + " |",
            "|---|" + "---|---|---|" * len(DATASETS),
        ]
        for iters, suffix in ((args.iters, ""), (long, f"-{long}")):
            cells = []
            for d in DATASETS:
                lo = statistics.mean(psnr(f"logits{suffix}", s, d) for s in bseeds)
                dk = statistics.mean(psnr(f"dckd{suffix}", s, d) for s in bseeds)
                cells += [f"{lo:.3f}", f"{dk:.3f}", f"{dk - lo:+.3f}"]
            lines.append(f"| {iters} | " + " | ".join(cells) + " |")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    old = args.report.read_text() if args.report.is_file() else ""
    reading = old[old.index(READING) :] if READING in old else ""  # the hand-written reading is kept
    args.report.write_text("\n".join(lines) + "\n" + ("\n" + reading if reading else ""))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
