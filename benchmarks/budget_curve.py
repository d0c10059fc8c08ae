"""The budget curve: does DCKD's deficit against logits KD close as training gets longer?

The protocol of ``reproduce_scratch.py`` (RCAN `lite` from scratch, the packaged DCTLSA x4
teacher, T91 + BSD200, batch 16 of 24² LR patches, Adam with cosine 5e-4 -> 1e-6, EMA 0.99,
Set5 / Set14 with their official LR files), at several budgets. Four cells per seed: scratch,
logits, dckd with the pretrained tiny-autoencoder encoder (taesana, DCR only) and dckd with a
randomly initialised encoder of that shape. The history model's phases are fractions of the
budget (40 % / 80 %) and its refresh intervals stay 25 / 50 / 75 steps at every budget, as at
250 and 500 iterations: the history model then lags the student by the same number of steps,
which is what sets how hard its negatives are.

Finished cells are kept in the repository, so the curve grows across machines and sessions:
``docs/results/budget/curve.json`` (one entry per cell, budget and seed: scores, seconds per
step, machine, student file and SHA-256) and the float16 students beside it. A cell in
``curve.json`` is never run again.

    python benchmarks/budget_curve.py --shared ../shared --run 1000,2000 --threads 1   # resumable
    python benchmarks/budget_curve.py --import runs/budget/lite-1000                  # a finished grid
    python benchmarks/budget_curve.py --check scratch:1000:0                          # another machine
    python benchmarks/budget_curve.py --run 250,500 --rerun-other-machines            # one machine
    python benchmarks/budget_curve.py --park --output runs/budget-curve               # before a stop
    python benchmarks/budget_curve.py --report                                        # table + plot
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import platform
import shutil
import statistics
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import reproduce_scratch as protocol
import torch
from evidence import DATASETS, mean_std

from dckd_cli.atomic import atomic_path
from dckd_cli.deploy.student_file import StudentInfo, save_student
from dckd_cli.engine.ablation_folder import AblationFolder
from dckd_cli.engine.run_folder import RunFolder
from dckd_cli.pipelines.ablate import AblationSpec, plan_ablation, run_ablation, start_folder
from dckd_cli.pipelines.ablation_grid import Cell
from dckd_cli.pipelines.evaluate import ModelChoice, resolve_model

CELLS = ("scratch", "logits", "dckd-taesana", "dckd-random")
SEEDS = (0, 1, 2)
KEPT = Path("docs/results/budget")
CURVE = KEPT / "curve.json"
CHECKS = KEPT / "machine-checks.json"
PARKED = KEPT / "in-progress"  # unfinished cells' last checkpoints, for a run on another machine
PLOT = Path("docs/results/budget-curve.png")
REPORT = Path("docs/results.md")
BEGIN, END = "<!-- budget-curve: written by benchmarks/budget_curve.py -->", "<!-- /budget-curve -->"
DIFFERENCES = (
    ("dckd-taesana", "logits"),
    ("dckd-random", "logits"),
    ("logits", "scratch"),
    ("dckd-taesana", "scratch"),
)
# The protocol's settings, as reproduce_scratch.py's defaults give them (checked on import).
PROTOCOL = {"student": "lite", "patch": 24, "batch": 16, "lr": 5e-4, "ema": 0.99, "history_steps": "25,50,75"}


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{platform.machine()}, {cpu}, torch {torch.__version__}"


@contextmanager
def _kept_lock() -> Iterator[None]:
    """The lock every writer of the kept JSON files holds (two runs side by side)."""
    KEPT.mkdir(parents=True, exist_ok=True)
    with open(KEPT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextmanager
def locked_curve() -> Iterator[list[dict[str, object]]]:
    """The curve's entries, read under the lock and written back atomically."""
    with _kept_lock():
        entries = _entries(CURVE)
        yield entries
        entries.sort(key=lambda e: (e["iters"], CELLS.index(e["cell"]), e["seed"]))
        with atomic_path(CURVE) as tmp:
            tmp.write_text(json.dumps(entries, indent=1) + "\n")


