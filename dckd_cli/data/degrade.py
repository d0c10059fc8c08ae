"""Seeded synthetic degradations: the built-in stand-ins for deblurring and deraining.

These make the offline demo and the tests realistic enough to train on; they are stand-ins,
never benchmark numbers (GoPro / HIDE / the rain sets are real data with their own layouts).

* Motion blur (path 3-13 px: GoPro's typical smear, learnable by a CPU-sized demo model):
  the camera path is a random walk with inertia (a velocity that turns a little
  at each step, plus jitter), rasterised with sub-pixel weights into a kernel, then optionally
  softened by a small Gaussian (defocus). Path length and curvature vary per kernel, so the
  kernels range from short straight smears to long curved ones, as in GoPro's averaged frames.
* Rain: one to three layers of streaks; each layer has its own angle (with small per-streak
  jitter), length, width, density and brightness; streaks are drawn anti-aliased, smeared
  along their direction and added to the image (the additive model of Rain100L/H).

Every function takes a ``numpy.random.Generator``: the same seed gives the same degradation.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class MotionBlur:
    size: int = 25  # kernel side (odd); the path is scaled to fit it
    length: tuple[float, float] = (3.0, 13.0)  # path length in pixels
    curvature: tuple[float, float] = (0.0, 0.35)  # max turn per step, in radians
    jitter: float = 0.15  # random shake added to each step (pixels)
    defocus: tuple[float, float] = (0.0, 0.6)  # sigma of an extra Gaussian (0: none)


@dataclass(frozen=True)
class Rain:
    layers: tuple[int, int] = (1, 3)
    density: tuple[float, float] = (0.0008, 0.004)  # streaks per pixel, per layer
    length: tuple[float, float] = (8.0, 40.0)
    width: tuple[int, int] = (1, 2)
    angle: tuple[float, float] = (-30.0, 30.0)  # degrees from vertical
    brightness: tuple[float, float] = (0.25, 0.8)


def motion_kernel(rng: np.random.Generator, spec: MotionBlur = MotionBlur()) -> np.ndarray:
    """A normalised (size, size) float32 blur kernel from a random camera path."""
    steps = 64
    length = rng.uniform(*spec.length)
    turn = rng.uniform(*spec.curvature)
    heading = rng.uniform(0.0, 2 * np.pi)
    pos = np.zeros((steps, 2))
    for i in range(1, steps):
        heading += rng.uniform(-turn, turn)
        step = np.array([np.cos(heading), np.sin(heading)]) * length / steps
        pos[i] = pos[i - 1] + step + rng.normal(0.0, spec.jitter * length / steps / 2, 2)
    pos -= (pos.max(0) + pos.min(0)) / 2  # centre the path
    extent = np.abs(pos).max()
    limit = (spec.size - 3) / 2
    if extent > limit:
        pos *= limit / extent
    kernel = np.zeros((spec.size, spec.size), np.float64)
    centre = spec.size // 2
    for x, y in pos + centre:  # bilinear splat: sub-pixel positions spread over 4 pixels
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        kernel[y0, x0] += (1 - fx) * (1 - fy)
        kernel[y0, x0 + 1] += fx * (1 - fy)
        kernel[y0 + 1, x0] += (1 - fx) * fy
        kernel[y0 + 1, x0 + 1] += fx * fy
    sigma = rng.uniform(*spec.defocus)
    if sigma > 0.3:
        kernel = cv2.GaussianBlur(kernel, (0, 0), sigma)
    return (kernel / kernel.sum()).astype(np.float32)


def blur(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve a uint8 RGB image with ``kernel`` (reflected borders); uint8 out."""
    out = cv2.filter2D(img.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT)
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def motion_blur(img: np.ndarray, rng: np.random.Generator, spec: MotionBlur = MotionBlur()) -> np.ndarray:
    return blur(img, motion_kernel(rng, spec))


def rain_layer(shape: tuple[int, int], rng: np.random.Generator, spec: Rain = Rain()) -> np.ndarray:
    """One layer of streaks, float32 in [0, 1] of ``shape`` (H, W)."""
    h, w = shape
    angle = np.deg2rad(rng.uniform(*spec.angle))
    length = rng.uniform(*spec.length)
    width = int(rng.integers(spec.width[0], spec.width[1] + 1))
    count = int(rng.uniform(*spec.density) * h * w)
    layer = np.zeros((h, w), np.float32)
    for _ in range(count):
        a = angle + rng.normal(0.0, 0.03)
        n = length * rng.uniform(0.6, 1.0)
        x, y = rng.uniform(-n, w), rng.uniform(-n, h)
        end = (x + n * np.sin(a), y + n * np.cos(a))
        p0 = (int(round(x * 16)), int(round(y * 16)))
        p1 = (int(round(end[0] * 16)), int(round(end[1] * 16)))
        cv2.line(layer, p0, p1, float(rng.uniform(0.6, 1.0)), width, cv2.LINE_AA, shift=4)
    # smear along the fall direction: streaks are motion-blurred drops, not hard lines
    k = max(3, int(length / 4) | 1)
    smear = np.zeros((k, k), np.float32)
    c = k // 2
    dx, dy = np.sin(angle) * c, np.cos(angle) * c
    cv2.line(smear, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1)
    layer = cv2.filter2D(layer, -1, smear / smear.sum(), borderType=cv2.BORDER_REFLECT)
    return layer * rng.uniform(*spec.brightness) / max(float(layer.max()), 1e-6)


def add_rain(img: np.ndarray, rng: np.random.Generator, spec: Rain = Rain()) -> np.ndarray:
    """``img`` (uint8 RGB) with ``spec.layers`` layers of streaks added; uint8 out."""
    rain = np.zeros(img.shape[:2], np.float32)
    for _ in range(int(rng.integers(spec.layers[0], spec.layers[1] + 1))):
        rain += rain_layer(img.shape[:2], rng, spec)
    out = img.astype(np.float32) / 255.0 + rain[:, :, None]
    return np.clip(np.floor(out * 255.0 + 0.5), 0, 255).astype(np.uint8)
