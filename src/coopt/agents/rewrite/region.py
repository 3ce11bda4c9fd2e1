"""The hot region of a function too long for the model: the statement that holds its hottest lines.

A long function (a benchmark's `main` with all its work in loops) cannot be sent whole: the prompt may fit, but
the rewritten function would not fit in one answer, and every sample would be cut at max_tokens. So the model gets
the part that matters: the profile's per-line samples (profile/inline.py) say where the time goes, and clang's
AST says which statements hold that line. The region is the largest loop, `if`, `switch` or block around the
hottest line whose text fits the answer allowance, never the whole body, or a run of consecutive statements around
that line that hold samples, where the run is larger (straight-line code, a loop too long for one answer around
small statements). It comes with the function's head (its parameters) and the local declarations the region
uses. The answer replaces exactly the region's bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from coopt.agents.rewrite.context import FunctionSource, Node, ast, body_of, identifiers, top_level
from coopt.journal.job import CompileJob

STATEMENTS = ("ForStmt", "WhileStmt", "DoStmt", "IfStmt", "SwitchStmt", "CompoundStmt")
# A run of statements never holds a label or a case: a rewrite could drop a jump's target or a switch's arm.
RUN_BREAKERS = ("CaseStmt", "DefaultStmt", "LabelStmt")


@dataclass(frozen=True)
class Region:
    """A statement of the function: its byte range in the TU's source, its lines, the samples it holds."""

    begin: int
    end: int
    text: str
    first_line: int
    last_line: int
    samples: int
    total: int  # the function's samples with a line
    head: str  # the function up to its body's opening brace
    locals: list[str] = field(default_factory=list)  # declarations of the function the region uses, as spelled

    def share(self) -> float:
        return self.samples / self.total if self.total else 0.0


def _offset(loc: object) -> int | None:
    if not isinstance(loc, dict):
        return None
    if "expansionLoc" in loc:
        return None  # made by a macro: not a range of the source to replace
    off = loc.get("offset")
    return off if isinstance(off, int) else None


def _span(node: Node) -> tuple[int, int] | None:
    rng = node.get("range") or {}
    b, e = _offset(rng.get("begin")), _offset(rng.get("end"))
    if b is None or e is None:
        return None
    return b, e + int(rng["end"].get("tokLen", 1))


def _walk(node: Node) -> Iterator[Node]:
    for child in node.get("inner", ()) or ():
        if isinstance(child, dict):
            yield child
            yield from _walk(child)


