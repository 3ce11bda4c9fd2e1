"""The translation units the journal knows, and the functions each one defines.

A TU is the newest journaled compile of one object file. What it defines comes from the object itself
(`nm --defined-only -S`): the function names and their sizes, which the linker copies unchanged into the program
or library, so a symbol that ran can be checked against the object it supposedly came from.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

from coopt.journal import log as journal
from coopt.journal.job import CompileJob
from coopt.profile.errors import ProfileError

# nm's letters for code: global/local text, weak, GNU indirect function.
FUNCTION_TYPES = frozenset("TtWwi")
_NM_LINE = re.compile(r"^(?P<path>.*):(?P<addr>[0-9a-f]+) (?:(?P<size>[0-9a-f]{8,}) )?(?P<type>\S) (?P<name>.+)$")
_NM_CHUNK = 200  # objects per nm call: well under any argv limit


@dataclass(frozen=True)
class TU:
    """One translation unit: the object a journaled compile wrote, its source, and the compile record."""

    object: str
    source: str
    record: dict[str, Any] = field(hash=False, compare=False)


@dataclass(frozen=True)
class Definition:
    """A function defined by a TU's object: its size and whether it is local (static)."""

    object: str
    size: int | None
    local: bool


@dataclass
class JournalIndex:
    """Everything attribution needs from the journal."""

    journal: str
    tus: dict[str, TU]  # object path -> TU
    defs: dict[str, list[Definition]]  # function name -> its definitions across TUs
    missing: list[str]  # journaled objects that are no longer on disk
    links: dict[str, set[str]]  # real path of a journaled link's output -> real paths of its inputs


def find_tool(*names: str) -> str | None:
    """The first of `names` found on PATH."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def nm_tool() -> str:
    """`nm` (binutils) or `llvm-nm`; a ProfileError saying what to install when neither exists."""
    tool = find_tool("nm", "llvm-nm")
    if tool is None:
        raise ProfileError("nm is not installed: install it with `apt-get install binutils`")
    return tool


def _nm_objects(nm: str, objects: list[str]) -> dict[str, list[tuple[str, int | None, str]]]:
    """(name, size, type) of the defined functions of each object, in one nm call per chunk."""
    out: dict[str, list[tuple[str, int | None, str]]] = {o: [] for o in objects}
    for i in range(0, len(objects), _NM_CHUNK):
        chunk = objects[i : i + _NM_CHUNK]
        # -A prefixes each line with its file; the known paths keep paths with ':' unambiguous.
        proc = subprocess.run(
            [nm, "--defined-only", "-S", "-A", *chunk], capture_output=True, text=True, errors="surrogateescape"
        )
        known = set(chunk)
        for line in proc.stdout.splitlines():
            m = _NM_LINE.match(line)
            if m is None or m.group("type") not in FUNCTION_TYPES:
                continue
            path = m.group("path")
            if path not in known:
                continue
            size = m.group("size")
            out[path].append((m.group("name"), int(size, 16) if size else None, m.group("type")))
    return out


def load_index(journal_path: str) -> JournalIndex:
    """Read the journal and the objects of its newest compiles."""
    records = journal.read(journal_path)
    tus: dict[str, TU] = {}
    for rec in journal.latest_compiles(records):
        try:
            job = CompileJob.from_record(rec)
        except (KeyError, TypeError):
            continue  # a record from another journal version: nothing to attribute to
        tus[job.output_path] = TU(job.output_path, job.source_path, rec)
    present = [o for o in tus if os.path.isfile(o)]
    missing = sorted(set(tus) - set(present))
    defs: dict[str, list[Definition]] = {}
    if present:
        for obj, syms in _nm_objects(nm_tool(), present).items():
            for name, size, kind in syms:
                defs.setdefault(name, []).append(Definition(obj, size, kind.islower()))
    links: dict[str, set[str]] = {}
    for rec in records:
        if rec.get("type") != "link" or not rec.get("output"):
            continue
        cwd = rec.get("cwd") or "/"
        out = os.path.realpath(os.path.join(cwd, rec["output"]))
        links[out] = {os.path.realpath(os.path.join(cwd, i)) for i in rec.get("inputs", []) if not i.startswith("-")}
    return JournalIndex(journal_path, {o: tus[o] for o in present}, defs, missing, links)
