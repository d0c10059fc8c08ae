"""Turning the library's known errors into one-line messages and exit codes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from dckd_cli.data.benchmarks import DatasetError
from dckd_cli.data.images import ImageError
from dckd_cli.engine.checkpoint import RunFolderError
from dckd_cli.methods.feature_taps import TapError
from dckd_cli.methods.registry import MethodNotAvailable
from dckd_cli.models.checkpoints import CheckpointError
from dckd_cli.models.zoo import ZooError
from dckd_cli.settings.presets import SettingsError

F = TypeVar("F", bound=Callable[..., Any])
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
USER_ERRORS = (DatasetError, ImageError, CheckpointError, ZooError, RunFolderError, TapError, FileExistsError)


class NotAvailable(Exception):
    """A command whose capability has not landed yet."""


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    raise typer.Exit(code)


def user_errors(func: F) -> F:
    """Print settings errors field by field and other known errors on one line, then exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SettingsError as err:
            for line in err.lines:
                err_console.print(f"[bold red]error:[/] {escape(line)}", markup=True)
            raise typer.Exit(1) from None
        except USER_ERRORS as err:
            fail(str(err))
        except NotAvailable as err:
            fail(f"{err}: not available yet", code=2)
        except MethodNotAvailable as err:
            fail(str(err), code=2)

    return wrapper  # type: ignore[return-value]
