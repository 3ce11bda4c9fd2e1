"""Writing one small file atomically, leaving nothing behind when the file system refuses.

A full or read-only cache must cost a compile nothing, not even a stray temporary file per call: a failed write
removes its temporary before the error goes to the caller, who decides whether it matters (on the compile path it
never does).
"""

from __future__ import annotations

import os


def replace_atomic(path: str, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory and a rename. Raises OSError (with the
    path that failed) after removing the temporary file."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if exc.filename is None:  # a failed write or close names no file; say which one
            exc.filename = tmp
        raise
