"""Inputs for the differential harness: the role of each parameter, value generators, and the byte encoding
the harness decodes.

A call plan gives every parameter a role: a scalar, a record passed by value, a buffer (pointer to elements),
a C string, or a length bound to buffers. Generators produce `InputCase`s (edge values first, then buffers of
many sizes, overlapping pointers, NULLs, large sizes, then random ones); `encode` turns a case into the blob the
harness reads. Any blob decodes to a valid call (counts, lengths and alias offsets are clamped by the harness and
by `decode` alike), so coverage-guided fuzzers and other input sources can hand the harness raw bytes.

Input sources are pluggable (`InputSource`): the built-in generator here, libFuzzer (`fuzz.py`), and the LLM
test-generation agent, which lives with the agents and only implements the protocol.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterable, Iterator, Sequence
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
    return _int_range(t)[1]


def _clamp_lengths(rp: RecordPlan, t: CType, vals: list[Value]) -> None:
    """Length fields never exceed the elements their buffers hold (the harness clamps the same way)."""
    for i, ps in rp.bound:
        counts = [len(b.elems) for b in (vals[p] for p in ps) if isinstance(b, Buffer)]
        v = vals[i]
        if not isinstance(v, int):
            continue
        limit = min(counts, default=0)
        limit = min(limit, _int_range(t.fields[i].type)[1])
        if v > limit:
            vals[i] = limit


# ---- scalar values ---------------------------------------------------------------------------------------------


def _int_range(t: CType) -> tuple[int, int]:
    bits = 8 * t.size
    if t.kind == "bool":
        return 0, 1
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if t.signed else (0, (1 << bits) - 1)


def int_edges(t: CType) -> list[int]:
    """Edge values of an integer type: 0, ±1, powers of two and their neighbours, min and max."""
    lo, hi = _int_range(t)
    if t.kind == "bool":
        return [0, 1]
    if t.kind == "enum":
        return [0, 1, 2, 3, -1, 7]
    vals = [0, 1, -1, 2, -2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 100, 127, 128, 255, 256, 1000]
    vals += [4095, 4096, 65535, 65536, 1 << 20, 46341, hi, hi - 1, hi // 2, lo, lo + 1, lo // 2, -1000]
    out = []
    for v in vals:
        if not t.signed:
            v &= (1 << (8 * t.size)) - 1
        if lo <= v <= hi and v not in out:
            out.append(v)
    return out


def float_edges(t: CType) -> list[float]:
    """Edge values of a floating type: signed zeros, NaN of both signs, infinities, denormals, extremes."""
    neg_nan = math.copysign(math.nan, -1.0)
    vals = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 3.0, 0.1, -0.1, 1.0 / 3.0, math.pi, 1e-7, 1e7, 123456.789]
    vals += [math.nan, neg_nan, math.inf, -math.inf, 2.0**53, 2.0**53 + 2, 2.0**24 + 1, 0.49999999999999994]
    if t.size == 4:
        vals += [3.4028234663852886e38, 1.1754943508222875e-38, 1.401298464324817e-45, 16777217.0, -2.5, 2.5]
    else:
        vals += [1.7976931348623157e308, 2.2250738585072014e-308, 5e-324, 1e300, -1e300, -2.5, 2.5]
    return [_round_float(v, t) for v in vals]


def _round_float(v: float, t: CType) -> float:
    if t.size == 4 and math.isfinite(v):
        try:
            return float(struct.unpack("<f", struct.pack("<f", v))[0])
        except OverflowError:
            return math.copysign(math.inf, v)
    return v


def pair_edges(t: CType) -> list[float] | list[int]:
    """The few edge values combined pairwise: zero, ±1, the extremes, and for floats NaN, ±inf, ±denormals."""
    if t.kind == "float":
        vals = [0.0, -0.0, 1.0, -1.0, 0.5, math.nan, math.inf, -math.inf, 5e-324, -2.2250738585072014e-308]
        vals += [1e300, -1e300]
        return [_round_float(v, t) for v in vals]
    lo, hi = _int_range(t)
    return [v for v in dict.fromkeys([0, 1, -1 if t.signed else 2, 3, hi, lo, hi - 1, lo + 1]) if lo <= v <= hi]


def edges(t: CType) -> list[float] | list[int]:
    return float_edges(t) if t.kind == "float" else int_edges(t)


def random_scalar(t: CType, rng: random.Random, small: bool = False) -> int | float:
    if t.kind == "float":
        r = rng.random()
        if r < 0.2:
            return rng.choice(float_edges(t))
        if small or r < 0.6:
            return _round_float(rng.uniform(-100.0, 100.0), t)
        return _round_float(rng.uniform(-1.0, 1.0) * 10.0 ** rng.randint(-30, 30), t)
    lo, hi = _int_range(t)
    if small:
        return rng.randint(max(lo, -9), min(hi, 99))
    r = rng.random()
    if r < 0.3:
        return rng.choice(int_edges(t))
    if r < 0.6:
        return rng.randint(max(lo, -1000), min(hi, 1000))
    return rng.randint(lo, hi)


def random_value(t: CType, rng: random.Random, small: bool = False, deep: bool = False) -> Value:
    """A random value of a scalar, array or record type. Pointer fields of records get small buffers (sometimes
    NULL), and the lengths that measure them their sizes; in `deep` records they stay NULL."""
    if t.kind == "record":
        rp = record_plan(t, deep)
        vals: list[Value] = []
        for f, kind in zip(t.fields, rp.kinds, strict=False):
            if kind == "null":
                vals.append(Null())
            elif kind in ("buffer", "string"):
                vals.append(_field_buffer(f.type, kind, rng, small))
            else:
                vals.append(random_value(f.type, rng, small, deep))
        for i, ps in rp.bound:
            counts = [len(b.elems) for b in (vals[p] for p in ps) if isinstance(b, Buffer)]
            if counts and rng.random() < 0.8:
                vals[i] = min(counts)
        return tuple(vals)
    if t.kind == "array" and t.pointee is not None:
        return tuple(random_value(t.pointee, rng, small, deep) for _ in range(t.count))
    return random_scalar(t, rng, small)


def _field_buffer(f_type: CType, kind: str, rng: random.Random, small: bool) -> Value:
    if rng.random() < 0.1:
        return Null()
    count = rng.choice((0, 1, 2, 3, 5, 8, 16, 33))
    if kind == "string":
        text = "".join(rng.choice("abcdefghij klmnopqrstuvwxyz0123456789") for _ in range(count))
        return Buffer(tuple(text.encode()) + (0,))
    e = field_elem(f_type)
    return Buffer(tuple(random_value(e, rng, small, deep=True) for _ in range(count)))


# ---- the encoding the harness reads ----------------------------------------------------------------------------


def _pack_scalar(t: CType, v: Value) -> bytes:
    if t.kind == "float":
        return struct.pack("<f" if t.size == 4 else "<d", float(v))  # type: ignore[arg-type]
    iv = int(v) if isinstance(v, (int, float)) else 0
    return (iv & ((1 << (8 * t.size)) - 1)).to_bytes(t.size, "little")


def pack_value(t: CType, v: Value, deep: bool = False) -> bytes:
    """Packed bytes of a scalar, array or record value (records without padding). A pointer field the harness
    fills is a tag byte and, for a buffer, its element count and elements; a NULL one takes no bytes."""
    if t.kind == "record":
        rp = record_plan(t, deep)
        vals = list(v) if isinstance(v, tuple) else []
        vals += [0] * (len(t.fields) - len(vals))
        for i, kind in enumerate(rp.kinds):
            fv = vals[i]
            if kind == "string" and isinstance(fv, Buffer):
                vals[i] = Buffer((fv.elems or (0,))[:-1] + (0,))
        _clamp_lengths(rp, t, vals)
        out = b""
        for f, kind, fv in zip(t.fields, rp.kinds, vals, strict=False):
            if kind == "null":
                continue
            if kind in ("buffer", "string"):
                if isinstance(fv, Buffer):
                    e = field_elem(f.type)
                    out += bytes([TAG_BUFFER]) + struct.pack("<I", len(fv.elems))
                    out += b"".join(pack_value(e, x, deep=True) for x in fv.elems)
                else:
                    out += bytes([TAG_NULL])
            elif kind == "bitfield":
                out += _pack_scalar(CType("int", "", 8, False), fv)
            else:
                out += pack_value(f.type, fv, deep)
        return out
    if t.kind == "array" and t.pointee is not None:
        items = v if isinstance(v, tuple) else ()
        return b"".join(pack_value(t.pointee, items[i] if i < len(items) else 0, deep) for i in range(t.count))
    return _pack_scalar(t, v)


def encode(p: CallPlan, case: InputCase) -> bytes:
    """The blob for one call."""
    out = bytearray()
    for role, v in zip(p.roles, case.args, strict=False):
        if role.kind in ("buffer", "string"):
            if isinstance(v, Buffer):
                out += bytes([TAG_BUFFER]) + struct.pack("<I", len(v.elems))
                packed: dict[int, bytes] = {}  # by identity: long record arrays repeat a few values
                for e in v.elems:
                    b = packed.get(id(e))
                    if b is None:
                        b = packed[id(e)] = pack_value(role.elem, e)
                    out += b
            elif isinstance(v, Alias):
                out += bytes([TAG_ALIAS, v.target]) + struct.pack("<I", v.offset)
            else:
                out += bytes([TAG_NULL])
        else:
            out += pack_value(role.type, v)
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk + bytes(n - len(chunk))  # the harness reads zeros past the end

    def remaining(self) -> int:
        return max(0, len(self.data) - self.pos)


def _unpack_value(t: CType, r: _Reader, deep: bool = False) -> Value:
    if t.kind == "record":
        rp = record_plan(t, deep)
        vals: list[Value] = []
        for f, kind in zip(t.fields, rp.kinds, strict=False):
            if kind == "null":
                vals.append(Null())
            elif kind in ("buffer", "string"):
                if r.take(1)[0] % 3 != TAG_BUFFER:
                    vals.append(Null())  # aliases are for parameters; in a field they mean NULL
                    continue
                e = field_elem(f.type)
                count = int.from_bytes(r.take(4), "little")
                count = min(count, r.remaining() // max(1, e.packed_size(True)), MAX_ELEMS)
                if kind == "string":
                    count = max(1, count)
                elems = tuple(_unpack_value(e, r, True) for _ in range(count))
                vals.append(Buffer(elems[:-1] + (0,) if kind == "string" else elems))
            elif kind == "bitfield":
                vals.append(int.from_bytes(r.take(8), "little"))
            else:
                vals.append(_unpack_value(f.type, r, deep))
        _clamp_lengths(rp, t, vals)
        return tuple(vals)
    if t.kind == "array" and t.pointee is not None:
        return tuple(_unpack_value(t.pointee, r, deep) for _ in range(t.count))
    raw = r.take(t.size)
    if t.kind == "float":
        return float(struct.unpack("<f" if t.size == 4 else "<d", raw)[0])
    if t.kind == "bool":
        return raw[0] & 1
    return int.from_bytes(raw, "little", signed=t.signed)


def decode(p: CallPlan, blob: bytes) -> InputCase:
    """The call a blob makes, with the harness's clamping applied (for reproducers of fuzzed inputs)."""
    r = _Reader(blob)
    args: list[Value] = []
    for role in p.roles:
        if role.kind in ("buffer", "string"):
            tag = r.take(1)[0] % 3
            if tag == TAG_BUFFER:
                count = int.from_bytes(r.take(4), "little")
                esize = max(1, role.elem.packed_size())
                count = min(count, r.remaining() // esize, MAX_ELEMS)
                elems = tuple(_unpack_value(role.elem, r) for _ in range(count))
                args.append(Buffer(elems))
            elif tag == TAG_ALIAS:
                target = r.take(1)[0]
                offset = int.from_bytes(r.take(4), "little")
                args.append(Alias(target, offset))
            else:
                args.append(Null())
        else:
            args.append(_unpack_value(role.type, r))
    return _normalize(p, InputCase(tuple(args), "decoded"))


def may_alias(a: CType, b: CType) -> bool:
    """Whether C lets pointers to these element types overlap: the same type up to signedness, or bytes."""
    if (a.kind == "int" and a.size == 1) or (b.kind == "int" and b.size == 1):
        return True
    if a.is_scalar and b.is_scalar:
        return a.kind == b.kind and a.size == b.size
    return a.spelling == b.spelling


def _elem_bytes(role: Role) -> int:
    """Bytes per element in memory for lengths measured in elements (exact for scalars)."""
    e = role.elem
    return e.size if e.is_scalar else max(1, e.packed_size())


def _normalize(p: CallPlan, case: InputCase) -> InputCase:
    """Apply the harness's rules: strings end in NUL, aliases point into real buffers, lengths fit."""
    args = list(case.args)
    sizes: dict[int, int] = {}
    for i, role in enumerate(p.roles):
        v = args[i]
        if role.kind == "string" and isinstance(v, Buffer):
            elems = v.elems or (0,)
            args[i] = v = Buffer(elems[:-1] + (0,))
        if isinstance(v, Buffer):
            sizes[i] = len(v.elems) * _elem_bytes(role)
    avail: dict[int, int] = {}
    for i, role in enumerate(p.roles):
        v = args[i]
        if isinstance(v, Buffer):
            avail[i] = len(v.elems)
        elif isinstance(v, Alias):
            if v.target not in sizes:
                args[i] = Null()
                continue
            off = v.offset % (sizes[v.target] + 1)
            args[i] = Alias(v.target, off)
            avail[i] = (sizes[v.target] - off) // _elem_bytes(role)
    for i, role in enumerate(p.roles):
        if role.kind == "length" and isinstance(args[i], int):
            limit = min((avail[b] for b in role.bound if b in avail), default=None)
            if limit is not None:
                limit = min(limit, _int_range(role.type)[1])
            if limit is not None and int(args[i]) > limit:  # type: ignore[arg-type]
                args[i] = limit
            elif limit is None and int(args[i]) > 0:  # type: ignore[arg-type]
                args[i] = 0  # every buffer is NULL: a positive length would only crash the original
    return InputCase(tuple(args), case.note)


# ---- the built-in generator ------------------------------------------------------------------------------------

STRINGS = [
    "",
    "a",
    "ab",
    "hello, world",
    "Hello World 123",
    "  leading and trailing  ",
    "0",
    "-0",
    "+12",
    "-2147483648",
    "4294967296",
    "3.14159",
    "1e308",
    "nan",
    "\t\n\r\v\f",
    "\x01\x7f\x80\xff",
    "ÿþ",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "The quick brown fox jumps over the lazy dog",
    "x" * 1000,
    "abc\x00def",
    # Strings ending in an upper-case letter, at and past word-sized lengths: a count_upper that skipped the
    # character before the NUL once passed every string above (none of them ends in one).
    "Z",
    "aZ",
    "hello WORLD",
    "abcdefgH",
    "abcdefghijklmnoP",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
]
SIZES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 255, 256, 257, 1000]
LARGE_SIZES = [4099, 65537, 131075]


