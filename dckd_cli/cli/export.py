"""`dckd export`: parse, one library call (export + parity checks + model card), render."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dckd_cli.cli import options as opt
from dckd_cli.cli.errors import user_errors

console = Console()

EXAMPLE = (
    "Examples:  dckd export runs/swinir-x4-dckd --output exports/swinir-x4  (safetensors)"
    "  |  dckd export runs/rcan-x2-dckd --format safetensors,onnx,torchscript --output exports/rcan-x2"
    "  |  dckd export runs/rcan-x2-dckd --format onnx --fp16 --weights student --output exports/rcan-x2-fp16"
)


@user_errors
def export_command(
    source: Annotated[Path, typer.Argument(help="A run folder, a dckd student file or any recognised checkpoint.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Export folder (artefacts + model card).")],
    formats: Annotated[
        str, typer.Option("--format", "-f", help="Comma-separated: safetensors, onnx, torchscript.")
    ] = "safetensors",
    weights: Annotated[
        str, typer.Option("--weights", help="ema (the EMA student, default) or student (online weights).")
    ] = "ema",
    fp16: Annotated[bool, typer.Option("--fp16", help="Half-precision ONNX (bound: 1/255 against fp32).")] = False,
    force: opt.ForceOpt = False,
    quiet: opt.QuietOpt = False,
) -> None:
    """Export a trained student for deployment; every artefact is reloaded and checked against PyTorch."""
    from dckd_cli.pipelines.export import export_student  # torch loads here

    def on_artefact(fmt: str, error: float, bound: float) -> None:
        if not quiet:
            verdict = "ok" if error <= bound else "FAILED"
            console.print(f"{fmt}: max abs error {error:.2e} vs PyTorch (bound {bound:.0e}) {verdict}", highlight=False)

    command = "dckd " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    names = [f.strip() for f in formats.split(",") if f.strip()]
    record = export_student(
        source, names, output, weights=weights, fp16=fp16, force=force, command=command, on_artefact=on_artefact
    )
    flops = record["flops"]
    console.print(
        f"wrote {output}: {', '.join(a['file'] for a in record['artefacts'].values())}, model.json, README.md "
        f"({record['parameters']:,} parameters, {flops['value'] / 1e9:.2f} GFLOPs at {flops['input']})",
        highlight=False,
    )
