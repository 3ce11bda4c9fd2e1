"""Relinking a journaled program with some of its objects replaced, static archives included.

The optimizer judges a candidate object by the program it ends up in: the link command from the journal is run
again in its own directory, with `-o` pointed elsewhere and each replaced object swapped in, either as a command
line input or as a member of a static archive (a private copy of the archive with that member replaced).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

from coopt.journal import log as journal


class RelinkError(Exception):
    """The program cannot be relinked; the message says why."""


@dataclass(frozen=True)
class LinkRecord:
    """A journaled link: where it ran, the compiler driver, its arguments, the output and its inputs."""

    cwd: str
    compiler: str
    args: list[str]
    output: str
    inputs: list[str] = field(default_factory=list)

    @property
    def output_path(self) -> str:
        return os.path.normpath(os.path.join(self.cwd, self.output))

    @classmethod
    def from_record(cls, rec: dict) -> LinkRecord:
        return cls(rec["cwd"], rec["compiler"], list(rec["args"]), rec["output"], list(rec.get("inputs", [])))


def find_link(journal_path: str, program: str) -> LinkRecord:
    """The newest journaled link whose output is `program`."""
    target = os.path.realpath(program)
    found = None
    for rec in journal.read(journal_path):
        if rec.get("type") == "link":
            link = LinkRecord.from_record(rec)
            if os.path.realpath(link.output_path) == target:
                found = link
    if found is None:
        raise RelinkError(
            "no journaled link produced %s; build it with CC=coopt-cc (links are journaled too)" % program
        )
    return found


def linked_objects(link: LinkRecord, objects: list[str]) -> set[str]:
    """Which of `objects` the link takes in: as command-line inputs or as members of its static archives (given
    by path or as -lNAME), matched as `relink` matches them, so each one returned can be replaced."""
    wanted = {os.path.normpath(os.path.join(link.cwd, o)): o for o in objects}
    found: set[str] = set()
    lib_dirs = _library_dirs(link.args, link.cwd)
    static = "-static" in link.args
    archives: list[str] = []
    for a in link.args:
        if a.startswith("-l") and len(a) > 2:
            lib = _static_library(a[2:], lib_dirs, static)
            if lib:
                archives.append(lib)
            continue
        if a.startswith("-"):
            continue
        full = os.path.normpath(os.path.join(link.cwd, a))
        if full in wanted:
            found.add(wanted[full])
        elif a.endswith(".a") and os.path.isfile(full):
            archives.append(full)
    for archive in archives:
        rest = {k: v for k, v in wanted.items() if v not in found}
        if not rest:
            break
        with tempfile.TemporaryDirectory(prefix="coopt-members-") as scratch:
            for full, orig in rest.items():
                if _archive_holds(archive, full, scratch):
                    found.add(orig)
    return found


def _archive_holds(archive: str, obj: str, scratch: str) -> bool:
    """True when `archive` has exactly one member named like `obj`, with the same bytes."""
    name = os.path.basename(obj)
    try:
        if archive_members(archive).count(name) != 1:
            return False
        with open(obj, "rb") as f:
            original = f.read()
    except (OSError, RelinkError):
        return False
    return _extract(archive, name, scratch) == original


def _ar_tool() -> str:
    return shutil.which("llvm-ar") or shutil.which("ar") or "ar"


def archive_members(archive: str) -> list[str]:
    proc = subprocess.run([_ar_tool(), "t", archive], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RelinkError("cannot list %s: %s" % (archive, proc.stderr.strip()))
    return proc.stdout.split()


def _extract(archive: str, member: str, into: str) -> bytes:
    subprocess.run([_ar_tool(), "x", os.path.abspath(archive), member], cwd=into, check=True, timeout=120)
    with open(os.path.join(into, member), "rb") as f:
        return f.read()


def _replace_output(args: list[str], out: str) -> list[str]:
    res: list[str] = []
    i = 0
    replaced = False
    while i < len(args):
        a = args[i]
        if a == "-o" and i + 1 < len(args):
            res += ["-o", out]
            i += 2
            replaced = True
            continue
        if a.startswith("-o") and len(a) > 2:
            res.append("-o" + out)
            replaced = True
        else:
            res.append(a)
        i += 1
    if not replaced:
        res += ["-o", out]
    return res


def relink(link: LinkRecord, replacements: dict[str, str], out: str, workdir: str | None = None,
           extra_args: list[str] | None = None) -> list[str]:
    """Link `link`'s program into `out` with objects replaced ({original object path: new object path}).

    Objects found inside static archives on the command line (by path, or as `-lNAME` that resolves to a
    libNAME.a through the link's -L directories) are replaced in private copies of those archives (in
    `workdir`). Returns the command that was run. Raises RelinkError when an object to replace is in neither the
    command line nor an archive, or the link fails.
    """
    work = workdir or tempfile.mkdtemp(prefix="coopt-relink-")
    os.makedirs(work, exist_ok=True)
    pending = {os.path.normpath(os.path.join(link.cwd, k)): v for k, v in replacements.items()}
    args = _replace_output(link.args, os.path.abspath(out))
    lib_dirs = _library_dirs(args, link.cwd)
    static = "-static" in args
    new_args: list[str] = []
    for a in args:
        if a.startswith("-l") and len(a) > 2 and pending:
            # `-L. -lbz2` picks libbz2.a when no libbz2.so sits beside it: its members can be replaced too.
            archive = _static_library(a[2:], lib_dirs, static)
            copy = _replace_in_archive(archive, pending, work) if archive else None
            new_args.append(copy if copy and copy != archive else a)
            continue
        if a.startswith("-"):
            new_args.append(a)
            continue
        full = os.path.normpath(os.path.join(link.cwd, a))
        if full in pending:
            new_args.append(os.path.abspath(pending.pop(full)))
        elif a.endswith(".a") and os.path.isfile(full) and pending:
            new_args.append(_replace_in_archive(full, pending, work))
        else:
            new_args.append(a)
    if pending:
        raise RelinkError("objects not found in the link of %s: %s" % (link.output, ", ".join(sorted(pending))))
    cmd = [link.compiler, *new_args, *(extra_args or [])]
    proc = subprocess.run(cmd, cwd=link.cwd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RelinkError("relinking %s failed (exit %d): %s" % (link.output, proc.returncode,
                                                                 proc.stderr.strip()[-500:]))
    return cmd


# Link options that take the next argument as their value; the value is kept with them.
_VALUE_OPTIONS = ("-L", "-l", "-Xlinker", "-T", "-u", "-z")
# Options that make no sense in a link of the verifier's harness (its own output, main and sanitizer runtimes).
_DROPPED_OPTIONS = ("-static", "-static-pie", "-shared", "-pie", "-no-pie", "-nostdlib", "-nostartfiles", "-r")


def rest_of_program(link: LinkRecord, obj: str, work: str) -> list[str]:
    """The inputs of `link` other than the TU object `obj`, as arguments for a link run from any directory: what
    the verifier's harness needs when the TU calls functions of the rest of the program.

    Objects and archives become absolute paths; `obj` is left out (from a static archive too: a private copy
    holds an empty object in its place, so the archive cannot bring the TU's own definitions back); `-l`, `-L`
    and `-Wl,` options stay; `-o`, `-c` and options that change what kind of link it is are dropped.
    """
    os.makedirs(work, exist_ok=True)
    target = os.path.normpath(os.path.join(link.cwd, obj))
    empty = os.path.join(work, "empty.o")
    if not os.path.isfile(empty):
        subprocess.run([link.compiler, "-c", "-x", "c", os.devnull, "-o", empty], check=True, timeout=120,
                       capture_output=True)
    lib_dirs = _library_dirs(link.args, link.cwd)
    static = "-static" in link.args
    out: list[str] = []
    args = iter(link.args)
    for a in args:
        if a == "-o":
            next(args, None)
            continue
        if a in _VALUE_OPTIONS:
            value = next(args, "")
            out += [a, os.path.normpath(os.path.join(link.cwd, value)) if a == "-L" else value]
            continue
        if a.startswith("-L") and len(a) > 2:
            out.append("-L" + os.path.normpath(os.path.join(link.cwd, a[2:])))
            continue
        if a.startswith("-l") and len(a) > 2:
            # A static archive by its path, so what it defines can be looked at (defines_what_obj_needs).
            archive = _static_library(a[2:], lib_dirs, static)
            out.append(_replace_in_archive(archive, {target: empty}, work) if archive else a)
            continue
        if a.startswith("-o") or a == "-c" or a in _DROPPED_OPTIONS:
            continue
        if a.startswith("-"):
            out.append(a)
            continue
        full = os.path.normpath(os.path.join(link.cwd, a))
        if full == target:
            continue
        if full.endswith(".a") and os.path.isfile(full):
            out.append(_replace_in_archive(full, {target: empty}, work))
        else:
            out.append(full)
    return out


def defines_what_obj_needs(obj: str, rest: list[str]) -> bool:
    """Whether some symbol `obj` leaves undefined is defined by an object or archive of `rest`: only then does a
    harness around `obj`'s functions need the rest of the program (libc and the like it gets anyway)."""
    nm = shutil.which("llvm-nm") or "nm"
    needed = subprocess.run([nm, "-u", "-P", obj], capture_output=True, text=True, timeout=120).stdout
    names = {ln.split()[0] for ln in needed.splitlines() if ln.strip()}
    files = [a for a in rest if not a.startswith("-") and os.path.isfile(a)]
    if not names or not files:
        return False
    out = subprocess.run([nm, "-P", "-A", "--defined-only", *files], capture_output=True, text=True, timeout=120)
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2].isupper() and parts[1] in names:
            return True
    return False


