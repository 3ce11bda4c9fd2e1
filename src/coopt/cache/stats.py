"""Counters without a global lock.

Each event is one short line appended (O_APPEND, a single write) to one of a few shard files picked by pid, so many
`make -j` processes never wait on each other. Reading sums the shards. A line is a counter name (one event) or a
name, a tab and a number (an amount: bytes, microseconds), so byte and latency totals need no lock either.
Stats are advisory: a lost line is not an error, and nothing here may fail a compile.
"""

from __future__ import annotations

import os

SHARDS = 16


def bump(stats_dir: str, counter: str, *more: str) -> None:
    """Count one event named `counter` (and each of `more`, in the same write). Silently does nothing when the
    directory cannot be written."""
    _append(stats_dir, "".join(c + "\n" for c in (counter, *more)).encode("utf-8", "replace"))


def add(stats_dir: str, amounts: dict[str, int]) -> None:
    """Add amounts to counters (`{"remote:bytes:redis://h:6379": 512}`) in one write; best effort like bump."""
    data = "".join("%s\t%d\n" % (name, n) for name, n in amounts.items() if n >= 0)
    if data:
        _append(stats_dir, data.encode("utf-8", "replace"))


def _append(stats_dir: str, data: bytes) -> None:
    path = os.path.join(stats_dir, str(os.getpid() % SHARDS))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except FileNotFoundError:
        try:
            os.makedirs(stats_dir, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError:
            return
    except OSError:
        return
    try:
        os.write(fd, data)
    except OSError:  # a full or failing file system: the event is lost, the compile goes on
        pass
    finally:
        try:
            os.close(fd)
        except OSError:
            pass


def read(stats_dir: str) -> dict[str, int]:
    """Sum of all counters over all shards."""
    totals: dict[str, int] = {}
    try:
        names = os.listdir(stats_dir)
    except OSError:
        return totals
    for name in names:
        try:
            with open(os.path.join(stats_dir, name), encoding="utf-8", errors="replace") as f:
                for line in f:
                    counter, tab, amount = line.rstrip("\n").rpartition("\t")
                    if not tab:
                        counter, amount = amount.strip(), "1"
                    if counter and amount.isdigit():
                        totals[counter] = totals.get(counter, 0) + int(amount)
        except OSError:
            continue
    return totals


def clear(stats_dir: str) -> None:
    """Zero all counters."""
    try:
        names = os.listdir(stats_dir)
    except OSError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(stats_dir, name))
        except OSError:
            pass
