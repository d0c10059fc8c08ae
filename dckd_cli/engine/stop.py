"""Stopping a run cleanly: Ctrl-C or SIGTERM (a scheduler's pre-emption) asks the run to stop;
the trainer finishes the step in flight, saves ``last`` and exits, so ``--resume`` continues
exactly there. A second signal is handled as usual (immediate interrupt)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

from dckd_cli.errors import DckdError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(DckdError):
    """The run stopped at a step boundary on a signal; its last checkpoint is that step."""

    exit_code = 130


class StopRequest:
    """Within ``with``: the first SIGINT / SIGTERM sets ``name`` instead of killing the process."""

    def __init__(self) -> None:
        self.name: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.name = signal.Signals(signum).name
        for sig, handler in self._previous.items():  # a second signal acts at once
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()
