"""One function of a journaled TU and the context a model needs to rewrite it, read with clang, not with regexes.

Three clang runs over the TU, with the job's own flags in the job's directory:
- `-Xclang -ast-dump=json`: every top-level declaration with its byte range (the function itself; the typedefs,
  records, enums, globals and functions it may use);
- `-E -dD`: every macro definition with the file it comes from; the line markers also say which files are system
  headers (flag 3), whose declarations the model knows already and are left out;
- `-Xclang -dump-raw-tokens`: clang's lexer over a piece of text, for the identifiers it uses.

The context is the closure of "uses": start from the identifiers of the function, add every project declaration or
macro that defines one of them (callees as prototypes only, big initializers left out), then the identifiers of
what was added, until nothing new comes in. Output keeps the order of the source.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from coopt.journal.job import CompileJob

Node = dict[str, Any]

# Top-level declarations worth showing a model, and the ones that are only compiler bookkeeping.
CONTEXT_KINDS = ("TypedefDecl", "RecordDecl", "EnumDecl", "VarDecl", "FunctionDecl")
# A global's initializer longer than this is left out of the context (a lookup table of 4 KB says little).
MAX_INITIALIZER = 240
# A callee defined in the TU is shown whole up to this size (its cost and side effects decide what a rewrite may
# do with its calls), else as a prototype.
MAX_CALLEE = 600
MAX_ROUNDS = 6
CLANG_TIMEOUT = 300


class ExtractError(Exception):
    """The function cannot be extracted (not defined in the TU, made by a macro, clang fails). One line."""


@dataclass(frozen=True)
class ContextItem:
    """One declaration or macro the function needs, as the source spells it."""

    kind: str  # typedef, record, enum, global, callee (a whole small function), prototype, macro
    names: tuple[str, ...]
    text: str
    origin: str  # the file it comes from ("<command line>" for -D macros)
    order: tuple[int, int] = (0, 0)  # (file rank, offset): keeps the source's order


@dataclass
class FunctionSource:
    """A function's definition in its TU, where it sits, and what it needs around it."""

    name: str
    path: str  # the TU's source file, absolute
    start: int  # byte range of the whole definition (specifiers through the closing brace)
    end: int
    text: str
    head: str  # the definition up to the function's name: storage class, inline, return type
    static: bool
    context: list[ContextItem] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)  # the TU's own #include lines, as written
    uses: list[str] = field(default_factory=list)  # identifiers the function uses that the context defines

    def context_text(self) -> str:
        """The context as C: macros first (they may be used in the types), then declarations in source order."""
        items = sorted(self.context, key=lambda i: (i.kind != "macro", i.order))
        return "\n".join(dict.fromkeys(i.text for i in items))


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    line: int
    col: int
    start_of_line: bool


def clang_for(job: CompileJob) -> str:
    """The compiler to ask for ASTs: the job's own when it is clang, else `clang` on PATH."""
    return job.compiler if "clang" in os.path.basename(job.compiler) else "clang"


def _run(cmd: list[str], cwd: str, env: dict[str, str] | None, what: str, ok_codes: tuple[int, ...] = (0,)) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=CLANG_TIMEOUT,
                              errors="replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExtractError("%s failed: %s" % (what, exc)) from exc
    if proc.returncode not in ok_codes:
        first = next((ln for ln in proc.stderr.splitlines() if "error" in ln), proc.stderr.strip()[:200])
        raise ExtractError("%s failed: %s" % (what, first))
    return proc.stdout if what != "lexing" else proc.stderr


def lex(text: str, clang: str = "clang") -> list[Token]:
    """clang's raw lexer over `text` (no preprocessing, no parsing): tokens with line and column."""
    with tempfile.TemporaryDirectory(prefix="coopt-lex-") as d:
        path = os.path.join(d, "t.c")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        out = _run([clang, "-fsyntax-only", "-Xclang", "-dump-raw-tokens", path], d, None, "lexing")
    tokens = []
    # Each token is `kind 'spelling'<TAB>[flags]<TAB>Loc=<file:line:col>`; a spelling may hold newlines, so only
    # lines that end in a location are token ends.
    pending = ""
    for line in out.splitlines():
        pending = pending + "\n" + line if pending else line
        if not line.endswith(">") or "Loc=<" not in line:
            continue
        head, _, loc = pending.rpartition("Loc=<")
        pending = ""
        kind, _, rest = head.partition(" ")
        spelling = rest.split("\t")[0].strip()
        if spelling.startswith("'") and spelling.endswith("'"):
            spelling = spelling[1:-1]
        parts = loc[:-1].rsplit(":", 2)
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            continue
        tokens.append(Token(kind, spelling, int(parts[1]), int(parts[2]), "[StartOfLine]" in head))
    return tokens


