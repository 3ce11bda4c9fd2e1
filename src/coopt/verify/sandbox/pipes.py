"""A contained command's stdin, stdout and stderr, with a bound on what is kept.

`Popen.communicate` keeps every byte a command writes. A candidate that loops printing can write gigabytes
before the wall-clock timeout ends it, and coopt would hold them all (a test of the program-level judge
grew past 5 GB in a few seconds). Here each stream is read in chunks up to
its cap; a stream that passes it ends the wait at once, so the caller kills the command.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from dataclasses import dataclass

CHUNK = 1 << 16


@dataclass
class Collected:
    """What a command wrote, and why the wait ended early (if it did)."""

    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    over: str = ""  # the stream that passed its cap ("stdout", "stderr"), else ""


def collect(proc: subprocess.Popen, stdin: bytes | None, timeout: float | None, cap: int) -> Collected:
    """Feed `stdin` to `proc` and read its stdout and stderr (the pipes it has) until they end, `timeout`
    seconds pass, or one holds more than `cap` bytes (0: no cap). The process is not killed or waited for here."""
    deadline = None if not timeout else time.monotonic() + timeout
    streams = {"stdout": proc.stdout, "stderr": proc.stderr}
    names = {f.fileno(): name for name, f in streams.items() if f is not None}
    bufs = {fd: bytearray() for fd in names}
    sel = selectors.DefaultSelector()
    for fd in bufs:
        sel.register(fd, selectors.EVENT_READ)
    view, sent = memoryview(stdin or b""), 0
    feed = -1
    if proc.stdin is not None and not proc.stdin.closed:
        if stdin:
            feed = proc.stdin.fileno()
            os.set_blocking(feed, False)
            sel.register(feed, selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
    out = Collected(b"", b"")
    try:
        while sel.get_map() and not out.over:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                out.timed_out = True
                break
            for key, _ in sel.select(left):
                fd = key.fd
                if fd == feed:
                    try:
                        sent += os.write(fd, view[sent:sent + CHUNK])
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:  # it stopped reading: the rest of the input is not needed
                        sent = len(view)
                    if sent >= len(view):
                        sel.unregister(fd)
                        assert proc.stdin is not None
                        proc.stdin.close()
                    continue
                chunk = os.read(fd, CHUNK)
                if not chunk:
                    sel.unregister(fd)
                    continue
                buf = bufs[fd]
                if cap and len(buf) + len(chunk) > cap:
                    buf += chunk[:cap - len(buf)]
                    out.over = names[fd]
                    break
                buf += chunk
    finally:
        sel.close()
    got = {name: bytes(bufs[fd]) for fd, name in names.items()}
    out.stdout, out.stderr = got.get("stdout", b""), got.get("stderr", b"")
    return out
