"""Finding the config file and reading it: the TOML data plus the line each key is written on.

coopt.toml is found exactly as coopt-cc finds it (`COOPT_CONFIG`, else the nearest coopt.toml at or above the
working directory; coopt/locate.py), so both readers always read the same file. Only when there is none does
`[tool.coopt]` in the nearest pyproject.toml that has one count.

tomllib gives values but not positions, so a small scanner maps each `[table]` header and `key =` line to its
line number. It understands what config files use (tables, array tables, bare and dotted keys, multi-line strings
and arrays); a key it cannot place is reported at its table's header line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coopt.locate import CONFIG_NAME, find_config

PYPROJECT = "pyproject.toml"


class ConfigError(Exception):
    """The configuration is broken: one line naming the file, line and key, and what was expected."""


@dataclass
class ConfigFile:
    """A parsed config file: `data` is coopt's own table (the whole file, or pyproject's [tool.coopt])."""

    path: str
    root: tuple[str, ...]  # where coopt's table sits in the file: () or ("tool", "coopt")
    data: dict[str, Any]
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)  # full key path -> line number

    @property
    def directory(self) -> str:
        return os.path.dirname(os.path.abspath(self.path))

    def line_of(self, *path: str) -> int:
        """The line a key (or table) of coopt's table is written on; its nearest written parent's, else 0."""
        full = self.root + tuple(path)
        while full:
            if full in self.lines:
                return self.lines[full]
            full = full[:-1]
        return 0

    def where(self, *path: str) -> str:
        """`file:line` of a key, for messages."""
        line = self.line_of(*path)
        return "%s:%d" % (self.path, line) if line else self.path


def _load_toml(path: str) -> tuple[dict[str, Any], str]:
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError("%s: cannot read: %s" % (path, exc.strerror or exc)) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("%s:%d: not UTF-8 text (byte %d); save the file as UTF-8" % (path, line, exc.start)) from exc
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column \d+\)$", msg)
        if m:
            msg = msg[: m.start()].strip()
            raise ConfigError("%s:%s: not valid TOML: %s" % (path, m.group(1), msg)) from exc
        raise ConfigError("%s: not valid TOML: %s" % (path, msg)) from exc


_HEADER = re.compile(r"^\s*\[(\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")


def _split_key(text: str) -> tuple[str, ...]:
    parts = re.findall(r"\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+", text)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def index_lines(text: str) -> dict[tuple[str, ...], int]:
    """Full key path -> the line it is written on (first occurrence), for tables and keys."""
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    in_string = ""  # the delimiter of a multi-line string we are inside
    depth = 0  # open brackets of a multi-line array or inline table
    for number, line in enumerate(text.splitlines(), 1):
        if in_string:
            if line.count(in_string) % 2 == 1:
                in_string = ""
            continue
        if depth == 0:
            h = _HEADER.match(line)
            if h:
                table = _split_key(h.group(2))
                found.setdefault(table, number)
                continue
            k = _KEY.match(line)
            if k:
                path = table + _split_key(k.group(1))
                for i in range(len(table) + 1, len(path) + 1):
                    found.setdefault(path[:i], number)
        code = _strip_strings(line)
        for delim in ('"""', "'''"):
            if line.count(delim) % 2 == 1:
                in_string = delim
        depth = max(0, depth + code.count("[") + code.count("{") - code.count("]") - code.count("}"))
    return found


def _strip_strings(line: str) -> str:
    """The line without string contents and comments, for counting brackets."""
    out = re.sub(r"\"\"\".*?\"\"\"|'''.*?'''|\"(?:\\.|[^\"\\])*\"|'[^']*'", '""', line)
    return out.split("#", 1)[0]


def read(path: str, root: tuple[str, ...] = ()) -> ConfigFile | None:
    """Parse `path`; coopt's table is at `root` inside it. None when the file has no such table."""
    data, text = _load_toml(path)
    cf = ConfigFile(path, root, {}, index_lines(text))
    table: Any = data
    for i, name in enumerate(root):
        if name not in table:
            return None
        table = table[name]
        if not isinstance(table, dict):
            line = cf.lines.get(root[: i + 1], 0)
            raise ConfigError("%s:%d: %s: expected a table, got %s" % (path, line, ".".join(root[: i + 1]),
                                                                     type(table).__name__))
    cf.data = table
    return cf


def find_coopt_toml(start: str, environ: Mapping[str, str]) -> str:
    """The coopt.toml coopt-cc would read for a compile in `start` (locate.find_config, with the
    environment passed in): `COOPT_CONFIG` when set (even empty: then none), else the nearest at or above."""
    return find_config(os.path.abspath(start), environ)


def find(start: str, environ: Mapping[str, str]) -> ConfigFile | None:
    """The config that applies to `start`: coopt.toml as coopt-cc finds it, else the nearest pyproject.toml with a
    [tool.coopt] table, else None."""
    path = find_coopt_toml(start, environ)
    if path:
        found = read(path, ("tool", "coopt") if os.path.basename(path) == PYPROJECT else ())
        if found is None:
            raise ConfigError("%s: has no [tool.coopt] table (COOPT_CONFIG names it)" % path)
        return found
    if "COOPT_CONFIG" in environ:  # set but empty: no config file at all, as for coopt-cc
        return None
    d = os.path.abspath(start)
    while True:
        candidate = os.path.join(d, PYPROJECT)
        if os.path.isfile(candidate):
            found = read(candidate, ("tool", "coopt"))
            if found is not None:
                return found
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


__all__ = ["CONFIG_NAME", "ConfigError", "ConfigFile", "find", "find_coopt_toml", "index_lines", "read"]
