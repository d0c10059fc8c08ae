"""The one place that builds a method from its name (declarations: ``catalog/methods.py``)."""

from __future__ import annotations

from torch import nn

from dckd_cli.catalog.methods import METHODS, MethodSpec
from dckd_cli.errors import DckdError
from dckd_cli.methods.method import Method
from dckd_cli.settings.schema import RunSettings


def method_spec(name: str) -> MethodSpec:
    if name not in METHODS:
        raise DckdError(f"method '{name}' is unknown; choose from {', '.join(METHODS)}")
    return METHODS[name]


def build_method(settings: RunSettings, student: nn.Module, teacher: nn.Module | None) -> Method:
    name = settings.method.name
    return Method(name, method_spec(name), settings, student, teacher)
