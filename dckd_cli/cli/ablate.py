"""`dckd ablate`: parse the axes, plan every cell (validated before anything runs), run, summarise."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from dckd_cli.catalog.methods import METHOD_NAMES
from dckd_cli.cli import options as opt
from dckd_cli.cli.errors import user_errors
from dckd_cli.errors import DckdError

console = Console()

EXAMPLE = (
    "Examples:  dckd ablate --degradation noise,blur --output runs/ablate-degradation  (offline demo setting)"
    "  |  dckd ablate --preset sr-swinir-x4 --data-root ~/data --teacher-checkpoint SwinIR-M_x4.pth"
    " --lambda-dcl 0.01,0.1,1 --seeds 0,1,2 --output runs/ablate-dcl"
    "  |  dckd ablate --output runs/ablate-dcl --report"
)


def _axis_opt(flag: str, text: str) -> object:
    return Annotated[Optional[str], typer.Option(flag, help=text)]


DegradationOpt = _axis_opt("--degradation", "Negatives' degradation: noise, blur, resize, mix (Table 6).")
LambdaDclOpt = _axis_opt("--lambda-dcl", "Weights of L_dcl, e.g. 0.01,0.1,1 (Table 7).")
LambdaCeOpt = _axis_opt("--lambda-ce", "Weights of L_ce, e.g. 1e-4,1e-3,1e-2 (Table 7).")
NegativesOpt = _axis_opt("--negatives", "Numbers of negatives, e.g. 1,3,5,7 (Fig. 8).")
InitStepOpt = _axis_opt("--init-step", "History model's initial update step s (phases s, 2s, 3s), e.g. 500,1000.")
ComponentsOpt = _axis_opt("--components", "DCKD components on: none, dcr, dmm, dcr+dmm (Table 5).")


@user_errors
def ablate_command(
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Ablation folder (required).")] = None,
    preset: opt.PresetOpt = None,
    overrides: opt.SetOpt = None,
    degradation: DegradationOpt = None,  # type: ignore[valid-type]
    lambda_dcl: LambdaDclOpt = None,  # type: ignore[valid-type]
    lambda_ce: LambdaCeOpt = None,  # type: ignore[valid-type]
    negatives: NegativesOpt = None,  # type: ignore[valid-type]
    init_step: InitStepOpt = None,  # type: ignore[valid-type]
    components: ComponentsOpt = None,  # type: ignore[valid-type]
    grid: Annotated[
        Optional[list[str]], typer.Option("--grid", help="Any settings key as an axis: key=v1,v2 (repeatable).")
    ] = None,
    seeds: Annotated[str, typer.Option("--seeds", help="Seeds, each a paired replicate of every cell.")] = "0",
    method: Annotated[str, typer.Option("--method", help=f"Method under study ({', '.join(METHOD_NAMES)}).")] = "dckd",
    baseline: Annotated[
        str, typer.Option("--baseline", help="Method of the baseline cell every row is paired with; 'none' for none.")
    ] = "logits",
    iters: opt.ItersOpt = None,
    warm_iters: Annotated[
        Optional[int],
        typer.Option("--warm-iters", help="Shared scratch warm start per seed (default: 1000 on the demo, else 0)."),
    ] = None,
    teacher_checkpoint: opt.TeacherCkptOpt = None,
    data_root: opt.DataRootOpt = None,
    report: Annotated[
        bool, typer.Option("--report", help="Rebuild the summary from the folders; train nothing.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Start the ablation folder again from nothing.")] = False,
    quiet: opt.QuietOpt = False,
) -> None:
    """Run an ablation grid (components, degradations, loss weights, negatives) over distill runs, resumably."""
    from dckd_cli.pipelines.ablation_grid import SHORTCUTS, expand, parse_axis, parse_grid_option

    if output is None:
        raise DckdError("--output DIR is required: the ablation folder (re-run the same command to resume it)")
    if report:
        return _report(output)
    named = {
        "degradation": degradation,
        "lambda-dcl": lambda_dcl,
        "lambda-ce": lambda_ce,
        "negatives": negatives,
        "init-step": init_step,
        "components": components,
    }
    assert set(named) == set(SHORTCUTS)
    axes = [parse_axis(name, values) for name, values in named.items() if values is not None]
    axes += [parse_grid_option(text) for text in grid or []]
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise DckdError(f"--seeds '{seeds}': expected comma-separated integers, e.g. 0,1,2") from None
    extra = list(overrides or [])
    if teacher_checkpoint is not None:
        extra.append(f"teacher.checkpoint={teacher_checkpoint}")
    if data_root is not None:
        extra.append(f"data.root={data_root}")
    cells = expand(axes, None if baseline == "none" else baseline)

    from dckd_cli.pipelines.ablate import (
        default_spec,
        plan_ablation,
        resolve_demo_teachers,
        run_ablation,
        seconds_per_step,
    )
    from dckd_cli.report.progress import make_sink, show_preparation

    show_preparation(console, quiet)
    spec = default_spec(preset, extra, method, iters, warm_iters, baseline)
    plan = plan_ablation(output, spec, cells, seed_list, force=force)
    sink = lambda label: make_sink(console, label, quiet)  # noqa: E731
    say = (lambda text: None) if quiet else (lambda text: console.print(text, highlight=False))
    pending = plan.runs if force else plan.pending
    setting = f"preset {preset}" if preset else "the demo preset (built-in images, CPU-sized models)"
    if extra:
        setting += f" with {len(extra)} setting override{'s' if len(extra) > 1 else ''}"
    seeds_word = "seed" if len(seed_list) == 1 else "seeds"
    console.print(f"ablation on {setting}: {len(cells)} cells x {len(seed_list)} {seeds_word} = {len(plan.runs)} runs")
    if pending:
        if plan.demo:
            say("the demo teacher: packaged, or trained once on first use and cached")
            resolve_demo_teachers(plan, sink)
        iterations = sum(r.settings.optim.iters for r in pending)
        firsts = {r.settings.method.name: r for r in reversed(pending)}  # one measurement per method
        costs = {name: seconds_per_step(r.settings) for name, r in firsts.items()}
        seconds = sum(r.settings.optim.iters * costs[r.settings.method.name] for r in pending)
        measured = ", ".join(f"{name} {cost:.2f}" for name, cost in costs.items())
        extra = f" plus {plan.spec.warm_iters} warm-start iterations per seed" if plan.spec.warm_iters else ""
        console.print(
            f"to run: {len(pending)} runs, {iterations} iterations at {measured} s/step (measured) "
            f"= about {seconds / 60:.0f} min{extra}, plus evaluation"
        )
    # only now, after every check and the first cell's models were built, is the folder touched
    run_ablation(plan, make_sink=sink, say=say, fresh=force)
    _report(output)


def _report(output: Path) -> None:
    from dckd_cli.engine.ablation_folder import AblationFolder
    from dckd_cli.pipelines.ablation_summary import summarise, write_summary
    from dckd_cli.report.plots import ablation_plots
    from dckd_cli.report.tables import ablation_table

    summary = summarise(output)
    console.print(ablation_table(summary))
    json_path, csv_path = write_summary(summary)
    folder = AblationFolder(output)
    plots = ablation_plots(summary, folder.plots)
    console.print(f"wrote {json_path}, {csv_path}" + (f", {len(plots)} plot(s) in {folder.plots}" if plots else ""))
