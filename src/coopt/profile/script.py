"""Parse `perf script` text into samples.

Two shapes exist, and both come from perf's default output as well as from `-F comm,pid,tid,event,ip,sym,symoff,dso`:

    lua 4242/4242 cpu-clock:      55d0c0a1b2c3 luaV_execute+0x53 (/src/lua)          one line per sample

    lua 4242/4242 cpu-clock:                                                          with call chains:
    \t          1b2c3 luaV_execute+0x53 (/src/lua)                                    leaf first, one tab-
    \t          2d4e5 luaD_call+0x41 (/src/lua)                                       indented line per frame,
                                                                                      a blank line after
Executable mmap events (`--show-mmap-events`) are kept: they tell where each binary was loaded in each process.
Other lines (header comments, srcline, other events) are skipped. `ip` is whatever perf printed: a runtime address
on the one-line shape, a file-relative one in call chains; attribution never relies on it alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

# comm is optional and may contain spaces; pid[/tid]; optional [cpu], time and period; the event ends in ':'
# followed by blanks, then either a frame (one-line shape) or nothing (call chain shape).
_HEADER = re.compile(
    r"^\s*(?:(?P<comm>.*?)\s+)?(?P<pid>-?\d+)(?:/(?P<tid>-?\d+))?(?:\s+\[\d+\])?(?:\s+\d+\.\d+:)?(?:\s+\d+)?"
    r"\s+(?P<event>[^\s:]\S*?):(?:\s+(?P<rest>.*))?$"
)
_MMAP = re.compile(
    r"PERF_RECORD_MMAP2?\s+(?P<pid>-?\d+)/(?P<tid>-?\d+):\s+\[0x(?P<start>[0-9a-f]+)\(0x(?P<len>[0-9a-f]+)\)"
    r"\s+@\s+(?:0x)?(?P<pgoff>[0-9a-f]+)[^\]]*\]:\s+\S+\s+(?P<path>.*?)\s*$"
)
_FRAME = re.compile(r"^\s*(?P<ip>[0-9a-fA-F]+)\s+(?P<sym>.+?)(?:\+0x(?P<off>[0-9a-fA-F]+))?\s+\((?P<dso>.*)\)\s*$")


class Frame(NamedTuple):
    """One frame: perf's address, its symbol name and offset into the symbol, and the binary it lies in.

    A tuple, not a dataclass: a 10 s recording with call chains has millions of frames."""

    ip: int
    sym: str
    off: int | None
    dso: str


@dataclass(slots=True)
class Sample:
    """One sample: the process it hit (pid, or tid when only that was printed), the event, leaf-first frames."""

    proc: str
    event: str
    frames: list[Frame]


@dataclass(frozen=True)
class Mapping:
    """An executable mapping perf saw (`--show-mmap-events`): where a binary's file offset `pgoff` was loaded."""

    proc: str
    start: int
    length: int
    pgoff: int
    path: str


@dataclass
class ParseStats:
    """What the parser saw, so a caller can tell "no samples" from "not perf script output"."""

    lines: int = 0
    samples: int = 0
    skipped: int = 0
    mappings: list[Mapping] = field(default_factory=list)


def _frame(text: str, dsos: dict[str, str]) -> Frame | None:
    m = _FRAME.match(text)
    if m is None:
        return None
    off = m.group("off")
    dso = m.group("dso")
    return Frame(int(m.group("ip"), 16), m.group("sym"), int(off, 16) if off else None, dsos.setdefault(dso, dso))


def parse(lines: Iterable[str], stats: ParseStats | None = None) -> Iterator[Sample]:
    """Samples from `perf script` output lines, in order. Frames perf marks `(inlined)` are dropped: the physical
    function that follows at the same address is the one a TU defines."""
    st = stats if stats is not None else ParseStats()
    dsos: dict[str, str] = {}  # interning: a handful of binaries shared by millions of frames
    current: Sample | None = None
    for line in lines:
        st.lines += 1
        if line.startswith("\t"):
            if current is not None:
                fr = _frame(line, dsos)
                if fr is not None and fr.dso != "inlined":
                    current.frames.append(fr)
                elif fr is None:
                    st.skipped += 1
            continue
        text = line.rstrip("\n")
        if not text.strip():
            continue
        if "PERF_RECORD_" in text:
            mm = _MMAP.search(text)
            if mm is not None:
                st.mappings.append(
                    Mapping(mm.group("pid"), int(mm.group("start"), 16), int(mm.group("len"), 16),
                            int(mm.group("pgoff"), 16), mm.group("path"))
                )
            continue
        if text.startswith("#"):
            st.skipped += 1
            continue
        m = _HEADER.match(text)
        if m is None:
            # A call chain frame whose tab became spaces on the way (copied text, another tool).
            fr = _frame(text, dsos) if current is not None else None
            if fr is not None and current is not None:
                if fr.dso != "inlined":
                    current.frames.append(fr)
            else:
                st.skipped += 1
            continue
        if current is not None:
            st.samples += 1
            yield current
        current = Sample(m.group("pid"), m.group("event"), [])
        rest = m.group("rest")
        if rest:
            fr = _frame(rest, dsos)
            if fr is not None:
                current.frames.append(fr)
    if current is not None:
        st.samples += 1
        yield current
