"""`dckd distill`: parse, resolve settings, one library call, render. No arguments: the offline demo."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dckd_cli.catalog.tasks import TASKS
from dckd_cli.cli import options as opt
from dckd_cli.cli.errors import user_errors
from dckd_cli.errors import DckdError
from dckd_cli.settings.presets import resolve_settings

console = Console()

EXAMPLE = (
    "Examples:  dckd distill  (offline demo)  |  dckd distill --task derain  (its demo)"
    "  |  dckd distill --task sr --teacher swinir --scale 4"
    " --teacher-checkpoint SwinIR-M_x4.pth --data-root ~/data --output runs/swinir-x4-dckd"
    "  |  dckd distill --preset sr-rcan-x2 --method logits --set optim.iters=1000"
    "  |  dckd distill --output runs/swinir-x4-dckd --resume"
)


def _changed_keys(given: dict, recorded: dict, prefix: str = "") -> list[str]:
    keys = []
    for key in dict.fromkeys([*given, *recorded]):
        a, b, name = given.get(key), recorded.get(key), f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _changed_keys(a, b, f"{name}.")
        elif a != b:
            keys.append(name)
    return keys


def _check_resume_flags(
    output: Path | None, preset: str | None, flags: dict, overrides: list[str], root_given: bool
) -> dict[str, object]:
    """Flags given with ``--resume`` must describe the recorded run, or change only its speed and
    memory switches (``settings/resumable.py``), which are returned; the first other change is named."""
    from dckd_cli.engine.run_folder import RunFolder
    from dckd_cli.settings.resumable import RESUMABLE, values_of

    assert output is not None  # checked by the command first
    recorded = RunFolder(output).read_settings()
    record = recorded.model_dump(mode="json")  # without a preset, the flags change the recorded run
    given = resolve_settings(preset, {**flags, "optim.iters": recorded.optim.iters}, overrides, base=record)
    from dckd_cli.pipelines.demo_teacher import resolve_demo_teacher

    given = resolve_demo_teacher(given, lambda _label: None, train_missing=False)
    skip = {"output"} | (set() if root_given else {"data.root"})  # $DCKD_DATA never refuses a resume
    changed = [k for k in _changed_keys(given.model_dump(mode="json"), record) if k not in skip]
    refused = [k for k in changed if k not in RESUMABLE]
    if refused:
        shown = ", ".join(refused[:4]) + (f" and {len(refused) - 4} more" if len(refused) > 4 else "")
        raise DckdError(
            f"--resume continues the run as it was set up; these flags would change {shown} of {output}: drop them "
            "(only --iters and the speed / memory switches, e.g. method.encoder.recompute, may change), or start a "
            "new run"
        )
    return values_of(given, changed)


@user_errors
def distill_command(
    preset: opt.PresetOpt = None,
    overrides: opt.SetOpt = None,
    task: opt.TaskOpt = None,
    teacher: opt.TeacherOpt = None,
    teacher_checkpoint: opt.TeacherCkptOpt = None,
    student: opt.StudentOpt = None,
    method: opt.MethodOpt = None,
    scale: opt.ScaleOpt = None,
    data_root: opt.DataRootOpt = None,
    output: opt.OutputOpt = None,
    force: opt.ForceOpt = False,
    resume: opt.ResumeOpt = False,
    iters: opt.ItersOpt = None,
    seed: opt.SeedOpt = None,
    quiet: opt.QuietOpt = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check everything and time 2 steps; print memory and ETA; write nothing.")
    ] = False,
) -> None:
    """Distil a teacher into a student. With no arguments (or only --task): the offline demo on built-in data."""
    flags = {
        "task": task,
        "scale": scale,
        "teacher.arch": teacher,
        "teacher.checkpoint": str(teacher_checkpoint) if teacher_checkpoint else None,
        "student.arch": student or teacher,
        "method.name": method,
        "data.root": str(data_root) if data_root else None,
    }
    # --task alone (with --seed / --iters / --output): that task's offline demo
    chosen = any(v is not None for k, v in flags.items() if k != "task") or preset or overrides
    if resume and output is None:
        raise DckdError("--resume needs --output RUN_FOLDER: the run to continue")
    changes: dict[str, object] = {}
    if resume and (chosen or task is not None or seed is not None):
        # the run's own command, --resume added, is accepted; a flag that would change the run is not
        args = (output, preset, {**flags, "runtime.seed": seed}, overrides or [], data_root is not None)
        changes = _check_resume_flags(*args)
    settings = None
    if chosen or resume:  # settings are checked before torch is even loaded
        settings = resolve_settings(preset, {**flags, "optim.iters": iters, "runtime.seed": seed}, overrides or [])
    from dckd_cli.report.progress import show_preparation

    show_preparation(console, quiet)
    if dry_run:
        from dckd_cli.pipelines.distill import dry_run as check_run

        if resume:  # the run's own settings, as --resume would continue it (its teacher, offline)
            from dckd_cli.engine.checkpoint import load_checkpoint
            from dckd_cli.engine.run_folder import RunFolder
            from dckd_cli.settings.resumable import with_changes

            assert output is not None
            run_folder = RunFolder(output)
            run_folder.check(force=False, resume=True)
            base = with_changes(run_folder.read_settings(), changes)
            if iters is not None:
                base.optim.iters = iters
            done = int(load_checkpoint(output).state["iter"]) if run_folder.saved_any() else 0
        else:
            base = settings or resolve_settings("demo", {"task": task, "optim.iters": iters, "runtime.seed": seed})
            done = 0
        report = check_run(base, done=done)
        memory = "n/a" if report.peak_memory_mb is None else f"{report.peak_memory_mb:.0f} MB"
        eta = report.eta_seconds
        left = f"{report.iterations} iterations"
        left = f"the {report.iterations - report.done} iterations left of {left}" if report.done else left
        took = f"{eta:.0f} s" if eta < 60 else f"{int(eta // 3600)} h {int(eta % 3600 // 60)} min"
        need = ""
        if report.need_mb is not None and not report.device.startswith("cuda"):
            need = f" (a GPU would allocate about {report.need_mb:.0f} MB: the weights and the step's tensors)"
        console.print(
            f"dry run on {report.device}: data, checkpoints and settings are fine; {report.seconds_per_iter:.3f} s/it, "
            f"peak memory {memory}{need}; {left} would take about {took}; nothing was written",
            highlight=False,
        )
        return
    from dckd_cli.pipelines.demo import run_demo
    from dckd_cli.pipelines.distill import distill
    from dckd_cli.report.progress import make_sink
    from dckd_cli.report.tables import summary_table

    sinks = lambda label: make_sink(console, label, quiet)  # noqa: E731
    if settings is None:
        root = output or Path("runs") / f"demo-{task or 'sr'}-{datetime.now():%Y%m%d-%H%M%S}"
        demo = run_demo(root, task=task, force=force, seed=seed, iters=iters, make_sink=sinks)
        what = f"x{demo.scale} SR" if demo.scale > 1 else demo.task
        title = f"Demo: {what} on the built-in images (PSNR dB / SSIM, {TASKS[demo.task].channel.upper()})"
        console.print(summary_table(demo.results, title=title))
        console.print(demo.note, highlight=False)
        for method_name, folder in demo.folders.items():
            console.print(f"{method_name}: {folder}")
        return
    label = settings.method.name
    if resume:
        from dckd_cli.engine.run_folder import RunFolder

        assert output is not None
        label = RunFolder(output).read_settings().method.name  # the run's method, not the flag default
    result = distill(
        settings, output, force=force, resume=resume, iters=iters, changes=changes, sink=sinks(label), make_sink=sinks
    )
    if os.environ.get("RANK", "0") != "0":
        return  # several processes: the main one reports
    best = f"{result.best_psnr:.2f} dB" if result.best_psnr is not None else "n/a"
    console.print(f"{label}: {result.iterations} iterations in {result.seconds:.0f} s, best val PSNR {best}")
    console.print(f"run folder: {result.folder}")
