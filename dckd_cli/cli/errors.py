"""Turning the library's errors into one-line messages and exit codes.

Imports nothing heavy: every user-facing error is a ``DckdError`` (``dckd_cli/errors.py``),
so catching them needs neither torch nor any library that raises them.
"""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from dckd_cli.atomic import DISK_FULL
from dckd_cli.errors import DckdError

F = TypeVar("F", bound=Callable[..., Any])


def _print(message: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}", markup=True)


def user_errors(func: F) -> F:
    """Print a ``DckdError`` (settings errors field by field) and exit with its code; no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DckdError as err:
            for line in getattr(err, "lines", None) or [str(err)]:
                _print(line)
            raise typer.Exit(err.exit_code) from None
        except OSError as err:  # the file system said no: read-only folder, a directory, a full disk
            target = err.filename2 or err.filename  # for a rename, the destination is what the user named
            if err.errno in DISK_FULL:
                where = f"{target}: " if target else "a file this command writes: "
                _print(f"{where}{err.strerror}; free some space and run the command again")
            else:
                where = f"{target}: " if target else ""
                _print(f"{where}{err.strerror or err}; check the path, its permissions and the free disk space")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            # A further Ctrl-C while the process winds down (closing files, exit handlers)
            # would print a traceback over the message: from here on it is ignored.
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            _print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]
