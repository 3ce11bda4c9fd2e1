"""Samples -> functions -> the journaled TUs that define them.

perf names each frame's function (symbol + offset, in the binary or shared library it ran in). The function's TU
is the journaled object that defines that name with the same size as the symbol that ran. When several TUs define
it (static functions sharing a name), the ties are broken by the binary's journaled link, its DWARF compile units,
then its STT_FILE symbols; each function records which rule decided (`how`). A sample that no rule can place is
counted outside journaled code with a reason, never dropped.

Addresses matter only to tell same-named symbols of one binary apart. perf prints runtime addresses for one-line
samples of PIE code and shared libraries, file-relative ones in call chains, so an address is used only through
the load bias of its process and binary: from the mmap event that covers it (start - file offset, adjusted by the
ELF segment), else measured on frames whose symbol is unique in that binary (ip - symbol address - offset). The
result must land exactly on one of the symbols' addresses, or the address is not trusted at all.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from coopt.profile.errors import ProfileError
from coopt.profile.inline import Inliner, in_source
from coopt.profile.model import MAX_LINES, FunctionEntry, OutsideEntry, Profile, TUEntry, Workload
from coopt.profile.script import Frame, Mapping, Sample
from coopt.profile.symbols import DsoSymbol, DsoTable, Segment, cu_source, dwarfdump_tool, load_segments, load_table
from coopt.profile.tus import Definition, JournalIndex, nm_tool

TOP_OUTSIDE_SYMBOLS = 10
_KERNEL_START = 0xFFFF800000000000
LIBRARY_CREDIT_MODES = ("dwarf", "lbr")


@dataclass(frozen=True)
class Placed:
    """Where one frame's function went: a TU (object) and the rule that decided, or a reason it stayed outside."""

    object: str | None
    how: str = ""
    reason: str = ""


def _outside(reason: str) -> Placed:
    return Placed(None, reason=reason)


