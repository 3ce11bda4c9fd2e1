"""A hit stored by a checkout at another path: rebuild the object here, with this checkout's paths, and serve it only
when its code is the code that was verified.

With a base_dir (cache/key.py), checkout A at /home/alice/proj and checkout B at /home/bob/proj share keys. The
object A stored still names A's paths: DW_AT_comp_dir and the file names of its debug info, and every `__FILE__`
of a source or header given by an absolute path (assert messages). Served as is in B, B's debugger would look for
Alice's files and B's program would print her paths; a plain build in B would name B's. So such a hit is rebuilt:

- when: the key material holds a rebased path (`{cwd}/`: base_dir rewrote the source, an argument, a header or the
  debug cwd) and the entry was stored from another working directory. A hit without rebased paths names no
  absolute path of the checkout, and one from the same directory names the same paths: both are served as stored;
- how, from what the entry holds (cache/store.py, publish.py): a C artifact equal to the TU's source (the `flags`
  level) or a PGO profile (the `pgo` level) is this checkout's own source compiled with this compile's arguments
  and the variant's extra flags (the profile read from the entry); a rewritten C source (the `source` level) is
  compiled from the entry's copy with `-ffile-prefix-map` naming this checkout's source in its place. LLVM IR,
  assembly and bare objects record the storing machine's paths inside the artifact: no rebuild, a real compile;
- check: the rebuilt object must carry the verified code: every allocated section that is not a string table
  (code, data, unwind tables) byte for byte, its relocations (but the offsets into string tables, where paths of
  different lengths sit), and its symbols. Anything else, or any failure, is a real compile: never an object that
  was not verified.

The rebuild runs the compiler once more than a plain hit; it is taken only on the rare cross-checkout hit.
"""

from __future__ import annotations

import os
import struct
import subprocess

from coopt.cache import key as keymod
from coopt.cache.hashing import hash_bytes, hash_file
from coopt.cache.store import META_NAME, Entry
from coopt.journal.job import CompileJob

_PROFILE_FLAGS = ("-fprofile-instr-use=", "-fprofile-use=")


def _meta(entry: Entry) -> dict:
    """The entry's meta.json, read as the hit path reads it (cache/accept.py: no `json` import)."""
    from coopt.cache import accept

    try:
        with open(os.path.join(entry.path, META_NAME), encoding="utf-8") as f:
            meta = accept.loads(f.read())
    except (OSError, ValueError):
        meta = {}
    return meta if isinstance(meta, dict) else {}


def stored_cwd(entry: Entry) -> str:
    """The working directory of the compile the entry was stored for ("" when the entry does not say)."""
    job = _meta(entry).get("job")
    cwd = job.get("cwd") if isinstance(job, dict) else None
    return cwd if isinstance(cwd, str) else ""


def needs_rebuild(material: str, entry: Entry, cwd: str) -> bool:
    """True when the stored object may name another checkout's paths (see the module's docstring)."""
    return keymod.REL_MARK in material and stored_cwd(entry) != cwd


def _extra_flags(meta: dict) -> list[str] | None:
    extra = meta.get("extra_flags")
    if isinstance(extra, list) and all(isinstance(a, str) for a in extra):
        return list(extra)
    recipe = meta.get("recipe")
    command = recipe.get("command") if isinstance(recipe, dict) else None
    if isinstance(command, list) and command[:1] == ["(prebuilt)"] and all(isinstance(a, str) for a in command):
        return list(command[1:])
    return None


def rebuild_command(entry: Entry, job: CompileJob, out: str) -> tuple[list[str], str]:
    """The command that rebuilds the entry's object for `job` (this checkout's compile) into `out`, or ([], why)."""
    meta = _meta(entry)
    artifact = meta.get("artifact")
    if not isinstance(artifact, str) or not artifact or "/" in artifact:
        return [], "the variant is a bare object"
    ext = os.path.splitext(artifact)[1]
    if ext in (".ll", ".s", ".S"):
        return [], "the variant's %s records the storing checkout's paths" % ("IR" if ext == ".ll" else "assembly")
    extra = _extra_flags(meta)
    if extra is None:
        return [], "the entry records no recipe to rebuild from"
    path = os.path.join(entry.path, artifact)
    if ext == ".c":
        if hash_file(path) == hash_file(job.source_path):
            return job.replay_command(job.source, out, extra), ""
        # A rewritten source: compiled from the entry's copy, named as this checkout's source in the object.
        mapped = ["-iquote", os.path.dirname(job.source_path), "-ffile-prefix-map=%s=%s" % (path, job.source)]
        return job.replay_command(path, out, mapped + extra), ""
    if not any(a.startswith(_PROFILE_FLAGS) for a in extra):
        return [], "the variant's artifact %s is not one coopt can rebuild from" % artifact
    flags = [a.split("=", 1)[0] + "=" + path if a.startswith(_PROFILE_FLAGS) else a for a in extra]
    return job.replay_command(job.source, out, flags), ""


