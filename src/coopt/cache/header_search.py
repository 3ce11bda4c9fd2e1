"""Put time: may a hit on this TU skip the compiler run? The "negative lookups" that make its header search certain.

A hit normally runs the real compiler with -fsyntax-only (wrapper/serve.py) to re-print diagnostics, fail where
clang fails, and notice a NEW header that shadows a recorded one. A *direct* hit skips that run. It is allowed only
when the original compile printed nothing at all (decided by put.check_original) and the header search is
recorded completely enough that a few stats prove clang would resolve every include to the same files again.

What is recorded, per result in the manifest (cache/manifest.py checks it on the hit path):

- `absent P` for every path clang tried and did not find before the file it used: for each active `#include`,
  `#import` and `#include_next` (as clang's `-E -dI` prints them, macro-named includes already expanded) and for
  each `__has_include`/`__has_include_next` written with a literal header name, the candidate `<dir>/<name>` of
  each search directory looked at before the one that held the header (all of them when none did). The
  search directories are the including file's own directory (quoted forms only), then clang's `-v` search list
  (-iquote, -I, -isystem, -idirafter, the system directories), with include_next starting after the including
  file's directory;
- `absent D` for every directory clang named as nonexistent and dropped from the list (it would join the list
  if created), `isdir D` for every directory on the list;
- `isfile P` for a header a `__has_include` found (its result flips when the file goes away);
- `dirstat INO MTIME_NS D` for the parent of each GCC installation clang considered (a new GCC version changes
  which installation the driver picks).

Why this is complete. Given unchanged inputs (the key: compiler, arguments, environment, every read file's
content), clang's preprocessing is a function of what its lookups find. Every lookup it performs is one of the
directives or `__has_include`s above; for each, the answer depends only on which candidate paths are regular
files. The candidates up to the found one are exactly the recorded ones: each earlier one must still be absent
(a shadowing header has to be created at exactly that path - including inside a subdirectory such as `sys/`
that did not exist before, which also leaves that path absent until the file itself appears), and the found one
still has its recorded content (the manifest's dep hashes). Directives in inactive code are not evaluated, and
which code is active is decided by content that is hashed. So the include chain, and therefore every file read,
is the same as at put time.

Why exact paths rather than directory mtimes: in-tree builds write objects into the directory that quoted
includes search first, so its mtime changes on every compile and a directory-level record would almost never
hold. A path that must stay absent is unaffected by unrelated files.

Anything this module cannot reason about leaves the result as `direct check <why>` (the hit keeps the
-fsyntax-only run): diagnostics printed, -include/-imacros, header maps, frameworks, VFS overlays, modules,
#embed/__has_embed, a __has_include whose argument is not a literal, #line renaming a file, include_next from a
file not found on the search list, or any disagreement between this simulation and what clang entered.
Not covered (documented residual): the driver silently probing for directories it does not report (on Linux,
the multiarch include directory, which every Debian system has).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from coopt.journal.job import CompileJob

# Arguments whose effect on the header search this module does not model.
_UNMODELLED_ARGS = ("-include", "-imacros", "-ivfsoverlay", "-fmodules", "-fimplicit-module-maps", "-iframework",
                    "--config", "-fmodule-map-file", "-fsystem-include-if-exists",
                    "-fms-compatibility")  # MSVC mode: quoted includes also search the whole include stack

_MARKER = re.compile(r'^# (\d+) "((?:[^"\\]|\\.)*)"((?: \d+)*)$')
_DIRECTIVE = re.compile(r'^#(include|include_next|import) (?:<(.*)>|"(.*)") /\* clang -E -dI \*/$')
_HAS_INCLUDE = re.compile(rb"\b__has_(include_next|include|embed)\b")
_EMBED = re.compile(rb"^[ \t]*#[ \t]*embed\b", re.M)
_HAS_ARG = re.compile(rb'\s*\(\s*(?:<([^>\n]*)>|"([^"\n]*)")\s*\)')
_DEFINED_BEFORE = re.compile(rb"(?:#[ \t]*(?:ifdef|ifndef)|\bdefined)[ \t]*\(?[ \t]*$")


class NeedsCheck(Exception):
    """The hit must keep the compiler run; the message is a short reason word for the manifest and the log."""


@dataclass
class DirectState:
    """A result's direct-hit record: `clean` with its checks, or the reason it keeps the compiler run."""

    clean: bool
    reason: str = ""
    checks: list[tuple[str, str]] = field(default_factory=list)  # (kind, argument) as manifest.py stores them