def identifiers(text: str, clang: str = "clang") -> set[str]:
    """The identifiers (and keywords) clang's lexer finds in `text`."""
    return {t.text for t in lex(text, clang) if t.kind == "raw_identifier"}


def include_lines(text: str, clang: str = "clang") -> list[str]:
    """The `#include` directives of a file, as written."""
    lines = text.splitlines()
    toks = lex(text, clang)
    out = []
    for a, b in zip(toks, toks[1:], strict=False):
        if a.kind == "hash" and a.start_of_line and b.kind == "raw_identifier" and b.text == "include":
            out.append(lines[a.line - 1].strip())
    return out


# ---- the preprocessor's view: macros and system headers ---------------------------------------------------------


@dataclass(frozen=True)
class Macro:
    name: str
    text: str  # "#define NAME(args) body"
    origin: str
    rank: int


def _preprocessed(job: CompileJob, clang: str) -> tuple[dict[str, Macro], set[str]]:
    """Macro definitions (the last one of each name) and the system headers, from `-E -dD` line markers."""
    cmd = [clang, *job.key_args, "-E", "-dD", job.source]
    out = _run(cmd, job.cwd, job.subprocess_env(), "the preprocessor")
    macros: dict[str, Macro] = {}
    system: set[str] = set()
    current, current_system = "", False
    for rank, line in enumerate(out.splitlines()):
        if line.startswith("# ") and '"' in line:
            # A line marker: `# LINE "FILE" FLAGS`; flag 3 marks a system header.
            _, _, rest = line.partition('"')
            name, _, flags = rest.rpartition('"')
            current = name
            current_system = "3" in flags.split()
            if current_system:
                system.add(job.abspath(current))
            continue
        if line.startswith("#define ") and current != "<built-in>" and not current_system:
            body = line[len("#define "):]
            name = body.split("(", 1)[0].split(None, 1)[0] if body.strip() else ""
            if name:
                macros[name] = Macro(name, line, current, rank)
        elif line.startswith("#undef ") and not current_system:
            macros.pop(line.split()[1] if len(line.split()) > 1 else "", None)
    return macros, system


# ---- the AST's view: top-level declarations and their ranges ----------------------------------------------------


@dataclass
class _Decl:
    node: Node
    file: str
    begin: int
    end: int  # one past the last byte


def _loc_offset(loc: Any) -> int | None:
    """The byte offset a location has in its file, through a macro expansion to where it was expanded."""
    if not isinstance(loc, dict):
        return None
    if "expansionLoc" in loc:
        return _loc_offset(loc["expansionLoc"])
    off = loc.get("offset")
    return off if isinstance(off, int) else None


def _see(loc: Any, state: list[str]) -> None:
    """Follow the dump's rule that a location names its file only when it differs from the one printed last."""
    if not isinstance(loc, dict):
        return
    for sub in ("spellingLoc", "expansionLoc"):
        _see(loc.get(sub), state)
    if "file" in loc:
        state[0] = loc["file"]


def _walk(node: Node, state: list[str]) -> None:
    _see(node.get("loc"), state)
    rng = node.get("range")
    if isinstance(rng, dict):
        _see(rng.get("begin"), state)
        _see(rng.get("end"), state)
    for child in node.get("inner", ()):
        _walk(child, state)


def top_level(root: Node) -> Iterator[_Decl]:
    """Every top-level declaration with a source range: the file it starts in and its byte range there."""
    state = [""]
    for node in root.get("inner", ()):
        _see(node.get("loc"), state)
        rng = node.get("range") or {}
        _see(rng.get("begin"), state)
        file = state[0]
        _see(rng.get("end"), state)
        for child in node.get("inner", ()):
            _walk(child, state)
        begin, end = _loc_offset(rng.get("begin")), _loc_offset(rng.get("end"))
        if node.get("isImplicit") or begin is None or end is None or not file:
            continue
        end_tok = rng["end"].get("expansionLoc", rng["end"])
        yield _Decl(node, file, begin, end + int(end_tok.get("tokLen", 1)))


