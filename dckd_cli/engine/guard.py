"""The collapse guard: a distillation whose validation PSNR sinks while its losses fall says so.

A student can collapse (in docs/results.md the packaged compact encoder drove every DCKD
student 6 dB below bicubic) while every loss term keeps falling. After each validation the
guard compares the PSNR with the run's best so far (a fall of ``guard.margin_db``) and, once
``guard.warmup`` of the run (and at least ``guard.min_iters`` iterations) is done, with the
task's reference row on the same validation images (bicubic for SR, the degraded input
otherwise), image by image: the median of the per-image differences, so that one image the
reference restores almost perfectly (a synthetic one at 57 dB) neither raises the alarm for a
student ahead on every other image nor hides a student that collapsed on all the rest. The
first time either is crossed it
returns one message — the largest loss term of the last log line and what to try — which the
trainer logs as a warning, or raises (``guard.action=stop``) once ``last`` is saved.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dckd_cli.errors import DckdError
from dckd_cli.settings.schema import RunSettings


class Collapsed(DckdError):
    """The collapse guard stopped the run (``guard.action=stop``)."""


@dataclass
class CollapseGuard:
    settings: RunSettings
    # the reference row's name and per-image PSNRs, in the validation set's order (computed once, when needed)
    reference: Callable[[], tuple[str, Sequence[float]]]
    best: tuple[float, int | None] | None = None  # the best validation PSNR and its iteration (None: unknown)
    warned: bool = False
    reference_row: tuple[str, Sequence[float]] | None = None  # ``reference()``, once computed

    def state_dict(self) -> dict[str, object]:
        """What a resumed run needs to go on guarding as the uninterrupted one would."""
        return {"best": None if self.best is None else list(self.best), "warned": self.warned}

    def load_state_dict(self, state: dict[str, object] | None, best_psnr: float | None) -> None:
        """``state`` from a checkpoint; a checkpoint from before the guard kept state (None)
        still gives the best PSNR, its iteration unknown."""
        if state is None:
            self.best = None if best_psnr is None else (best_psnr, None)
            return
        best = state["best"]
        self.best = None if best is None else (float(best[0]), int(best[1]))  # type: ignore[index]
        self.warned = bool(state["warned"])

    def check(self, iteration: int, psnr: float, terms: dict[str, float], images: Sequence[float]) -> str | None:
        """The warning for this validation, the first time the run looks collapsed (else None);
        ``psnr``: its mean, ``images``: its per-image PSNRs, in the reference row's order."""
        g = self.settings.guard
        best = self.best
        if best is None or psnr > best[0]:
            self.best = (psnr, iteration)
        if g.action == "off" or self.warned:
            return None
        why = None
        if best is not None and psnr < best[0] - g.margin_db:
            at = f"at iteration {best[1]}" if best[1] is not None else "before the run was resumed"
            why = f"fell {best[0] - psnr:.2f} dB from the run's best ({best[0]:.2f} dB {at})"
        elif iteration >= max(g.warmup * self.settings.optim.iters, g.min_iters):
            if self.reference_row is None:
                self.reference_row = self.reference()
            why = self._below_reference(psnr, images, g.margin_db)
        if why is None:
            return None
        self.warned = True
        return f"validation PSNR {psnr:.2f} dB at iteration {iteration} {why}: {self._advice(terms)}"

    def _below_reference(self, psnr: float, images: Sequence[float], margin: float) -> str | None:
        """Why the run is under the reference row by more than ``margin`` (else None)."""
        name, reference = self.reference_row  # type: ignore[misc]
        gaps = [0.0 if s == r else r - s for s, r in zip(images, reference, strict=True)]  # both lossless: 0
        gap = statistics.median(gaps)
        if gap <= margin:
            return None
        under = sum(g > margin for g in gaps)
        return (
            f"is {gap:.2f} dB below the {name} row on the median image ({under} of {len(gaps)} validation images "
            f"more than {margin:g} dB below it; means {psnr:.2f} against {statistics.mean(reference):.2f} dB)"
        )

    def _advice(self, terms: dict[str, float]) -> str:
        s = self.settings
        lr = f"lower optim.lr (now {s.optim.lr:g})"
        stop = "" if s.guard.action == "stop" else "; guard.action=stop stops a run here"
        if not terms:
            return f"{lr}{stop}"
        name, value = max(terms.items(), key=lambda item: abs(item[1]))
        head = f"the largest loss term is '{name}' ({value:.4g})"
        if name == "rec":
            return f"{head}; {lr}{stop}"
        weight = getattr(s.method.weights, name)
        tries = [f"lower method.weights.{name} (now {weight:g})"]
        if name in ("dcl", "ce"):
            tries.append("use another encoder (method.encoder.checkpoint: imagenet, or a pretrained tiny-autoencoder)")
        return f"{head}; {', '.join(tries)} or {lr}{stop}"
