"""The demo teacher: what ``teacher.checkpoint=@demo`` names, resolved before a run is built.

It is the released model packaged with dckd for a run's task and scale where there is one
(DCTLSA x4 for SR), else a CPU-sized model of the demo's teacher architecture trained on the
built-in images on first use and cached. `distill`, `ablate` and `--dry-run` resolve it
before anything is built; the run folder records the file. No module of ``models/`` knows it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from dckd_cli.assets import ASSETS
from dckd_cli.atomic import atomic_path
from dckd_cli.catalog.tasks import DEMO_TEACHER, DEMO_TRAINED, TASKS
from dckd_cli.engine.run_folder import RunFolder
from dckd_cli.engine.trainer import ProgressSink, train
from dckd_cli.methods.build import run_needs
from dckd_cli.models.checkpoints import cache_dir
from dckd_cli.settings.presets import DEMO_PRESET, resolve_settings
from dckd_cli.settings.schema import RunSettings

# A trained demo teacher: this many iterations of scratch training on the built-in images, per task.
DEMO_TEACHER_ITERS: dict[str, int] = {"sr": 1000, "deblur": 3000, "derain": 1000}
# Bumped when a built-in stand-in changes, so a teacher cached for older inputs is not reused.
STAND_IN_VERSIONS = {"bicubic": 1, "motion-blur": 2, "rain": 1}
# channels-last off: the packaged teachers were trained in contiguous memory, and a rebuild
# (benchmarks/demo_teachers.py --check) repeats them.
DEMO_TEACHER_OVERRIDES = {"optim.lr": 1e-3, "data.batch_size": 16, "runtime.channels_last": False}
SinkFactory = Callable[[str], ProgressSink | None]


def needs_teacher(settings: RunSettings) -> bool:
    """Whether the run's method, with its weights, runs the teacher at all."""
    return "teacher" in run_needs(settings)


def is_demo_teacher(settings: RunSettings) -> bool:
    """``@demo`` (the packaged teacher, else one trained on first use) or ``@demo-trained``
    (always the one trained on the built-in images on first use, and cached)."""
    return settings.teacher.checkpoint is not None and str(settings.teacher.checkpoint) in (DEMO_TEACHER, DEMO_TRAINED)


def packaged_teacher(task: str, scale: int) -> Path | None:
    """The teacher packaged for ``task`` at ``scale`` (None where there is none, or where a
    source checkout lacks its file)."""
    name = TASKS[task].packaged_teachers.get(scale)
    path = ASSETS / name if name else None
    return path if path is not None and path.is_file() else None


def demo_teacher_path(settings: RunSettings) -> Path:
    """Where the trained demo teacher of ``settings``' task, architecture, size and scale is cached."""
    t = settings.teacher
    version = STAND_IN_VERSIONS[TASKS[settings.task].stand_in]
    tag = f"{settings.task}-{t.arch}-{t.size}-x{settings.scale}-{DEMO_TEACHER_ITERS[settings.task]}-v{version}"
    name = f"teacher-{tag}.safetensors"
    return cache_dir() / "demo" / name


def demo_teacher_settings(settings: RunSettings) -> RunSettings:
    """The run that trains the demo teacher of ``settings``: scratch training of the demo's
    teacher architecture on the built-in images (what ``benchmarks/demo_teachers.py`` ships)."""
    flags = {
        "task": settings.task,
        "scale": settings.scale,
        "method.name": "scratch",
        "student.arch": settings.teacher.arch,
        "student.size": settings.teacher.size,
        "optim.iters": DEMO_TEACHER_ITERS[settings.task],
        **DEMO_TEACHER_OVERRIDES,
    }
    extra = [f"runtime.seed={settings.runtime.seed}"]
    if settings.runtime.threads is not None:
        extra.append(f"runtime.threads={settings.runtime.threads}")
    return resolve_settings(DEMO_PRESET, flags, extra)


def train_demo_teacher(settings: RunSettings, make_sink: SinkFactory) -> Path:
    """The cached trained demo teacher of ``settings``; trained first (in a temporary folder) if missing."""
    cached = demo_teacher_path(settings)
    if cached.is_file():
        return cached
    teacher_settings = demo_teacher_settings(settings)
    with tempfile.TemporaryDirectory(prefix="dckd-demo-teacher-") as tmp:
        train(teacher_settings, Path(tmp) / "teacher", force=True, sink=make_sink("teacher"))
        with atomic_path(cached) as out:
            shutil.copyfile(RunFolder(Path(tmp) / "teacher").weights("last"), out)
    return cached


def resolve_demo_teacher(settings: RunSettings, make_sink: SinkFactory, train_missing: bool = True) -> RunSettings:
    """``settings`` with ``teacher.checkpoint=@demo`` replaced by the file it names (a copy;
    other settings are returned as they are). The packaged teacher is detected by its keys
    (``teacher.arch=auto``); a trained one is built from the demo's architecture and size."""
    if not is_demo_teacher(settings) or not needs_teacher(settings):
        return settings
    resolved = settings.model_copy(deep=True)
    wanted = str(settings.teacher.checkpoint) == DEMO_TEACHER
    packaged = packaged_teacher(settings.task, settings.scale) if wanted else None
    if packaged is not None:
        resolved.teacher.arch, resolved.teacher.checkpoint = "auto", packaged
    elif train_missing or demo_teacher_path(settings).is_file():
        resolved.teacher.checkpoint = train_demo_teacher(settings, make_sink)
    return resolved


def with_stand_in_teacher(settings: RunSettings, folder: Path) -> RunSettings:
    """``settings`` whose demo teacher is not trained yet get random weights of its architecture
    (saved in ``folder``), so a dry run times the real step without training it first."""
    if not (is_demo_teacher(settings) and needs_teacher(settings)):
        return settings
    from safetensors.torch import save_file

    from dckd_cli.models.zoo import build_model

    stand_in = folder / "teacher.safetensors"
    t = settings.teacher
    model = build_model(t.arch, t.size, settings.scale)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(stand_in))
    resolved = settings.model_copy(deep=True)
    resolved.teacher.checkpoint = stand_in
    return resolved