@dataclass
class SearchList:
    """clang's include search for one job, from `-v`."""

    quote: list[str]
    angled: list[str]
    nonexistent: list[str]
    gcc_roots: list[str]

    @property
    def all(self) -> list[str]:
        return self.quote + self.angled


def parse_search_list(stderr: str) -> SearchList:
    """The search directories, dropped nonexistent ones and GCC installation roots that `clang -v` printed."""
    quote: list[str] = []
    angled: list[str] = []
    missing: list[str] = []
    roots: list[str] = []
    section = None
    for line in stderr.splitlines():
        if line.startswith("Found candidate GCC installation: "):
            roots.append(os.path.dirname(line.split(": ", 1)[1].rstrip("/")))
        elif line.startswith('ignoring nonexistent directory "') and line.endswith('"'):
            missing.append(line[len('ignoring nonexistent directory "'):-1])
        elif line.startswith('#include "..." search starts here:'):
            section = quote
        elif line.startswith("#include <...> search starts here:"):
            section = angled
        elif line.startswith("End of search list."):
            section = None
        elif section is not None and line.startswith(" "):
            d = line[1:]
            if d.endswith(")"):
                raise NeedsCheck("search_dir_kind")  # "(framework directory)", "(headermap)"
            section.append(d)
    if not angled:
        raise NeedsCheck("no_search_list")
    return SearchList(quote, angled, missing, sorted(set(roots)))


def _kind(path: str, cwd: str) -> str:
    """'file', 'absent' or 'other' for a candidate path, as clang's lookup would see it."""
    full = path if os.path.isabs(path) else os.path.join(cwd, path)
    try:
        st = os.stat(full)
    except (FileNotFoundError, NotADirectoryError):
        return "absent"
    except OSError:
        return "other"
    import stat as statmod

    return "file" if statmod.S_ISREG(st.st_mode) else "other"


def _ident(path: str, cwd: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path if os.path.isabs(path) else os.path.join(cwd, path))
    except OSError:
        return None
    return st.st_dev, st.st_ino


class _Search:
    """Replays clang's lookups, collecting the candidates that must stay absent."""

    def __init__(self, sl: SearchList, cwd: str) -> None:
        self.sl = sl
        self.cwd = cwd
        self.absent: dict[str, None] = {}  # ordered set
        self.present: dict[str, None] = {}
        self.found_in: dict[tuple[int, int], int] = {}  # file identity -> index in sl.all where it was found

    def lookup(self, includer: str, name: str, angled: bool, nxt: bool) -> tuple[str, int] | None:
        """Where `name` resolves from `includer`: (path, index in sl.all or -1), or None when nowhere."""
        if "\n" in name or not name:
            raise NeedsCheck("odd_name")
        if os.path.isabs(name):
            return (name, -1) if _kind(name, self.cwd) == "file" else None
        dirs: list[tuple[str, int]] = []
        if nxt:
            ident = _ident(includer, self.cwd)
            if ident is None or ident not in self.found_in or self.found_in[ident] < 0:
                raise NeedsCheck("include_next_origin")
            start = self.found_in[ident] + 1
            dirs = [(d, i) for i, d in enumerate(self.sl.all) if i >= start]
        else:
            if not angled:
                dirs.append((os.path.dirname(includer), -1))
                dirs.extend((d, i) for i, d in enumerate(self.sl.quote))
            off = len(self.sl.quote)
            dirs.extend((d, off + i) for i, d in enumerate(self.sl.angled))
        for d, idx in dirs:
            cand = os.path.join(d, name) if d else name
            kind = _kind(cand, self.cwd)
            if kind == "file":
                ident = _ident(cand, self.cwd)
                if ident is not None:
                    self.found_in.setdefault(ident, idx)
                return cand, idx
            if kind != "absent":
                raise NeedsCheck("candidate_not_a_file")
            if "\n" in cand or "\r" in cand:
                raise NeedsCheck("odd_name")
            self.absent[cand] = None
        return None


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)


