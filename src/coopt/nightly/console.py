"""Progress for a person at a terminal, plain lines for a CI log.

Whole lines always; on a terminal also a transient status line (the step in flight and its elapsed time) that the
next line replaces. When stdout is not a terminal nothing but printable text and newlines is written.
"""

from __future__ import annotations

from typing import TextIO


class Console:
    def __init__(self, stream: TextIO, tty: bool | None = None) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self._status = False

    def line(self, text: str) -> None:
        """Write a whole line (replacing a status line on a terminal)."""
        if self._status:
            self.stream.write("\r\033[K")
            self._status = False
        self.stream.write(_printable(text) + "\n")
        self.stream.flush()

    def status(self, text: str) -> None:
        """Show a transient status line; nothing at all when not on a terminal."""
        if self.tty:
            self.stream.write("\r\033[K  " + _printable(text)[:150])
            self.stream.flush()
            self._status = True


def _printable(text: str) -> str:
    """Control characters from a hook's output (colours, carriage returns) never reach a CI log."""
    return "".join(c if c.isprintable() or c == "\t" else "?" for c in text)
