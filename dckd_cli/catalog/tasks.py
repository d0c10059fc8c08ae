"""One table of the tasks: scale rule, metric channel and crop, data layouts, built-in stand-in.

Read by settings (scale and architecture checks), data (layouts, the built-in degradation),
metrics (the published protocol) and help texts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Channel = Literal["y", "rgb"]


@dataclass(frozen=True)
class TaskSpec:
    scales: tuple[int, ...]
    default_arch: str
    channel: Channel  # metric channel of the published tables
    crop_border: bool  # crop ``scale`` pixels at each border before scoring
    paired: bool  # inputs are files (input/ + target/); else made from HR by bicubic downscaling
    benchmarks: tuple[str, ...]
    layout: str
    stand_in: Literal["bicubic", "gaussian-blur", "streaks"]  # the built-in set's synthetic degradation


TASKS: dict[str, TaskSpec] = {
    "sr": TaskSpec(
        scales=(2, 3, 4),
        default_arch="swinir",
        channel="y",
        crop_border=True,
        paired=False,
        benchmarks=("Set5", "Set14", "BSD100", "Urban100", "Manga109"),
        layout="NAME/HR (+ NAME/LR_bicubic/X{s})",
        stand_in="bicubic",
    ),
    "deblur": TaskSpec(
        scales=(1,),
        default_arch="nafnet",
        channel="rgb",
        crop_border=False,
        paired=True,
        benchmarks=("GoPro", "HIDE"),
        layout="NAME/input + NAME/target",
        stand_in="gaussian-blur",
    ),
    "derain": TaskSpec(
        scales=(1,),
        default_arch="nafnet",
        channel="y",
        crop_border=False,
        paired=True,
        benchmarks=("Test100", "Rain100H", "Rain100L", "Test2800", "Test1200"),
        layout="NAME/input + NAME/target",
        stand_in="streaks",
    ),
}
TASK_NAMES = tuple(TASKS)
SCALES = tuple(sorted({s for t in TASKS.values() for s in t.scales}))
