"""Writing files so that a reader never sees half of one: a temporary file, then a rename."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; these are ordinary, shareable files
        os.replace(tmp, path)
    except OSError as err:
        raise write_error(path, err) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def check_writable(path: Path) -> None:
    """Refuse, before any work, an output whose folder cannot be made or written."""
    from dckd_cli.errors import DckdError

    folder = Path(path).absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise DckdError(f"{path}: {folder} is a file, not a folder; choose another output")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DckdError(f"{path}: {folder} is not writable; choose another output")


def free_space(path: Path) -> str:
    """The free space on the disk that holds ``path`` (or its nearest existing parent), e.g. "1.2 GB"."""
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "unknown"
    for unit in ("B", "KB", "MB", "GB"):
        if free < 1000:
            return f"{free:.0f} {unit}"
        free /= 1000
    return f"{free:.1f} TB"


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def write_error(path: Path, err: BaseException) -> OSError:
    """An ``OSError`` that names ``path`` (and, for a full disk, the free space there), from any
    failed write: an ``OSError`` without a file name, or a library's error text."""
    code = getattr(err, "errno", None)
    text = str(err)
    if code is None and ("os error 28" in text or "No space left" in text or "file write failed" in text):
        code = errno.ENOSPC
    if code in DISK_FULL:
        return OSError(code, f"no space left on the disk, {free_space(path)} free", str(path))
    if isinstance(err, OSError) and err.filename:
        return err
    return OSError(code or errno.EIO, getattr(err, "strerror", None) or text.splitlines()[0][:200], str(path))
