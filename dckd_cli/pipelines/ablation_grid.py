"""An ablation grid as data: named axes (shortcuts for settings keys), ``--grid`` axes on
any key, seeds and a baseline, expanded into cells before anything runs.

A cell is one ordinary run: the base settings plus the cell's changes and seed. Its name
says what it changes (``degradation=blur,lambda-dcl=1``), so a grown grid finds its old
cells by name and runs only the new ones.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from dckd_cli.errors import DckdError
from dckd_cli.settings.strict_yaml import yaml12_booleans


class GridError(DckdError):
    """An axis or value that cannot make a grid."""


def _init_step(value: Any) -> dict[str, Any]:
    # Fig. 8's "initial update step": the first phase's interval; later phases keep the
    # released 1 : 2 : 3 shape.
    step = int(value)
    return {"method.dcl.history.steps": [step, 2 * step, 3 * step]}


COMPONENTS: dict[str, dict[str, Any]] = {
    # Table 5: which of DCKD's two components are on (a zero weight removes a term).
    "none": {"method.weights.dcl": 0.0, "method.weights.ce": 0.0},
    "dcr": {"method.weights.ce": 0.0},
    "dmm": {"method.weights.dcl": 0.0},
    "dcr+dmm": {},
}


@dataclass(frozen=True)
class Shortcut:
    help: str
    key: str | None = None  # a single settings key, or
    expand: Any = None  # a function value -> {key: value}
    choices: tuple[str, ...] = ()


SHORTCUTS: dict[str, Shortcut] = {
    "degradation": Shortcut("negatives' degradation (Table 6)", key="method.dcl.negatives.degradation"),
    "lambda-dcl": Shortcut("weight of L_dcl (Table 7)", key="method.weights.dcl"),
    "lambda-ce": Shortcut("weight of L_ce (Table 7)", key="method.weights.ce"),
    "negatives": Shortcut("number of negatives (Fig. 8)", key="method.dcl.negatives.count"),
    "init-step": Shortcut("history model's initial update step, phases s, 2s, 3s (Fig. 8)", expand=_init_step),
    "components": Shortcut(
        "DCKD components on (Table 5)", expand=lambda v: dict(COMPONENTS[v]), choices=tuple(COMPONENTS)
    ),
}


@dataclass(frozen=True)
class Axis:
    name: str  # a shortcut name or a settings key
    values: tuple[Any, ...]

    def changes(self, value: Any) -> dict[str, Any]:
        shortcut = SHORTCUTS.get(self.name)
        if shortcut is None:
            return {self.name: value}
        if shortcut.key is not None:
            return {shortcut.key: value}
        return shortcut.expand(value)


@dataclass(frozen=True)
class Cell:
    label: str  # what it changes, e.g. "degradation=blur" or "baseline-logits"
    changes: dict[str, Any] = field(default_factory=dict)  # dotted key -> value
    point: dict[str, Any] = field(default_factory=dict)  # axis name -> value (empty for the baseline)
    baseline: bool = False
    seeds: tuple[int, ...] | None = None  # None: every seed of the ablation

    @property
    def folder_name(self) -> str:
        return re.sub(r"[^A-Za-z0-9=,.+_-]", "_", self.label)


def split_values(text: str) -> list[str]:
    """``"0.01,0.1,[1,2]"`` -> ``["0.01", "0.1", "[1,2]"]``: commas inside brackets stay."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-3`` as a string and ``no`` as a boolean; axis values are read the YAML
    1.2 way, as a number and a string."""


yaml12_booleans(_Loader)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_value(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        return text


def parse_axis(name: str, values: str) -> Axis:
    """One axis from ``--NAME v1,v2`` or ``--grid key=v1,v2``; values are read as YAML."""
    parsed = tuple(parse_value(v) for v in split_values(values))
    if not parsed:
        raise GridError(f"axis '{name}': no values; give them comma-separated, e.g. {name}=a,b")
    if len(set(map(str, parsed))) != len(parsed):
        raise GridError(f"axis '{name}': a value is repeated ({values})")
    shortcut = SHORTCUTS.get(name)
    if shortcut and shortcut.choices:
        bad = [v for v in parsed if v not in shortcut.choices]
        if bad:
            raise GridError(f"--{name} {bad[0]!r}: choose from {', '.join(shortcut.choices)}")
    return Axis(name, parsed)


def parse_grid_option(text: str) -> Axis:
    key, sep, values = text.partition("=")
    if not sep or not key.strip():
        raise GridError(f"--grid '{text}': expected key=v1,v2, e.g. --grid optim.lr=1e-4,2e-4")
    return parse_axis(key.strip(), values)


def show_value(value: Any) -> str:
    """A value as one flow-style YAML line: how it appears in a cell's name and in ``--set``."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def expand(axes: list[Axis], baseline: str | None) -> list[Cell]:
    """Every combination of the axes' values (the method under study), then the baseline."""
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        raise GridError(f"an axis is given twice: {', '.join(names)}")
    cells = []
    for combo in itertools.product(*(a.values for a in axes)):
        changes: dict[str, Any] = {}
        for axis, value in zip(axes, combo):
            changes |= axis.changes(value)
        label = ",".join(f"{a.name}={show_value(v)}" for a, v in zip(axes, combo)) or "default"
        cells.append(Cell(label, changes, dict(zip(names, combo))))
    if baseline is not None:
        cells.append(Cell(f"baseline-{baseline}", {"method.name": baseline}, {}, baseline=True))
    return cells
