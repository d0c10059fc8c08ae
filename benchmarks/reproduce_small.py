"""A paired, warm-started small-scale reproduction: does DCKD beat logits KD and scratch?

Protocol (x4 SR):
  * teacher: the official DCTLSA x4 checkpoint (DIV2K-trained), loaded through the zoo's
    checkpoint detection; student: RCAN-tiny from the zoo (46k parameters, 19x smaller);
  * training data: T91 + BSD200; evaluation: Set5 and Set14 with dckd's own evaluate;
  * one scratch warm start (cached, resumable); every method continues from it for the
    same budget, with the same data order for a given seed; seeds are paired;
  * methods: scratch (continued), logits, fakd, dckd, dckd-star, with their real defaults
    and the packaged compact encoder; the history-model schedule is scaled to the budget.

The runs are one `dckd ablate` grid (``pipelines/ablate.py``): every cell is a run folder
``<run>/seed-K/`` with its scores; re-running the command skips finished cells, resumes a
killed one and runs only what a changed grid adds.

    python benchmarks/reproduce_small.py --shared ../shared --output runs/reproduce
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import evidence
import torch
from evidence import DATASETS, PINNED, mean_std, protocol_overrides, save_random_encoder

from dckd_cli.atomic import atomic_path
from dckd_cli.data.benchmarks import load_benchmark
from dckd_cli.engine.ablation_folder import AblationFolder
from dckd_cli.metrics.scoring import evaluate
from dckd_cli.models.vqgan import COMPACT_ENCODER, VQGANConfig, VQGANEncoder
from dckd_cli.models.zoo import count_parameters
from dckd_cli.pipelines.ablate import AblationSpec, plan_ablation, run_ablation, start_folder
from dckd_cli.pipelines.ablation_grid import Cell
from dckd_cli.pipelines.ablation_summary import summarise
from dckd_cli.pipelines.evaluate import ModelChoice, resolve_model
from dckd_cli.settings.schema import RunSettings

METHODS = ("scratch", "logits", "fakd", "dckd", "dckd-star")
PAIRS = (("dckd", "logits"), ("dckd-star", "logits"), ("logits", "scratch"), ("fakd", "logits"), ("dckd", "scratch"))
WARM_LR = 5e-4  # warm start: cosine from WARM_LR down to METHOD_LR
METHOD_LR = 2e-4  # each method: cosine from METHOD_LR down to 1e-6 (the annealing phase)
METHOD_EMA = 0.99  # an EMA window (~100 steps) short against the method budget


RANDOM_ENCODER = "encoder-random.safetensors"  # written in the run folder by random_encoder()


def variants(root: Path) -> dict[str, dict[str, object]]:
    """The investigation: dckd with one thing changed at a time (folder name -> settings)."""
    return {
        "dckd-dcl0.01": {"method.weights.dcl": 0.01},
        "dckd-dcl1": {"method.weights.dcl": 1.0},
        "dckd-no-dmm": {"method.weights.ce": 0.0},
        "dckd-no-dcr": {"method.weights.dcl": 0.0},
        "dckd-neg-weak": {"method.dcl.negatives.noise_sigma": [1.0, 10.0]},
        "dckd-neg-strong": {"method.dcl.negatives.noise_sigma": [20.0, 50.0]},
        "dckd-history-10": {"method.dcl.history.steps": [10, 10, 10]},
        "dckd-history-frozen": {"method.dcl.history.steps": [10**9] * 3},
        "dckd-encoder-random": {"method.encoder.checkpoint": str(root / RANDOM_ENCODER)},
    }


VARIANTS = tuple(variants(Path()))
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


def base_overrides(shared: Path, args: argparse.Namespace) -> list[str]:
    """Every cell's settings (``--set`` lines): data, models, and the annealing-phase recipe."""
    return [
        *protocol_overrides(shared, shared / "weights" / "DCTLSA_x4.pt", "tiny", args.patch, args.batch),
        "method.fakd.teacher_layers=[LR_conv]",  # DCTLSA's body output, before its upsampler
        # each method: the annealing phase from the warm start
        f"optim.lr={METHOD_LR}",
        "optim.scheduler=cosine",
        "optim.eta_min=1.0e-6",
        f"optim.ema_decay={METHOD_EMA}",
    ]


