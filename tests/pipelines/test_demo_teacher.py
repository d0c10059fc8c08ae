"""The demo teacher a run's ``teacher.checkpoint=@demo`` names: packaged where its file is
there, else trained on first use; ``@demo-trained`` always the trained one."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import save_file

from dckd_cli.catalog.tasks import TASKS
from dckd_cli.models.zoo import build_model
from dckd_cli.pipelines import demo_teacher
from dckd_cli.settings.presets import resolve_settings


@pytest.mark.parametrize("task", ["deblur", "derain"])
def test_a_packaged_scale_one_teacher_is_used_when_its_file_is_there(tmp_path: Path, monkeypatch, task: str):
    settings = resolve_settings("demo", {"task": task})
    monkeypatch.setattr(demo_teacher, "ASSETS", tmp_path)
    untouched = demo_teacher.resolve_demo_teacher(settings, lambda _label: None, train_missing=False)
    assert str(untouched.teacher.checkpoint) == "@demo"  # no file, nothing cached: left to train on first use
    t = settings.teacher
    state = build_model(t.arch, t.size, 1).state_dict()
    packaged = tmp_path / TASKS[task].packaged_teachers[1]
    save_file({k: v.half().contiguous() for k, v in state.items()}, str(packaged))  # float16, as shipped
    resolved = demo_teacher.resolve_demo_teacher(settings, lambda _label: None, train_missing=False)
    assert resolved.teacher.checkpoint == packaged and resolved.teacher.arch == "auto"
    trained = resolve_settings("demo", {"task": task}, ["teacher.checkpoint=@demo-trained"])
    kept = demo_teacher.resolve_demo_teacher(trained, lambda _label: None, train_missing=False)
    assert str(kept.teacher.checkpoint) == "@demo-trained"  # never the packaged file
    from dckd_cli.engine.build import build_models

    resolved.method.name = "logits"
    _, teacher = build_models(resolved, needs_teacher=True)  # the float16 file loads into the float32 teacher
    assert next(teacher.parameters()).dtype.is_floating_point


def test_every_shipped_demo_teacher_is_the_one_its_record_describes():
    """The float16 files in dckd_cli/assets match their record (bytes, the demo's teacher,
    iterations, the stand-in they were trained on): a changed stand-in or demo teacher needs a
    new file (python benchmarks/demo_teachers.py)."""
    import hashlib
    import json

    from dckd_cli.assets import ASSETS

    record = json.loads((ASSETS / "demo_teachers.json").read_text())
    shipped = [task for task in ("deblur", "derain") if (ASSETS / TASKS[task].packaged_teachers[1]).is_file()]
    assert shipped and set(record) == set(shipped)
    for task in shipped:
        entry, path = record[task], ASSETS / TASKS[task].packaged_teachers[1]
        settings = resolve_settings("demo", {"task": task})
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        assert (entry["arch"], entry["size"]) == (settings.teacher.arch, settings.teacher.size)
        assert entry["iterations"] == demo_teacher.DEMO_TEACHER_ITERS[task]
        assert entry["stand_in_version"] == demo_teacher.STAND_IN_VERSIONS[TASKS[task].stand_in]
        resolved = demo_teacher.resolve_demo_teacher(settings, lambda _label: None, train_missing=False)
        assert resolved.teacher.checkpoint == path  # `dckd distill --task TASK` trains no teacher first
