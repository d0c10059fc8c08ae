"""PSNR and SSIM exactly as the restoration literature reports them.

Convention (the MATLAB scripts behind the published SR and deraining tables):
  * the restored image is clamped to [0, 1] and rounded to 8 bits first;
  * ``channel="y"``: BT.601 luma of MATLAB's ``rgb2ycbcr`` on uint8 RGB,
    ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` computed from the 8-bit RGB
    values and kept in floating point (``rgb2ycbcr(im2double(img))`` of the EDSR / RCAN /
    SwinIR scripts; re-rounding Y to uint8 lowers Set5 x2 bicubic by 0.03 dB and misses
    the published rows); ``channel="rgb"`` (deblurring) uses the three colour channels;
  * ``crop`` pixels are removed at each border (the scale, for SR);
  * PSNR with peak 255; SSIM with an 11x11 Gaussian window (sigma 1.5), K1 0.01,
    K2 0.03, averaged over the valid region (and over channels for RGB).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from skimage.metrics import structural_similarity

Channel = Literal["y", "rgb"]

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB to the BT.601 Y channel in [16, 235], float64 ``(H, W)``."""
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {img.dtype} {img.shape}")
    return 16.0 + img.astype(np.float64) @ _Y_WEIGHTS


def _prepare(img: np.ndarray, channel: Channel, crop: int) -> np.ndarray:
    plane = rgb_to_y(img) if channel == "y" else img.astype(np.float64)
    if crop > 0:
        plane = plane[crop:-crop, crop:-crop]
    return plane


def _check_pair(restored: np.ndarray, reference: np.ndarray) -> None:
    if restored.shape != reference.shape:
        raise ValueError(f"shape mismatch: restored {restored.shape} vs reference {reference.shape}")


def psnr(restored: np.ndarray, reference: np.ndarray, channel: Channel = "y", crop: int = 0) -> float:
    """PSNR in dB between two uint8 RGB images ``(H, W, 3)``."""
    _check_pair(restored, reference)
    a, b = _prepare(restored, channel, crop), _prepare(reference, channel, crop)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def ssim(restored: np.ndarray, reference: np.ndarray, channel: Channel = "y", crop: int = 0) -> float:
    """SSIM (Wang et al. 2004, Gaussian 11x11, sigma 1.5) between uint8 RGB images."""
    _check_pair(restored, reference)
    a, b = _prepare(restored, channel, crop), _prepare(reference, channel, crop)
    return float(
        structural_similarity(
            a,
            b,
            data_range=255.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=None if channel == "y" else 2,
        )
    )
