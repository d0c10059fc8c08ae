"""Prepared training sets: decoded once per machine, the same samples bit for bit, safe to
kill and to share between processes."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data as skdata

from dckd_cli.cache import cache_dir
from dckd_cli.data import prepared
from dckd_cli.data.folders import DatasetError
from dckd_cli.data.images import list_images, read_image, write_image
from dckd_cli.data.pairs import TrainingPatches, training_loaders
from dckd_cli.data.resize import bicubic_downscale, mod_crop
from dckd_cli.limits import LimitError


def _photos(folder: Path, count: int = 4, side: int = 90) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    image = skdata.astronaut()
    for i in range(count):
        write_image(folder / f"img{i}.png", np.ascontiguousarray(image[i * 30 : i * 30 + side, 7 : 7 + side + i]))
    return folder


class _InProcess:
    """The loader before preparation: decode and downscale in the worker, per image."""

    def __init__(self, path: Path, scale: int):
        self.path, self.scale = path, scale

    def __call__(self) -> tuple[np.ndarray, np.ndarray]:
        gt = mod_crop(read_image(self.path), self.scale)
        return bicubic_downscale(gt, self.scale), gt


def test_samples_equal_the_in_process_loader_bit_for_bit(tmp_path: Path):
    folder = _photos(tmp_path / "set", 5)
    old = [_InProcess(p, 3) for p in list_images(folder)]
    new = training_loaders([str(folder)], "sr", 3, None)
    a = TrainingPatches(old, scale=3, patch=16, length=40, seed=7)
    b = TrainingPatches(new, scale=3, patch=16, length=40, seed=7)
    for i in range(40):
        (la, ga), (lb, gb) = a[i], b[i]
        assert torch.equal(la, lb) and torch.equal(ga, gb), i
    assert isinstance(new[0], prepared.PreparedPair)  # read from the mapped file, not decoded


def test_a_set_is_decoded_once_and_prepared_again_when_a_file_changes(tmp_path: Path, monkeypatch):
    folder = _photos(tmp_path / "set", 3)
    training_loaders([str(folder)], "sr", 2, None)
    decoded = []
    real = prepared.read_image
    monkeypatch.setattr(prepared, "read_image", lambda p: decoded.append(p) or real(p))
    training_loaders([str(folder)], "sr", 2, None)
    assert decoded == []  # the second use maps the prepared file
    write_image(folder / "img1.png", np.zeros((50, 40, 3), np.uint8))  # edited: another key
    (lq, gt) = training_loaders([str(folder)], "sr", 2, None)[1]()
    assert len(decoded) == 3 and gt.shape == (50, 40, 3) and lq.shape == (25, 20, 3)
    assert len(list((cache_dir() / "prepared").glob("*set-sr-x2-*/index.json"))) == 2
    training_loaders([str(folder)], "sr", 4, None)  # another scale: another preparation
    assert len(list((cache_dir() / "prepared").glob("*/index.json"))) == 3


def test_a_bad_file_is_named_before_anything_is_kept_or_left_out(tmp_path: Path):
    folder = _photos(tmp_path / "set", 4)
    (folder / "img2.png").write_bytes((folder / "img2.png").read_bytes()[:300])  # truncated
    with pytest.raises(DatasetError, match=r"img2\.png.*data\.skip_bad_images=true"):
        training_loaders([str(folder)], "sr", 2, None)
    assert list((cache_dir() / "prepared").glob("*/index.json")) == []  # nothing that looks valid
    assert list((cache_dir() / "prepared").glob("*.partial-*")) == []
    kept = training_loaders([str(folder)], "sr", 2, None, skip_bad=True)
    assert len(kept) == 3


def test_paired_sets_keep_their_inputs_and_refuse_mismatched_sizes(tmp_path: Path):
    image = skdata.astronaut()
    for i in range(3):
        write_image(tmp_path / "p" / "input" / f"{i}.png", np.ascontiguousarray(image[:40, i : i + 40]))
        write_image(tmp_path / "p" / "target" / f"{i}.png", np.ascontiguousarray(image[40:80, i : i + 40]))
    loaders = training_loaders([str(tmp_path / "p")], "derain", 1, None)
    lq, gt = loaders[2]()
    assert np.array_equal(lq, image[:40, 2:42]) and np.array_equal(gt, image[40:80, 2:42])
    write_image(tmp_path / "p" / "target" / "1.png", np.ascontiguousarray(image[:40, :36]))
    with pytest.raises(DatasetError, match=r"1\.png: input 40x40 differs from its target 36x40"):
        training_loaders([str(tmp_path / "p")], "derain", 1, None)


def test_a_killed_preparation_leaves_nothing_valid_and_the_next_use_starts_again(tmp_path: Path, monkeypatch):
    folder = _photos(tmp_path / "set", 3)
    calls = []

    def dies(source, scale):  # noqa: ANN001
        calls.append(source)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill would stop it, mid-way
        return real(source, scale)

    real = prepared._load_pair
    monkeypatch.setattr(prepared, "_load_pair", dies)
    with pytest.raises(KeyboardInterrupt):
        training_loaders([str(folder)], "sr", 2, None)
    assert list((cache_dir() / "prepared").glob("*/index.json")) == []
    monkeypatch.setattr(prepared, "_load_pair", real)  # (undo() would also drop the test's own cache)
    # a partial folder a killed process left behind (no cleanup ran) is removed by the next use
    (lock,) = (cache_dir() / "prepared").glob("*.lock")
    stale = lock.with_name(lock.name.removesuffix(".lock") + ".partial-99999")
    (stale / "pairs.u8").parent.mkdir(parents=True)
    (stale / "pairs.u8").write_bytes(b"half")
    loaders = training_loaders([str(folder)], "sr", 2, None)
    (final,) = (cache_dir() / "prepared").glob("*/index.json")
    assert len(json.loads(final.read_text())["pairs"]) == 3 and len(loaders) == 3 and not stale.exists()


def _prepare_in_child(folder: str, cache: str, out: str) -> None:
    os.environ["DCKD_CACHE"] = cache
    decoded = []
    real = prepared.read_image
    prepared.read_image = lambda p: decoded.append(p) or real(p)
    training_loaders([folder], "sr", 2, None)
    Path(out).write_text(str(len(decoded)))


def test_processes_preparing_one_set_at_once_prepare_it_once(tmp_path: Path):
    folder = _photos(tmp_path / "set", 6, side=200)
    cache = os.environ["DCKD_CACHE"]
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_prepare_in_child, args=(str(folder), cache, str(tmp_path / f"n{i}"))) for i in range(3)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
    counts = sorted(int((tmp_path / f"n{i}").read_text()) for i in range(3))
    assert counts == [0, 0, 6]  # one decoded every image, the others waited and mapped its file


def test_free_space_is_checked_first(tmp_path: Path, monkeypatch):
    folder = _photos(tmp_path / "set", 2)
    monkeypatch.setattr(prepared.shutil, "disk_usage", lambda path: type("U", (), {"free": 10_000})())
    with pytest.raises(DatasetError, match=r"needs .* GiB .* free; free space there or set DCKD_CACHE"):
        training_loaders([str(folder)], "sr", 2, None)


def test_image_sizes_from_headers(tmp_path: Path):
    import cv2

    img = np.zeros((37, 53, 3), np.uint8)
    write_image(tmp_path / "a.png", img)
    cv2.imwrite(str(tmp_path / "b.jpg"), img)
    (tmp_path / "c.bmp").write_bytes(b"BM" + b"\x00" * 60)
    assert prepared.image_size(tmp_path / "a.png") == (37, 53)
    assert prepared.image_size(tmp_path / "b.jpg") == (37, 53)
    assert prepared.image_size(tmp_path / "c.bmp") is None


def _bomb(path: Path, side: int = 30000) -> Path:
    """A small PNG whose header declares ``side`` x ``side`` pixels (its data is cut short)."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + b"\x00" * 64)
    return path