def _library_dirs(args: list[str], cwd: str) -> list[str]:
    """The `-L` directories of a link, in order, as absolute paths (ld searches them for every -l)."""
    dirs: list[str] = []
    for i, a in enumerate(args):
        if a == "-L" and i + 1 < len(args):
            dirs.append(os.path.join(cwd, args[i + 1]))
        elif a.startswith("-L") and len(a) > 2:
            dirs.append(os.path.join(cwd, a[2:]))
    return [os.path.normpath(d) for d in dirs]


def _static_library(name: str, dirs: list[str], static: bool) -> str | None:
    """The static archive `-lNAME` resolves to among the -L directories, or None (a shared library, a system
    library, or nothing). Within one directory ld prefers libNAME.so unless the link is -static."""
    if name.startswith(":"):
        for d in dirs:
            path = os.path.join(d, name[1:])
            if os.path.isfile(path):
                return path if path.endswith(".a") else None
        return None
    for d in dirs:
        shared = os.path.join(d, "lib%s.so" % name)
        archive = os.path.join(d, "lib%s.a" % name)
        if os.path.exists(shared) and not static:
            return None
        if os.path.isfile(archive):
            return archive
    return None


def _replace_in_archive(archive: str, pending: dict[str, str], work: str) -> str:
    """A private copy of `archive` with the members that are pending objects replaced; pops what it replaced.

    A member matches an object when it has the object's file name and the same bytes as the object on disk, so
    a same-named object from another directory is never swapped by mistake.
    """
    members = archive_members(archive)
    hits = {}
    scratch = tempfile.mkdtemp(prefix="members-", dir=work)
    for obj, new in pending.items():
        name = os.path.basename(obj)
        if members.count(name) != 1:
            continue
        try:
            with open(obj, "rb") as f:
                original = f.read()
        except OSError:
            continue
        if _extract(archive, name, scratch) == original:
            hits[obj] = (name, new)
    if not hits:
        return archive
    copy = os.path.join(work, "%d-%s" % (len(os.listdir(work)), os.path.basename(archive)))
    shutil.copyfile(archive, copy)
    stage = tempfile.mkdtemp(prefix="stage-", dir=work)
    for obj, (name, new) in hits.items():
        shutil.copyfile(new, os.path.join(stage, name))
        subprocess.run([_ar_tool(), "r", copy, name], cwd=stage, check=True, timeout=120)
        pending.pop(obj)
    return copy
