"""Reading and writing 8-bit RGB images, with one-line errors that name the file."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np

from dckd_cli.atomic import atomic_path
from dckd_cli.errors import DckdError
from dckd_cli.limits import max_pixels

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")


class ImageError(DckdError):
    """An image file that cannot be used."""


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    if not folder.is_dir():
        raise ImageError(f"{folder}: not a folder of images")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def to_rgb(img: np.ndarray, source: str = "image") -> np.ndarray:
    """Any uint8 grey / RGB / RGBA array to ``(H, W, 3)`` uint8 RGB (grey is replicated)."""
    if img.dtype != np.uint8:
        raise ImageError(f"{source}: expected 8-bit pixels, got {img.dtype}")
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim == 3 and img.shape[2] == 4:
        return np.ascontiguousarray(img[:, :, :3])
    if img.ndim == 3 and img.shape[2] == 3:
        return img
    raise ImageError(f"{source}: unsupported image shape {img.shape}")


def image_size(path: Path) -> tuple[int, int] | None:
    """(height, width) from a PNG or JPEG header, without decoding; None for other formats."""
    with open(path, "rb") as handle:
        head = handle.read(32)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
            return height, width
        if head[:2] != b"\xff\xd8":
            return None
        handle.seek(2)
        while marker := handle.read(2):
            if len(marker) < 2 or marker[0] != 0xFF:
                return None
            length = struct.unpack(">H", handle.read(2))[0]
            if marker[1] in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                height, width = struct.unpack(">xHH", handle.read(5))
                return height, width
            handle.seek(length - 2, os.SEEK_CUR)
    return None


def declared_too_large(path: Path) -> str | None:
    """Why ``path`` is refused before it is decoded, when its header declares more than
    ``max_pixels()`` pixels (a small file can declare 30000²); else None."""
    size = image_size(Path(path)) if Path(path).is_file() else None
    if size is None or size[0] * size[1] <= max_pixels():
        return None
    return f"{path}: declares {size[1]}x{size[0]} pixels, more than the limit {max_pixels()} (set DCKD_MAX_PIXELS)"


def read_image(path: Path) -> np.ndarray:
    """Read ``path`` as ``(H, W, 3)`` uint8 RGB; an image declaring too many pixels is refused
    from its header (``declared_too_large``)."""
    reason = declared_too_large(path)
    if reason is not None:
        raise ImageError(f"{reason}; restore a large image with --tile")
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data is not None and data.size else None
    if img is None:
        raise ImageError(f"{path}: cannot be read as an image (missing, empty or corrupt)")
    if img.dtype == np.uint16:
        raise ImageError(f"{path}: 16-bit images are not supported; convert it to 8-bit")
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return to_rgb(img, str(path))


def write_image(path: Path, img: np.ndarray) -> None:
    """Write ``(H, W, 3)`` uint8 RGB atomically (temporary file, then rename)."""
    path = Path(path)
    ok, encoded = cv2.imencode(path.suffix or ".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ImageError(f"{path}: cannot encode an image with this suffix")
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded.tobytes())


def uint8_to_tensor_array(img: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 to ``(3, H, W)`` float32 in [0, 1]."""
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32) / 255.0


def tensor_array_to_uint8(arr: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` float in [0, 1] to ``(H, W, 3)`` uint8, clamped and rounded."""
    # Round half away from zero, as MATLAB's im2uint8 does.
    return np.clip(np.floor(arr.transpose(1, 2, 0).astype(np.float64) * 255.0 + 0.5), 0, 255).astype(np.uint8)
