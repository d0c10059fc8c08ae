"""Features taken through forward hooks on module paths named in settings.

Architecture files are never edited: a path such as ``body.9`` or ``conv_after_body`` is
resolved with ``get_submodule`` when the method is built, and a wrong path fails then,
naming the valid top-level paths.
"""

from __future__ import annotations

import torch
from torch import nn

from dckd_cli.errors import DckdError
from dckd_cli.models.families import dummy_side


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


@torch.no_grad()
def derived_taps(model: nn.Module, needs: tuple[int, int] = (1, 0)) -> list[str]:
    """FAKD's default layer for a network the catalog does not know: the last top-level module,
    in the order they run, whose output keeps the input's height and width with more than 3
    channels, other than what a PixelShuffle upsampler takes in (the deepest body features before
    reconstruction or upsampling); when no top-level
    module does (a body held in a ModuleList), the last such module at any depth. Found by one
    forward pass on a small input; ``needs``: the input multiple and minimum side."""
    side = dummy_side(*needs)
    seen: list[tuple[str, object]] = []
    shuffled: set[int] = set()  # tensors an upsampler's PixelShuffle rearranged: not body features

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple, out: object) -> None:
            seen.append((name, out))
            if isinstance(module, nn.PixelShuffle):
                shuffled.add(id(inputs[0]))

        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in model.named_modules() if name]
    was_training = model.training
    try:
        model.eval()
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        model(torch.rand(1, 3, side, side, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()

    def body_features(out: object) -> bool:
        if not (isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[-2:] == (side, side)):
            return False
        return out.shape[1] > 3 and id(out) not in shuffled

    fits = [name for name, out in seen if body_features(out)]
    top = [name for name in fits if "." not in name]
    return (top or fits)[-1:]
