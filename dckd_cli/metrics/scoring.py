"""Scoring a model on benchmarks the way the published tables do."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dckd_cli.catalog.tasks import TASKS
from dckd_cli.data.benchmarks import Benchmark
from dckd_cli.data.images import write_image
from dckd_cli.metrics.inference import run_on_image
from dckd_cli.metrics.psnr_ssim import Channel, psnr, ssim


@dataclass
class ImageScore:
    name: str
    psnr: float
    ssim: float


@dataclass
class DatasetResult:
    dataset: str
    scale: int
    model: str
    channel: str
    psnr: float
    ssim: float
    images: int
    per_image: list[ImageScore] = field(default_factory=list)

    def record(self) -> dict[str, object]:
        """The JSON record: dataset, scale, model, psnr, ssim, images, channel, per-image scores."""
        return asdict(self)


def protocol(task: str, scale: int) -> tuple[Channel, int]:
    """Channel and border crop of the published tables: Y + scale crop for SR, Y for
    deraining, RGB for deblurring."""
    spec = TASKS[task]
    return spec.channel, scale if spec.crop_border else 0


def evaluate(
    model: nn.Module,
    benchmarks: Sequence[Benchmark],
    *,
    task: str,
    scale: int,
    model_name: str,
    device: torch.device | str = "cpu",
    tile: int | None = None,
    overlap: int = 16,
    multiple: int = 1,
    save_dir: Path | None = None,
    save_limit: int | None = None,
    on_image: Callable[[str, str], None] | None = None,
) -> list[DatasetResult]:
    """PSNR / SSIM of ``model`` on each benchmark; outputs are rounded to 8 bits first."""
    channel, crop = protocol(task, scale)
    model.eval()
    results = []
    for bench in benchmarks:
        scores = []
        for index, pair in enumerate(bench):
            lq, gt = pair.load()
            out = run_on_image(model, lq, scale, tile, overlap, multiple, device, f"{bench.name}/{pair.name}")
            if out.shape != gt.shape:
                raise ValueError(f"{bench.name}/{pair.name}: output {out.shape} does not match target {gt.shape}")
            scores.append(ImageScore(pair.name, psnr(out, gt, channel, crop), ssim(out, gt, channel, crop)))
            if save_dir is not None and (save_limit is None or index < save_limit):
                write_image(save_dir / bench.name / f"{pair.name}.png", out)
            if on_image is not None:
                on_image(bench.name, pair.name)
        results.append(
            DatasetResult(
                dataset=bench.name,
                scale=scale,
                model=model_name,
                channel=channel,
                psnr=float(np.mean([s.psnr for s in scores])),
                ssim=float(np.mean([s.ssim for s in scores])),
                images=len(scores),
                per_image=scores,
            )
        )
    return results
