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


def _check(path: Path) -> str | None:
    try:
        read_image(path)  # a full decode (OpenCV releases the GIL: threads run in parallel)
    except ImageError as err:
        return str(err)
    return None


def find_bad_images(paths: list[Path], workers: int | None = None) -> dict[Path, str]:
    """``{path: reason}`` for the files that do not decode; good files are remembered."""
    store = cache_dir() / CACHE_FILE
    try:
        known = set(json.loads(store.read_text())) if store.is_file() else set()
    except (OSError, ValueError):
        known = set()  # an unreadable cache only costs a full check
    keys = {p: _key(p) for p in paths}
    todo = [p for p in paths if keys[p] not in known]
    if not todo:
        return {}
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        reasons = dict(zip(todo, pool.map(_check, todo)))
    bad = {p: r for p, r in reasons.items() if r is not None}
    fresh = {keys[p] for p in todo if p not in bad}
    try:
        with atomic_path(store) as tmp:
            tmp.write_text(json.dumps(sorted(known | fresh)))
    except OSError:
        pass  # a read-only cache: the check is just not remembered
    return bad