def test_an_image_declaring_too_many_pixels_is_refused_from_its_header(tmp_path: Path, monkeypatch):
    from dckd_cli.data.benchmarks import check_benchmark, load_benchmark

    folder = _photos(tmp_path / "set", 3)
    _bomb(folder / "huge.png")
    with pytest.raises(DatasetError, match=r"huge\.png: declares 30000x30000 pixels, more than the limit"):
        training_loaders([str(folder)], "sr", 2, None)
    assert len(training_loaders([str(folder)], "sr", 2, None, skip_bad=True)) == 3
    with pytest.raises(DatasetError, match=r"huge\.png: declares"):  # the prepared set remembers what it left out
        training_loaders([str(folder)], "sr", 2, None)
    with pytest.raises(Exception, match=r"huge\.png: declares 30000x30000 pixels"):
        read_image(folder / "huge.png")
    with pytest.raises(Exception, match=r"huge\.png: declares 30000x30000"):
        check_benchmark(load_benchmark(str(folder), "sr", 2, None), 2)
    monkeypatch.setenv("DCKD_MAX_PIXELS", str(40000**2))  # allowed: then it fails as the corrupt file it is
    with pytest.raises(Exception, match=r"huge\.png: cannot be read"):
        read_image(folder / "huge.png")
    monkeypatch.setenv("DCKD_MAX_PIXELS", "16k")
    with pytest.raises(LimitError, match=r"^DCKD_MAX_PIXELS='16k': not a positive whole number of pixels"):
        read_image(folder / "huge.png")


def test_a_training_image_smaller_than_the_patch_is_named_by_its_file(tmp_path: Path, caplog):
    folder = _photos(tmp_path / "set", 2)
    write_image(folder / "small.png", np.zeros((20, 20, 3), np.uint8))
    data = TrainingPatches(training_loaders([str(folder)], "sr", 2, None), scale=2, patch=24, length=30, seed=0)
    with caplog.at_level("WARNING"):
        for i in range(30):
            data[i]
    assert f"{folder / 'small.png'} (10x10 LQ) is smaller than patch 24; skipped" in caplog.text
