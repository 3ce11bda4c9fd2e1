"""Launchers behind coopt-cc: ccache, sccache, distcc, icecc in front of the real compiler.

coopt-cc sits first in the chain (`coopt-cc ccache clang ...`, CMake's `CMAKE_C_COMPILER_LAUNCHER="coopt-cc;ccache"`,
or `CC=coopt-cc` with `[compiler] launcher` / `COOPT_LAUNCHER`). It decides as always on the *real* compiler (the
key, the journal and the hit check name clang, never ccache's binary) and runs every miss, link and pass-through as
`LAUNCHER COMPILER ARGS...`, so the launcher keeps caching (or distributing) ordinary compiles.

A launcher can also hide behind the compiler's name: Debian's /usr/lib/ccache (and /usr/lib/distcc,
/usr/lib/icecc/bin) put symlinks named `clang`, `cc`, ... to the launcher first on PATH. Found while looking up the
compiler, such a symlink is skipped (as ccache itself skips it) and remembered as the launcher, so the key names the
real compiler behind it and the build still goes through the launcher.

The order matters: `ccache coopt-cc clang` (launcher first) would let ccache answer from its cache without ever
running coopt-cc, so no variant could be served; docs/ccache.md says so.
"""

from __future__ import annotations

import os


class Launcher:
    """One row of the table: a launcher's program name, whether it masquerades as a compiler through symlinks in a
    directory of its own, and what prints its version (for `coopt doctor`)."""

    __slots__ = ("name", "masquerades", "version_args")

    def __init__(self, name: str, masquerades: bool, version_args: tuple[str, ...]) -> None:
        self.name = name
        self.masquerades = masquerades
        self.version_args = version_args


# Sorted by name. Every one takes the compiler as its first argument: `LAUNCHER COMPILER ARGS...`.
LAUNCHERS = (
    Launcher("ccache", True, ("--version",)),
    Launcher("distcc", True, ("--version",)),
    Launcher("icecc", True, ("--version",)),
    Launcher("sccache", False, ("--version",)),
)
BY_NAME = {row.name: row for row in LAUNCHERS}
MASQUERADING = frozenset(row.name for row in LAUNCHERS if row.masquerades)


def is_launcher_name(word: str) -> bool:
    """Is `word` (a name or a path) one of the known launchers by its own name: `ccache`, `/usr/bin/sccache`?"""
    return os.path.basename(word) in BY_NAME


def masquerading_as(path: str, real: str) -> bool:
    """Is `path` (whose realpath is `real`) a launcher's symlink named like a compiler (/usr/lib/ccache/clang)?"""
    return os.path.basename(real) in MASQUERADING and os.path.basename(path) != os.path.basename(real)


def misconfigured_compiler(configured: str) -> str:
    """The one-line error for a configured compiler that is a launcher (COOPT_COMPILER=ccache), else ""."""
    if not is_launcher_name(configured):
        return ""
    name = os.path.basename(configured)
    return (
        "coopt-cc: error: the compiler '%s' (COOPT_COMPILER or [compiler] path) is a launcher, not a compiler: "
        "set COOPT_LAUNCHER=%s (or [compiler] launcher = \"%s\" in coopt.toml) and leave COOPT_COMPILER to the real "
        "compiler (default clang)" % (configured, name, name)
    )


def command(launcher: str, compiler: str, args: list[str]) -> tuple[str, list[str]]:
    """The program to exec and its argv for a call of `compiler` with `args`, through `launcher` when one is set."""
    if launcher:
        return launcher, [launcher, compiler, *args]
    return compiler, [compiler, *args]