class Attributor:
    """Places frames; remembers symbol tables, load biases and decisions across a whole recording."""

    def __init__(self, index: JournalIndex, mappings: Iterable[Mapping] = ()) -> None:
        self.index = index
        self._maps: dict[tuple[str, str], list[Mapping]] = {}
        for m in mappings:
            self._maps.setdefault((m.proc, m.path), []).append(m)
        self._segments: dict[str, list[Segment]] = {}
        self._nm = nm_tool()
        self._dwarf = dwarfdump_tool()
        self._tables: dict[str, DsoTable | None] = {}
        self._anchors: dict[tuple[str, str], dict[str, tuple[int, int]]] = {}
        self._bias: dict[tuple[str, str], int | None] = {}
        self._by_name: dict[tuple[str, str], Placed | None] = {}
        self._by_entry: dict[tuple[str, str, int | None], Placed] = {}

    def observe(self, sample: Sample) -> None:
        """Remember frames that can measure a load bias (called for every sample before any `place`)."""
        for fr in sample.frames:
            if fr.off is not None and fr.sym != "[unknown]":
                self._anchors.setdefault((sample.proc, fr.dso), {}).setdefault(fr.sym, (fr.ip, fr.off))

    def _table(self, dso: str) -> DsoTable | None:
        if dso not in self._tables:
            self._tables[dso] = load_table(self._nm, dso) if os.path.isabs(dso) else None
        return self._tables[dso]

    def _measure_bias(self, anchors: dict[str, tuple[int, int]], table: DsoTable) -> int | None:
        votes: Counter[int] = Counter()
        for sym, (ip, off) in anchors.items():
            entries = table.by_name.get(sym)
            if entries is not None and len(entries) == 1:
                votes[ip - entries[0].addr - off] += 1
        return votes.most_common(1)[0][0] if votes else None

    def _anchor_bias(self, proc: str, dso: str, table: DsoTable) -> int | None:
        key = (proc, dso)
        if key not in self._bias:
            bias = self._measure_bias(self._anchors.get(key, {}), table)
            if bias is None:  # no unique symbol sampled in this process: pool every process of this binary
                pooled: dict[str, tuple[int, int]] = {}
                for (_, d), anchors in self._anchors.items():
                    if d == dso:
                        pooled.update(anchors)
                bias = self._measure_bias(pooled, table)
            self._bias[key] = bias
        return self._bias[key]

    def _mapping_bias(self, proc: str, fr: Frame) -> int | None:
        """The load bias from the mmap event that covers `fr.ip` in its process (exact, when perf printed one)."""
        for m in self._maps.get((proc, fr.dso), ()):
            if m.start <= fr.ip < m.start + m.length:
                if fr.dso not in self._segments:
                    self._segments[fr.dso] = load_segments(fr.dso)
                seg = next((s for s in self._segments[fr.dso] if s.offset <= m.pgoff < s.offset + s.filesz), None)
                return m.start - m.pgoff + (seg.offset - seg.vaddr if seg else 0)
        return None

    def _entry_at(self, proc: str, fr: Frame, table: DsoTable, entries: list[DsoSymbol]) -> DsoSymbol | None:
        """The symbol among same-named `entries` that the frame ran in, found through its load bias."""
        if fr.off is None:
            return None
        for bias in (self._mapping_bias(proc, fr), self._anchor_bias(proc, fr.dso, table)):
            if bias is not None:
                target = fr.ip - bias - fr.off
                entry = next((e for e in entries if e.addr == target), None)
                if entry is not None:
                    return entry
        return None

    def file_address(self, proc: str, fr: Frame) -> int | None:
        """The file address (as the binary's symbol table counts) of `fr`, or None when it cannot be told."""
        if fr.off is None:
            return None
        table = self._table(fr.dso)
        entries = table.by_name.get(fr.sym) if table is not None else None
        if not entries or table is None:
            return None
        entry = entries[0] if len(entries) == 1 else self._entry_at(proc, fr, table, entries)
        return entry.addr + fr.off if entry is not None else None

    def place(self, proc: str, fr: Frame) -> Placed:
        """The TU of the function `fr` ran in, or why it is outside journaled code."""
        dso = fr.dso
        if dso.startswith("[kernel") or dso.startswith("[guest.kernel") or fr.ip >= _KERNEL_START:
            return _outside("kernel")
        if not fr.sym or fr.sym == "[unknown]":
            return _outside("unresolved")
        key = (dso, fr.sym)
        if key not in self._by_name:
            self._by_name[key] = self._place_by_name(dso, fr.sym)
        placed = self._by_name[key]
        if placed is not None:
            return placed
        # Several symbols of this name in the binary: find the one that ran through the load bias.
        table = self._table(dso)
        assert table is not None
        entries = table.by_name[fr.sym]
        entry = self._entry_at(proc, fr, table, entries)
        ekey = (dso, fr.sym, entry.addr if entry else None)
        if ekey not in self._by_entry:
            self._by_entry[ekey] = self._decide(dso, fr.sym, entries, entry)
        return self._by_entry[ekey]

    def _place_by_name(self, dso: str, sym: str) -> Placed | None:
        """A decision that holds for every frame of `sym` in `dso`, or None when the address must decide."""
        defs = self.index.defs.get(sym)
        if not defs:
            return _outside("not-journaled")
        table = self._table(dso)
        if table is None:
            # The binary is not here (profiled on another machine, deleted since): the name is all there is.
            objects = sorted({d.object for d in defs})
            return Placed(objects[0], how="name") if len(objects) == 1 else _outside("ambiguous")
        entries = table.by_name.get(sym)
        if not entries:
            # perf named it from elsewhere (a separate debug file of a stripped system library): whatever ran,
            # it is not a function linked from the journal's objects, which would be in the binary's own tables.
            return _outside("different-build")
        if len(entries) > 1:
            return None
        return self._decide(dso, sym, entries, entries[0])

    def _decide(self, dso: str, sym: str, entries: list[DsoSymbol], entry: DsoSymbol | None) -> Placed:
        defs = self.index.defs[sym]
        sizes = {entry.size} if entry is not None else {e.size for e in entries}
        matching = [d for d in defs if d.size is None or None in sizes or d.size in sizes]
        if not matching:
            return _outside("different-build")
        objects = _unique_objects(matching)
        if len(objects) == 1:
            return Placed(objects[0], how="symbol" if len(_unique_objects(defs)) == 1 else "size")
        linked = self.index.links.get(os.path.realpath(dso))
        if linked:
            narrowed = [o for o in objects if os.path.realpath(o) in linked]
            if len(narrowed) == 1:
                return Placed(narrowed[0], how="link")
            objects = narrowed or objects
        if entry is None:
            return _outside("ambiguous")
        if self._dwarf is not None:
            source = cu_source(self._dwarf, dso, entry.addr)
            if source is not None:
                narrowed = self._by_source(objects, source)
                if len(narrowed) == 1:
                    return Placed(narrowed[0], how="dwarf")
        if entry.file:
            base = os.path.basename(entry.file)
            narrowed = [o for o in objects if os.path.basename(self.index.tus[o].source) == base]
            if len(narrowed) == 1:
                return Placed(narrowed[0], how="file-symbol")
        return _outside("ambiguous")

    def _by_source(self, objects: list[str], source: str) -> list[str]:
        """Objects compiled from `source`: the same path, else (remapped debug paths) the same file name."""
        real = os.path.realpath(source)
        exact = [o for o in objects if os.path.realpath(self.index.tus[o].source) == real]
        if exact:
            return exact
        base = os.path.basename(source)
        return [o for o in objects if os.path.basename(self.index.tus[o].source) == base]