def ast(job: CompileJob, source: str, clang: str, extra: Sequence[str] = (), ok_codes: tuple[int, ...] = (0,)) -> Node:
    """clang's JSON AST of `source` compiled with the job's flags (plus `extra`), in the job's directory."""
    cmd = [clang, *job.key_args, *extra, "-fsyntax-only", "-Xclang", "-ast-dump=json", source]
    out = _run(cmd, job.cwd, job.subprocess_env(), "clang's AST dump", ok_codes)
    try:
        root = json.loads(out)
    except ValueError as exc:
        raise ExtractError("clang's AST dump is not JSON: %s" % exc) from exc
    if not isinstance(root, dict):
        raise ExtractError("clang's AST dump has no translation unit")
    return root


def body_of(node: Node) -> Node | None:
    return next((c for c in node.get("inner", ()) if c.get("kind") == "CompoundStmt"), None)


def name_offset(node: Node) -> int | None:
    """Where the declared name starts (the node's own location)."""
    return _loc_offset(node.get("loc"))


# ---- putting it together ----------------------------------------------------------------------------------------


def _read(path: str, cache: dict[str, bytes]) -> bytes:
    if path not in cache:
        with open(path, "rb") as f:
            cache[path] = f.read()
    return cache[path]


def _with_semicolon(data: bytes, end: int) -> int:
    """Extend a declaration's range over the `;` that ends it (ranges stop at the last declarator)."""
    i = end
    while i < len(data) and data[i:i + 1] in (b" ", b"\t"):
        i += 1
    return i + 1 if data[i:i + 1] == b";" else end


def _item(d: _Decl, data: bytes, path: str, rank: int) -> ContextItem | None:
    node, kind = d.node, d.node.get("kind", "")
    text = data[d.begin:d.end]
    names = [node.get("name", "")]
    if kind == "FunctionDecl":
        body = body_of(node)
        if body is not None and d.end - d.begin <= MAX_CALLEE:
            return ContextItem("callee", tuple(names), text.decode("utf-8", "replace"), path, (rank, d.begin))
        if body is not None:
            # A large callee is shown by its prototype: the model needs its type more than its code.
            start = _loc_offset(body["range"]["begin"])
            if start is None:
                return None
            text = data[d.begin:start].rstrip()
        return ContextItem("prototype", tuple(names), text.decode("utf-8", "replace") + ";", path, (rank, d.begin))
    if kind == "VarDecl":
        inits = [c for c in node.get("inner", ()) if "range" in c]
        if node.get("init") and inits and d.end - d.begin > MAX_INITIALIZER:
            start = _loc_offset(inits[0]["range"]["begin"])
            if start is not None:
                head = data[d.begin:start].rstrip().rstrip(b"=").rstrip()
                return ContextItem("global", tuple(names), head.decode("utf-8", "replace")
                                   + " = { ... };  /* initializer left out */", path, (rank, d.begin))
        kind_name = "global"
    elif kind == "EnumDecl":
        names += [c.get("name", "") for c in node.get("inner", ()) if c.get("kind") == "EnumConstantDecl"]
        kind_name = "enum"
    elif kind == "RecordDecl":
        if not node.get("completeDefinition"):
            return None
        kind_name = "record"
    else:
        kind_name = "typedef"
    end = _with_semicolon(data, d.end)
    text = data[d.begin:end]
    return ContextItem(kind_name, tuple(n for n in names if n), text.decode("utf-8", "replace"), path,
                       (rank, d.begin))


def _merge_nested(decls: list[_Decl]) -> list[_Decl]:
    """`typedef struct s {...} s_t;` is a RecordDecl inside a TypedefDecl's range: keep the outer one, but let it
    define the inner one's names too (returned as extra names on the node)."""
    decls = sorted(decls, key=lambda d: (d.file, d.begin, -d.end))
    out: list[_Decl] = []
    for d in decls:
        if out and out[-1].file == d.file and d.begin >= out[-1].begin and d.end <= out[-1].end:
            outer = out[-1].node
            extra = outer.setdefault("__coopt_names", [])
            extra.append(d.node.get("name", ""))
            extra.extend(c.get("name", "") for c in d.node.get("inner", ()) if c.get("kind") == "EnumConstantDecl")
            continue
        out.append(d)
    return out


