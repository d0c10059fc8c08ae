"""A regime where distillation helps: paired from-scratch x4 SR on the CPU, then DCKD in it.

Protocol (x4 SR):
  * teacher: the official DCTLSA x4 checkpoint (DIV2K-trained, packaged with dckd);
    student: RCAN `lite` (254k parameters), trained from scratch for 250 iterations (the
    calibration: logits KD beats scratch by about +0.07 dB on Set5, every seed; at 500
    iterations, ``--iters 500``, by +0.03);
  * training data: T91 + BSD200; evaluation: Set5 and Set14 with their official LR files;
  * per seed every cell starts from the same initialisation and sees the same data order;
    teacher outputs are memoised (the first run of a seed computes them, later ones read);
  * main table (every seed): scratch, logits, and dckd / dckd-star with three encoders: the
    packaged compact VQGAN (DCR + DMM), the pretrained tiny-autoencoder encoder `taesana`
    (DCR only: it has no codebook) and a randomly initialised encoder of taesana's shape;
  * ablations (the ablation seed): DCKD's components, negatives' degradation, lambda_dcl,
    number of negatives, history schedule, DCR start.

The runs are one `dckd ablate` grid (``pipelines/ablate.py``): every cell is a run folder
``<run>/seed-K/`` with its scores; re-running skips finished cells and resumes a killed one.
The final EMA student of every main-table cell is exported to ``docs/results/`` with a
manifest (method, seed, settings, SHA-256), for `dckd evaluate --checkpoint`.

    python benchmarks/reproduce_scratch.py --shared ../shared   # runs/reproduce-lite-250, docs/results.md
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import time
from pathlib import Path

import evidence
import torch
from evidence import DATASETS, PINNED, mean_std, protocol_overrides, save_random_encoder
from torch import nn

from dckd_cli.deploy.student_file import StudentInfo, save_student
from dckd_cli.engine.ablation_folder import AblationFolder
from dckd_cli.models.checkpoints import read_state_dict
from dckd_cli.models.tiny_ae import TinyAEEncoder
from dckd_cli.pipelines.ablate import AblationSpec, plan_ablation, run_ablation, start_folder
from dckd_cli.pipelines.ablation_grid import Cell
from dckd_cli.pipelines.ablation_summary import summarise
from dckd_cli.pipelines.demo_teacher import packaged_teacher
from dckd_cli.pipelines.evaluate import ModelChoice, resolve_model

RANDOM_ENCODER = "taesana-random.safetensors"  # made in the run folder by random_encoder()
TAESANA = Path("weights") / "taesana_encoder.pth"  # under --shared
ENCODERS = {"vqgan": "the packaged compact VQGAN", "taesana": "pretrained taesana", "random": "random taesana-shaped"}


def encoder_changes(kind: str, root: Path, shared: Path) -> dict[str, object]:
    if kind == "vqgan":
        return {}
    path = shared / TAESANA if kind == "taesana" else root / RANDOM_ENCODER
    return {"method.encoder.checkpoint": str(path), "method.weights.ce": 0.0}


def main_cells(root: Path, shared: Path, star: bool) -> dict[str, dict[str, object]]:
    cells: dict[str, dict[str, object]] = {"scratch": {"method.name": "scratch"}, "logits": {"method.name": "logits"}}
    for method in ("dckd", "dckd-star") if star else ("dckd",):
        for kind in ENCODERS:
            cells[f"{method}-{kind}"] = {"method.name": method, **encoder_changes(kind, root, shared)}
    return {name: {**changes, **PINNED} for name, changes in cells.items()}


def ablation_cells(root: Path, shared: Path, iters: int) -> dict[str, tuple[str, dict[str, object]]]:
    """name -> (what it changes, settings); each is dckd with the pretrained encoder unless named."""
    tae = {"method.name": "dckd", **encoder_changes("taesana", root, shared), **PINNED}
    vq = {"method.name": "dckd", **PINNED}
    return {
        "vqgan-dcr-only": ("VQGAN, DMM off (λ_ce = 0)", {**vq, "method.weights.ce": 0.0}),
        "vqgan-dmm-only": ("VQGAN, DCR off (λ_dcl = 0)", {**vq, "method.weights.dcl": 0.0}),
        "vqgan-dmm-released": ("VQGAN, DMM in the released form", {**vq, "method.ce.form": "released"}),
        "blur": ("negatives: blur", {**tae, "method.dcl.negatives.degradation": "blur"}),
        "resize": ("negatives: resize", {**tae, "method.dcl.negatives.degradation": "resize"}),
        "mix": ("negatives: mix", {**tae, "method.dcl.negatives.degradation": "mix"}),
        "dcl0.01": ("λ_dcl = 0.01", {**tae, "method.weights.dcl": 0.01}),
        "dcl1": ("λ_dcl = 1", {**tae, "method.weights.dcl": 1.0}),
        "neg2": ("2 negatives (clean + 1)", {**tae, "method.dcl.negatives.count": 2}),
        "neg8": ("8 negatives (clean + 7)", {**tae, "method.dcl.negatives.count": 8}),
        "history-frozen": ("history model never refreshed", {**tae, "method.dcl.history.steps": [10**9] * 3}),
        "history-10": ("history refreshed every 10 steps", {**tae, "method.dcl.history.steps": [10, 10, 10]}),
        "start-half": ("DCR from half the budget on", {**tae, "method.dcl.start": iters // 2}),
    }


def base_overrides(shared: Path, args: argparse.Namespace) -> list[str]:
    return [
        *protocol_overrides(shared, packaged_teacher("sr", 4), args.student, args.patch, args.batch),
        f"optim.lr={args.lr}",
        "optim.scheduler=cosine",
        "optim.eta_min=1.0e-6",
        f"optim.ema_decay={args.ema}",
        f"method.dcl.history.steps=[{args.history_steps}]",
        *([f"runtime.threads={args.threads}"] if args.threads else []),
        *([f"runtime.teacher_cache={args.teacher_cache}"] if args.teacher_cache else []),
    ]


def random_encoder(path: Path, like: Path) -> None:
    """A randomly initialised encoder with ``like``'s layout (the encoder-quality control)."""
    if path.is_file():
        return
    torch.manual_seed(0)
    model = TinyAEEncoder(read_state_dict(like))
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.GroupNorm)):
            module.reset_parameters()
    save_random_encoder(model.layers.state_dict(), path)


