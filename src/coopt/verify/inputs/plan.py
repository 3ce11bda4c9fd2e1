"""Call plans: the role of each parameter (scalar, record, buffer, C string, length bound to buffers), how
record fields are filled, and the values an input is made of (`Null`, `Buffer`, `Alias`, `InputCase`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, Union

from coopt.verify.signatures import CType, FunctionSig, fillable

MAX_ELEMS = 1 << 22  # the harness's cap on one buffer's element count
TAG_NULL, TAG_BUFFER, TAG_ALIAS = 0, 1, 2

# A parameter name that says "I am the length of a buffer" (whole name, or its ending).
LENGTH_NAMES = {"n", "len", "length", "size", "sz", "count", "cnt", "num", "nmemb", "nelem", "nelems", "nbytes"}
LENGTH_SUFFIXES = ("len", "length", "size", "count", "cnt", "_n", "num", "bytes", "elems")


@dataclass(frozen=True)
class Null:
    """A NULL pointer argument."""


@dataclass(frozen=True)
class Buffer:
    """A fresh allocation holding exactly these elements (ints, floats, or tuples for records)."""

    elems: tuple[Value, ...]


@dataclass(frozen=True)
class Alias:
    """A pointer into another parameter's buffer, `offset` bytes from its start: overlapping arguments."""

    target: int
    offset: int


Value = Union[int, float, tuple, None, Null, Buffer, Alias]


@dataclass(frozen=True)
class Role:
    """What the harness makes for one parameter. `bound` lists the buffers a length parameter measures."""

    kind: str  # scalar, record, buffer, string, length
    type: CType
    bound: tuple[int, ...] = ()

    @property
    def elem(self) -> CType:
        """The element type of a buffer or string (void counts as bytes)."""
        p = self.type.pointee
        if p is None or p.kind == "void":
            return CType("int", "unsigned char", 1, False)
        return p


@dataclass(frozen=True)
class CallPlan:
    function: str
    roles: tuple[Role, ...]
    names: tuple[str, ...]

    def pointers(self) -> list[int]:
        return [i for i, r in enumerate(self.roles) if r.kind in ("buffer", "string")]


@dataclass(frozen=True)
class InputCase:
    """One call's arguments, and which rule made them (kept for the reproducer)."""

    args: tuple[Value, ...]
    note: str = ""


@dataclass(frozen=True)
class GeneratedInput:
    """What an input source hands the verifier: the blob the harness reads, in words, and who made it."""

    blob: bytes
    text: str
    source: str


class InputSource(Protocol):
    """A source of inputs for one function. Sources are asked in turn; blobs from all of them are merged."""

    name: str

    def generate(self, sig: FunctionSig, plan: CallPlan, budget: int, seed: int) -> Iterable[GeneratedInput]:
        """Up to `budget` inputs for `sig`."""
        ...


def _looks_like_length(name: str) -> bool:
    low = name.lower()
    return low in LENGTH_NAMES or low.endswith(LENGTH_SUFFIXES) or (low.startswith("n") and len(low) <= 3)


def _bind_lengths(types: Sequence[CType], names: Sequence[str], pointers: Sequence[int], ints: Sequence[int]) -> dict:
    """Which integer (parameter or field) measures which pointers: a length-like name after them, or the one
    integer right after the only pointer. A char pointer with no length after it is left out: a C string."""
    lengths = [i for i in ints if _looks_like_length(names[i])]
    if not lengths and len(pointers) == 1 and pointers[0] + 1 in ints:
        lengths = [pointers[0] + 1]
    bound: dict[int, list[int]] = {i: [] for i in lengths}
    for p in pointers:
        if not lengths:
            break
        after = [i for i in lengths if i > p]
        elem = types[p].pointee
        if after:
            bound[after[0]].append(p)
        elif not (elem is not None and elem.kind == "int" and elem.size == 1):
            bound[lengths[-1]].append(p)
    return bound


def _is_char(t: CType) -> bool:
    elem = t.pointee
    return elem is not None and elem.kind == "int" and elem.size == 1 and "char" in elem.spelling


def plan(sig: FunctionSig) -> CallPlan:
    """Roles for each parameter of a drivable function."""
    types = [p.type for p in sig.params]
    names = tuple(p.name for p in sig.params)
    pointers = [i for i, t in enumerate(types) if t.kind == "pointer"]
    ints = [i for i, t in enumerate(types) if t.kind == "int"]
    bound = _bind_lengths(types, names, pointers, ints)
    bound_pointers = {p for ps in bound.values() for p in ps}
    roles = []
    for i, t in enumerate(types):
        if t.kind == "pointer":
            kind = "string" if _is_char(t) and i not in bound_pointers else "buffer"
            roles.append(Role(kind, t))
        elif i in bound and bound[i]:
            roles.append(Role("length", t, tuple(bound[i])))
        elif t.kind == "record":
            roles.append(Role("record", t))
        else:
            roles.append(Role("scalar", t))
    return CallPlan(sig.name, tuple(roles), names)