def _entries(path: Path) -> list[dict[str, object]]:
    """The entries of a kept JSON list (``curve.json``, ``machine-checks.json``); none before the first."""
    return json.loads(path.read_text()) if path.is_file() else []


def _measured(scores: dict[str, object]) -> dict[str, float]:
    """PSNR per set of a cell's ``scores.json``."""
    return {d: scores["results"][d]["psnr"] for d in DATASETS}  # type: ignore[index]


def _differences(check: dict[str, object]) -> str:
    return ", ".join(f"{d} {v:+.4f} dB" for d, v in check["difference_db"].items())  # type: ignore[union-attr]


def _key(entry: dict[str, object]) -> tuple[object, object, object]:
    return entry["cell"], entry["iters"], entry["seed"]


def import_folder(root: Path) -> list[str]:
    """Keep every finished cell of an ablation folder made with this protocol; the cells kept."""
    folder = AblationFolder(root)
    kept = []
    recorded = {_key(e): e for e in _entries(CURVE)}
    for cell in CELLS:
        for seed in SEEDS:
            run = folder.cell(cell, seed)
            if not run.scores.is_file():
                continue
            settings = run.read_settings()
            check_protocol(settings, run.root)
            scores = json.loads(run.scores.read_text())
            iters = settings.optim.iters
            name = f"{cell}-{iters}-seed{seed}.safetensors"
            measured = _measured(scores)
            before = recorded.get((cell, iters, seed))
            if before is not None and _unchanged(before, measured, KEPT / name):
                kept.append(f"{cell} x{iters} seed {seed}")  # kept already: not written again
                continue
            model = resolve_model(ModelChoice(run=run.root), settings).model
            info = StudentInfo(settings.student.arch, settings.student.size, settings.scale, settings.task)
            info.extra = {"method": settings.method.name, "cell": cell, "seed": seed, "iters": iters}
            save_student(model.half(), info, KEPT / name)  # float16: re-scores within 0.001 dB
            entry = {
                "cell": cell,
                "iters": iters,
                "seed": seed,
                "scores": measured,
                "seconds_per_step": scores.get("seconds_per_iter"),
                "machine": scores.get("machine") or machine(),
                "file": name,
                "sha256": hashlib.sha256((KEPT / name).read_bytes()).hexdigest(),
            }
            with locked_curve() as entries:
                entries[:] = [e for e in entries if _key(e) != _key(entry)] + [entry]
            kept.append(f"{cell} x{iters} seed {seed}")
    return kept


def _unchanged(entry: dict[str, object], scores: dict[str, float], file: Path) -> bool:
    """The curve's entry holds these scores and its student file is the one on disk."""
    same = entry["scores"] == scores
    return same and file.is_file() and hashlib.sha256(file.read_bytes()).hexdigest() == entry["sha256"]


def check_protocol(settings, where: Path) -> None:  # noqa: ANN001
    """A run of another protocol must not enter the curve."""
    seen = {
        "student": settings.student.size,
        "patch": settings.data.patch_size,
        "batch": settings.data.batch_size,
        "lr": settings.optim.lr,
        "ema": settings.optim.ema_decay,
        "history_steps": ",".join(map(str, settings.method.dcl.history.steps)),
    }
    wrong = {k: v for k, v in seen.items() if v != PROTOCOL[k]}
    if wrong:
        raise SystemExit(f"{where}: not the budget-curve protocol ({wrong}; expected {PROTOCOL})")


