"""Every training image is decoded once before a run touches its folder, in parallel, and the
result is remembered by path, size and modification time, so a large set is checked in full
the first time and in a moment afterwards."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dckd_cli.atomic import atomic_path
from dckd_cli.cache import cache_dir
from dckd_cli.data.images import ImageError, read_image

CACHE_FILE = "verified-images.json"


def _key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _check(path: Path) -> tuple[int, int] | str:
    """The image's (height, width), or why it does not decode."""
    try:
        return read_image(path).shape[:2]  # a full decode (OpenCV releases the GIL: threads run in parallel)
    except ImageError as err:
        return str(err)


def check_images(paths: list[Path], workers: int | None = None) -> tuple[dict[Path, tuple[int, int]], dict[Path, str]]:
    """``(sizes, bad)``: (height, width) of every file that decodes, and why each other one does
    not. Good files are remembered with their size."""
    store = cache_dir() / CACHE_FILE
    try:
        known: dict[str, list[int]] = json.loads(store.read_text()) if store.is_file() else {}
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}  # an unreadable cache only costs a full check
    keys = {p: _key(p) for p in paths}
    sizes = {p: (int(known[k][0]), int(known[k][1])) for p, k in keys.items() if k in known}
    todo = [p for p in paths if p not in sizes]
    bad: dict[Path, str] = {}
    if todo:
        with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
            for path, result in zip(todo, pool.map(_check, todo)):
                if isinstance(result, str):
                    bad[path] = result
                else:
                    sizes[path] = result
                    known[keys[path]] = list(result)
        try:
            with atomic_path(store) as tmp:
                tmp.write_text(json.dumps(known))
        except OSError:
            pass  # a read-only cache: the check is just not remembered
    return sizes, bad
