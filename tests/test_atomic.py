from __future__ import annotations

import re
from pathlib import Path

import pytest

from dckd_cli.atomic import atomic_path


def test_replaces_only_on_success(tmp_path: Path):
    target = tmp_path / "sub" / "out.json"
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o644
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_a_full_disk_names_the_file_and_the_free_space(tmp_path: Path):
    import errno

    target = tmp_path / "scores.json"
    with pytest.raises(OSError) as caught:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device")  # as write() raises it: no file name
    err = caught.value
    assert err.errno == errno.ENOSPC and err.filename == str(target)
    assert re.fullmatch(r"no space left on the disk, [\d.]+ [KMGT]?B free", err.strerror), err.strerror
    assert list(tmp_path.iterdir()) == []  # nothing half-written left