def rebuild(entry: Entry, job: CompileJob, out: str) -> str:
    """Rebuild the entry's object for `job` into `out` (atomically); "" when done, else why not (nothing written)."""
    tmp = "%s.coopt-rebuild-%d.o" % (out, os.getpid())
    try:
        cmd, why = rebuild_command(entry, job, tmp)
        if not cmd:
            return why
        try:
            proc = subprocess.run(cmd, cwd=job.cwd, capture_output=True, timeout=900, env=job.subprocess_env())
        except (OSError, subprocess.SubprocessError) as exc:
            return "the rebuild did not run: %s" % exc
        if proc.returncode != 0:
            return "the rebuild failed (exit %d)" % proc.returncode
        why = same_code(entry.object_path, tmp)
        if why:
            return "the rebuilt object differs from the verified one: " + why
        os.replace(tmp, out)
        return ""
    except OSError as exc:
        return "the rebuild failed: %s" % exc
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


# --- comparing the code of two ELF objects ---------------------------------------------------------------------

_SHF_ALLOC = 0x2
_SHF_MERGE = 0x10
_SHF_STRINGS = 0x20
_SHT_SYMTAB = 2
_SHT_RELA = 4
_SHT_NOBITS = 8
_STT_SECTION = 3
_STT_FILE = 4


class _Elf:
    """The sections and symbols of a 64-bit little-endian ELF relocatable object."""

    def __init__(self, data: bytes) -> None:
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            raise ValueError("not a 64-bit little-endian ELF object")
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        self.data = data
        self.sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
        names = self.sections[shstrndx]
        self.names = [self._str(names[4], s[0]) for s in self.sections]

    def _str(self, table_off: int, at: int) -> str:
        end = self.data.index(b"\0", table_off + at)
        return self.data[table_off + at : end].decode("utf-8", "surrogateescape")

    def content(self, i: int) -> bytes:
        s = self.sections[i]
        return b"" if s[1] == _SHT_NOBITS else self.data[s[4] : s[4] + s[5]]

    def is_strings(self, i: int) -> bool:
        flags = self.sections[i][2]
        return bool(flags & _SHF_MERGE and flags & _SHF_STRINGS)

    def compared(self, i: int) -> bool:
        """An allocated section whose bytes must match: anything but string tables (and the null section)."""
        return i > 0 and bool(self.sections[i][2] & _SHF_ALLOC) and not self.is_strings(i)

    def symbols(self, symtab: int) -> list[tuple[str, int, int, int, int, int]]:
        """(name, info, other, shndx, value, size) of each symbol of a symbol table."""
        s = self.sections[symtab]
        strtab = self.sections[s[6]][4]
        out = []
        for off in range(s[4], s[4] + s[5], 24):
            name, info, other, shndx, value, size = struct.unpack_from("<IBBHQQ", self.data, off)
            out.append((self._str(strtab, name), info, other, shndx, value, size))
        return out


def _section_name(elf: _Elf, shndx: int) -> str:
    return elf.names[shndx] if 0 < shndx < len(elf.names) else "#%d" % shndx


def _signature(elf: _Elf) -> list[tuple]:
    sig: list[tuple] = []
    symtab = next((i for i, s in enumerate(elf.sections) if s[1] == _SHT_SYMTAB), -1)
    syms = elf.symbols(symtab) if symtab >= 0 else []
    for i, s in enumerate(elf.sections):
        name, stype, flags, size, align = elf.names[i], s[1], s[2], s[5], s[8]
        if elf.compared(i):
            sig.append(("section", name, stype, flags, size, align, hash_bytes(elf.content(i))))
        elif i > 0 and elf.is_strings(i):
            sig.append(("strings", name, stype, flags))
        elif stype == _SHT_RELA and 0 < s[7] < len(elf.sections) and elf.compared(s[7]):
            rows = []
            data = elf.content(i)
            for off in range(0, len(data) - 23, 24):
                r_offset, r_info, addend = struct.unpack_from("<QQq", data, off)
                sym = syms[r_info >> 32] if (r_info >> 32) < len(syms) else ("", 0, 0, 0, 0, 0)
                named = sym[0] if sym[0] and sym[1] & 0xF != _STT_SECTION else "section " + _section_name(elf, sym[3])
                # An offset into a string table moves when a path of another length sits before it.
                in_strings = 0 < sym[3] < len(elf.sections) and elf.is_strings(sym[3])
                rows.append((r_offset, r_info & 0xFFFFFFFF, named, None if in_strings else addend))
            sig.append(("relocations", name, elf.names[s[7]], tuple(rows)))
    for name, info, other, shndx, value, size in syms:
        if not name or info & 0xF in (_STT_SECTION, _STT_FILE):
            continue
        in_strings = 0 < shndx < len(elf.sections) and elf.is_strings(shndx)
        sig.append(("symbol", name, info, other, _section_name(elf, shndx), None if in_strings else (value, size)))
    return sig


def same_code(a: str, b: str) -> str:
    """"" when objects `a` and `b` carry the same code, data and symbols (see the module's docstring); else the
    first difference, in words."""
    try:
        with open(a, "rb") as f:
            sa = _signature(_Elf(f.read()))
        with open(b, "rb") as f:
            sb = _signature(_Elf(f.read()))
    except (OSError, ValueError, struct.error, IndexError) as exc:
        return "cannot compare: %s" % exc
    for x, y in zip(sa, sb, strict=False):  # a length difference is reported below
        if x != y:
            return "%s %s" % (x[0], x[1])
    if len(sa) != len(sb):
        return "%d against %d sections and symbols" % (len(sa), len(sb))
    return ""