def replay_directives(text: str, search: _Search, dep_ids: set[tuple[int, int]], source: str) -> None:
    """Replay every include clang's `-E -dI` output shows, checking each against the file clang entered."""
    stack: list[str] = []
    pending: tuple[str, tuple[int, int] | None] | None = None  # the last directive's result, until its marker
    for line in text.splitlines():
        if not line.startswith("#"):
            if line.strip():
                _settle(pending, None, dep_ids)
                pending = None
            continue
        m = _MARKER.match(line)
        if m:
            name = _unescape(m.group(2))
            flags = m.group(3).split()
            if "1" in flags:
                _settle(pending, _ident(name, search.cwd), dep_ids)
                pending = None
                stack.append(name)
            elif "2" in flags:
                _settle(pending, None, dep_ids)
                pending = None
                if stack:
                    stack.pop()
                if stack and stack[-1] != name:
                    raise NeedsCheck("line_marker")
            elif not stack:
                stack.append(name)
            elif stack[-1] != name:
                raise NeedsCheck("line_directive")  # #line renamed the file: its directory is unknown here
            continue
        d = _DIRECTIVE.match(line)
        if d is None:
            continue  # #pragma and the like
        _settle(pending, None, dep_ids)
        pending = None
        if not stack or stack[-1].startswith("<"):
            raise NeedsCheck("command_line_include")
        includer = stack[-1]
        angled = d.group(2) is not None
        name = d.group(2) if angled else d.group(3)
        hit = search.lookup(includer, name, angled, d.group(1) == "include_next")
        if hit is None:
            raise NeedsCheck("unresolved_include")
        pending = (hit[0], _ident(hit[0], search.cwd))
    _settle(pending, None, dep_ids)
    if not stack or _ident(stack[0], search.cwd) != _ident(source, search.cwd):
        raise NeedsCheck("main_file")


def _settle(pending: tuple[str, tuple[int, int] | None] | None, entered: tuple[int, int] | None,
            dep_ids: set[tuple[int, int]]) -> None:
    """A directive's simulated result must be what clang entered next, or (include guard) a file already read."""
    if pending is None:
        return
    _, ident = pending
    if ident is None:
        raise NeedsCheck("simulation")
    if entered is not None:
        if entered != ident:
            raise NeedsCheck("simulation")
    elif ident not in dep_ids:
        raise NeedsCheck("simulation")


def strip_comments(data: bytes) -> bytes:
    """C source with comments blanked (string and character literals kept), for scanning what is code."""
    data = data.replace(b"\\\r\n", b"").replace(b"\\\n", b"")
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        c = data[i : i + 1]
        if c == b"/" and data[i + 1 : i + 2] == b"*":
            end = data.find(b"*/", i + 2)
            i = n if end < 0 else end + 2
            out += b" "
        elif c == b"/" and data[i + 1 : i + 2] == b"/":
            end = data.find(b"\n", i)
            i = n if end < 0 else end
        elif c in (b'"', b"'"):
            j = i + 1
            while j < n and data[j : j + 1] not in (c, b"\n"):
                j += 2 if data[j : j + 1] == b"\\" else 1
            out += data[i : j + 1]
            i = j + 1
        else:
            out += c
            i += 1
    return bytes(out)


