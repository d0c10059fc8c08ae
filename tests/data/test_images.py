from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dckd_cli.data.images import ImageError, read_image, tensor_array_to_uint8, uint8_to_tensor_array, write_image


def test_round_trip_and_channel_order(tmp_path: Path, rng):
    img = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
    write_image(tmp_path / "a.png", img)
    assert np.array_equal(read_image(tmp_path / "a.png"), img)
    # On disk the file is BGR, as every other tool expects.
    assert np.array_equal(cv2.imread(str(tmp_path / "a.png"))[:, :, ::-1], img)
    assert not list(tmp_path.glob(".tmp-*"))


def test_grey_and_alpha_become_rgb(tmp_path: Path):
    cv2.imwrite(str(tmp_path / "g.png"), np.full((4, 5), 9, np.uint8))
    cv2.imwrite(str(tmp_path / "a.png"), np.full((4, 5, 4), 200, np.uint8))
    assert read_image(tmp_path / "g.png").shape == (4, 5, 3) and (read_image(tmp_path / "g.png") == 9).all()
    assert read_image(tmp_path / "a.png").shape == (4, 5, 3)


def test_unreadable_file_names_the_file(tmp_path: Path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ImageError, match="broken.png"):
        read_image(bad)
    with pytest.raises(ImageError, match="missing.png"):
        read_image(tmp_path / "missing.png")


def test_float_conversion_rounds_half_away_from_zero():
    arr = np.array([[[0.5 / 255, 1.5 / 255, -0.1, 1.2]]], np.float64)
    assert tensor_array_to_uint8(arr).ravel().tolist() == [1, 2, 0, 255]
    img = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    assert np.array_equal(tensor_array_to_uint8(uint8_to_tensor_array(img)), img)
