from __future__ import annotations

import numpy as np
import pytest

from dckd_cli.data.images import read_image
from dckd_cli.data.resize import _cubic, bicubic_downscale, bicubic_upscale, imresize, mod_crop, resize_matrix


def test_cubic_kernel_values():
    # Keys kernel, a = -0.5: 1 at 0, 0 at integers, -0.0625 at 1.5, 0.5625 at 0.5.
    np.testing.assert_allclose(_cubic(np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])), [1, 0.5625, 0, -0.0625, 0, 0])


def test_rows_sum_to_one_and_constant_images_stay_constant():
    for n_in, n_out, s in [(12, 6, 0.5), (12, 4, 1 / 3), (5, 20, 4.0)]:
        m = resize_matrix(n_in, n_out, s).toarray()
        np.testing.assert_allclose(m.sum(axis=1), 1.0)
    flat = np.full((30, 20, 3), 77, np.uint8)
    assert (bicubic_downscale(flat, 3) == 77).all() and (bicubic_upscale(flat, 2) == 77).all()


def test_upscale_keeps_pixel_grid_for_integer_scales():
    # MATLAB upscaling by 2 puts output samples at offsets +-0.25 around each input pixel;
    # by symmetry the mean of each 2x2 output block of a linear ramp equals the input pixel.
    ramp = np.tile(np.arange(10, dtype=np.float64) * 10, (10, 1))
    up = imresize(ramp, 2.0, (20, 20))
    np.testing.assert_allclose(up.reshape(20, 10, 2).mean(axis=2)[:, 2:-2], ramp.repeat(2, axis=0)[:, 2:-2], atol=1e-9)


def test_downscale_is_antialiased():
    # A checkerboard at the Nyquist rate must average to grey, not alias to black/white.
    board = (np.indices((64, 64)).sum(axis=0) % 2 * 255).astype(np.uint8)
    small = bicubic_downscale(board, 4)
    assert abs(float(small[4:-4, 4:-4].mean()) - 127.5) < 1.0 and small[4:-4, 4:-4].std() < 1.0


def test_mod_crop():
    assert mod_crop(np.zeros((103, 98, 3)), 4).shape == (100, 96, 3)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_equals_official_lr_files(shared_data, scale):
    """Made on the fly, LR equals the official MATLAB LR_bicubic files pixel for pixel."""
    for bench in ("Set5", "Set14"):
        for hr_path in sorted((shared_data / bench / "HR").glob("*.png")):
            official = read_image(shared_data / bench / "LR_bicubic" / f"X{scale}" / f"{hr_path.stem}x{scale}.png")
            assert np.array_equal(bicubic_downscale(read_image(hr_path), scale), official), hr_path.name
