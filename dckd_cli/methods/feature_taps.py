"""Features taken through forward hooks on module paths named in settings.

Architecture files are never edited: a path such as ``body.9`` or ``conv_after_body`` is
resolved with ``get_submodule`` when the method is built, and a wrong path fails then,
naming the valid top-level paths.
"""

from __future__ import annotations

import torch
from torch import nn

from dckd_cli.errors import DckdError


class TapError(DckdError):
    """A layer path that does not exist in the model."""


class FeatureTaps:
    """Keeps the latest output of each named submodule of ``model``."""

    def __init__(self, model: nn.Module, paths: list[str], role: str):
        self.paths = paths
        self.features: dict[str, torch.Tensor] = {}
        for path in paths:
            try:
                module = model.get_submodule(path)
            except AttributeError:
                top = ", ".join(name for name, _ in model.named_children())
                raise TapError(f"{role} has no layer '{path}'; top-level layers: {top}") from None
            module.register_forward_hook(self._hook(path))

    def _hook(self, path: str):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            self.features[path] = output

        return hook

    def collect(self) -> list[torch.Tensor]:
        """The tapped features of the last forward pass, in path order."""
        missing = [p for p in self.paths if p not in self.features]
        if missing:
            raise TapError(f"layer '{missing[0]}' did not run in the last forward pass")
        out = [self.features[p] for p in self.paths]
        self.features.clear()
        return out