def extract(job: CompileJob, function: str, clang: str = "") -> FunctionSource:
    """The definition of `function` in `job`'s TU and the declarations and macros it needs."""
    clang = clang or clang_for(job)
    source = job.source_path
    root = ast(job, job.source, clang)
    macros, system = _preprocessed(job, clang)
    files: dict[str, bytes] = {}
    ranks: dict[str, int] = {}
    candidates: list[_Decl] = []
    target: _Decl | None = None
    for d in top_level(root):
        path = job.abspath(d.file)
        if path in system or d.node.get("kind") not in CONTEXT_KINDS:
            continue
        d.file = path
        ranks.setdefault(path, len(ranks))
        if d.node.get("name") == function and d.node.get("kind") == "FunctionDecl" and body_of(d.node) is not None:
            if path != source:
                raise ExtractError("%s is defined in %s, not in the TU's own file" % (function, path))
            target = d
            continue
        if d.node.get("name") == function:
            continue  # its own prototypes
        candidates.append(d)
    if target is None:
        raise ExtractError("%s is not defined in %s" % (function, source))
    node = target.node
    # A macro may lead the definition (zlib's `local` for static, `ZEXPORT`, an attribute macro): the text from
    # that macro's use to the closing brace is still written in the file. Only a definition whose name or end a
    # macro produces (`MAKE_GETTER(get_seven, 7)`) has no source to rewrite in place.
    if "expansionLoc" in node.get("loc", {}) or "expansionLoc" in node["range"]["end"]:
        raise ExtractError("%s is defined through a macro; its source cannot be rewritten in place" % function)
    data = _read(source, files)
    name_at = name_offset(node)
    if name_at is None or not target.begin <= name_at < target.end:
        raise ExtractError("%s: clang gives no location for its name" % function)
    text = data[target.begin:target.end].decode("utf-8", "replace")
    head = data[target.begin:name_at].decode("utf-8", "replace")

    items: list[ContextItem] = []
    for d in _merge_nested(candidates):
        item = _item(d, _read(d.file, files), d.file, ranks[d.file])
        if item is not None:
            extra = tuple(n for n in d.node.get("__coopt_names", []) if n)
            items.append(ContextItem(item.kind, item.names + extra, item.text, item.origin, item.order))
    for m in macros.values():
        items.append(ContextItem("macro", (m.name,), m.text, m.origin, (-1, m.rank)))

    wanted = identifiers(text, clang) - {function}
    chosen: list[ContextItem] = []
    seen: set[int] = set()
    uses = sorted(n for n in wanted if any(n in i.names for i in items))
    for _ in range(MAX_ROUNDS):
        picked = [k for k, i in enumerate(items) if k not in seen and wanted & set(i.names)]
        if not picked:
            break
        seen.update(picked)
        new = [items[k] for k in picked]
        chosen += new
        wanted = identifiers("\n".join(i.text for i in new), clang) - wanted
    return FunctionSource(
        name=function, path=source, start=target.begin, end=target.end, text=text, head=head,
        static=node.get("storageClass") == "static", context=chosen,
        includes=include_lines(data.decode("utf-8", "replace"), clang), uses=uses,
    )


def absolute_flags(job: CompileJob) -> list[str]:
    """The job's flags with include paths made absolute, and the source's own directory as a quote include
    path first, so the TU (or a rewrite of it kept elsewhere) compiles from any directory."""
    takes_path = ("-I", "-iquote", "-isystem", "-idirafter", "-include", "-imacros", "-isysroot", "--sysroot")
    out = ["-iquote", os.path.dirname(job.source_path)]
    args = list(job.key_args)
    i = 0
    while i < len(args):
        a = args[i]
        if a in takes_path and i + 1 < len(args):
            out += [a, job.abspath(args[i + 1])]
            i += 2
            continue
        joined = next((p for p in ("-I", "-iquote", "-isystem", "-idirafter") if a.startswith(p) and a != p), None)
        if joined is not None:
            out.append(joined + job.abspath(a[len(joined):]))
        elif a.startswith("--sysroot="):
            out.append("--sysroot=" + job.abspath(a[len("--sysroot="):]))
        else:
            out.append(a)
        i += 1
    return out