class EdgeValueSource:
    """The built-in, deterministic generator: edge values, buffer sizes, overlaps, NULLs, large and random."""

    name = "edge"

    def generate(self, sig: FunctionSig, plan_: CallPlan, budget: int, seed: int) -> Iterator[GeneratedInput]:
        seen: set[bytes] = set()
        for case in self.cases(plan_, seed):
            if len(seen) >= budget:
                return
            case = _normalize(plan_, case)
            blob = encode(plan_, case)
            if blob in seen:
                continue
            seen.add(blob)
            # Records are clamped while they are packed (lengths of pointer fields): say what the harness reads
            # (large inputs excepted: decoding them in Python costs more than running them).
            shown = decode(plan_, blob) if len(blob) <= 65536 and _has_records(plan_) else case
            yield GeneratedInput(blob, describe(plan_, shown), self.name)

    def cases(self, p: CallPlan, seed: int) -> Iterator[InputCase]:
        rng = random.Random(seed)
        roles = p.roles
        ptrs = p.pointers()

        def base(count: int = 16, small: bool = True) -> list[Value]:
            args: list[Value] = []
            for r in roles:
                if r.kind in ("buffer", "string"):
                    args.append(self._buffer(r, count, rng, small))
                elif r.kind == "length":
                    args.append(1 << 30)  # clamped to the buffers' length
                elif r.kind == "record":
                    args.append(random_value(r.type, rng, small=True))
                else:
                    args.append(3 if r.type.kind != "float" else 1.5)
            return args

        yield InputCase(tuple(base()), "base")
        # One scalar at a time through its edge values.
        for i, r in enumerate(roles):
            if r.kind == "scalar":
                for v in edges(r.type):
                    args = base()
                    args[i] = v
                    yield InputCase(tuple(args), "edge %s=%r" % (p.names[i] or i, v))
        # Pairs of scalars through a few edge values each: bugs that need two extremes at once
        # (LLONG_MIN % -1, a tiny positive over a tiny negative).
        scalars = [i for i, r in enumerate(roles) if r.kind == "scalar"]
        for x in scalars:
            for y in scalars:
                if x >= y:
                    continue
                for vx in pair_edges(roles[x].type):
                    for vy in pair_edges(roles[y].type):
                        args = base()
                        args[x], args[y] = vx, vy
                        yield InputCase(tuple(args), "edges %s=%r %s=%r" % (p.names[x], vx, p.names[y], vy))
        # Buffer sizes, with the bound length at, just below and well below the size.
        for count in SIZES:
            args = base(count)
            yield InputCase(tuple(args), "size %d" % count)
            for i, r in enumerate(roles):
                if r.kind == "length" and count:
                    for n in (count - 1, count // 2, 0):
                        a = list(args)
                        a[i] = n
                        yield InputCase(tuple(a), "size %d, %s=%d" % (count, p.names[i], n))
        # Buffer contents: extremes and special values.
        for i in ptrs:
            for pattern in ("edges", "max", "min", "zeros", "ascending", "descending", "random"):
                args = base(37)
                args[i] = self._buffer(roles[i], 37, rng, False, pattern)
                yield InputCase(tuple(args), "buffer %s %s" % (p.names[i] or i, pattern))
        # Strings.
        for i in ptrs:
            if roles[i].kind == "string":
                for s in STRINGS:
                    args = base()
                    args[i] = Buffer(tuple(s.encode("latin-1")) + (0,))
                    yield InputCase(tuple(args), "string %s=%r" % (p.names[i] or i, s))
        # Overlapping pointers: each pointer into each other's buffer at several offsets.
        for i in ptrs:
            for j in ptrs:
                if i == j or not may_alias(roles[i].elem, roles[j].elem):
                    continue
                step = max(_elem_bytes(roles[i]), _elem_bytes(roles[j]))
                for k in (0, 1, 2, 3, 8, 31):
                    args = base(64)
                    args[j] = Alias(i, k * step)
                    yield InputCase(tuple(args), "%s overlaps %s at +%d" % (p.names[j], p.names[i], k * step))
        # NULL pointers.
        for i in ptrs:
            args = base()
            args[i] = Null()
            yield InputCase(tuple(args), "%s NULL" % (p.names[i] or i))
        # Large buffers: bugs that show only for big n.
        if ptrs:
            for count in LARGE_SIZES:
                yield InputCase(tuple(base(count, small=True)), "large %d, small values" % count)
                yield InputCase(tuple(base(count, small=False)), "large %d" % count)
        # Random everything.
        for k in range(100000):
            count = rng.choice(SIZES[:20])
            args = base(count, small=rng.random() < 0.5)
            for i, r in enumerate(roles):
                if r.kind == "scalar":
                    args[i] = random_scalar(r.type, rng, small=rng.random() < 0.3)
                elif r.kind == "length" and rng.random() < 0.3:
                    args[i] = rng.randint(0, count)
            yield InputCase(tuple(args), "random %d" % k)

    @staticmethod
    def _buffer(r: Role, count: int, rng: random.Random, small: bool, pattern: str = "random") -> Buffer:
        e = r.elem
        if r.kind == "string":
            text = "".join(rng.choice("abcdefghij klmnopqrstuvwxyz0123456789") for _ in range(max(0, count - 1)))
            return Buffer(tuple(text.encode()) + (0,))
        if not e.is_scalar:
            if count > 256:
                # Long arrays of records repeat 257 random ones with NULL pointer fields: bugs for large n are about
                # the count, and a buffer behind each record, or a million random fields, would cost seconds.
                pool = [random_value(e, rng, small, deep=True) for _ in range(257)]
                return Buffer(tuple(pool[k % 257] for k in range(count)))
            return Buffer(tuple(random_value(e, rng, small) for _ in range(count)))
        if pattern == "edges":
            ev = edges(e)
            return Buffer(tuple(ev[k % len(ev)] for k in range(count)))
        if pattern in ("max", "min") and e.kind != "float":
            lo, hi = _int_range(e)
            return Buffer((hi if pattern == "max" else lo,) * count)
        if pattern in ("max", "min"):
            big = 1.7976931348623157e308 if e.size == 8 else 3.4028234663852886e38
            return Buffer((big if pattern == "max" else -big,) * count)
        if pattern == "zeros":
            return Buffer((0,) * count)
        if pattern in ("ascending", "descending"):
            vals = list(range(count)) if pattern == "ascending" else list(range(count, 0, -1))
            return Buffer(tuple(float(v) if e.kind == "float" else v for v in vals))
        return Buffer(tuple(random_scalar(e, rng, small) for _ in range(count)))


def _has_records(p: CallPlan) -> bool:
    return any(r.type.kind == "record" or (r.kind == "buffer" and r.elem.kind == "record") for r in p.roles)


def describe(p: CallPlan, case: InputCase) -> str:
    """The call in words: `f(a=3, buf=[1, 2, 3] (3 elements), n=3)`."""
    parts = []
    for name, role, v in zip(p.names, p.roles, case.args, strict=False):
        label = name or "arg"
        if isinstance(v, Buffer):
            if role.kind == "string":
                raw = bytes(int(x) & 0xFF for x in v.elems if isinstance(x, int))
                text = repr(raw.split(b"\0")[0].decode("latin-1"))
                parts.append("%s=%s" % (label, text if len(text) < 80 else text[:76] + "...'"))
            else:
                shown = ", ".join(_short(x) for x in v.elems[:8])
                more = ", ..." if len(v.elems) > 8 else ""
                parts.append("%s=[%s%s] (%d elements)" % (label, shown, more, len(v.elems)))
        elif isinstance(v, Alias):
            parts.append("%s=&%s+%d bytes" % (label, p.names[v.target] or v.target, v.offset))
        elif isinstance(v, Null):
            parts.append("%s=NULL" % label)
        else:
            parts.append("%s=%s" % (label, _short(v)))
    return "%s(%s)" % (p.function, ", ".join(parts))


def _short(v: Value) -> str:
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, Null):
        return "NULL"
    if isinstance(v, Buffer):
        more = ", ..." if len(v.elems) > 4 else ""
        return "&[%s%s]" % (", ".join(_short(x) for x in v.elems[:4]), more)
    if isinstance(v, tuple):
        return "{%s}" % ", ".join(_short(x) for x in v)
    return str(v)


def merged(
    sources: Sequence[InputSource], sig: FunctionSig, p: CallPlan, budget: int, seed: int
) -> list[GeneratedInput]:
    """Inputs from every source, the budget split evenly, duplicates dropped."""
    out: list[GeneratedInput] = []
    seen: set[bytes] = set()
    share = max(1, budget // max(1, len(sources)))
    for src in sources:
        for gi in src.generate(sig, p, share, seed):
            if gi.blob not in seen:
                seen.add(gi.blob)
                out.append(gi)
    return out
