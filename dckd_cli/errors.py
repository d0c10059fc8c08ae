"""The one user-facing error type.

Every check of something a user controls (settings, files, image contents, run folders,
checkpoints) raises a ``DckdError`` subclass with a one-line message that names the file or
setting and the fix. The CLI prints it and exits with ``exit_code``; nothing a user can
cause ends in a Python traceback. This module imports nothing, so the CLI can catch it
without loading torch.
"""

from __future__ import annotations


class DckdError(ValueError):
    """A problem the user can fix; ``str(err)`` is the one-line message."""

    exit_code = 1


class NotAvailable(DckdError):
    """A capability that has not landed yet."""

    exit_code = 2

    def __init__(self, what: str):
        super().__init__(f"{what}: not available yet")


class OutputExists(DckdError):
    """An output a user made, which is never overwritten without ``--force``."""

    def __init__(self, what: str):
        super().__init__(f"{what} already exists; pass --force to overwrite it")