def _line(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def hot_region(job: CompileJob, fs: FunctionSource, lines: dict[int, int], max_chars: int, clang: str
               ) -> Region | None:
    """The region of `fs` to send, or None when no statement around its hottest line fits `max_chars`."""
    with open(fs.path, "rb") as f:
        data = f.read()
    first, last = _line(data, fs.start), _line(data, fs.end)
    inside = {ln: n for ln, n in lines.items() if first <= ln <= last and n > 0}
    if not inside:
        return None
    hottest = max(sorted(inside), key=lambda ln: inside[ln])
    root = ast(job, job.source, clang)
    decl = next((d for d in top_level(root) if d.node.get("kind") == "FunctionDecl" and d.node.get("name") == fs.name
                 and job.abspath(d.file) == fs.path and body_of(d.node) is not None), None)
    if decl is None:
        return None
    body = body_of(decl.node)
    assert body is not None
    body_span = _span(body)
    if body_span is None:
        return None
    best: tuple[int, int] | None = None
    declared: list[tuple[int, int, set[str]]] = []
    for node in _walk(body):
        span = _span(node)
        if span is None:
            continue
        if node.get("kind") == "DeclStmt":
            names = {c.get("name", "") for c in node.get("inner", ()) if c.get("kind") == "VarDecl"}
            declared.append((span[0], span[1], names))
            continue
        if node.get("kind") not in STATEMENTS or span == body_span:
            continue
        if not _line(data, span[0]) <= hottest <= _line(data, span[1]) or span[1] - span[0] > max_chars:
            continue
        if best is None or span[1] - span[0] > best[1] - best[0]:
            best = span
    # A run of sampled statements around the line may hold more of the time than any statement that fits (the
    # unrolled compares of bzip2's mainGtU: each `if` fits, the loop around them does not).
    run = _statement_run(data, body, hottest, max_chars, inside)
    if run is not None and (best is None or run[1] - run[0] > best[1] - best[0]):
        best = run
    if best is None:
        return None
    b, e = best
    text = data[b:e].decode("utf-8", "replace")
    lo, hi = _line(data, b), _line(data, e)
    used = identifiers(text, clang)
    local_decls = []
    for db, de, names in declared:
        if de <= b and names & used:
            end = de + 1 if data[de:de + 1] == b";" else de
            local_decls.append(data[db:end].decode("utf-8", "replace").strip())
    head = data[fs.start:body_span[0]].decode("utf-8", "replace").rstrip()
    return Region(b, e, text, lo, hi, sum(n for ln, n in inside.items() if lo <= ln <= hi), sum(inside.values()),
                  head, list(dict.fromkeys(local_decls)))


def _statement_run(data: bytes, body: Node, hottest: int, max_chars: int, lines: dict[int, int]
                   ) -> tuple[int, int] | None:
    """The largest run of consecutive statements of a block holding the hottest line: the statement holding it,
    grown toward the hotter neighbour while the neighbours hold samples and the run fits `max_chars`. Never a label,
    a case or a statement made by a macro, never every statement of the body."""
    def holds(span: tuple[int, int] | None) -> bool:
        return span is not None and _line(data, span[0]) <= hottest <= _line(data, span[1])

    best: tuple[int, int] | None = None
    for block in [body, *_walk(body)]:
        if block.get("kind") == "CompoundStmt" and holds(_span(block)):
            run = _grow(data, block, block is body, holds, max_chars, lines)
            if run is not None and (best is None or run[1] - run[0] > best[1] - best[0]):
                best = run
    return best


def _grow(data: bytes, block: Node, is_body: bool, holds: Callable[[tuple[int, int] | None], bool],
          max_chars: int, lines: dict[int, int]) -> tuple[int, int] | None:
    kids: list[tuple[int, int] | None] = []
    for child in block.get("inner", ()) or ():
        span = _span(child) if isinstance(child, dict) and child.get("kind") not in RUN_BREAKERS else None
        if span is not None and data[span[1]:span[1] + 1] == b";":
            span = (span[0], span[1] + 1)  # an expression, return or `if` statement's range stops before its ';'
        kids.append(span)
    at = next((i for i, sp in enumerate(kids) if holds(sp)), None)
    if at is None:
        return None

    def samples(i: int) -> int:
        sp = kids[i]
        if sp is None:
            return 0
        lo, hi = _line(data, sp[0]), _line(data, sp[1])
        return sum(n for ln, n in lines.items() if lo <= ln <= hi)

    def fits(i: int, j: int) -> bool:
        first, last = kids[i], kids[j]
        return first is not None and last is not None and last[1] - first[0] <= max_chars

    lo = hi = at
    if not fits(lo, hi):
        return None
    while True:
        # The hotter neighbour first; of two as hot, the side the run has grown less (it stays around the line).
        options = sorted(((samples(i), -abs(i - at), i) for i in (lo - 1, hi + 1)
                          if 0 <= i < len(kids) and samples(i) > 0), reverse=True)
        grown = next(((min(lo, i), max(hi, i)) for _, _, i in options if fits(min(lo, i), max(hi, i))), None)
        if grown is None:
            break
        lo, hi = grown
    if is_body and lo == 0 and hi == len(kids) - 1:
        return None
    first, last = kids[lo], kids[hi]
    assert first is not None and last is not None
    return first[0], last[1]


def describe(region: Region, path: str) -> str:
    """`lines 12-30 of prog.c, 93% of the function's samples`."""
    return "lines %d-%d of %s, %.0f%% of the function's samples" % (
        region.first_line, region.last_line, os.path.basename(path), 100 * region.share())
