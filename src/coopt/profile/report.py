"""The text of `coopt profile show`: hot TUs with their top functions, hot functions, and what lay outside."""

from __future__ import annotations

import os

from coopt.profile.model import OUTSIDE_REASONS, FunctionEntry, Profile


def _pct(share: float | None) -> str:
    return "%5.1f%%" % (100.0 * share) if share is not None else "     -"


def _path(path: str, base: str) -> str:
    """`path` relative to `base` when it lies below it, as given otherwise."""
    try:
        rel = os.path.relpath(path, base)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _describe(p: Profile) -> str:
    w = p.workload
    if w.kind == "record" and w.command:
        what = "`%s`" % " ".join(w.command)
    elif w.kind == "merge":
        what = "merge of %s" % ", ".join("%s (x%g)" % (os.path.basename(m.file), m.weight) for m in p.merged_from)
    else:
        what = w.input or w.kind
    graph = ", call graph: %s" % p.call_graph if p.call_graph else ""
    return "profile of %s: %d samples of %s%s" % (what, p.samples, p.event or "?", graph)


def render(p: Profile, top: int = 15, per_tu: int = 3, functions: int = 10, base: str | None = None) -> str:
    """The ranked tables of profile `p`: `top` TUs with `per_tu` functions each, `functions` hottest functions,
    and the code outside journaled TUs. Paths are shown relative to `base` (default: the working directory)."""
    base = base or os.getcwd()
    chains = p.call_graph is not None
    lib = any(t.library_share is not None for t in p.tus)  # dwarf/lbr chains: library calls credited to callers
    journaled = p.journaled_share
    lines = [
        _describe(p),
        "journaled code: %s in %d TUs; outside: %s"
        % (_pct(journaled).strip(), len(p.tus), _pct(max(0.0, 1 - journaled)).strip()),
        "",
    ]
    by_tu: dict[str, list[FunctionEntry]] = {}
    for f in p.functions:  # already ranked by self share
        by_tu.setdefault(f.object, []).append(f)
    width = max([len(_path(t.source, base)) for t in p.tus[:top]] + [2])
    cols = "%6s %6s" % ("self", "child") if chains else "%6s" % "self"
    cols += " %6s" % "lib" if lib else ""
    head = "%s  %-*s  top functions (self)" % (cols, width, "TU")
    lines.append(head)
    for t in p.tus[:top]:
        hot = [f for f in by_tu.get(t.object, []) if f.samples][:per_tu]
        funcs = ", ".join("%s %s" % (f.label, _pct(f.share).strip()) for f in hot)
        child = " " + _pct(t.children_share) if chains else ""
        child += " " + _pct(t.library_share) if lib else ""
        lines.append("%s%s  %-*s  %s" % (_pct(t.share), child, width, _path(t.source, base), funcs))
    if len(p.tus) > top:
        rest = sum(t.share for t in p.tus[top:])
        lines.append("%s  (%d more TUs)" % (_pct(rest), len(p.tus) - top))

    if functions and p.functions:
        lines += ["", "%s  function (TU, how it was placed)" % cols]
        for f in p.functions[:functions]:
            child = " " + _pct(f.children_share) if chains else ""
            child += " " + _pct(f.library_share) if lib else ""
            lines.append("%s%s  %s  (%s, %s)" % (_pct(f.share), child, f.label, os.path.basename(f.source), f.how))
        top_fn = p.functions[0]
        if top_fn.name == "main" and top_fn.lines is None and top_fn.inlined_into is None:
            lines.append("  (main has no line records: build with -g, or -gline-tables-only, to see which functions "
                         "inlined into it hold the samples)")

    if p.outside:
        lines += ["", "outside journaled code:"]
        for o in p.outside[:top]:
            syms = ", ".join(str(s.get("name")) for s in o.symbols[:per_tu])
            lines.append("%s  %s  [%s] %s" % (_pct(o.share), o.dso, o.reason, syms))
        reasons = sorted({o.reason for o in p.outside})
        lines += ["", *("  %s: %s" % (r, OUTSIDE_REASONS.get(r, "")) for r in reasons)]
    return "\n".join(lines)
