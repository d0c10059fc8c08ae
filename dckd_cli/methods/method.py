"""A built method: its weighted terms over the run's resources, and the engine contract.

``loss_terms(lq, gt, student_out)`` returns ``{name: weight * term}`` for every declared term
with a non-zero weight, evaluated over one ``StepContext``; ``after_step`` refreshes slow
state (the history model); ``state_dict`` carries what a resume needs (generators, history).
``methods/build.py`` makes one from settings.
"""

from __future__ import annotations

import torch
from torch import nn

from dckd_cli.methods.context import StepContext
from dckd_cli.methods.negatives import HistoryNegatives
from dckd_cli.methods.resources import Resources
from dckd_cli.methods.terms import TERMS
from dckd_cli.settings.method import MethodSettings


class Method:
    def __init__(self, settings: MethodSettings, weights: dict[str, float], resources: Resources, student: nn.Module):
        self.settings, self.weights, self.resources, self.student = settings, weights, resources, student
        self.iteration = 0  # iterations done (the engine sets it on resume, after_step after each step)

    @property
    def name(self) -> str:
        return self.settings.name

    def loss_terms(self, lq: torch.Tensor, gt: torch.Tensor, student_out: torch.Tensor) -> dict[str, torch.Tensor]:
        ctx = StepContext(self.resources, self.settings, lq, gt, student_out)
        return {
            name: weight * TERMS[name].compute(ctx)
            if TERMS[name].active(self.settings, self.iteration)
            else student_out.new_zeros(())
            for name, weight in self.weights.items()
        }

    def to(self, device: torch.device) -> None:
        """Move the method's own networks (encoder, history model) to ``device``."""
        for network in self.resources.networks():
            network.to(device)

    def after_step(self, iteration: int, ema_student: nn.Module) -> None:
        self.iteration = iteration
        history = self.resources.history
        if history is not None:
            source = ema_student if self.settings.dcl.history.source == "ema" else self.student
            history.maybe_update(iteration, source)

    def state_dict(self) -> dict[str, torch.Tensor]:
        r = self.resources
        state: dict[str, torch.Tensor] = {}
        if isinstance(r.negatives, HistoryNegatives):
            state["generator"] = r.negatives.generator.get_state()
        if r.history is not None:
            state |= {f"history.{k}": v for k, v in r.history.model.state_dict().items()}
        if r.consistency is not None:
            state["lcr_generator"] = r.consistency.generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        r = self.resources
        if isinstance(r.negatives, HistoryNegatives):
            r.negatives.generator.set_state(state["generator"])
        if r.history is not None:
            r.history.model.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("history.")})
        if r.consistency is not None:
            r.consistency.generator.set_state(state["lcr_generator"])
