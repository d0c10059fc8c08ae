from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dckd_cli.catalog.methods import METHODS
from dckd_cli.settings.presets import (
    SettingsError,
    available_presets,
    load_preset,
    parse_override,
    resolve_settings,
    settings_yaml,
)
from dckd_cli.settings.schema import RunSettings

PAPER_PRESETS = [
    *(f"sr-{arch}-x{s}" for arch in ("swinir", "rcan") for s in (2, 3, 4)),
    "deblur-nafnet",
    "deblur-restormer",
    "derain-restormer",
    "demo",
]


def test_every_paper_setting_has_a_valid_preset():
    assert set(PAPER_PRESETS) <= set(available_presets())
    for name in available_presets():
        settings = resolve_settings(name)  # raises SettingsError on any invalid preset
        again = RunSettings.model_validate(settings.model_dump())
        assert again == settings and settings.method.name in METHODS
    papers = {n: resolve_settings(n) for n in PAPER_PRESETS if n != "demo"}
    assert {(s.task, s.teacher.arch) for s in papers.values()} >= {
        ("sr", "swinir"),
        ("sr", "rcan"),
        ("deblur", "nafnet"),
        ("deblur", "restormer"),
        ("derain", "restormer"),
    }
    assert all(s.teacher.size == "teacher" and s.student.size == "student" for s in papers.values())


@pytest.mark.parametrize("name,scale,arch", [("sr-swinir-x3", 3, "swinir"), ("sr-rcan-x2", 2, "rcan")])
def test_sr_presets_carry_the_paper_recipe(name, scale, arch):
    s = resolve_settings(name)
    assert (s.task, s.scale, s.teacher.arch, s.student.arch) == ("sr", scale, arch, arch)
    assert (s.teacher.size, s.student.size) == ("teacher", "student")
    assert s.optim.lr == 1e-4 and s.optim.betas == (0.9, 0.99) and s.optim.iters == 250_000
    assert s.optim.milestones == [100_000, 200_000] and s.data.patch_size == 48 and s.data.batch_size == 16
    assert s.method.weights.dcl == 0.1 and s.method.weights.ce == 0.001


def test_deblur_nafnet_preset_recipe():
    s = resolve_settings("deblur-nafnet")
    assert (s.task, s.scale, s.optim.optimizer, s.optim.scheduler) == ("deblur", 1, "adamw", "cosine")
    assert s.optim.lr == 1e-3 and s.optim.betas == (0.9, 0.9) and s.optim.weight_decay == 1e-3


def test_merge_order_preset_then_flags_then_overrides():
    s = resolve_settings("sr-swinir-x4", {"scale": 2, "optim.lr": 5e-4}, ["optim.lr=2e-4", "data.test=[Set5]"])
    assert s.scale == 2 and s.optim.lr == 2e-4 and s.data.test == ["Set5"]
    assert s.teacher.arch == "swinir"  # untouched keys keep the preset's value


def test_task_sets_scale_and_architectures():
    s = resolve_settings(None, {"task": "deblur"})
    assert s.scale == 1 and s.teacher.arch == "nafnet" and s.student.size == "student"


def test_parse_override_reads_yaml_values():
    assert parse_override("optim.betas=[0.9, 0.9]") == {"optim": {"betas": [0.9, 0.9]}}
    assert parse_override("method.name=dckd-star") == {"method": {"name": "dckd-star"}}
    with pytest.raises(SettingsError, match="expected key.sub=value"):
        parse_override("optim.lr")


def test_errors_are_one_line_per_field_with_choices():
    with pytest.raises(SettingsError) as info:
        resolve_settings(None, None, ["task=paint", "optim.lr=-1", "data.bogus=3", "teacher.arch=vgg 16"])
    lines = info.value.lines
    assert len(lines) == 4
    assert any(line.startswith("task:") and "'sr', 'deblur' or 'derain'" in line for line in lines)
    assert any(line.startswith("optim.lr:") and "greater than 0" in line for line in lines)
    assert any(line.startswith("data.bogus:") and "batch_size" in line and "patch_size" in line for line in lines)
    assert any(line.startswith("teacher.arch:") and "swinir, rcan" in line and "dckd models" in line for line in lines)


def test_architecture_must_fit_the_task():
    with pytest.raises(SettingsError, match="does not fit task 'deblur'"):
        resolve_settings(None, {"task": "deblur", "teacher.arch": "swinir"})
    with pytest.raises(SettingsError, match="scale=1"):
        resolve_settings(None, {"task": "derain", "scale": 2})


def test_patch_size_must_fit_the_unet_depth():
    with pytest.raises(SettingsError) as info:
        resolve_settings("deblur-restormer", {"data.patch_size": 100, "data.progressive": []})
    message = str(info.value)
    assert "data.patch_size 100 is not a multiple of 8" in message and "use 96 or 104" in message
    assert "\n" not in message.strip()
    assert resolve_settings("deblur-restormer", {"data.patch_size": 96, "data.progressive": []}).data.patch_size == 96
    # with the preset's progressive schedule, the patch and batch are its first stage's: a
    # different one given beside it is refused, not silently replaced
    assert resolve_settings("deblur-restormer").data.patch_size == 128
    with pytest.raises(SettingsError) as conflict:
        resolve_settings("deblur-restormer", {"data.patch_size": 96})
    assert "patch_size 96 conflicts with progressive (its first stage's patch is 128)" in str(conflict.value)
    assert "data.progressive=[]" in str(conflict.value) and "\n" not in str(conflict.value).strip()
    # a schedule given by the user replaces the preset's sizes; sizes given beside it still conflict
    stages = [{"until": 10, "patch": 16, "batch": 2}, {"until": 20, "patch": 32, "batch": 1}]
    demo = resolve_settings("demo", {"task": "deblur"}, [f"data.progressive={stages}"])
    assert (demo.data.patch_size, demo.data.batch_size) == (16, 2)
    with pytest.raises(SettingsError, match="batch_size 4 conflicts with progressive"):
        resolve_settings("demo", {"task": "deblur", "data.batch_size": 4}, [f"data.progressive={stages}"])
    with pytest.raises(SettingsError, match="multiple of 16, which teacher.arch 'nafnet'"):
        resolve_settings("deblur-nafnet", {"data.patch_size": 200})


def test_unknown_preset_lists_the_choices(tmp_path: Path):
    with pytest.raises(SettingsError, match="sr-swinir-x4"):
        load_preset("sr-vgg-x9")
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: [unclosed\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_preset(str(bad))


def test_resolved_settings_round_trip_through_yaml(tmp_path: Path):
    s = resolve_settings("sr-rcan-x3", None, ["runtime.seed=7"])
    again = RunSettings.model_validate(yaml.safe_load(settings_yaml(s)))
    assert again == s


def test_validation_on_a_test_set_is_refused_unless_accepted():
    with pytest.raises(SettingsError, match=r"val 'Set5' is also a test set.*data\.val_is_test=true"):
        resolve_settings("sr-swinir-x4", {"data.val": "Set5"})
    assert resolve_settings("sr-swinir-x4", {"data.val": "Set5", "data.val_is_test": True}).data.val == "Set5"
    for name in available_presets():
        s = resolve_settings(name)
        assert s.data.val not in s.data.test, name  # every preset validates off its test sets
