"""One table of the tasks: scale rule, metric channel and crop, data layouts, built-in stand-in.

Read by settings (scale and architecture checks), data (layouts, the built-in degradation),
metrics (the published protocol) and help texts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

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
    stand_in: Literal["bicubic", "motion-blur", "rain"]  # the built-in set's synthetic degradation (data/degrade.py)
    demo: dict[str, Any] = field(default_factory=dict)  # the demo preset's settings for this task (dotted keys)
    packaged_teachers: dict[int, str] = field(default_factory=dict)  # scale -> released teacher in dckd_cli/assets


# The deblurring / deraining demo: NAFNet-small teacher (trained on first use), NAFNet-tiny student.
SCALE1_DEMO = {
    "scale": 1,
    "teacher.arch": "nafnet",
    "teacher.size": "small",
    "student.arch": "nafnet",
    "data.patch_size": 64,
}

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
        demo={"scale": 4, "teacher.arch": "rcan", "teacher.size": "small", "student.arch": "rcan"},
        packaged_teachers={4: "dctlsa_x4.safetensors"},  # DCTLSA x4, Apache-2.0 (assets/NOTICE.md)
    ),
    "deblur": TaskSpec(
        scales=(1,),
        default_arch="nafnet",
        channel="rgb",
        crop_border=False,
        paired=True,
        benchmarks=("GoPro", "HIDE"),
        layout="NAME/input + NAME/target",
        stand_in="motion-blur",
        demo=SCALE1_DEMO,
        packaged_teachers={1: "demo_teacher_deblur.safetensors"},  # dckd's own (benchmarks/demo_teachers.py)
    ),
    "derain": TaskSpec(
        scales=(1,),
        default_arch="nafnet",
        channel="y",
        crop_border=False,
        paired=True,
        benchmarks=("Test100", "Rain100H", "Rain100L", "Test2800", "Test1200"),
        layout="NAME/input + NAME/target",
        stand_in="rain",
        demo=SCALE1_DEMO,
        packaged_teachers={1: "demo_teacher_derain.safetensors"},  # dckd's own (benchmarks/demo_teachers.py)
    ),
}
TASK_NAMES = tuple(TASKS)
# ``teacher.checkpoint`` value naming the demo teacher of the run's task and scale: a released
# model packaged with dckd where there is one, else one trained on the built-in images on first
# use and cached (``pipelines/demo.py``).
DEMO_TEACHER = "@demo"
DEMO_TRAINED = "@demo-trained"  # always the teacher trained on the built-in images on first use
SCALES = tuple(sorted({s for t in TASKS.values() for s in t.scales}))