def describe_encoder(checkpoint: Path | None) -> str:
    """The manifest's encoder entry; the random one is not shipped, so say how it is remade."""
    if checkpoint is None:
        return "packaged compact VQGAN"
    if Path(checkpoint).name == RANDOM_ENCODER:
        return f"{checkpoint} (random taesana-shaped; remade by random_encoder() in this script, torch seed 0)"
    return str(checkpoint)


def export_students(root: Path, names: list[str], seeds: list[int], out: Path) -> list[dict[str, object]]:
    """Each main-table cell's final EMA student as a dckd student file, with a manifest entry."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for name in names:
        for seed in seeds:
            run = AblationFolder(root).cell(name, seed)
            if not run.scores.is_file():
                continue
            settings = run.read_settings()
            model = resolve_model(ModelChoice(run=run.root), settings).model
            info = StudentInfo(
                settings.student.arch,
                settings.student.size,
                settings.scale,
                settings.task,
                extra={"method": settings.method.name, "cell": name, "seed": seed},
            )
            path = out / f"{name}-seed{seed}.safetensors"
            save_student(model.half(), info, path)  # float16: the kept students stay well under 20 MB
            changed = {k: v for k, v in settings.method.model_dump(mode="json").items() if k in ("name", "weights")}
            manifest.append(
                {
                    "file": path.name,
                    "cell": name,
                    "method": settings.method.name,
                    "seed": seed,
                    "encoder": describe_encoder(settings.method.encoder.checkpoint),
                    "settings": changed | {"iters": settings.optim.iters, "lr": settings.optim.lr},
                    "dtype": "float16",
                    "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                    "scores": json.loads(run.scores.read_text())["results"],
                }
            )
    listed = out / "manifest.json"
    kept = {m["file"] for m in manifest}
    for old in json.loads(listed.read_text()) if listed.is_file() else []:  # students of cells not kept
        if old["file"] not in kept:
            (out / old["file"]).unlink(missing_ok=True)
    listed.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--output", type=Path, default=None, help="run folder (default: runs/reproduce-STUDENT-ITERS)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--iters", type=int, default=250)
    parser.add_argument("--student", default="lite")
    parser.add_argument("--patch", type=int, default=24)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--ema", type=float, default=0.99)
    parser.add_argument("--history-steps", default="25,50,75")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per run (default: torch's choice)")
    parser.add_argument(
        "--teacher-cache",
        type=Path,
        default=None,
        help="memoised teacher outputs (default: OUTPUT/teacher-cache); a variant with the same seeds, "
        "patch and batch reads another run's",
    )
    parser.add_argument("--star", action="store_true", help="also dckd-star with each encoder on every seed")
    parser.add_argument("--pairs-only", action="store_true", help="only the calibration pair (scratch, logits)")
    parser.add_argument("--cells", default="all", help="main-table cells to run after the pair (comma list)")
    parser.add_argument("--ablations", default="all", help="ablation cells on --ablation-seed ('' for none)")
    parser.add_argument("--ablation-seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=Path("docs/results"), help="where the students are kept")
    parser.add_argument("--report", type=Path, default=Path("docs/results.md"))
    parser.add_argument("--report-only", action="store_true", help="write the report from the finished cells only")
    args = parser.parse_args()
    began = time.perf_counter()
    args.output = args.output or Path(f"runs/reproduce-{args.student}-{args.iters}")
    root, shared = args.output, args.shared
    seeds = sorted(int(s) for s in args.seeds.split(","))
    main = main_cells(root, shared, args.star)
    known = ablation_cells(root, shared, args.iters)
    wanted = list(known) if args.ablations == "all" else [a for a in args.ablations.split(",") if a]
    unknown = [a for a in wanted if a not in known]
    if unknown:
        parser.error(f"--ablations: unknown {', '.join(unknown)}; known: {', '.join(known)}")
    # the calibration pair (scratch, logits) on every seed first, then the DCKD cells seed by
    # seed, then the ablations: a stopped run leaves complete pairs behind
    pair = ["scratch", "logits"]
    cells = [Cell(name, main[name], {"run": name}, seeds=(seed,)) for seed in seeds for name in pair]
    rest = ["dckd-taesana", "dckd-vqgan", *[n for n in main if n not in (*pair, "dckd-taesana", "dckd-vqgan")]]
    if args.cells != "all":
        picked = [c for c in args.cells.split(",") if c]
        if unknown_cells := [c for c in picked if c not in main]:
            parser.error(f"--cells: unknown {', '.join(unknown_cells)}; known: {', '.join(main)}")
        rest = [n for n in rest if n in picked]
    cells += (
        []
        if args.pairs_only
        else [Cell(name, main[name], {"run": name}, seeds=(seed,)) for seed in seeds for name in rest]
    )
    ablations = []
    for name in [] if args.pairs_only else wanted:
        ablations.append(Cell(f"ablation-{name}", dict(known[name][1]), {"run": name}, seeds=(args.ablation_seed,)))
    cells += ablations  # after every seed's main table: the pairs first
    spec = AblationSpec(
        preset=None,
        overrides=base_overrides(shared, args),
        method="dckd",
        iters=args.iters,
        warm_iters=0,
        baseline=None,
    )
    if not args.report_only:
        plan = plan_ablation(root, spec, cells, seeds)
        start_folder(plan)
        random_encoder(root / RANDOM_ENCODER, shared / TAESANA)
        run_ablation(plan, make_sink=lambda label: None, say=lambda text: print(text, flush=True))
    summary = summarise(root)
    table = {
        c.label: {s: {d: c.scores[d]["psnr"].per_seed[s] for d in DATASETS} for s in c.seeds} for c in summary.cells
    }
    seconds = {c.label: c.seconds_per_iter for c in summary.cells}
    manifest = export_students(root, list(main), seeds, args.results)
    write_report(args, seeds, list(main), wanted, known, table, seconds, manifest, time.perf_counter() - began)


def write_report(args, seeds, main, wanted, known, table, seconds, manifest, wall) -> None:  # noqa: ANN001, PLR0913
    def psnr(cell: str, seed: int, d: str) -> float:
        return table[cell][seed][d]

    done = [c for c in main if c in table]  # a stopped run: cells with the seeds they finished
    ablations = args.ablations or "''"
    lines = [
        f"# Evidence: a regime where distillation helps, and DCKD in it (x4 SR, CPU, {args.iters} iterations)",
        "",
        f"Command: `python benchmarks/reproduce_scratch.py --output {args.output} --seeds {args.seeds} "
        f"--iters {args.iters} "
        f"--student {args.student} --patch {args.patch} --batch {args.batch} --lr {args.lr} --ema {args.ema} "
        f"--history-steps {args.history_steps}{' --star' if args.star else ''} --ablations {ablations}`",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
        f"wall time of this invocation {wall / 60:.1f} min (finished cells are reused).",
        "",
        f"Teacher: DCTLSA x4 (885k parameters, packaged). Student: RCAN `{args.student}` from scratch, "
        f"{args.iters} iterations, Adam, cosine {args.lr:g} → 1e-6, EMA {args.ema} (the final EMA weights are "
        f"scored), batch {args.batch} of {args.patch}² LR patches from T91 + BSD200, the same initialisation and "
        "data order for every cell of a seed. DCKD: history model refreshed every "
        f"{args.history_steps} steps over its three phases, 5 negatives (clean + 4 noisy), λ_dcl 0.1, λ_ce 1e-3 "
        "(VQGAN only). Scores: Y channel, official LR files, 4-pixel border.",
        "",
        "## Main table (PSNR dB, Y; mean over the seeds each cell has finished)",
        "",
        "| cell | seeds | " + " | ".join(f"{d}" for d in DATASETS) + " | s / step |",
        "|---|---|" + "---|" * len(DATASETS) + "---|",
    ]
    for c in done:
        own = sorted(table[c])
        means = [f"{statistics.mean(psnr(c, s, d) for s in own):.3f}" for d in DATASETS]
        cost = f"{seconds[c]:.3f}" if seconds.get(c) else ""
        lines.append(f"| {c} | {','.join(map(str, own))} | " + " | ".join(means) + f" | {cost} |")
    pairs = [("logits", "scratch")] + [(c, "logits") for c in done if c.startswith("dckd")]
    pairs += [(f"dckd-{k}", "dckd-random") for k in ("vqgan", "taesana")]
    lines += ["", "## Paired differences (PSNR dB, per seed, then mean ± std)", ""]
    lines.append("| difference | dataset | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std |")
    lines.append("|---|---|" + "---|" * len(seeds) + "---|")
    for a, b in pairs:
        common = [s for s in seeds if a in table and b in table and s in table[a] and s in table[b]]
        if not common:
            continue
        for d in DATASETS:
            diffs = {s: psnr(a, s, d) - psnr(b, s, d) for s in common}
            shown = " | ".join(f"{diffs[s]:+.3f}" if s in diffs else "" for s in seeds)
            lines.append(f"| {a} − {b} | {d} | {shown} | {mean_std(list(diffs.values()), signed=True)} |")
    ran = [a for a in wanted if f"ablation-{a}" in table]
    if ran:
        s0 = args.ablation_seed
        ref = "dckd-taesana" if "dckd-taesana" in table and s0 in table["dckd-taesana"] else None
        lines += [
            "",
            f"## Ablations (seed {s0}; each cell is dckd with the one change named)",
            "",
            "| cell | change | " + " | ".join(f"{d} | {d} − logits" for d in DATASETS) + " | s / step |",
            "|---|---|" + "---|---|" * len(DATASETS) + "---|",
        ]
        rows = [(r, "defaults", r) for r in ("dckd-vqgan", "dckd-taesana") if r in table and s0 in table[r]]
        rows += [(f"ablation-{a}", known[a][0], a) for a in ran]
        for cell, note, name in rows:
            vals = []
            for d in DATASETS:
                own = psnr(cell, s0, d)
                vals += [f"{own:.3f}", f"{own - psnr('logits', s0, d):+.3f}" if "logits" in table else ""]
            cost = f"{seconds[cell]:.3f}" if seconds.get(cell) else ""
            lines.append(f"| {name} | {note} | " + " | ".join(vals) + f" | {cost} |")
        if ref:
            lines.append("")
            lines.append(f"Cells without 'vqgan' in their name change `{ref}` (the pretrained encoder, DCR only).")
    if manifest:
        total = sum((args.results / m["file"]).stat().st_size for m in manifest)
        lines += [
            "",
            f"## Students kept ({len(manifest)} files, {total / 1e6:.1f} MB in `{args.results}/`)",
            "",
            "Each main-table cell's final EMA student, as a dckd student file with float16 weights; "
            "`manifest.json` gives each file's cell, method, seed, encoder, settings, SHA-256 and scores (of the "
            "float32 run). Re-score one on other sets with "
            f"`dckd evaluate --checkpoint {args.results}/logits-seed0.safetensors --datasets BSD100 --data-root DIR`.",
        ]
    evidence.write_report(args.report, lines)


if __name__ == "__main__":
    main()