def _unique_objects(defs: list[Definition]) -> list[str]:
    seen: dict[str, None] = {}
    for d in defs:
        seen.setdefault(d.object, None)
    return list(seen)


FunctionKey = tuple[str, str, str | None]  # (object, source function, the symbol it was inlined into or None)


def _by_source_function(
    sites: Counter[tuple[str, str, str, int | None]], index: JournalIndex, inliner: Inliner
) -> tuple[Counter[FunctionKey], dict[FunctionKey, Counter[int]]]:
    """Self samples per source function and per line: each leaf site goes to the innermost frame of its address
    that lies in the TU's own source (inline.py); without debug info, to the symbol that ran."""
    by_dso: dict[str, set[int]] = {}
    for _, _, dso, addr in sites:
        if addr is not None:
            by_dso.setdefault(dso, set()).add(addr)
    for dso, addrs in by_dso.items():
        inliner.resolve(dso, addrs)
    counts: Counter[FunctionKey] = Counter()
    lines: dict[FunctionKey, Counter[int]] = {}
    for (obj, sym, dso, addr), n in sites.items():
        fr = in_source(inliner.frames(dso, addr), index.tus[obj].source) if addr is not None else None
        if fr is None:
            counts[(obj, sym, None)] += n
            continue
        key = (obj, fr.function, None if fr.function == sym else sym)
        counts[key] += n
        lines.setdefault(key, Counter())[fr.line] += n
    return counts, lines


def _choose_event(samples: list[Sample], wanted: str | None) -> str:
    events = Counter(s.event for s in samples)
    if wanted:
        chosen = [e for e in events if e == wanted or e.split(":")[0] == wanted]
        if not chosen:
            raise ProfileError(
                "the recording has no %s samples (it has: %s); pick one with --event"
                % (wanted, ", ".join(sorted(events)) or "none")
            )
        return chosen[0]
    if len(events) > 1:
        raise ProfileError("the recording mixes events (%s); pick one with --event" % ", ".join(sorted(events)))
    return next(iter(events), "")


def _first_journaled(attr: Attributor, sample: Sample) -> tuple[str, str, str, int | None] | None:
    """The call site of the nearest journaled frame above the leaf, the code that called the library: (object,
    symbol, dso, file address of the call instruction). The address is one before the return address, so that the
    debug info's inlining records name the source function that made the call (a loop inlined into `main` calls
    `strlen` from its own function, not from `main`'s)."""
    for fr in sample.frames[1:]:
        q = attr.place(sample.proc, fr)
        if q.object is not None:
            ret = attr.file_address(sample.proc, fr)
            return (q.object, fr.sym, fr.dso, ret - 1 if ret else None)
    return None


