"""Several workloads' profiles -> one.

Each input counts by its weight, not by its length: merged shares are the weighted mean of the inputs' shares
(an input where a TU or function does not appear contributes 0 for it), so a 2 s workload with weight 1 counts as
much as a 60 s one with weight 1. Sample counts (self and children) are summed as they are, for reference; they
are not what the shares are computed from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from typing import TypeVar

from coopt.profile.attribute import TOP_OUTSIDE_SYMBOLS
from coopt.profile.errors import ProfileError
from coopt.profile.model import MAX_LINES, FunctionEntry, MergeInput, OutsideEntry, Profile, TUEntry, Workload

T = TypeVar("T", TUEntry, FunctionEntry, OutsideEntry)
# Optional share/sample pairs (`children_*`, `library_*`): merged only when every input has them.
OPTIONAL = ("children", "library")


def _merge_entries(
    inputs: list[tuple[Profile, float]],
    items: Callable[[Profile], list[T]],
    key: Callable[[T], Hashable],
    known: frozenset[str],
    total_weight: float,
) -> list[T]:
    merged: dict[Hashable, T] = {}
    shares: dict[Hashable, float] = {}
    samples: Counter[Hashable] = Counter()
    lines: dict[Hashable, Counter[int]] = {}  # per-line samples of functions, summed
    extra: dict[str, dict[Hashable, float]] = {prefix: {} for prefix in OPTIONAL}
    extra_samples: dict[str, Counter[Hashable]] = {prefix: Counter() for prefix in OPTIONAL}
    for profile, weight in inputs:
        for item in items(profile):
            k = key(item)
            merged[k] = item  # descriptive fields (compile record, dso, how) from the newest input
            shares[k] = shares.get(k, 0.0) + weight * item.share
            samples[k] += item.samples
            for n, c in (getattr(item, "lines", None) or {}).items():
                lines.setdefault(k, Counter())[int(n)] += c
            for prefix in OPTIONAL:
                s = getattr(item, prefix + "_share", None)
                if s is not None:
                    extra[prefix][k] = extra[prefix].get(k, 0.0) + weight * s
                    extra_samples[prefix][k] += getattr(item, prefix + "_samples", None) or 0
    out: list[T] = []
    for k, item in merged.items():
        fields = dict(item.__dict__)
        fields["share"] = round(shares[k] / total_weight, 6)
        fields["samples"] = samples[k]
        if lines.get(k):
            fields["lines"] = {str(n): c for n, c in lines[k].most_common(MAX_LINES)}
        for prefix in OPTIONAL:
            if prefix + "_share" in fields:
                ok = prefix in known
                fields[prefix + "_share"] = round(extra[prefix].get(k, 0.0) / total_weight, 6) if ok else None
                fields[prefix + "_samples"] = extra_samples[prefix][k] if ok else None
        out.append(type(item)(**fields))
    return out


def merge(inputs: list[tuple[str, Profile]], weights: list[float] | None = None) -> Profile:
    """One profile from `inputs` (file name, profile), weighted by `weights` (default: all 1)."""
    if len(inputs) < 2:
        raise ProfileError("merge needs at least two profiles")
    ws = weights if weights is not None else [1.0] * len(inputs)
    if len(ws) != len(inputs):
        raise ProfileError("%d weights for %d profiles: give one weight per profile" % (len(ws), len(inputs)))
    if any(w < 0 for w in ws) or sum(ws) <= 0:
        raise ProfileError("weights must be non-negative and not all zero")
    total = float(sum(ws))
    pairs = [(p, w) for (_, p), w in zip(inputs, ws, strict=True)]
    chains = all(p.call_graph for p, _ in pairs)
    events = sorted({p.event for p, _ in pairs})
    modes = sorted({p.call_graph for p, _ in pairs if p.call_graph})
    journals = sorted({p.journal for p, _ in pairs})

    known = frozenset(
        (["children"] if chains else [])
        + (["library"] if all(p.tus and all(t.library_share is not None for t in p.tus) for p, _ in pairs) else [])
    )
    outside = _merge_entries(pairs, lambda p: p.outside, lambda o: (o.dso, o.reason), frozenset(), total)
    symbols: dict[tuple[str, str], Counter[str]] = {}
    for p, _ in pairs:
        for o in p.outside:
            c = symbols.setdefault((o.dso, o.reason), Counter())
            for s in o.symbols:
                c[str(s.get("name"))] += int(s.get("samples", 0))
    for o in outside:
        o.symbols = [{"name": n, "samples": c} for n, c in symbols[(o.dso, o.reason)].most_common(TOP_OUTSIDE_SYMBOLS)]

    merged = Profile(
        workload=Workload(kind="merge"),
        event=",".join(events),
        call_graph=",".join(modes) if chains else None,
        journal=",".join(journals),
        samples=sum(p.samples for p, _ in pairs),
        journaled_samples=sum(p.journaled_samples for p, _ in pairs),
        tus=_merge_entries(pairs, lambda p: p.tus, lambda t: t.object, known, total),
        functions=_merge_entries(pairs, lambda p: p.functions, lambda f: (f.object, f.name, f.inlined_into), known,
                                 total),
        outside=outside,
        merged_from=[MergeInput(name, w, p.samples) for (name, p), w in zip(inputs, ws, strict=True)],
    )
    merged.sort()
    return merged
