"""How a run talks to its terminal: the progress lines and status, and Ctrl-C as a stop flag (twice: at once)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TextIO


class StopFlag:
    """Ctrl-C once: stop after the current step, keeping what was verified. Twice: stop now."""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def on_sigint(self, say: Callable[[str], None]) -> Iterator[None]:
        def handler(_sig: int, _frame: FrameType | None) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            say("interrupt: stopping after the current step (Ctrl-C again to stop at once)")

        try:
            old = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: no handler, Ctrl-C raises as usual
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, old)


class Progress:
    """Progress lines. On a terminal a transient status line shows the step in flight; otherwise only whole
    lines are written, with no control characters."""

    def __init__(self, stream: TextIO, tty: bool | None = None, prefix: str = "") -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.prefix = prefix  # "shard 1/3: " on a sharded run, so interleaved CI logs say whose line it is
        self._status = False

    def line(self, text: str) -> None:
        self._clear()
        self.stream.write(self.prefix + text + "\n")
        self.stream.flush()

    def status(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K  " + (self.prefix + text)[:150])
            self.stream.flush()
            self._status = True

    def _clear(self) -> None:
        if self._status:
            self.stream.write("\r\033[K")
            self._status = False
