"""The encoder's passes run in float32 whatever the step's precision (``method.encoder.autocast``
off), because bfloat16 features lose the difference between a student near its teacher and the
teacher; with the switch on they follow the step's low precision, as before."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dckd_cli.engine import switches
from dckd_cli.engine.build import build_run
from dckd_cli.engine.step import Stepper
from dckd_cli.losses.contrastive import contrastive_loss
from dckd_cli.methods.build import RELEASED_LAYER_WEIGHTS
from dckd_cli.models.vqgan import COMPACT_ENCODER, load_encoder


def _encoder_dtypes(settings) -> list[torch.dtype]:  # noqa: ANN001
    """The output dtype of the encoder's first convolution in each of its passes in one step."""
    run = build_run(settings)
    network = run.method.resources.encoder.network
    first = next(m for m in network.modules() if isinstance(m, nn.Conv2d))
    seen: list[torch.dtype] = []
    first.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    stepper = Stepper(run)
    g = torch.Generator().manual_seed(5)
    lq, gt = (torch.rand(2, 3, s, s, generator=g) for s in (16, 32))
    terms, loss = stepper.forward(lq, gt)
    assert torch.isfinite(loss) and float(terms["dcl"].detach()) > 0
    loss.backward()  # the anchor's gradient flows through the float32 pass
    assert sum(float(p.grad.abs().sum()) for p in run.student.parameters() if p.grad is not None) > 0
    return seen


@pytest.mark.parametrize("precision", ["runtime.frozen_bf16=true", "runtime.mixed_precision=bf16"])
def test_the_encoder_stays_float32_under_bfloat16_unless_asked(dckd_settings, monkeypatch, precision):
    monkeypatch.setattr(switches, "cpu_has_bf16", lambda: True)  # the numbers, on any CPU
    default = _encoder_dtypes(dckd_settings("dckd", overrides=(precision,)))
    assert default == [torch.float32] * 3  # anchor, positive, negatives
    followed = _encoder_dtypes(dckd_settings("dckd", overrides=(precision, "method.encoder.autocast=true")))
    anchor = torch.bfloat16 if "mixed" in precision else torch.float32  # frozen_bf16 leaves the anchor alone
    assert followed == [anchor, torch.bfloat16, torch.bfloat16]


def test_bfloat16_features_lose_a_near_students_difference_to_its_teacher():
    """Why the default: a student 0.005 (rms) from its teacher, the packaged encoder's dcl."""
    encoder = load_encoder(COMPACT_ENCODER)
    levels = tuple(range(encoder.levels))
    weights = list(RELEASED_LAYER_WEIGHTS[-len(levels) :])
    g = torch.Generator().manual_seed(0)
    teacher = torch.rand(2, 3, 64, 64, generator=g)
    negatives = (teacher + 0.05 * torch.randn(4, 2, 3, 64, 64, generator=g)).clamp(0, 1)
    student = (teacher + 0.005 * torch.randn(teacher.shape, generator=g)).clamp(0, 1)

    def dcl(dtype: torch.dtype | None) -> tuple[float, torch.Tensor]:
        x = student.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            with torch.no_grad():
                pos, _ = encoder(teacher, levels)
                neg, _ = encoder(negatives.flatten(0, 1), levels)
            anchor, _ = encoder(x, levels)
        neg = [f.float().view(4, 2, *f.shape[1:]) for f in neg]
        loss = contrastive_loss([f.float() for f in anchor], [f.float() for f in pos], neg, weights)
        loss.backward()
        return float(loss.detach()), x.grad

    full, full_grad = dcl(None)
    low, low_grad = dcl(torch.bfloat16)
    cosine = float(nn.functional.cosine_similarity(full_grad.flatten(), low_grad.flatten(), dim=0))
    assert abs(low / full - 1) > 0.05  # the loss moves by more than 5 %
    assert cosine < 0.95  # and its gradient turns


def test_frozen_bf16_warns_where_dcl_compares_history_outputs(dckd_settings, caplog):
    import logging

    from dckd_cli.methods.build import build_method
    from dckd_cli.models.zoo import build_model

    for method, frozen, expected in (("dckd", "true", 1), ("dckd", "false", 0), ("logits", "true", 0)):
        settings = dckd_settings(method, overrides=(f"runtime.frozen_bf16={frozen}",))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="dckd_cli.methods.build"):
            build_method(settings, build_model("rcan", "tiny", 2), build_model("rcan", "tiny", 2))
        warned = [r.getMessage() for r in caplog.records if "runtime.frozen_bf16 with dcl" in r.getMessage()]
        assert len(warned) == expected, (method, frozen, warned)
