"""Does an artefact compute what the PyTorch student computes?

Three inputs: a random batch of two, and a real image (the first built-in evaluation image's
degraded input, for the student's task) cropped at two sizes, one of them odd. Both sides
run through the same padding to the architecture's multiple. The result is the largest
absolute difference of any output value (images in [0, 1]).
"""

from __future__ import annotations

import torch
from torch import nn

from dckd_cli.deploy.formats import Runner
from dckd_cli.deploy.student_file import StudentInfo
from dckd_cli.metrics.inference import forward_padded

FP32_BOUND = 1e-4
FP16_BOUND = 1 / 255  # under one 8-bit grey level: what an image written to disk can show


def parity_inputs(info: StudentInfo) -> list[tuple[str, torch.Tensor]]:
    from dckd_cli.data.benchmarks import load_benchmark
    from dckd_cli.data.images import uint8_to_tensor_array

    g = torch.Generator().manual_seed(0)
    lq, _ = load_benchmark("builtin", info.task, max(info.scale, 1), None).pairs[0].load()
    image = torch.from_numpy(uint8_to_tensor_array(lq))[None]
    return [
        ("random 2x3x32x32", torch.rand(2, 3, 32, 32, generator=g)),
        ("image 48x40", image[..., :48, :40].contiguous()),
        ("image 37x29", image[..., 5:42, 3:32].contiguous()),
    ]


def max_abs_error(reference: nn.Module, runner: Runner, info: StudentInfo) -> tuple[float, str]:
    """The worst difference over the parity inputs, and the input it occurred on."""
    worst, where = 0.0, ""
    with torch.no_grad():
        for name, x in parity_inputs(info):
            expected = forward_padded(reference, x, info.scale, info.multiple)
            got = forward_padded(runner, x, info.scale, info.multiple)  # type: ignore[arg-type]
            if got.shape != expected.shape:
                return float("inf"), f"{name} (output shape {tuple(got.shape)}, expected {tuple(expected.shape)})"
            error = float((got.float() - expected).abs().max())
            if error > worst or not where:
                worst, where = error, name
    return worst, where
