"""Small real file systems for fault tests: a tmpfs of a few hundred KiB, filled up or remounted read-only.

Mounting needs root (CI and `make test` run as root); where the kernel refuses, the tests that need one skip with
the reason.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(path: Path, size: str = "512k") -> Iterator[Path]:
    """A fresh tmpfs of `size` mounted at `path` (created) for the duration; skips the test when mount fails."""
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip("cannot mount a tmpfs (needs root): %s" % proc.stderr.strip())
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path: Path) -> None:
    """Write one file under `path` until its file system has no byte left (ENOSPC); empty files can still be
    created on a full tmpfs, writes of any data fail."""
    block = b"\0" * 4096
    with open(path / "filler", "ab", buffering=0) as f:
        while True:
            try:
                f.write(block)
            except OSError:
                break
    # The last partial block, byte by byte: a 1-byte stats line must not fit either.
    with open(path / "filler-tail", "ab", buffering=0) as f:
        while True:
            try:
                f.write(b"\0")
            except OSError:
                break
    probe = path / "probe"
    try:
        with open(probe, "wb") as f:
            f.write(b"x")
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        return
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
    raise AssertionError("%s still takes writes after fill()" % path)


def remount_read_only(path: Path) -> None:
    """Make the tmpfs at `path` read-only, so every write under it fails with EROFS (root included)."""
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)
