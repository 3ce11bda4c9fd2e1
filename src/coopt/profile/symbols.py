"""Symbol tables of the binaries that ran, and their DWARF compile units.

`nm -a -p` lists a binary's symbols in symbol-table order, STT_FILE symbols included: linkers write each input
object's local symbols right after an STT_FILE symbol naming its source, so a static function's source is known
even without debug info. With debug info, `llvm-dwarfdump --lookup` names the compile unit that covers an
address, which is exact (name and directory).
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
from dataclasses import dataclass, field

from coopt.profile.tus import FUNCTION_TYPES, find_tool

_NM_LINE = re.compile(r"^(?P<addr>[0-9a-f]+) (?:(?P<size>[0-9a-f]{8,}) )?(?P<type>\S)(?: (?P<name>.*))?$")
_DWARF_ATTR = re.compile(r'^\s*(DW_AT_name|DW_AT_comp_dir)\s*\("(.*)"\)\s*$')


@dataclass(frozen=True)
class DsoSymbol:
    """A function symbol of a binary: address (file-relative), size, locality, the STT_FILE name before it."""

    addr: int
    size: int | None
    local: bool
    file: str | None


@dataclass
class DsoTable:
    """The function symbols of one binary, by name."""

    path: str
    by_name: dict[str, list[DsoSymbol]] = field(default_factory=dict)


def is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


@dataclass(frozen=True)
class Segment:
    """A PT_LOAD program header: file bytes [offset, offset+filesz) are loaded at vaddr."""

    offset: int
    vaddr: int
    filesz: int


def load_segments(path: str) -> list[Segment]:
    """The loadable segments of an ELF file (empty when it is not one), read from its program headers."""
    try:
        with open(path, "rb") as f:
            ident = f.read(64)
            if len(ident) < 52 or ident[:4] != b"\x7fELF":
                return []
            end = "<" if ident[5] == 1 else ">"
            wide = ident[4] == 2
            if wide:
                phoff, = struct.unpack_from(end + "Q", ident, 0x20)
                phentsize, phnum = struct.unpack_from(end + "HH", ident, 0x36)
                fmt, fields = end + "IIQQQQQQ", (2, 3, 5)
            else:
                phoff, = struct.unpack_from(end + "I", ident, 0x1C)
                phentsize, phnum = struct.unpack_from(end + "HH", ident, 0x2A)
                fmt, fields = end + "IIIIIIII", (1, 2, 4)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except (OSError, struct.error):
        return []
    segments = []
    for i in range(phnum):
        try:
            ph = struct.unpack_from(fmt, table, i * phentsize)
        except struct.error:
            break
        if ph[0] == 1:  # PT_LOAD
            segments.append(Segment(ph[fields[0]], ph[fields[1]], ph[fields[2]]))
    return segments


def load_table(nm: str, path: str) -> DsoTable | None:
    """The function symbols of the ELF file at `path` (empty for a binary without any), or None when it is not
    readable here."""
    if not is_elf(path):
        return None
    table = DsoTable(path)
    # .symtab first (every function, locals too); a stripped binary has only .dynsym, its exported functions.
    for extra in ([], ["-D"]):
        proc = subprocess.run(
            [nm, "-a", "-p", "-S", "--defined-only", *extra, path],
            capture_output=True,
            text=True,
            errors="surrogateescape",
        )
        _fill(table, proc.stdout)
        if table.by_name:
            break
    return table


def _fill(table: DsoTable, nm_output: str) -> None:
    current_file: str | None = None
    for line in nm_output.splitlines():
        m = _NM_LINE.match(line)
        if m is None:
            continue
        kind, name = m.group("type"), m.group("name") or ""
        if kind == "a":  # STT_FILE (nm shows them as absolute symbols); an empty one ends the locals
            current_file = name or None
            continue
        if kind not in FUNCTION_TYPES or not name:
            continue
        size = m.group("size")
        local = kind.islower()
        table.by_name.setdefault(name, []).append(
            DsoSymbol(int(m.group("addr"), 16), int(size, 16) if size else None, local, current_file if local else None)
        )


def dwarfdump_tool() -> str | None:
    """`llvm-dwarfdump`, or the newest versioned `llvm-dwarfdump-N` on PATH."""
    plain = find_tool("llvm-dwarfdump")
    if plain:
        return plain
    best: tuple[int, str] | None = None
    for d in os.environ.get("PATH", "").split(os.pathsep):
        try:
            names = os.listdir(d or ".")
        except OSError:
            continue
        for n in names:
            m = re.fullmatch(r"llvm-dwarfdump-(\d+)", n)
            if m and (best is None or int(m.group(1)) > best[0]):
                best = (int(m.group(1)), os.path.join(d, n))
    return best[1] if best else None


def cu_source(tool: str, path: str, addr: int) -> str | None:
    """The source file of the DWARF compile unit covering `addr` in `path` (absolute when the unit records its
    directory), or None without debug info there."""
    proc = subprocess.run(
        [tool, "--lookup=0x%x" % addr, path], capture_output=True, text=True, errors="surrogateescape"
    )
    if proc.returncode != 0:
        return None
    name = comp_dir = None
    in_cu = False
    for line in proc.stdout.splitlines():
        if "DW_TAG_compile_unit" in line:
            in_cu = True
            continue
        if in_cu and "DW_TAG_" in line:
            break  # the unit's own attributes end where its first child begins
        m = _DWARF_ATTR.match(line) if in_cu else None
        if m:
            if m.group(1) == "DW_AT_name":
                name = m.group(2)
            else:
                comp_dir = m.group(2)
    if name is None:
        return None
    return os.path.normpath(os.path.join(comp_dir or "", name))