def attribute(
    samples: Iterable[Sample],
    index: JournalIndex,
    workload: Workload,
    event: str | None = None,
    call_graph: str | None = None,
    mappings: Iterable[Mapping] = (),
) -> Profile:
    """The profile of `samples`. `call_graph` names the recording's call graph mode when known; otherwise it is
    "recorded" if the samples carry call chains."""
    kept = list(samples)
    chosen = _choose_event(kept, event)
    kept = [s for s in kept if s.event == chosen]
    has_chains = any(len(s.frames) > 1 for s in kept)
    # A frame-pointer chain skips the immediate caller of a library leaf built without a frame (libc's strlen):
    # only dwarf and lbr chains say which journaled function made the call.
    mode = (call_graph or "").split(",")[0].split("@")[0]
    credit_library = has_chains and mode in LIBRARY_CREDIT_MODES
    attr = Attributor(index, mappings)
    for s in kept:
        attr.observe(s)

    fn_children: Counter[tuple[str, str]] = Counter()
    tu_self: Counter[str] = Counter()
    tu_children: Counter[str] = Counter()
    library_sites: Counter[tuple[str, str, str, int | None]] = Counter()  # journaled call sites of library leaves
    tu_library: Counter[str] = Counter()
    fn_info: dict[tuple[str, str], tuple[str, str]] = {}  # (object, name) -> (dso, how)
    sites: Counter[tuple[str, str, str, int | None]] = Counter()  # (object, symbol, dso, file address) of leaves
    out: Counter[tuple[str, str]] = Counter()
    out_syms: dict[tuple[str, str], Counter[str]] = {}
    for s in kept:
        if not s.frames:
            out[("[unknown]", "unresolved")] += 1
            out_syms.setdefault(("[unknown]", "unresolved"), Counter())["[unknown]"] += 1
            continue
        leaf = s.frames[0]
        p = attr.place(s.proc, leaf)
        leaf_key: tuple[str, str] | None = None
        if p.object is not None:
            leaf_key = (p.object, leaf.sym)
            sites[(p.object, leaf.sym, leaf.dso, attr.file_address(s.proc, leaf))] += 1
            tu_self[p.object] += 1
            fn_info.setdefault(leaf_key, (leaf.dso, p.how))
        else:
            out[(leaf.dso, p.reason)] += 1
            out_syms.setdefault((leaf.dso, p.reason), Counter())[leaf.sym] += 1
            if credit_library and p.reason == "not-journaled":
                site = _first_journaled(attr, s)
                if site is not None:
                    library_sites[site] += 1
                    tu_library[site[0]] += 1  # its frame's fn_info is set with the other callers below
        if has_chains and len(s.frames) > 1:
            callers: set[tuple[str, str]] = set()
            for fr in s.frames[1:]:
                q = attr.place(s.proc, fr)
                if q.object is not None:
                    k = (q.object, fr.sym)
                    callers.add(k)
                    fn_info.setdefault(k, (fr.dso, q.how))
            if leaf_key is not None:
                callers.discard(leaf_key)
            for k in callers:
                fn_children[k] += 1
            for o in {k[0] for k in callers} - {p.object}:
                tu_children[o] += 1

    inliner = Inliner()
    fn_self, fn_lines = _by_source_function(sites, index, inliner)
    # Library time goes to the source function that made the call, as self samples go to the one that ran.
    fn_library, _ = _by_source_function(library_sites, index, inliner)
    total = len(kept)
    chains = has_chains or bool(call_graph)

    def share(n: int) -> float:
        return round(n / total, 6) if total else 0.0

    tus = []
    for obj in set(tu_self) | set(tu_children):
        tu = index.tus[obj]
        tus.append(
            TUEntry(
                object=obj,
                source=tu.source,
                compile=tu.record,
                samples=tu_self[obj],
                share=share(tu_self[obj]),
                children_samples=tu_children[obj] if chains else None,
                children_share=share(tu_children[obj]) if chains else None,
                library_samples=tu_library[obj] if credit_library else None,
                library_share=share(tu_library[obj]) if credit_library else None,
            )
        )
    functions = []
    for key in set(fn_self) | set(fn_library) | {(o, n, None) for o, n in fn_children}:
        obj, name, into = key
        physical = (obj, into or name)
        dso, how = fn_info[physical]
        own = into is None  # children are counted per symbol that ran, library calls per source function
        lines = fn_lines.get(key)
        functions.append(
            FunctionEntry(
                name=name,
                object=obj,
                source=index.tus[obj].source,
                dso=dso,
                how=how,
                samples=fn_self[key],
                share=share(fn_self[key]),
                children_samples=(fn_children[physical] if own else 0) if chains else None,
                children_share=share(fn_children[physical] if own else 0) if chains else None,
                library_samples=fn_library[key] if credit_library else None,
                library_share=share(fn_library[key]) if credit_library else None,
                inlined_into=into,
                lines={str(n): c for n, c in lines.most_common(MAX_LINES)} if lines else None,
            )
        )
    outside = [
        OutsideEntry(
            dso=dso,
            reason=reason,
            samples=n,
            share=share(n),
            symbols=[{"name": k, "samples": v} for k, v in out_syms[(dso, reason)].most_common(TOP_OUTSIDE_SYMBOLS)],
        )
        for (dso, reason), n in out.items()
    ]
    profile = Profile(
        workload=workload,
        event=chosen,
        call_graph=call_graph or ("recorded" if has_chains else None),
        journal=index.journal,
        samples=total,
        journaled_samples=sum(tu_self.values()),
        tus=tus,
        functions=functions,
        outside=outside,
    )
    profile.sort()
    return profile