def has_include_uses(data: bytes) -> list[tuple[str, bool, bool]]:
    """The (name, angled, next) of every `__has_include` in a file. Raises NeedsCheck for a form not modelled."""
    if b"__has_" not in data and b"embed" not in data:
        return []
    code = strip_comments(data)
    if _EMBED.search(code):
        raise NeedsCheck("embed")
    uses: list[tuple[str, bool, bool]] = []
    for m in _HAS_INCLUDE.finditer(code):
        if m.group(1) == b"embed":
            raise NeedsCheck("embed")
        arg = _HAS_ARG.match(code, m.end())
        if arg is not None:
            angled = arg.group(1) is not None
            raw = arg.group(1) if angled else arg.group(2)
            uses.append((raw.decode("utf-8", "surrogateescape"), angled, m.group(1) == b"include_next"))
            continue
        line_start = code.rfind(b"\n", 0, m.start()) + 1
        after = code[m.end() : m.end() + 64].lstrip(b" \t")
        if _DEFINED_BEFORE.search(code[line_start : m.start()]) and not after.startswith(b"("):
            continue  # `#ifdef __has_include`, `defined(__has_include)`: asks whether the feature exists
        raise NeedsCheck("has_include_form")
    return uses


def _unmodelled(key_args: list[str]) -> str | None:
    for arg in key_args:
        if arg.startswith("-F") and len(arg) >= 2:
            return "framework"
        for opt in _UNMODELLED_ARGS:
            if arg.startswith(opt):
                return opt.lstrip("-").replace("-", "_")
    return None


def analyse(job: CompileJob, deps: list[str], timeout: float = 600) -> DirectState:
    """The direct-hit record for `job`, whose preprocessor reads `deps` (source first, as clang names them)."""
    why = _unmodelled(job.key_args)
    if why:
        return DirectState(False, why)
    try:
        return DirectState(True, "", _checks(job, deps, timeout))
    except NeedsCheck as exc:
        return DirectState(False, str(exc))
    except (OSError, subprocess.SubprocessError, UnicodeError, ValueError):
        return DirectState(False, "analysis_failed")  # optional: the hit simply keeps the compiler run


def _checks(job: CompileJob, deps: list[str], timeout: float) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="coopt-lookups-") as tmp:
        out = os.path.join(tmp, "tu.i")
        proc = subprocess.run(
            [job.compiler, *job.key_args, "-fno-color-diagnostics", "-E", "-dI", "-v", job.source, "-o", out],
            cwd=job.cwd, capture_output=True, timeout=timeout, env=job.subprocess_env(),
        )
        if proc.returncode != 0:
            raise NeedsCheck("preprocess_failed")
        with open(out, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    sl = parse_search_list(proc.stderr.decode("utf-8", "surrogateescape"))
    cwd = job.cwd
    search = _Search(sl, cwd)
    dep_ids = {i for i in (_ident(p, cwd) for p in deps) if i is not None}
    replay_directives(text, search, dep_ids, job.source)
    for path in deps:
        full = path if os.path.isabs(path) else os.path.join(cwd, path)
        with open(full, "rb") as f:
            data = f.read()
        for name, angled, nxt in has_include_uses(data):
            hit = search.lookup(path, name, angled, nxt)
            if hit is not None:
                search.present[hit[0]] = None
    checks: list[tuple[str, str]] = []
    for d in sl.all:
        checks.append(("isdir", d))
    for d in sl.nonexistent:
        if _kind(d, cwd) != "absent":
            raise NeedsCheck("dropped_dir_exists")
        checks.append(("absent", d))
    now = time.time_ns()
    for root in sl.gcc_roots:
        try:
            st = os.stat(root if os.path.isabs(root) else os.path.join(cwd, root))
        except OSError:
            raise NeedsCheck("gcc_root") from None
        if st.st_mtime_ns > now - 2_000_000_000:
            raise NeedsCheck("gcc_root_too_new")  # a change within the same clock tick could go unseen
        checks.append(("dirstat", "%d %d %s" % (st.st_ino, st.st_mtime_ns, root)))
    checks.extend(("absent", p) for p in search.absent)
    checks.extend(("isfile", p) for p in search.present)
    for _, arg in checks:
        if "\n" in arg or "\r" in arg:
            raise NeedsCheck("odd_name")
    return checks
