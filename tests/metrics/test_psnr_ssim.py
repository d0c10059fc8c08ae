from __future__ import annotations

import math

import numpy as np
import pytest

from dckd_cli.metrics.psnr_ssim import psnr, rgb_to_y, ssim


def test_y_channel_of_pure_colours():
    img = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0]]], np.uint8)
    np.testing.assert_allclose(rgb_to_y(img)[0], [16.0, 235.0, 16 + 65.481, 16 + 128.553])


def test_psnr_from_a_known_mse():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    b[..., :] = 10  # grey +10 in RGB -> +10 * 219/255 in Y
    expected = 10 * math.log10(255**2 / (10 * 219 / 255) ** 2)
    assert psnr(b, a, "y") == pytest.approx(expected, abs=1e-9)
    assert psnr(b, a, "rgb") == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-9)
    assert psnr(a, a) == math.inf


def test_border_crop_ignores_the_frame():
    a = np.full((20, 20, 3), 100, np.uint8)
    b = a.copy()
    b[:2] = 0
    assert psnr(b, a, "y", crop=2) == math.inf and psnr(b, a, "y", crop=1) < 30


def test_ssim_identity_and_against_a_hand_computed_value(rng):
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    # Constant images: mu_x = 100, mu_y = 110 (in Y units), no variance:
    # SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1) with C1 = (0.01 * 255)^2.
    img_x = np.full((16, 16, 3), 0, np.uint8)
    y_x, y_y = rgb_to_y(img_x)[0, 0], rgb_to_y(img_x + 12)[0, 0]
    c1 = (0.01 * 255) ** 2
    expected = (2 * y_x * y_y + c1) / (y_x**2 + y_y**2 + c1)
    assert ssim(img_x + 12, img_x) == pytest.approx(expected, rel=1e-9)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape mismatch"):
        psnr(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))