def history_steps(args: argparse.Namespace, iters: int) -> list[int]:
    """The history-model schedule, scaled with the budget (``iters / --iters``)."""
    return [max(1, int(v) * iters // args.iters) for v in args.history_steps.split(",")]


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
    save_random_encoder(state, path)
    return path


def grid_cells(args: argparse.Namespace, root: Path) -> list[Cell]:
    """The methods on every seed; on the variant seeds, dckd variants and the budget check."""
    seeds = [int(s) for s in args.seeds.split(",")]
    vseeds = tuple(int(s) for s in args.variant_seeds.split(",") if s)

    def cell(name: str, method: str, seeds_: tuple[int, ...] | None, iters: int, extra: dict) -> Cell:
        changes = {"method.name": method, "optim.iters": iters, "method.dcl.history.steps": history_steps(args, iters)}
        changes |= PINNED
        return Cell(name, changes | extra, {"run": name}, seeds=seeds_)

    cells = []
    for m in METHODS:
        extra_seeds = tuple(s for s in vseeds if s not in seeds) if m in ("logits", "dckd") else ()
        cells.append(cell(m, m, (*seeds, *extra_seeds), args.iters, {}))
    known = variants(root)
    for v in [v for v in args.variants.split(",") if v]:
        cells.append(cell(v, "dckd", vseeds, args.iters, dict(known[v])))
    if args.long_iters:
        cells += [cell(f"{m}-{args.long_iters}", m, vseeds, args.long_iters, {}) for m in ("logits", "dckd")]
    return cells


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
    parser.add_argument("--report", type=Path, default=Path("docs/results-warmstart.md"))
    args = parser.parse_args()
    began = time.perf_counter()
    unknown = [v for v in args.variants.split(",") if v and v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    root = args.output
    # One `dckd ablate` grid: every cell a run folder, one shared scratch warm start (cosine
    # WARM_LR -> METHOD_LR), a shared teacher-output cache, finished cells skipped, killed ones resumed.
    spec = AblationSpec(
        preset=None,
        overrides=base_overrides(args.shared, args),
        method="dckd",
        iters=args.iters,
        warm_iters=args.warm_iters,
        baseline=None,
        warm_overrides=[f"optim.lr={WARM_LR}", f"optim.eta_min={METHOD_LR}", "optim.ema_decay=0.999"],
        warm_shared=True,
    )
    seeds = sorted({int(s) for s in args.seeds.split(",")})
    plan = plan_ablation(root, spec, grid_cells(args, root), seeds)
    start_folder(plan)
    random_encoder(root / RANDOM_ENCODER)
    run_ablation(plan, make_sink=lambda label: None, say=lambda text: print(text, flush=True))

    summary = summarise(root)
    table = {
        c.label: {s: {d: {m: c.scores[d][m].per_seed[s] for m in ("psnr", "ssim")} for d in DATASETS} for s in c.seeds}
        for c in summary.cells
    }
    seconds = {c.label: c.seconds_per_iter for c in summary.cells}
    base = plan.runs[0].settings
    warm_run = AblationFolder(root).warm_start(seeds[0]).root
    teacher = scores(ModelChoice(checkpoint=base.teacher.checkpoint), base, root / "teacher-scores.json")
    warm_scores = scores(ModelChoice(run=warm_run), base, root / "warmstart-scores.json")
    params = count_parameters(resolve_model(ModelChoice(run=warm_run), base).model)
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
    evidence.write_report(args.report, lines)


if __name__ == "__main__":
    main()