@dataclass(frozen=True)
class RecordPlan:
    """How the harness fills a record's fields: `kinds[i]` is value, bitfield, buffer, string (a NUL-terminated
    char buffer) or null; `bound` pairs each length field with the pointer fields it measures (clamped to fit)."""

    kinds: tuple[str, ...]
    bound: tuple[tuple[int, tuple[int, ...]], ...]


def _bind_field_lengths(
    types: Sequence[CType], names: Sequence[str], pointers: Sequence[int], ints: Sequence[int]
) -> dict[int, list[int]]:
    """Length fields of a record: a pointer field is measured by the nearest length-like field after it with no
    other pointer in between (`{char *name; double *w; int nw;}`: nw measures w only), else, unless it is a char
    pointer (a C string), by the nearest free one before it (`{size_t n; int *items;}`)."""
    lengths = [i for i in ints if _looks_like_length(names[i])]
    bound: dict[int, list[int]] = {}
    unbound = []
    for p in pointers:
        after = [i for i in lengths if i > p and not any(p < q < i for q in pointers)]
        if after:
            bound.setdefault(after[0], []).append(p)
        elif not _is_char(types[p]):
            unbound.append(p)
    for p in unbound:
        before = [i for i in lengths if i < p and i not in bound and not any(i < q < p for q in pointers)]
        if before:
            bound[before[-1]] = [p]
    return bound


_RECORD_PLANS: dict[tuple[int, bool], tuple[CType, RecordPlan]] = {}


def record_plan(t: CType, deep: bool = False) -> RecordPlan:
    """The fields' kinds for a record passed in (`deep`: reached through a pointer field, pointers stay NULL)."""
    # Kept by identity: hashing a record type hashes all its fields, and this runs once per value generated.
    hit = _RECORD_PLANS.get((id(t), deep))
    if hit is not None and hit[0] is t:
        return hit[1]
    rp = _record_plan(t, deep)
    if len(_RECORD_PLANS) > 4096:
        _RECORD_PLANS.clear()
    _RECORD_PLANS[(id(t), deep)] = (t, rp)
    return rp


def _record_plan(t: CType, deep: bool) -> RecordPlan:
    fields = t.fields
    types = [f.type for f in fields]
    names = [f.name for f in fields]
    pointers = [i for i, f in enumerate(fields) if fillable(f, deep)]
    ints = [i for i, f in enumerate(fields) if f.type.kind == "int" and not f.bitfield]
    bound = _bind_field_lengths(types, names, pointers, ints)
    bound_pointers = {p for ps in bound.values() for p in ps}
    kinds = []
    for i, f in enumerate(fields):
        if f.bitfield:
            kinds.append("bitfield")
        elif f.type.kind != "pointer":
            kinds.append("value")
        elif i not in pointers:
            kinds.append("null")
        else:
            kinds.append("string" if _is_char(f.type) and i not in bound_pointers else "buffer")
    return RecordPlan(tuple(kinds), tuple((i, tuple(ps)) for i, ps in sorted(bound.items()) if ps))


def field_elem(f_type: CType) -> CType:
    """The element type of a pointer field's buffer (void counts as bytes)."""
    p = f_type.pointee
    if p is None or p.kind == "void":
        return CType("int", "unsigned char", 1, False)
    return p


def int_max(t: CType) -> int:
    """The largest value of an integer type."""
    return int_range(t)[1]


def _clamp_lengths(rp: RecordPlan, t: CType, vals: list[Value]) -> None:
    """Length fields never exceed the elements their buffers hold (the harness clamps the same way)."""
    for i, ps in rp.bound:
        counts = [len(b.elems) for b in (vals[p] for p in ps) if isinstance(b, Buffer)]
        v = vals[i]
        if not isinstance(v, int):
            continue
        limit = min(counts, default=0)
        limit = min(limit, int_range(t.fields[i].type)[1])
        if v > limit:
            vals[i] = limit


def int_range(t: CType) -> tuple[int, int]:
    bits = 8 * t.size
    if t.kind == "bool":
        return 0, 1
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if t.signed else (0, (1 << bits) - 1)
