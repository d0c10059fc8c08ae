"""MATLAB-compatible bicubic resizing (``imresize(img, scale, 'bicubic')``).

The SR literature makes its low-resolution inputs, and its bicubic baseline rows, with
MATLAB's ``imresize``: a cubic kernel (a = -0.5) that is widened by ``1/scale`` when
shrinking (antialiasing), symmetric padding at the borders, height resized before width,
and, for ``uint8`` images, each pass rounded back to ``uint8``. This module reproduces that
path in float64 so that LR images made on the fly equal the official ``LR_bicubic`` files.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import sparse


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=64)
def resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool = True) -> sparse.csr_matrix:
    """Sparse ``(out_len, in_len)`` matrix ``W`` so that ``W @ x`` resizes a 1-D signal.

    Mirrors MATLAB's ``contributions``: output pixel ``i`` (1-based) sits at input
    coordinate ``u = i / scale + 0.5 * (1 - 1 / scale)``; taps outside the signal are
    folded back symmetrically (``[1..n, n..1]``).
    """
    kernel_width = 4.0
    if scale < 1 and antialias:
        kernel_width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = int(np.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based input indices
    dist = u[:, None] - idx
    if scale < 1 and antialias:
        weights = scale * _cubic(dist * scale)
    else:
        weights = _cubic(dist)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    cols = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    # Duplicate (row, col) entries from mirrored taps are summed by the COO -> CSR conversion.
    rows = np.repeat(np.arange(out_len), taps)
    return sparse.coo_matrix((weights.ravel(), (rows, cols.ravel())), shape=(out_len, in_len)).tocsr()


def _to_uint8(x: np.ndarray) -> np.ndarray:
    # MATLAB rounds half away from zero and saturates when casting to uint8.
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def imresize(img: np.ndarray, scale: float, out_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Resize an ``(H, W)`` or ``(H, W, C)`` image like MATLAB's bicubic ``imresize``.

    ``uint8`` input gives ``uint8`` output, rounded after each pass as MATLAB does;
    float input stays float64 with no rounding or clipping.
    """
    if img.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {img.shape}")
    h, w = img.shape[:2]
    if out_shape is None:
        out_shape = (int(np.ceil(h * scale)), int(np.ceil(w * scale)))
    is_uint8 = img.dtype == np.uint8
    out = img.astype(np.float64)
    # Height first, then width (MATLAB's order when both scales are equal).
    for axis, (n_in, n_out) in enumerate(zip((h, w), out_shape)):
        moved = np.moveaxis(out, axis, 0)
        flat = resize_matrix(n_in, n_out, float(scale)) @ moved.reshape(n_in, -1)
        out = np.moveaxis(np.asarray(flat).reshape((n_out, *moved.shape[1:])), 0, axis)
        if is_uint8:
            out = _to_uint8(out).astype(np.float64)
    return out.astype(np.uint8) if is_uint8 else out


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so height and width are multiples of ``scale``."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def bicubic_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """The standard SR degradation: ``imresize(modcrop(hr, s), 1/s, 'bicubic')``."""
    hr = mod_crop(hr, scale)
    h, w = hr.shape[:2]
    return imresize(hr, 1.0 / scale, (h // scale, w // scale))


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB bicubic upscaling by an integer factor (the "Bicubic" baseline)."""
    h, w = lr.shape[:2]
    return imresize(lr, float(scale), (h * scale, w * scale))
