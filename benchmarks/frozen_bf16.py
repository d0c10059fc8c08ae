"""What ``runtime.frozen_bf16`` does to a trained student: DCKD with and without it, paired.

The budget curve's protocol (``reproduce_scratch.py``: RCAN `lite` from scratch, the packaged
DCTLSA x4 teacher, T91 + BSD200, Set5 / Set14 with their official LR files) for DCKD with the
pretrained tiny-autoencoder encoder (taesana, DCR only) in float32, with the frozen networks
(teacher, history model and the encoder's passes: ``method.encoder.autocast=true``) in bfloat16,
and with only the teacher and history model in bfloat16 (the encoder in float32, the default),
on the same seeds: per seed the cells share the initialisation, the data order and the
negatives' draws, so the paired difference is what the precision changes. Needs a CPU with
bfloat16 instructions (or a GPU).

    python benchmarks/frozen_bf16.py --shared ../shared --iters 250 --seeds 0,1,2 --threads 1
    python benchmarks/frozen_bf16.py --shared ../shared --seeds 0 --threads 1 --time 5   # s / step, in turn
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import reproduce_scratch as protocol
from budget_curve import PROTOCOL
from evidence import DATASETS, PINNED

from dckd_cli.engine.build import build_run
from dckd_cli.engine.step import step_clock
from dckd_cli.pipelines.ablate import AblationPlan, AblationSpec, plan_ablation, run_ablation, start_folder
from dckd_cli.pipelines.ablation_grid import Cell
from dckd_cli.pipelines.ablation_summary import summarise

VARIANTS = {  # label -> (runtime.frozen_bf16, method.encoder.autocast)
    "float32": (False, False),
    "frozen-bf16": (True, True),  # teacher, history model and the encoder's passes in bfloat16
    "frozen-bf16-encoder-float32": (True, False),  # the encoder's passes in float32 (the default)
}


def cells(shared: Path, root: Path, seeds: list[int]) -> list[Cell]:
    """Every variant of a seed before the next seed: a stopped run leaves complete pairs behind."""
    dckd = {"method.name": "dckd", **protocol.encoder_changes("taesana", root, shared), **PINNED}
    return [
        Cell(
            label,
            {**dckd, "runtime.frozen_bf16": frozen, "method.encoder.autocast": follows},
            {"frozen_bf16": frozen, "encoder_autocast": follows},
            baseline=label == "float32",
            seeds=(seed,),
        )
        for seed in seeds
        for label, (frozen, follows) in VARIANTS.items()
    ]


def time_variants(plan: AblationPlan, rounds: int) -> dict[str, float]:
    """Seconds per step of each variant (its first seed's settings, synthetic batches, no teacher
    cache), the variants' steps taken in turn after a warm-up each: the medians."""
    clocks = {}
    for run in plan.runs:
        if run.cell.label not in clocks:
            settings = run.settings.model_copy(deep=True)
            settings.runtime.teacher_cache = None  # every step runs the teacher, as a first run does
            clocks[run.cell.label] = step_clock(build_run(settings))
    for clock in clocks.values():
        clock()
    times: dict[str, list[float]] = {label: [] for label in clocks}
    for _ in range(rounds):
        for label, clock in clocks.items():
            times[label].append(clock())
    return {label: statistics.median(values) for label, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--output", type=Path, default=Path("runs/frozen-bf16"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--iters", type=int, default=250)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per run (default: torch's choice)")
    parser.add_argument("--teacher-cache", type=Path, default=None, help="memoised teacher outputs to share")
    parser.add_argument("--json", type=Path, default=None, help="write the paired differences here")
    parser.add_argument("--time", type=int, default=0, metavar="ROUNDS", help="only time the variants' steps in turn")
    args = parser.parse_args()
    seeds = sorted(int(s) for s in args.seeds.split(","))
    knobs = argparse.Namespace(
        **PROTOCOL, threads=args.threads, teacher_cache=args.teacher_cache or args.output / "teacher-cache"
    )
    spec = AblationSpec(
        preset=None,
        overrides=protocol.base_overrides(args.shared, knobs),
        method="dckd",
        iters=args.iters,
        warm_iters=0,
        baseline=None,
    )
    plan = plan_ablation(args.output, spec, cells(args.shared, args.output, seeds), seeds)
    if args.time:
        seconds = time_variants(plan, args.time)
        for label, value in seconds.items():
            print(f"{label}: {value:.3f} s / step ({value / seconds['float32']:.2f}x float32)", flush=True)
        return
    start_folder(plan)
    run_ablation(plan, make_sink=lambda label: None, say=lambda text: print(text, flush=True))
    summary = summarise(args.output)
    record = {}
    for cell in summary.cells:
        row = {"seconds_per_iter": cell.seconds_per_iter}
        for d in DATASETS:
            row[d] = cell.scores[d]["psnr"].per_seed
            if not cell.baseline:
                row[f"{d}_delta"] = cell.delta[d]["psnr"].per_seed
        record[cell.label] = row
        if cell.baseline:
            continue
        for d in DATASETS:
            stat = cell.delta[d]["psnr"]
            seeds_text = ", ".join(f"{v:+.3f}" for v in stat.per_seed.values())
            print(f"{d}: {cell.label} - float32 {stat.mean:+.3f} ± {stat.std:.3f} dB (seeds: {seeds_text})")
    print("s / step: " + ", ".join(f"{c.label} {c.seconds_per_iter:.2f}" for c in summary.cells))
    if args.json:
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
