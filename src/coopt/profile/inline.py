"""Which source function a sampled address belongs to, through the debug info's inlining records.

clang inlines small functions, and at -O2 a hot loop often ends up inside `main`: perf's symbol is `main`, yet the
code that ran is the loop of `work()` as the source spells it. `llvm-symbolizer --inlining` (or binutils'
`addr2line -i`) reads the DWARF inlining records of an address and prints its chain of source frames, innermost
first: the function and the file:line it is at. Attribution keeps the innermost frame that lies in the TU's own
source file (a `static inline` helper from a header is not the TU's to rewrite; its caller in the TU is), and the
line of that frame, which gives the per-line samples the source agent cuts a long function with.

One symbolizer run per binary, every distinct address at once, results cached per (binary, address): a profile of
ten thousand samples has a few hundred distinct addresses in its hot functions. A binary without debug info gives
no frames (`??`), and its samples stay with the symbol that ran.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from coopt.profile.tus import find_tool

SYMBOLIZER_ENV = "COOPT_SYMBOLIZER"  # the tool to run (default: llvm-symbolizer, else addr2line)
_TIMEOUT_S = 120
_CHUNK = 20000  # addresses per run: one run per binary in practice


@dataclass(frozen=True)
class SourceFrame:
    """One source-level frame of an address: the function, and the file and line the address is at within it."""

    function: str
    file: str
    line: int


def symbolizer() -> list[str] | None:
    """The argv prefix of the symbolizer to use, or None when neither llvm-symbolizer nor addr2line exists."""
    chosen = os.environ.get(SYMBOLIZER_ENV)
    tool = find_tool(chosen) if chosen else find_tool("llvm-symbolizer", "llvm-symbolizer-19", "llvm-symbolizer-14",
                                                      "addr2line")
    if tool is None:
        return None
    if "addr2line" in os.path.basename(tool):
        return [tool, "-a", "-f", "-i"]
    return [tool, "--inlining", "--functions=linkage", "--output-style=GNU", "--print-address"]


def _parse(lines: list[str], addrs: list[int]) -> dict[int, tuple[SourceFrame, ...]]:
    """Both tools, with the address printed first (`0x...`), then (function, file:line) pairs innermost first."""
    out: dict[int, tuple[SourceFrame, ...]] = {}
    frames: list[SourceFrame] = []
    current: int | None = None
    i = 0
    want = set(addrs)

    def flush() -> None:
        if current is not None and current in want:
            out[current] = tuple(frames)

    while i < len(lines):
        line = lines[i].strip()
        if not line:
            i += 1
            continue
        if line.startswith("0x"):
            flush()
            try:
                current = int(line, 16)
            except ValueError:
                current = None
            frames = []
            i += 1
            continue
        function = line
        where = lines[i + 1].strip() if i + 1 < len(lines) else "??:0"
        i += 2
        path, _, num = where.partition(" ")[0].rpartition(":")
        if function == "??" or not path or path == "??":
            continue
        try:
            frames.append(SourceFrame(function, path, int(num)))
        except ValueError:
            continue
    flush()
    return out


class Inliner:
    """Source frames of addresses in binaries, cached for a whole recording."""

    def __init__(self) -> None:
        self.tool = symbolizer()
        self._cache: dict[tuple[str, int], tuple[SourceFrame, ...]] = {}

    def resolve(self, dso: str, addrs: Iterable[int]) -> None:
        """Symbolize the addresses of `dso` not seen yet, in one run of the tool."""
        todo = sorted({a for a in addrs if (dso, a) not in self._cache})
        if not todo:
            return
        for a in todo:
            self._cache[(dso, a)] = ()
        if self.tool is None or not os.path.isfile(dso):
            return
        for k in range(0, len(todo), _CHUNK):
            chunk = todo[k:k + _CHUNK]
            argv = [*self.tool, "-e" if "addr2line" in os.path.basename(self.tool[0]) else "--obj", dso]
            try:
                proc = subprocess.run(argv, input="".join("0x%x\n" % a for a in chunk), capture_output=True,
                                      text=True, errors="replace", timeout=_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired):
                return  # no inlining records: the samples stay with the symbols that ran
            for addr, frames in _parse(proc.stdout.splitlines(), chunk).items():
                self._cache[(dso, addr)] = frames

    def frames(self, dso: str, addr: int) -> tuple[SourceFrame, ...]:
        """The source frames of `addr` in `dso`, innermost first (empty when unknown); `resolve` it first."""
        return self._cache.get((dso, addr), ())


def in_source(frames: tuple[SourceFrame, ...], source: str) -> SourceFrame | None:
    """The innermost frame whose file is the TU's `source` (same path, else the same file name when debug paths
    were remapped), or None."""
    real = os.path.realpath(source)
    base = os.path.basename(source)
    for fr in frames:
        if os.path.realpath(fr.file) == real:
            return fr
    for fr in frames:
        if os.path.basename(fr.file) == base:
            return fr
    return None
