"""The methods by name (a plain dict) and the one place that builds them."""

from __future__ import annotations

from torch import nn

from dckd_cli.methods.base import Method
from dckd_cli.methods.dckd import CsdMethod, DckdMethod, DckdStarMethod
from dckd_cli.methods.fakd import FakdMethod
from dckd_cli.methods.logits import LogitsMethod
from dckd_cli.methods.scratch import ScratchMethod
from dckd_cli.methods.upper_bound import DukdMethod
from dckd_cli.settings.schema import RunSettings

METHODS: dict[str, type[Method]] = {
    "scratch": ScratchMethod,
    "logits": LogitsMethod,
    "fakd": FakdMethod,
    "csd": CsdMethod,
    "dukd": DukdMethod,
    "dckd": DckdMethod,
    "dckd-star": DckdStarMethod,
}


class MethodNotAvailable(ValueError):
    """A method that the settings accept but this version cannot run yet."""


def method_class(name: str) -> type[Method]:
    if name not in METHODS:
        raise MethodNotAvailable(f"method '{name}' is not available yet; choose from {', '.join(METHODS)}")
    return METHODS[name]


def build_method(settings: RunSettings, student: nn.Module, teacher: nn.Module | None) -> Method:
    return method_class(settings.method.name)(settings, student, teacher)
