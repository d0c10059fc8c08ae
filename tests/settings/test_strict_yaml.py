"""Presets and --set values: duplicate keys, alias bombs and non-UTF-8 text are one line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dckd_cli.cli.app import app
from dckd_cli.settings.presets import SettingsError, parse_override, resolve_settings

runner = CliRunner()
BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
    + ["optim: {lr: *i}"]
)


def test_an_alias_bomb_is_one_line_at_once(tmp_path: Path):
    preset = tmp_path / "bomb.yaml"
    preset.write_text(BOMB)
    began = time.perf_counter()
    with pytest.raises(SettingsError, match=r"expands to more than 100000 values") as caught:
        resolve_settings(str(preset))
    assert time.perf_counter() - began < 1.0 and len(str(caught.value)) < 300
    result = runner.invoke(app, ["distill", "--preset", str(preset), "--dry-run"])
    assert result.exit_code == 1 and len(result.output) < 400 and "Traceback" not in result.output


def test_a_key_given_twice_is_refused_naming_it_and_its_lines(tmp_path: Path):
    preset = tmp_path / "twice.yaml"
    preset.write_text("optim:\n  lr: 5.0e-4\ndata:\n  batch_size: 4\noptim:\n  lr: 1.0e-4\n")
    with pytest.raises(SettingsError, match=r"key 'optim' is given twice \(lines 1 and 5\); keep one"):
        resolve_settings(str(preset))


def test_a_preset_that_is_not_utf8_is_one_line(tmp_path: Path):
    preset = tmp_path / "latin.yaml"
    preset.write_bytes("optim:\n  lr: 1.0e-4  # r\xe9glage\n".encode("latin-1"))
    with pytest.raises(SettingsError, match=r"not UTF-8 text \(byte 0xe9 at offset 24\)"):
        resolve_settings(str(preset))


def test_set_values_are_read_the_same_way():
    assert parse_override("optim.lr=2.0e-4") == {"optim": {"lr": 2e-4}}
    assert parse_override("data.train=[a, b]") == {"data": {"train": ["a", "b"]}}
    assert parse_override("runtime.log_with=[unclosed") == {"runtime": {"log_with": "[unclosed"}}  # left as text
    with pytest.raises(SettingsError, match="key 'lr' is given twice"):
        parse_override("optim={lr: 1, lr: 2}")


def test_an_error_line_shows_a_long_value_cut_short():
    with pytest.raises(SettingsError) as caught:
        resolve_settings(None, {}, ["task=" + "x" * 5000])
    assert all(len(line) < 400 for line in caught.value.lines)


def test_no_is_a_word_and_booleans_still_read_yes_and_no(tmp_path: Path):
    """YAML 1.2 booleans: ``runtime.mixed_precision=no`` (which dckd's own messages advise) is the
    string, where YAML 1.1 read False and the setting refused it; a boolean setting still takes
    yes / no / on / off."""
    overrides = ["runtime.mixed_precision=no", "runtime.deterministic=yes", "runtime.keep_host_memory=off"]
    settings = resolve_settings("demo", {}, overrides)
    assert settings.runtime.mixed_precision == "no"
    assert settings.runtime.deterministic is True and settings.runtime.keep_host_memory is False
    preset = tmp_path / "p.yaml"
    preset.write_text("runtime:\n  mixed_precision: no\n  deterministic: on\n")
    from_file = resolve_settings(str(preset))
    assert from_file.runtime.mixed_precision == "no" and from_file.runtime.deterministic is True
    assert parse_override("runtime.tf32=false") == {"runtime": {"tf32": False}}
    from dckd_cli.pipelines.ablation_grid import parse_grid_option

    assert parse_grid_option("runtime.mixed_precision=no,bf16").values == ("no", "bf16")
    assert parse_grid_option("optim.lr=1e-3,2e-3").values == (0.001, 0.002)
