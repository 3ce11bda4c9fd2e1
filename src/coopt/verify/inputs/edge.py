"""The built-in, deterministic input source: edge values, buffer sizes, strings, overlaps, NULLs, large sizes and
random calls; and `merged`, which asks every source in turn."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence

from coopt.verify.inputs.encoding import _elem_bytes, _normalize, decode, describe, encode, may_alias
from coopt.verify.inputs.mined import Constants, Mined, MinedCases
from coopt.verify.inputs.plan import (
    Alias,
    Buffer,
    CallPlan,
    FunctionSig,
    GeneratedInput,
    InputCase,
    InputSource,
    Null,
    Role,
    Value,
    int_range,
)
from coopt.verify.inputs.values import edges, pair_edges, random_scalar, random_value

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
# Every small length, both parities (a tail loop after blocks of 8 first shows at 10 or 11), then around powers of two.
SIZES = [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
    17,
    31,
    32,
    33,
    63,
    64,
    65,
    100,
    127,
    128,
    129,
    255,
    256,
    257,
    1000,
]
LARGE_SIZES = [4099, 65537, 131075]
# One buffer of one input holds at most this much: a count is cut to fit, so an array of a large struct (bzip2's
# EState, about 55 KB) gets 38 elements, not 131075 (6.5 GB, which the optimizer tried to build in memory).
MAX_BUFFER_BYTES = 2 << 20
# Random records are made fresh up to this much per buffer, then repeated: each is thousands of Python values.
MAX_DISTINCT_RECORD_BYTES = 64 << 10


class EdgeValueSource:
    """The built-in, deterministic generator: edge values, buffer sizes, overlaps, NULLs, large and random."""

    name = "edge"

    def __init__(self, mined: Mined | None = None) -> None:
        self.mined = mined  # constants of both sides (mined.py); None: only values drawn from buffers
        self.mined_share = 100  # at most this many mined calls, so the later stages keep most of the budget

    def generate(self, sig: FunctionSig, plan_: CallPlan, budget: int, seed: int) -> Iterator[GeneratedInput]:
        seen: set[bytes] = set()
        self.mined_share = max(20, budget // 3)
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
        # Constants the code compares against, and keys drawn from buffer contents (mined.py), come early: they are
        # few, and they find what no edge list holds.
        constants = self.mined.for_function(p.function) if self.mined else Constants()
        yield from itertools.islice(MinedCases(constants).cases(p, base, self._buffer, rng), self.mined_share)
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
                    # A buffer of 16 with every length inside it: each small length and parity on the same data.
                    for n in range(count) if count == 16 else (count - 1, count // 2, 0):
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
            count = rng.choice(SIZES[:25])
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
        count = min(count, max(1, MAX_BUFFER_BYTES // _elem_bytes(r)))
        if r.kind == "string":
            text = "".join(rng.choice("abcdefghij klmnopqrstuvwxyz0123456789") for _ in range(max(0, count - 1)))
            return Buffer(tuple(text.encode()) + (0,))
        if not e.is_scalar:
            distinct = min(257, max(1, MAX_DISTINCT_RECORD_BYTES // _elem_bytes(r)))
            if count > min(256, distinct):
                # Long arrays of records repeat a few random ones (past 256, with NULL pointer fields): bugs for large
                # n are about the count, and a buffer behind each record, or a million random fields, would cost
                # seconds.
                pool = [random_value(e, rng, small, deep=count > 256) for _ in range(distinct)]
                return Buffer(tuple(pool[k % distinct] for k in range(count)))
            return Buffer(tuple(random_value(e, rng, small) for _ in range(count)))
        if pattern == "edges":
            ev = edges(e)
            return Buffer(tuple(ev[k % len(ev)] for k in range(count)))
        if pattern in ("max", "min") and e.kind != "float":
            lo, hi = int_range(e)
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
