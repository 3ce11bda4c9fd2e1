"""How a run talks to its terminal: the progress lines and status, and Ctrl-C as a stop flag (twice: at once)."""

from __future__ import annotations

import signal
import threading
import time
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


HEARTBEAT_S = 15.0  # off a terminal, the longest silence: a CI log must never look hung


class Progress:
    """Progress lines. On a terminal a transient status line shows the step in flight; otherwise only whole
    lines are written, with no control characters, and while a step runs silently (a model answering, an A/B
    run) a line saying what is running and for how long comes at least every `heartbeat_s` seconds."""

    def __init__(self, stream: TextIO, tty: bool | None = None, prefix: str = "",
                 heartbeat_s: float = HEARTBEAT_S) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.prefix = prefix  # "shard 1/3: " on a sharded run, so interleaved CI logs say whose line it is
        self.heartbeat_s = heartbeat_s
        self._status = False
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._last_write = self._started
        self._step = ""
        self._step_since = self._started
        self._beat: threading.Thread | None = None
        self._done = threading.Event()

    def line(self, text: str) -> None:
        with self._lock:
            self._clear()
            self._write(self.prefix + text + "\n")

    def status(self, text: str) -> None:
        with self._lock:
            if self.tty:
                self.stream.write("\r\033[K  " + (self.prefix + text)[:150])
                self.stream.flush()
                self._status = True
                return
            if text != self._step:
                self._step, self._step_since = text, time.monotonic()
            if self._beat is None:
                self._beat = threading.Thread(target=self._heartbeat, name="coopt-progress", daemon=True)
                self._beat.start()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the heartbeat (the run is over)."""
        self._done.set()
        if self._beat is not None:
            self._beat.join()

    def _heartbeat(self) -> None:
        while not self._done.wait(min(1.0, self.heartbeat_s)):
            with self._lock:
                now = time.monotonic()
                if self._step and now - self._last_write >= self.heartbeat_s:
                    self._write("%s... %s (%.0f s; run %s)\n" % (self.prefix, self._step, now - self._step_since,
                                                                 _clock(now - self._started)))

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
        self._last_write = time.monotonic()

    def _clear(self) -> None:
        if self._status:
            self.stream.write("\r\033[K")
            self._status = False


def _clock(seconds: float) -> str:
    """12m05s, or 42s."""
    m, sec = divmod(int(seconds), 60)
    return "%dm%02ds" % (m, sec) if m else "%ds" % sec
