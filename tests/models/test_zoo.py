from __future__ import annotations

import pytest
import torch

from dckd_cli.catalog.architectures import ARCHITECTURES
from dckd_cli.models.families import FamilyError
from dckd_cli.models.zoo import ZooError, build_model, count_parameters

# The paper's teacher / student sizes (METHOD.md), in millions of parameters.
PAPER_SIZES = {
    ("swinir", 4): (11.9, 1.2),
    ("rcan", 4): (15.6, 5.2),
    ("nafnet", 1): (17.1, 2.7),
    ("restormer", 1): (26.1, 3.8),
}


@pytest.mark.parametrize("arch,scale", list(PAPER_SIZES))
def test_paper_parameter_counts_within_5_percent(arch, scale):
    teacher, student = PAPER_SIZES[(arch, scale)]
    assert ARCHITECTURES[arch].params == {"teacher": f"{teacher}M", "student": f"{student}M"}  # the table states them
    t = count_parameters(build_model(arch, "teacher", scale)) / 1e6
    s = count_parameters(build_model(arch, "student", scale)) / 1e6
    assert abs(t - teacher) / teacher < 0.05, t
    assert abs(s - student) / student < 0.05, s


@pytest.mark.parametrize(
    "arch,size,scale,side",
    [
        ("swinir", "tiny", 2, 12),
        ("swinir", "tiny", 3, 9),
        ("rcan", "tiny", 4, 10),
        ("rcan", "small", 2, 8),
        ("nafnet", "tiny", 1, 16),
        ("restormer", "tiny", 1, 16),
        ("bicubic", "tiny", 4, 6),
    ],
)
def test_each_architecture_runs_a_tiny_input(arch, size, scale, side):
    model = build_model(arch, size, scale).eval()
    x = torch.rand(2, 3, side, side)
    before = x.clone()
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 3, side * scale, side * scale)
    assert torch.isfinite(y).all()
    assert torch.equal(x, before)  # no model may change its input in place (spandrel's RCAN does)


def test_student_gradients_flow():
    model = build_model("rcan", "tiny", 2)
    model(torch.rand(1, 3, 8, 8)).abs().mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_bad_combinations_name_the_choices():
    with pytest.raises(FamilyError, match=r"unknown architecture 'edsr': use swinir, rcan, .*, a spandrel family"):
        build_model("edsr", "teacher", 4)  # not in the table, not a spandrel family
    with pytest.raises(ZooError, match="teacher, student"):
        build_model("rcan", "huge", 4)
    with pytest.raises(ZooError, match="scale 1"):
        build_model("nafnet", "tiny", 4)
