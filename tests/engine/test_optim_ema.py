from __future__ import annotations

import torch
from torch import nn

from dckd_cli.engine.ema import ModelEMA
from dckd_cli.engine.optim import build_optimizer, build_scheduler
from dckd_cli.settings.schema import OptimSettings


def _lrs(cfg: OptimSettings, steps: list[int]) -> list[float]:
    opt = build_optimizer(nn.Linear(2, 2), cfg)
    sched = build_scheduler(opt, cfg)
    out, done = [], 0
    for s in steps:
        while done < s:
            opt.step()
            sched.step()
            done += 1
        out.append(sched.get_last_lr()[0])
    return out


def test_multistep_decays_at_milestones():
    cfg = OptimSettings(lr=1e-4, scheduler="multistep", milestones=[3, 6], gamma=0.1, iters=10)
    assert _lrs(cfg, [2, 3, 5, 6]) == [1e-4, 1e-5, 1e-5, 1e-6] or all(
        abs(a - b) < 1e-12 for a, b in zip(_lrs(cfg, [2, 3, 5, 6]), [1e-4, 1e-5, 1e-5, 1e-6])
    )


def test_cosine_reaches_eta_min():
    cfg = OptimSettings(lr=1e-3, scheduler="cosine", eta_min=1e-7, iters=10, optimizer="adamw", weight_decay=1e-3)
    half, end = _lrs(cfg, [5, 10])
    assert abs(half - (1e-7 + (1e-3 - 1e-7) / 2)) < 1e-12 and abs(end - 1e-7) < 1e-15


def test_ema_follows_the_formula():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = ModelEMA(model, decay=0.9, warmup=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)
    ema.update(model)
    assert abs(ema.model.weight.item() - (1 - 0.9**2)) < 1e-7  # 0 -> 0.1 -> 0.19
    warm = ModelEMA(model, decay=0.999, warmup=True)
    assert abs(warm.current_decay() - 0.1) < 1e-12  # (1 + 0) / (10 + 0)
