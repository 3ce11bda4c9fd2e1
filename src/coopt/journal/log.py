"""The journal: one JSON line per candidate compile and per link, appended by every coopt-cc process.

Appends are single `write` calls on an O_APPEND descriptor, so concurrent `make -j` processes never interleave
within a record and need no lock. Records are encoded by hand: importing `json` would cost the miss path ~7 ms.
Readers use `json` and skip lines that do not parse (a process killed mid-write leaves at most one such line).
"""

from __future__ import annotations

import os
import time

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
        os.close(fd)
    return True


def read(path: str) -> list[dict]:
    """All well-formed records, oldest first. Lines that do not parse (a torn last line) are skipped.

    A writer killed mid-record leaves a line without its newline, so the next record is appended to that line;
    it is recovered from where it starts (every record begins with `{"v":`).
    """
    import json

    records: list[dict] = []
    try:
        f = open(path, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115 (closed by the with below)
    except FileNotFoundError:
        return records
    with f:
        for line in f:
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
