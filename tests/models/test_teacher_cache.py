from __future__ import annotations

from pathlib import Path

import torch

from dckd_cli.models.teacher_cache import CachedTeacher
from dckd_cli.models.zoo import build_model


class Counting(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(x)


def _teacher(seed: int) -> Counting:
    torch.manual_seed(seed)
    return Counting(build_model("rcan", "tiny", 2)).eval().requires_grad_(False)


def test_a_hit_returns_the_computed_output_bitwise_without_running_the_teacher(tmp_path: Path):
    teacher = _teacher(0)
    x = torch.rand(2, 3, 10, 10)
    first = CachedTeacher(teacher, tmp_path)(x)
    again = CachedTeacher(teacher, tmp_path)  # a new run, same folder
    second = again(x.clone())
    assert teacher.calls == 1 and again.hits == 1 and again.misses == 0
    assert torch.equal(first, second)
    assert torch.equal(second, teacher.inner(x))


def test_another_input_or_another_teacher_is_a_miss(tmp_path: Path):
    x = torch.rand(2, 3, 10, 10)
    cached = CachedTeacher(_teacher(0), tmp_path)
    cached(x)
    y = x.clone()
    y[0, 0, 0, 0] += 1e-6  # one value changed by a hair
    cached(y)
    assert cached.misses == 2 and cached.hits == 0
    other = CachedTeacher(_teacher(1), tmp_path)
    out = other(x)
    assert other.misses == 1 and other.folder != cached.folder
    assert torch.equal(out, other.teacher.inner(x))
    assert len(list(tmp_path.rglob("*.safetensors"))) == 3
    assert not cached.training


def test_fingerprint_covers_scalar_buffers(tmp_path: Path):
    teacher = _teacher(0)
    teacher.register_buffer("steps", torch.tensor(3))
    before = CachedTeacher(teacher, tmp_path).folder
    teacher.steps += 1
    assert CachedTeacher(teacher, tmp_path).folder != before


def test_an_output_computed_under_autocast_is_kept_apart(tmp_path: Path):
    teacher = _teacher(0)
    x = torch.rand(2, 3, 10, 10)
    cached = CachedTeacher(teacher, tmp_path)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = cached(x)
    full = cached(x)  # float32 after a bfloat16 entry: a miss, the float32 output
    assert cached.misses == 2 and cached.hits == 0
    assert torch.equal(full, teacher.inner(x))
    assert float((low.float() - full).abs().max()) > 0  # the bfloat16 output really differs
    with torch.autocast("cpu", dtype=torch.bfloat16):
        again = cached(x)
    assert cached.hits == 1 and torch.equal(again, low)
