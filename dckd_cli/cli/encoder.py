"""`dckd encoder fit`: train a compact VQGAN autoencoder for DCKD's feature encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dckd_cli.cli import options as opt
from dckd_cli.cli.errors import user_errors
from dckd_cli.errors import OutputExists

console = Console()
encoder_app = typer.Typer(help="The VQGAN feature encoder used by DCKD.", no_args_is_help=True)

EXAMPLE = "Example:  dckd encoder fit --images ~/data/DIV2K/DIV2K_train_HR --output vqgan_compact.safetensors"


@encoder_app.command("fit", epilog=EXAMPLE)
@user_errors
def fit_command(
    images: Annotated[str, typer.Option("--images", help="Folder of training images, or 'builtin'.")] = "builtin",
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the .safetensors (+ .json).")] = Path(
        "vqgan_compact.safetensors"
    ),
    iters: Annotated[int, typer.Option("--iters", help="Training iterations.")] = 3000,
    batch: Annotated[int, typer.Option("--batch", help="Patches per iteration.")] = 8,
    patch: Annotated[int, typer.Option("--patch", help="Patch side in pixels (multiple of 16).")] = 64,
    seed: opt.SeedOpt = None,
    force: opt.ForceOpt = False,
    quiet: opt.QuietOpt = False,
) -> None:
    """Fit a compact VQGAN (taming architecture) on an image folder; report reconstruction PSNR and codebook usage."""
    if output.exists() and not force:
        raise OutputExists(str(output))
    from dckd_cli.atomic import check_writable

    check_writable(output)
    from dckd_cli.pipelines.encoder_fit import fit_encoder  # torch loads here

    def on_step(it: int, info: dict) -> None:
        if not quiet:
            console.print(f"encoder fit {it}/{iters}  loss {info['loss']:.4f}  vq {info['vq']:.4f}", highlight=False)

    report = fit_encoder(
        images,
        output,
        iters=iters,
        batch=batch,
        patch=patch,
        seed=seed or 0,
        on_step=on_step,
    )
    console.print(
        f"wrote {output}: reconstruction PSNR {report.recon_psnr:.2f} dB, codebook usage "
        f"{report.codebook_usage:.0%}, {report.iterations} iterations in {report.seconds:.0f} s"
    )
