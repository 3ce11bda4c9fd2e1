"""The journal: one JSON line per candidate compile and per link, appended by every coopt-cc process.

Appends are single `write` calls on an O_APPEND descriptor, so concurrent `make -j` processes never interleave
within a record and need no lock. Records are encoded by hand: importing `json` would cost the miss path ~7 ms.
Readers use `json` and skip lines that do not parse (a process killed mid-write leaves at most one such line).
"""

from __future__ import annotations

import os
import time

# The wrapper imports this module on every call: not even `typing` at run time (it pulls in re, enum, functools
# and collections: ~4 ms of every Python-decided compile). mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

JOURNAL_VERSION = 1

_RECORD_START = '{"v":'
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _quote(s: str) -> str:
    if s.isprintable() and '"' not in s and "\\" not in s:
        return '"' + s + '"'
    out = ['"']
    for ch in s:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ord(ch) < 0x20 or 0xD800 <= ord(ch) <= 0xDFFF:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def encode(value: object) -> str:
    """JSON text of a journal value (str, bool, None, int, float, list, dict), without importing json."""
    if isinstance(value, str):
        return _quote(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(encode(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(_quote(str(k)) + ":" + encode(v) for k, v in value.items()) + "}"
    raise TypeError("cannot encode %r" % type(value))


def append(path: str, record: dict) -> bool:
    """Append one record (a dict of str/bool/int/list) with version and time. False when it could not be written."""
    rec = {"v": JOURNAL_VERSION, "time": round(time.time(), 3), **record}
    data = (encode(rec) + "\n").encode("utf-8", "surrogateescape")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except FileNotFoundError:
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError:
            return False
    except OSError:
        return False
    try:
        while data:  # a regular file takes it in one write; loop anyway rather than lose a tail
            data = data[os.write(fd, data) :]
    except OSError:  # a full disk must not fail the compile
        return False
    finally:
        try:
            os.close(fd)  # NFS reports a failed write only here
        except OSError:
            pass
    return True


def read(path: str) -> list[dict]:
    """All well-formed records, oldest first. Lines that do not parse (a torn last line) are skipped.

    A writer killed mid-record leaves a line without its newline, so the next record is appended to that line;
    it is recovered from where it starts (every record begins with `{"v":`).
    """
    try:
        f = open(path, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115 (closed by the with below)
    except FileNotFoundError:
        return []
    with f:
        return _parse(f)


def _parse(lines: Iterable[str]) -> list[dict]:
    import json

    records: list[dict] = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            start = line.rfind(_RECORD_START)
            if start <= 0:
                continue
            try:
                rec = json.loads(line[start:])
            except ValueError:
                continue
        if isinstance(rec, dict) and rec.get("type") in ("compile", "link"):
            records.append(rec)
    return records


def latest_compiles(records: list[dict]) -> list[dict]:
    """The newest compile record for each (cwd, output) pair: what the last build actually did."""
    newest: dict[tuple[str, str], dict] = {}
    for rec in records:
        if rec.get("type") == "compile":
            newest[(rec["cwd"], rec["output"])] = rec
    return list(newest.values())


def trim(path: str) -> tuple[int, int]:
    """Keep only the newest record of each compile and link (by type, directory and output), which is all any
    reader uses; the journal otherwise grows by every build's records forever. Returns (before, after).

    Builds may append while this runs: what they appended after the file was read is carried over before the
    trimmed file replaces it (a record appended in the last instant can still be lost: it comes back with the next
    build of that TU)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return 0, 0
    # Parse exactly the bytes read: what builds append from here on is the tail carried over below.
    records = _parse(data.decode("utf-8", errors="surrogateescape").split("\n"))
    newest: dict[tuple[str, str, str], int] = {}
    for i, rec in enumerate(records):
        newest[(str(rec.get("type")), str(rec.get("cwd")), str(rec.get("output")))] = i
    keep = sorted(newest.values())
    if len(keep) == len(records):
        return len(records), len(records)
    tmp = path + ".trim-%d" % os.getpid()
    try:
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as out:
            for i in keep:
                out.write(encode(records[i]) + "\n")
        with open(path, "rb") as f:
            f.seek(len(data))
            tail = f.read()
        if tail:
            with open(tmp, "ab") as out:
                out.write(tail)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return len(records), len(records)
    return len(records), len(keep)
