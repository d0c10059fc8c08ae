"""Preset lookup, ``--set key.sub=value`` overrides, and one validation with readable errors.

Merge order: preset file, then typed command-line flags, then ``--set`` overrides; the merged
dict is validated once, before any model is built.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from dckd_cli.catalog.tasks import TASKS
from dckd_cli.errors import DckdError
from dckd_cli.settings.migrate import MOVED, migrate
from dckd_cli.settings.schema import RunSettings
from dckd_cli.settings.strict_yaml import StrictYamlError, load_yaml

_PACKAGE = Path(__file__).resolve().parent.parent
# Installed wheels carry the presets inside the package; a source checkout keeps them at the top.
DEMO_PRESET = "demo"
PRESET_DIR = next((d for d in (_PACKAGE / "presets", _PACKAGE.parent / "presets") if d.is_dir()), _PACKAGE / "presets")


class SettingsError(DckdError):
    """Invalid settings; ``lines`` holds one readable line per problem."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name_or_path: str) -> dict[str, Any]:
    """Read a preset by name (``sr-swinir-x4``) or by path to a YAML file."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = PRESET_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise SettingsError(
            [f"preset '{name_or_path}': no such preset or YAML file; choose from {', '.join(available_presets())}"]
        )
    try:
        data = load_yaml(path.read_bytes()) or {}
    except StrictYamlError as err:
        raise SettingsError([f"preset {path}: {err}"]) from None
    if not isinstance(data, dict):
        raise SettingsError([f"preset {path}: expected a mapping of settings at the top level"])
    return data


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_override(text: str) -> dict[str, Any]:
    """``"optim.lr=2e-4"`` to ``{"optim": {"lr": 0.0002}}``; the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise SettingsError([f"--set '{text}': expected key.sub=value, e.g. --set optim.lr=2e-4"])
    try:
        value = load_yaml(raw) if raw.strip() else None
    except StrictYamlError as err:
        if "not valid YAML" not in str(err):
            raise SettingsError([f"--set {key.strip()}: {err}"]) from None
        value = raw
    return _nest(key.strip(), value)


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Valid keys of the section that ``loc`` points into (for unknown-key errors)."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def _short(value: Any, limit: int = 120) -> str:
    """``repr(value)``, cut to ``limit`` characters: an error line stays one line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_errors(err: ValidationError) -> list[str]:
    lines = []
    for item in err.errors():
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        where = ".".join(str(p) for p in loc) or "settings"
        if item["type"] == "extra_forbidden" and loc and loc[0] == "dckd":
            unknown = ", ".join(f"dckd.{k}" for k in item["input"]) if isinstance(item["input"], dict) else "dckd"
            lines.append(
                f"{unknown}: unknown setting; the dckd section moved to {', '.join(sorted(set(MOVED.values())))}"
            )
        elif item["type"] == "extra_forbidden":
            valid = _fields_at(RunSettings, loc)
            lines.append(f"{where}: unknown setting; valid keys here: {', '.join(valid)}")
        else:
            message = item["msg"].removeprefix("Value error, ")
            got = item.get("input")
            shown = "" if isinstance(got, dict) or item["type"] == "value_error" else f" (got {_short(got)})"
            lines.append(f"{where}: {message}{shown}")
    return lines


def resolve_settings(
    preset: str | None = None,
    flags: Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
    base: Mapping[str, Any] | None = None,
) -> RunSettings:
    """Merge preset (or, without one, ``base``), typed flags (dotted keys, ``None`` = not given)
    and overrides; validate once."""
    # Each source is migrated on its own, so a moved key never overrides a later source's new key.
    layers = [migrate(_nest(k, v)) for k, v in (flags or {}).items() if v is not None]
    layers += [migrate(parse_override(text)) for text in overrides]
    merged: dict[str, Any] = migrate(load_preset(preset)) if preset else copy.deepcopy(dict(base or {}))
    if preset == DEMO_PRESET:  # the demo composes with --task: the task's own demo sizes and scale
        task = next((layer["task"] for layer in reversed(layers) if "task" in layer), merged.get("task", "sr"))
        for dotted, value in TASKS[task].demo.items() if task in TASKS else ():
            merged = deep_merge(merged, _nest(dotted, value))
    merged = _without_superseded_sizes(merged, layers)
    for layer in layers:
        merged = deep_merge(merged, layer)
    try:
        return RunSettings.model_validate(merged)
    except ValidationError as err:
        raise SettingsError(format_errors(err)) from None


def _without_superseded_sizes(preset: dict[str, Any], layers: list[dict[str, Any]]) -> dict[str, Any]:
    """A progressive schedule given on the command line replaces the preset's patch and batch
    sizes (its first stage gives them); sizes the user gives beside it can still conflict."""
    given = any(isinstance(layer.get("data"), Mapping) and layer["data"].get("progressive") for layer in layers)
    if not given or not isinstance(preset.get("data"), Mapping):
        return preset
    data = {k: v for k, v in preset["data"].items() if k not in ("patch_size", "batch_size")}
    return {**preset, "data": data}


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    cursor = nested
    parts = dotted.split(".")
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = value
    return nested


def settings_yaml(settings: RunSettings) -> str:
    return yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False)