def _git_show(ref: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{ref}:{path}"], capture_output=True, check=True, text=True).stdout


def _report_costs(text: str) -> dict[str, float]:
    """s / step per cell from a reproduce_scratch report's main table (its last column)."""
    costs = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if len(parts) == 5 and parts[0] in CELLS and parts[4]:
            costs.setdefault(parts[0], float(parts[4]))
    return costs


def import_history(ref: str, manifest_path: str, report_path: str, iters: int) -> None:
    """Entries of an earlier manifest (``git show REF:PATH``) whose students stay where they are;
    s / step from that report's main table (a median over the cell's seeds)."""
    manifest = json.loads(_git_show(ref, manifest_path))
    costs = _report_costs(_git_show(ref, report_path))
    folder = Path(manifest_path).parent
    with locked_curve() as entries:
        for m in manifest:
            if m["cell"] not in CELLS or m["settings"].get("iters") != iters:
                continue
            entry = {
                "cell": m["cell"],
                "iters": iters,
                "seed": m["seed"],
                "scores": {d: m["scores"][d]["psnr"] for d in DATASETS},
                "seconds_per_step": costs.get(m["cell"]),
                "machine": "an earlier x86_64 machine, torch 2.14.1",
                "file": f"../{m['file']}" if ref == "HEAD" else f"{ref}:{folder / m['file']}",
                "sha256": m["sha256"],
            }
            entries[:] = [e for e in entries if _key(e) != _key(entry)] + [entry]


def _parked(folder: Path) -> Path:
    """Where the cell ``folder`` is parked: one flat name (a folder named ``runs`` is ignored by git)."""
    if folder.is_absolute():  # an --output outside the working folder keeps its whole path in the name
        folder = folder.relative_to(Path.cwd() if folder.is_relative_to(Path.cwd()) else folder.anchor)
    return PARKED / "-".join(folder.parts)


def park(outputs: list[Path]) -> list[str]:
    """Copy every unfinished cell under ``outputs`` (its settings, metrics and last checkpoint)
    to ``in-progress/``, where ``--run`` on another machine (same paths) resumes it; the cells."""
    parked = []
    for output in outputs:
        for settings in sorted(output.glob("lite-*/*/seed-*/settings.yaml")):
            run = RunFolder(settings.parent)
            last = run.checkpoint("last")
            if run.scores.is_file() or not (last / "state.pt").is_file():
                continue
            target = RunFolder(_parked(run.root))
            shutil.rmtree(target.root, ignore_errors=True)
            shutil.copytree(last, target.checkpoint("last"))
            for source, copy in ((run.settings, target.settings), (run.metrics, target.metrics)):
                shutil.copy2(source, copy)
            parked.append(str(run.root))
    return parked


def unpark(folder: Path) -> bool:
    """Put a parked copy of the cell ``folder`` in place when the folder has no checkpoint of
    its own (a run on a new machine); it is left out once the cell finishes."""
    parked = RunFolder(_parked(folder))
    if not parked.has_checkpoint() or RunFolder(folder).saved_any():
        return False
    shutil.copytree(parked.root, folder, dirs_exist_ok=True)
    return True


def _run_cell(args: argparse.Namespace, root: Path, iters: int, cell: str, seed: int) -> None:
    """Run one cell of the protocol at ``iters`` into the ablation folder ``root`` (resumable;
    from a parked checkpoint when this machine has none)."""
    ns = argparse.Namespace(
        **PROTOCOL, threads=args.threads, teacher_cache=args.teacher_cache or args.output / "teacher-cache"
    )
    main = protocol.main_cells(root, args.shared, star=False)
    spec = AblationSpec(None, protocol.base_overrides(args.shared, ns), "dckd", iters, 0, None)
    plan = plan_ablation(root, spec, [Cell(cell, main[cell], {"run": cell}, seeds=(seed,))], [seed])
    start_folder(plan)
    folder = AblationFolder(root).cell(cell, seed).root
    if unpark(folder):
        print(f"{iters}: {cell}, seed {seed}: resuming the parked checkpoint in {_parked(folder)}", flush=True)
    protocol.random_encoder(root / protocol.RANDOM_ENCODER, args.shared / protocol.TAESANA)
    run_ablation(plan, make_sink=lambda label: None, say=lambda text, n=iters: print(f"{n}: {text}", flush=True))


def record_check(kept: dict[str, object], scores: dict[str, object]) -> dict[str, object]:
    """Record in ``machine-checks.json`` how far a cell run again here is from its kept entry."""
    again = _measured(scores)
    entry = {
        "cell": kept["cell"],
        "iters": kept["iters"],
        "seed": kept["seed"],
        "kept_machine": kept["machine"],
        "machine": scores.get("machine") or machine(),
        "kept_scores": kept["scores"],
        "scores": again,
        "difference_db": {d: again[d] - kept["scores"][d] for d in DATASETS},  # type: ignore[index]
        "seconds_per_step": scores.get("seconds_per_iter"),
    }
    with _kept_lock():  # read and written under the curve's lock: two checks may finish at once
        old = _entries(CHECKS)
        checks = [c for c in old if (_key(c), c["machine"]) != (_key(entry), entry["machine"])] + [entry]
        with atomic_path(CHECKS) as tmp:
            tmp.write_text(json.dumps(checks, indent=1) + "\n")
    return entry


def run_budgets(args: argparse.Namespace, budgets: list[int]) -> None:
    """Run every cell of ``budgets`` not in the curve yet: per budget the scratch / logits pairs
    on every seed, then the dckd cells seed by seed; each finished cell is kept at once. With
    ``--rerun-other-machines`` a cell kept from another machine runs again here: its entry is
    replaced and the old scores stay as a machine check, so one budget comes from one machine."""
    here = machine()
    kept = {_key(e): e for e in _entries(CURVE)}
    done = {k for k, e in kept.items() if not (args.rerun_other_machines and e["machine"] != here)}
    for iters in budgets:
        root = args.output / f"lite-{iters}"
        seeds = [s for s in SEEDS if args.seeds is None or s in args.seeds]
        order = [(c, s) for s in seeds for c in ("scratch", "logits")]
        order += [(c, s) for s in seeds for c in ("dckd-taesana", "dckd-random")]
        for cell, seed in order:
            if (cell, iters, seed) in done or (args.cells is not None and cell not in args.cells):
                continue
            _run_cell(args, root, iters, cell, seed)
            if (cell, iters, seed) in kept:  # a rerun: the other machine's scores become a check
                scores = json.loads(AblationFolder(root).cell(cell, seed).scores.read_text())
                check = record_check(kept[(cell, iters, seed)], scores)
                print(f"{cell} x{iters} seed {seed} again here: {_differences(check)}", flush=True)
            import_folder(root)
            shutil.rmtree(_parked(AblationFolder(root).cell(cell, seed).root), ignore_errors=True)


def check_machine(args: argparse.Namespace, cell: str, iters: int, seed: int) -> None:
    """Run a kept cell again on this machine and record how far its scores are from the kept ones
    (``machine-checks.json``): whether cells from two machines can share one curve."""
    kept = {_key(e): e for e in json.loads(CURVE.read_text())}.get((cell, iters, seed))
    if kept is None:
        raise SystemExit(f"--check {cell}:{iters}:{seed}: no such cell in {CURVE}; pick a finished one")
    root = args.output / f"check-{iters}"
    _run_cell(args, root, iters, cell, seed)
    entry = record_check(kept, json.loads(AblationFolder(root).cell(cell, seed).scores.read_text()))
    print(f"{cell} x{iters} seed {seed} again: {_differences(entry)}")


Scores = dict[str, float]  # PSNR per set


def _paired(first: list[Scores], second: list[Scores]) -> dict[str, list[float]]:
    """Per set, the seed-by-seed differences first − second of two cells' scores."""
    return {d: [f[d] - s[d] for f, s in zip(first, second)] for d in DATASETS}


def machine_rows(kept: dict[tuple[str, int, int], Scores], checks: list[dict[str, object]]) -> list[str]:
    """The report's lines on kept cells run again on other machines (``machine-checks.json``):
    each one's scores there against the kept ones, and per machine the paired differences over
    the seeds it ran again. A cell's partner not run on that machine is the kept one (marked *):
    scratch and logits reproduce across machines (the first table says by how much)."""
    if not checks:
        return []
    lines = [
        "",
        "Kept cells run again on another machine (`--check`, `docs/results/budget/machine-checks.json`), "
        "the same code and settings:",
        "",
        "| cell | iterations | seed | run again on | Set5 | Set14 | Set5 − kept | Set14 − kept |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in sorted(checks, key=lambda c: (CELLS.index(c["cell"]), c["iters"], c["seed"], c["machine"])):
        scores, diff = c["scores"], c["difference_db"]
        lines.append(
            f"| {c['cell']} | {c['iters']} | {c['seed']} | {c['machine']} | {scores['Set5']:.3f} | "
            f"{scores['Set14']:.3f} | {diff['Set5']:+.4f} | {diff['Set14']:+.4f} |"
        )
    again = {(c["machine"], *_key(c)): c["scores"] for c in checks}
    rows = []
    for here in sorted({c["machine"] for c in checks}):
        for iters in sorted({c["iters"] for c in checks if c["machine"] == here}):
            for a, b in DIFFERENCES:
                seeds = [s for s in SEEDS if (here, a, iters, s) in again and (b, iters, s) in kept]
                if len(seeds) < 2:  # one seed is the table above
                    continue
                marked = any((here, b, iters, s) not in again for s in seeds)
                here_a = [again[(here, a, iters, s)] for s in seeds]
                here_b = [again.get((here, b, iters, s), kept[(b, iters, s)]) for s in seeds]
                curve_diffs = _paired([kept[(a, iters, s)] for s in seeds], [kept[(b, iters, s)] for s in seeds])
                cells = [mean_std(v, signed=True) for v in _paired(here_a, here_b).values()]
                kept_cells = [mean_std(v, signed=True) for v in curve_diffs.values()]
                rows.append(
                    f"| {iters} | {a} − {b}{' *' if marked else ''} | {here} | {cells[0]} | {cells[1]} | "
                    f"{kept_cells[0]} | {kept_cells[1]} | {len(seeds)} |"
                )
    if rows:
        lines += [
            "",
            "Paired differences from the cells run again, per machine, beside the curve's on the same seeds "
            "(* the second cell is the kept one, from the curve's machine):",
            "",
            "| iterations | difference | machine | Set5 | Set14 | Set5 (curve) | Set14 (curve) | n |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    return lines


def write_report(report: Path = REPORT) -> None:
    """The curve's table and plot, in ``report`` between the budget-curve markers (appended the
    first time, after the reading, which ``reproduce_scratch.py`` keeps when it rewrites the report)."""
    entries = json.loads(CURVE.read_text())
    table: dict[tuple[str, int, int], Scores] = {_key(e): e["scores"] for e in entries}
    budgets = sorted({e["iters"] for e in entries})
    lines = [
        BEGIN,
        "## Budget curve: paired differences against training length (PSNR dB, Y)",
        "",
        "`python benchmarks/budget_curve.py --report` from `docs/results/budget/curve.json`: the protocol above "
        "(RCAN `lite` from scratch, DCTLSA x4 teacher, seeds 0–2) at each budget; the history model refreshes "
        "every 25 / 50 / 75 steps over phases at 40 % / 80 % of the budget. Mean ± std over the seeds both cells "
        "finished (n).",
        "",
        "| iterations | difference | Set5 | Set14 | n |",
        "|---|---|---|---|---|",
    ]
    curve: dict[tuple[str, str], list[tuple[int, float, float, int]]] = {}
    for iters in budgets:
        for a, b in DIFFERENCES:
            common = [s for s in SEEDS if (a, iters, s) in table and (b, iters, s) in table]
            if not common:
                continue
            cells = []
            paired = _paired([table[(a, iters, s)] for s in common], [table[(b, iters, s)] for s in common])
            for d, diffs in paired.items():
                cells.append(mean_std(diffs, signed=True))
                sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
                curve.setdefault((f"{a} − {b}", d), []).append((iters, statistics.mean(diffs), sd, len(diffs)))
            lines.append(f"| {iters} | {a} − {b} | {cells[0]} | {cells[1]} | {len(common)} |")
    lines += ["", "| iterations | " + " | ".join(f"{c} s / step" for c in CELLS) + " |"]
    lines.append("|---|" + "---|" * len(CELLS))
    for iters in budgets:
        costs = []
        for c in CELLS:
            values = [e["seconds_per_step"] for e in entries if e["cell"] == c and e["iters"] == iters]
            values = [v for v in values if v]
            costs.append(f"{statistics.median(values):.2f}" if values else "")
        lines.append(f"| {iters} | " + " | ".join(costs) + " |")
    machines = sorted({e["machine"] for e in entries})
    lines += ["", "Machines: " + "; ".join(machines) + "."]
    lines += machine_rows(table, _entries(CHECKS))
    lines += ["", f"![budget curve]({PLOT.relative_to('docs')})", END]
    plot(curve)
    text = report.read_text()
    block = "\n".join(lines)
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:  # at the end, inside the hand-written part that reproduce_scratch.py keeps
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    report.write_text(text)
    print(block)


def plot(curve: dict[tuple[str, str], list[tuple[int, float, float, int]]]) -> None:
    """Paired differences against iterations; a point over fewer seeds than the curve's is
    hollow, so a one-seed point is not read as a mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(DATASETS), figsize=(11, 4), sharey=True)
    for ax, d in zip(axes, DATASETS):
        for (label, dataset), points in curve.items():
            if dataset != d:
                continue
            xs, ys, sds, ns = zip(*points)
            line = ax.errorbar(xs, ys, yerr=sds, marker="o", capsize=3, label=label)
            few = [(x, y) for x, y, n in zip(xs, ys, ns) if n < len(SEEDS)]
            if few:  # hollow: fewer seeds than the curve's
                colour = line.lines[0].get_color()
                ax.scatter(*zip(*few), s=40, facecolors="white", edgecolors=colour, zorder=3)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_xscale("log", base=2)
        budgets = sorted({x for points in curve.values() for x, *_ in points})
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.minorticks_off()
        ax.set_xlabel("training iterations")
        ax.set_title(d)
    axes[0].set_ylabel(f"paired Δ PSNR (dB), mean ± std over seeds\n(hollow: fewer than {len(SEEDS)} seeds)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(PLOT) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--output", type=Path, default=Path("runs/budget-curve"), help="run folders (not kept)")
    parser.add_argument("--run", default="", help="budgets to run, e.g. 1000,2000")
    parser.add_argument(
        "--seeds",
        type=lambda text: [int(x) for x in text.split(",")],
        default=None,
        help="only these seeds' cells, e.g. 2 (two runs of one budget side by side: other seeds, another --output, "
        "as an ablation folder takes one process)",
    )
    parser.add_argument(
        "--cells",
        type=lambda text: text.split(","),
        default=None,
        help=f"only these cells ({', '.join(CELLS)}), e.g. dckd-random",
    )
    parser.add_argument(
        "--check",
        type=lambda text: text.split(":"),
        default=None,
        metavar="CELL:ITERS:SEED",
        help="run a kept cell again on this machine and record the difference (machine-checks.json)",
    )
    parser.add_argument(
        "--rerun-other-machines",
        action="store_true",
        help="with --run: also run the cells kept from another machine here (their scores become machine checks)",
    )
    parser.add_argument(
        "--park",
        action="store_true",
        help=f"copy the unfinished cells under --output to {PARKED} (commit them; --run resumes them elsewhere)",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per run (default: torch's choice)")
    parser.add_argument("--teacher-cache", type=Path, default=None, help="memoised teacher outputs to share")
    parser.add_argument("--import", dest="imports", action="append", type=Path, default=[], help="an ablation folder")
    parser.add_argument("--history", action="store_true", help="take the 250 / 500 cells of the earlier reports")
    parser.add_argument("--report", action="store_true", help="write the table and plot into docs/results.md")
    args = parser.parse_args()
    if args.history:
        import_history("HEAD", "docs/results/manifest.json", "docs/results.md", 250)
        import_history("84be755", "docs/results/manifest.json", "docs/results.md", 500)
    for root in args.imports:
        print(f"{root}: kept {', '.join(import_folder(root)) or 'nothing (no finished cell)'}")
    if args.check:
        cell, iters, seed = args.check
        check_machine(args, cell, int(iters), int(seed))
    if args.run:
        run_budgets(args, [int(b) for b in args.run.split(",")])
    if args.park:
        print("parked: " + (", ".join(park([args.output])) or "nothing (no unfinished cell with a checkpoint)"))
    if args.report:
        write_report()


if __name__ == "__main__":
    main()
