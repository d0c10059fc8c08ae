from __future__ import annotations

import numpy as np
import torch

from dckd_cli.data.images import tensor_array_to_uint8, uint8_to_tensor_array
from dckd_cli.data.resize import bicubic_upscale
from dckd_cli.models.bicubic import BicubicUpsampler


def test_torch_module_equals_matlab_uint8_path(rng):
    for scale in (2, 3, 4):
        lr = rng.integers(0, 256, (11, 7, 3), dtype=np.uint8)
        out = BicubicUpsampler(scale)(torch.from_numpy(uint8_to_tensor_array(lr))[None])[0].numpy()
        assert np.array_equal(tensor_array_to_uint8(out), bicubic_upscale(lr, scale))


def test_has_no_parameters():
    assert not list(BicubicUpsampler(4).parameters())
