"""Folders dckd writes: which ones it made (so ``--force`` replaces nothing else), whether an
output would swallow an input, and the lock that keeps two commands off one folder."""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path

from dckd_cli.errors import DckdError

# A file in a folder that only dckd writes there: a run, an ablation, an export.
MARKERS = {"settings.yaml": "run", "ablation.json": "ablation", "model.json": "export"}


class FolderInUse(DckdError):
    """Another dckd command works in this folder now."""


def made_by_dckd(folder: Path) -> str | None:
    """What dckd made ``folder`` as (``run``, ``ablation``, ``export``), or None."""
    for marker, kind in MARKERS.items():
        if (Path(folder) / marker).is_file():
            return kind
    return None


def refuse_foreign(folder: Path, flag: str = "--force") -> None:
    """``flag`` replaces only a folder dckd made; anything else (a user's files) is refused."""
    folder = Path(folder)
    if folder.is_dir() and any(folder.iterdir()) and made_by_dckd(folder) is None:
        raise DckdError(
            f"{folder} holds files dckd did not make (no {', '.join(MARKERS)}); {flag} replaces only a dckd "
            "run, ablation or export folder: choose another --output, or move those files yourself"
        )


def refuse_overlap(output: Path, sources: dict[str, Path | None], roots: dict[str, Path | None] | None = None) -> None:
    """An output equal to, inside or containing an input would overwrite it: refused. A data
    root (``roots``) may hold outputs; it may not be one, or sit inside one."""
    out = Path(output).expanduser().resolve()
    checks = [(name, source, True) for name, source in sources.items()]
    checks += [(name, source, False) for name, source in (roots or {}).items()]
    for name, source, inside_too in checks:
        if source is None:
            continue
        src = Path(source).expanduser().resolve()
        if out == src or out in src.parents or (inside_too and src in out.parents):
            raise DckdError(f"--output {output} overlaps {name} {source}; write the output somewhere else")


def _lock_path(folder: Path) -> Path:
    """Beside the folder, so a ``--force`` that moves the folder keeps the lock."""
    folder = Path(folder).absolute()
    return folder.parent / f".{folder.name}.dckd-lock"


class FolderLock:
    """An exclusive lock on ``folder`` for the life of a command (``with FolderLock(f): ...``).

    An OS file lock: released by the kernel when its process ends however it ends, so a
    killed run leaves no stale lock (only its file, which the next holder takes over). The
    lock file names the holder for the message and is removed on release. Only one process of
    a distributed run takes it (global rank 0). On a network file system where file locks do
    not reach other hosts, two machines are not kept apart.
    """

    def __init__(self, folder: Path, command: str = "dckd"):
        self.folder, self.command = Path(folder), command
        self.handle = None

    def __enter__(self) -> FolderLock:
        if int(os.environ.get("RANK", "0")) != 0:
            return self
        path = _lock_path(self.folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            handle = open(path, "a+")  # noqa: SIM115 - held open while locked
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = _holder(handle.read())
                handle.close()
                who = f"process {holder.get('pid', '?')} on {holder.get('host', '?')}"
                what = f" ({holder['command']})" if holder.get("command") else ""
                raise FolderInUse(
                    f"{self.folder} is in use by {who}{what}; wait for it to finish or stop it, then run this again"
                ) from None
            try:  # the holder before may have removed the file between our open and our lock
                if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                    break
            except FileNotFoundError:
                pass
            handle.close()
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": self.command}))
        handle.flush()
        self.handle, self.path = handle, path
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            self.path.unlink(missing_ok=True)  # still locked: nobody holds the file we remove
            self.handle.close()  # closing releases the lock
            self.handle = None


def _holder(text: str) -> dict[str, object]:
    try:
        holder = json.loads(text or "{}")
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}
