"""``dckd``: L_rec + L_kd + lambda_dcl L_dcl + lambda_ce L_ce (Eq. 10).

L_dcl (Eq. 5): anchor = student output, positive = teacher output, negatives = the
history model's restorations of degraded copies of the LQ input (one batched, no-grad
forward). L_ce (Eq. 9): codebook distributions of the teacher's and the student's
restorations. The encoder is frozen; only the anchor path carries gradients. Switches
``dckd.dcr`` / ``dckd.dmm`` and zero weights turn parts off without another code path.
"""

from __future__ import annotations

import torch
from torch import nn

from dckd_cli.losses.contrastive import contrastive_loss
from dckd_cli.losses.distribution import distribution_loss
from dckd_cli.methods.history_model import HistoryModel
from dckd_cli.methods.logits import LogitsMethod
from dckd_cli.methods.negatives import negative_inputs
from dckd_cli.methods.upper_bound import WithLabelConsistency
from dckd_cli.models.vqgan import resolve_encoder
from dckd_cli.settings.schema import RunSettings


class DckdMethod(LogitsMethod):
    needs_teacher = True

    def __init__(self, settings: RunSettings, student: nn.Module, teacher: nn.Module | None):
        super().__init__(settings, student, teacher)
        cfg = self.cfg = settings.dckd
        self.use_dcl = cfg.dcr and self.weights.dcl > 0
        self.use_ce = cfg.dmm and self.weights.ce > 0
        self.encoder = resolve_encoder(cfg.encoder.checkpoint, cfg.encoder.input_range)
        if max(cfg.encoder.layers) >= self.encoder.levels:
            raise ValueError(f"dckd.encoder.layers: this encoder has levels 0..{self.encoder.levels - 1}")
        self.levels = tuple(cfg.encoder.layers) if self.use_dcl else ()
        self.history = HistoryModel(student, cfg.history, settings.optim.iters) if self.use_dcl else None
        self.generator = torch.Generator().manual_seed(settings.runtime.seed + 1)

    def negatives(self, lq: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        """``(K, N, C, H', W')`` restorations of K degraded inputs, in one batched no-grad pass."""
        assert self.history is not None
        inputs = negative_inputs(lq, self.cfg.negatives, self.generator)
        out = self.history(inputs.flatten(0, 1))
        return out.view(inputs.shape[0], lq.shape[0], *out.shape[1:])

    def encoder_terms(
        self, lq: torch.Tensor, student_out: torch.Tensor, positive: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        if not (self.use_dcl or self.use_ce):
            return terms
        anchor, z_student = self.encoder(student_out, self.levels, latents=self.use_ce)
        with torch.no_grad():
            targets = [positive]
            if self.use_dcl:
                negatives = self.negatives(lq, positive)
                targets.append(negatives.flatten(0, 1))
            feats, z_teacher = self.encoder(torch.cat(targets), self.levels, latents=self.use_ce)
        n = positive.shape[0]
        if self.use_dcl:
            k = negatives.shape[0]
            pos = [f[:n] for f in feats]
            neg = [f[n:].view(k, n, *f.shape[1:]) for f in feats]
            loss = contrastive_loss(anchor, pos, neg, self.cfg.encoder.layer_weights, self.cfg.eps)
            terms["dcl"] = self.weights.dcl * loss
        if self.use_ce:
            assert z_student is not None and z_teacher is not None
            dist = self.cfg.distribution
            loss = distribution_loss(z_student, z_teacher[:n], self.encoder.codebook, dist.sign, dist.temperature)
            terms["ce"] = self.weights.ce * loss
        return terms

    def loss_terms(self, lq: torch.Tensor, gt: torch.Tensor, student_out: torch.Tensor) -> dict[str, torch.Tensor]:
        teacher_out = self.teacher_forward(lq)
        return self.logit_terms(gt, student_out, teacher_out) | self.encoder_terms(lq, student_out, teacher_out)

    def to(self, device: torch.device) -> None:
        self.encoder.to(device)
        if self.history is not None:
            self.history.model.to(device)

    def after_step(self, iteration: int, ema_student: nn.Module) -> None:
        if self.history is not None:
            source = ema_student if self.cfg.history.source == "ema" else self.student
            self.history.maybe_update(iteration, source)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {"generator": self.generator.get_state()}
        if self.history is not None:
            state |= {f"history.{k}": v for k, v in self.history.model.state_dict().items()}
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])
        if self.history is not None:
            self.history.model.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("history.")})


class DckdStarMethod(WithLabelConsistency, DckdMethod):
    """``dckd-star`` (DCKD*): DCKD plus the DUKD-style label-consistency upper bound (L_lcr)."""


class CsdMethod(DckdMethod):
    """``csd``: the same contrastive loss with fixed in-batch negatives (CSD-style).

    Negatives of sample i are the teacher's restorations of the other images in the batch
    (shifts 1..K, K = min(dckd.negatives.count, N - 1)); no history model, no DMM.
    """

    def __init__(self, settings: RunSettings, student: nn.Module, teacher: nn.Module | None):
        settings = settings.model_copy(deep=True)
        settings.dckd.dmm = False
        super().__init__(settings, student, teacher)
        self.history = None

    def negatives(self, lq: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        n = lq.shape[0]
        shifts = range(1, min(self.cfg.negatives.count, n - 1) + 1)
        if not shifts:
            raise ValueError("csd needs a batch of at least 2 images for in-batch negatives")
        return torch.stack([positive.roll(s, dims=0) for s in shifts])
