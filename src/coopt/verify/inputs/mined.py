"""Inputs that find what honest mistakes hide: constants mined from both sides, and values drawn from buffers.

Fixed generators reach a branch only when their values happen to meet its condition. Two kinds of honest mistake
hide from them (issue 12): a function wrong only on a value it compares against as a literal (a ';' no generated
string contains, a sentinel 1000000 no buffer holds, the bound 'F' of a digit range, a tolerance 0.001), and a
function wrong only when a scalar argument relates to a buffer argument's contents (a search that misses the key
at the last or an odd index, a one-element array whose element is the key). So:

- `mine` reads the LLVM IR of the original and the candidate (unoptimised C, or the candidate's own IR) and keeps
  every constant a comparison or a switch tests, every floating constant a comparison tests, and the string
  constants; per function first (its own constants lead), then the rest of the TU's.
- `MinedCases` turns them into calls: scalars equal to each constant and its neighbours (the other scalars at
  their base value and at zero), buffers holding a constant at the first, second, middle and last position and
  everywhere, strings holding a mined character at several positions and pairs of them ("0X"), and keys drawn
  from the buffer argument: its first, last, an odd and an even element, an element occurring twice, and a
  value absent from it.
"""

from __future__ import annotations

import math
import random
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from coopt.verify.inputs.plan import Buffer, CallPlan, CType, InputCase, Role, Value, int_range

MAX_INTS = 24  # per function: constants and their neighbours make three calls each per scalar
MAX_FLOATS = 8
MAX_CHARS = 10  # pairs of mined characters grow with the square
MAX_STRINGS = 8

_DEFINE = re.compile(r"^define [^@]*@\"?([\w.$]+)\"?\(")
_ICMP = re.compile(r"\bicmp \w+ i(8|16|32|64) ([^,]+), (-?\d+)\b")
_CASE = re.compile(r"^\s*i(8|16|32|64) (-?\d+), label ")
_VECTOR_INT = re.compile(r"\bi(8|16|32|64) (-?\d+)\b")
_FCMP = re.compile(r"\bfcmp \w+ (?:float|double) [^,]+, (\S+)")
_FLOAT_CONST = re.compile(r"^-?\d+\.\d+e[+-]\d+$")
_STRING = re.compile(r'\bc"([^"]*)"')
_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")


@dataclass
class Constants:
    """The constants one function's code (on either side) compares against, most specific first."""

    ints: list[int] = field(default_factory=list)
    floats: list[float] = field(default_factory=list)
    strings: list[bytes] = field(default_factory=list)

    @property
    def chars(self) -> list[int]:
        """The integer constants that are bytes other than NUL (characters a string may contain)."""
        return [v for v in self.ints if 0 < v < 256][:MAX_CHARS]

    def extend(self, other: Constants) -> None:
        for v in other.ints:
            if v not in self.ints:
                self.ints.append(v)
        for f in other.floats:
            if not any(_same_float(f, g) for g in self.floats):
                self.floats.append(f)
        for s in other.strings:
            if s not in self.strings:
                self.strings.append(s)

    def capped(self) -> Constants:
        return Constants(self.ints[:MAX_INTS], self.floats[:MAX_FLOATS], self.strings[:MAX_STRINGS])


def _same_float(a: float, b: float) -> bool:
    return struct.pack("<d", a) == struct.pack("<d", b)


@dataclass
class Mined:
    """Constants per function name, and those of the whole TU (for functions whose helpers hold the literals)."""

    functions: dict[str, Constants] = field(default_factory=dict)
    everything: Constants = field(default_factory=Constants)

    def for_function(self, name: str) -> Constants:
        out = Constants()
        out.extend(self.functions.get(name, Constants()))
        out.extend(self.everything)
        return out.capped()


def _ir_float(text: str) -> float | None:
    if text.startswith("0x") and len(text) == 18:  # a double's bits (IR writes float constants this way too)
        return float(struct.unpack(">d", bytes.fromhex(text[2:]))[0])
    if _FLOAT_CONST.match(text):
        return float(text)
    return None


def ir_string(text: str) -> bytes:
    """An IR string constant's bytes (IR writes each byte that is not printable ASCII as a backslash and two hex
    digits); the fuzzer's dictionary reads them too."""
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "\\" and _HEX2.fullmatch(text[i + 1 : i + 3]):
            out.append(int(text[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(ord(text[i]) & 0xFF)
            i += 1
    return bytes(out)


def mine(irs: list[str]) -> Mined:
    """The constants of every function defined in these IR modules (the original's and the candidate's)."""
    mined = Mined()
    for ir in irs:
        current: Constants | None = None
        for line in ir.splitlines():
            m = _DEFINE.match(line)
            if m:
                current = mined.functions.setdefault(m.group(1), Constants())
                continue
            if line.startswith("}"):
                current = None
                continue
            found = Constants()
            pairs = [(m.group(1), m.group(3)) for m in _ICMP.finditer(line)] + _CASE.findall(line)
            if " icmp " in line and "<" in line:  # a vector compare against a splat (candidate IR at -O2)
                pairs += _VECTOR_INT.findall(line.split(",", 1)[-1])
            if pairs:
                for bits, value in pairs:
                    v = int(value)
                    if bits == "8" and v < 0:
                        v &= 0xFF  # IR prints bytes >= 0x80 as negative i8
                    found.ints.append(v)
            fm = _FCMP.search(line)
            if fm:
                f = _ir_float(fm.group(1))
                if f is not None and math.isfinite(f) and f != 0.0:
                    found.floats.append(f)
            for text in _STRING.findall(line):
                raw = ir_string(text).rstrip(b"\0")
                if 0 < len(raw) <= 64:
                    found.strings.append(raw)
            if current is not None:
                current.extend(found)
            mined.everything.extend(found)
    # Zero and one are everywhere (loop bounds, NULL tests) and in every edge list already.
    for c in [*mined.functions.values(), mined.everything]:
        c.ints = [v for v in c.ints if v not in (0, 1)]
    return mined


def _fit(t: CType, v: int) -> int | None:
    lo, hi = int_range(t)
    if lo <= v <= hi:
        return v
    if not t.signed and -(1 << (8 * t.size - 1)) <= v < 0:
        return v & ((1 << (8 * t.size)) - 1)
    return None


def _neighbours_int(t: CType, values: list[int]) -> list[int]:
    out: list[int] = []
    for v in values:
        for w in (v, v - 1, v + 1):
            fw = _fit(t, w)
            if fw is not None and fw not in out:
                out.append(fw)
    return out


def _neighbours_float(t: CType, values: list[float]) -> list[float]:
    out: list[float] = []
    for v in values:
        for w in (v, math.nextafter(v, math.inf), math.nextafter(v, -math.inf), -v):
            if t.size == 4:
                try:
                    w = float(struct.unpack("<f", struct.pack("<f", w))[0])
                except OverflowError:
                    continue
            if not any(_same_float(w, x) for x in out):
                out.append(w)
    return out


def scalar_values(t: CType, c: Constants) -> list[int] | list[float]:
    """A scalar type's mined values: each constant and its neighbours (floats: the next representable values)."""
    if t.kind == "float":
        return _neighbours_float(t, c.floats + [float(v) for v in c.ints[:4]])
    if t.kind in ("int", "enum"):
        return _neighbours_int(t, c.ints)
    return []


def _elem_values(e: CType, c: Constants) -> list[Value]:
    if e.kind == "float":
        return [*c.floats, *(float(v) for v in c.ints[:4])]
    if e.kind in ("int", "enum"):
        return [v for v in (_fit(e, x) for x in c.ints) if v is not None]
    return []


BaseMaker = Callable[[int, bool], list[Value]]  # (element count, small values) -> the base arguments
BufferMaker = Callable[[Role, int, random.Random, bool], Buffer]  # (role, count, rng, small) -> a buffer


def _distinct(t: CType, elems: tuple[Value, ...], count: int) -> list[Value]:
    """`elems` without repeats, filled up to `count` with values of `t` it lacks (a key then occurs once)."""
    out = list(dict.fromkeys(elems))
    v = 2
    while len(out) < count:
        w: Value = float(v) if t.kind == "float" else _fit(t, v)
        if w is not None and w not in out:
            out.append(w)
        v += 1
    return out[:count]


@dataclass
class MinedCases:
    """Calls built from mined constants and from buffer contents, for one function."""

    constants: Constants

    def cases(self, p: CallPlan, make: BaseMaker, fill: BufferMaker, rng: random.Random) -> Iterator[InputCase]:
        """Every mined call; `make` and `fill` are the built-in source's makers of base arguments and buffers."""
        roles = p.roles
        streams: list[Iterator[InputCase]] = [self._keys_from_buffers(p, make, fill, rng)]
        scalars = [i for i, r in enumerate(roles) if r.kind == "scalar"]
        streams += [self._scalars(p, i, scalars, make) for i in scalars]
        for i, r in enumerate(roles):
            if r.kind == "buffer" and r.elem.is_scalar:
                streams.append(self._buffers(p, i, r, make, fill, rng))
            elif r.kind == "string":
                streams.append(self._strings(p, i, make))
        # Taken in turns, so that a cut-off (the caller's share of the budget) leaves each kind some calls.
        while streams:
            for it in list(streams):
                case = next(it, None)
                if case is None:
                    streams.remove(it)
                else:
                    yield case

    def _scalars(self, p: CallPlan, i: int, scalars: list[int], make: BaseMaker) -> Iterator[InputCase]:
        roles = p.roles
        for v in scalar_values(roles[i].type, self.constants):
            args = make(16, True)
            args[i] = v
            yield InputCase(tuple(args), "mined %s=%r" % (p.names[i] or i, v))
            if len(scalars) > 1:
                zeros = list(args)
                for j in scalars:
                    if j != i:
                        zeros[j] = 0.0 if roles[j].type.kind == "float" else 0
                yield InputCase(tuple(zeros), "mined %s=%r, others 0" % (p.names[i] or i, v))

    def _buffers(
        self, p: CallPlan, i: int, r: Role, make: BaseMaker, fill: BufferMaker, rng: random.Random
    ) -> Iterator[InputCase]:
        for v in _elem_values(r.elem, self.constants):
            for count in (16, 5):
                pos = sorted({0, 1, count // 2, count - 1})
                for at in pos + [-1]:
                    args = make(count, True)
                    buf = fill(r, count, rng, True)
                    elems = list(buf.elems)
                    for k in range(count):
                        if at == -1 or k == at:
                            elems[k] = v
                    args[i] = Buffer(tuple(elems))
                    where = "everywhere" if at == -1 else "at %d" % at
                    yield InputCase(tuple(args), "mined %s holds %r %s" % (p.names[i] or i, v, where))

    def _strings(self, p: CallPlan, i: int, make: BaseMaker) -> Iterator[InputCase]:
        chars = self.constants.chars
        texts: list[bytes] = list(self.constants.strings)
        for ch in chars:
            b = bytes([ch])
            texts += [b, b + b"abc", b"abc" + b, b"ab" + b + b"cd", b"a" + b + b"bc" + b + b"d", b * 3]
        for x in chars:
            for y in chars:
                texts.append(bytes([x, y]) + b"1")
        for s in self.constants.strings:
            texts += [b"x" + s, s + b"x", s + s]
        seen: set[bytes] = set()
        for t in texts:
            if t in seen:
                continue
            seen.add(t)
            args = make(16, True)
            args[i] = Buffer(tuple(t) + (0,))
            yield InputCase(tuple(args), "mined string %s=%r" % (p.names[i] or i, t.decode("latin-1")))

    @staticmethod
    def _keys_from_buffers(p: CallPlan, make: BaseMaker, fill: BufferMaker, rng: random.Random) -> Iterator[InputCase]:
        """Scalar arguments drawn from a buffer argument's contents: the searched value at the first, last, an odd
        and an even index, occurring twice, and absent."""
        roles = p.roles
        bufs = [i for i, r in enumerate(roles) if r.kind == "buffer" and r.elem.kind in ("int", "float", "enum")]
        keys = [i for i, r in enumerate(roles) if r.kind == "scalar" and r.type.kind in ("int", "float", "enum")]
        for b in bufs:
            for k in keys:
                for count in (1, 2, 3, 5, 8, 16, 17):
                    args = make(count, True)
                    raw = fill(roles[b], count, rng, False)
                    elems = _distinct(roles[b].elem, raw.elems, count)
                    picks = {"first": 0, "last": count - 1, "odd": 1 if count > 1 else 0, "even": 2 if count > 2 else 0}
                    picks["middle"] = count // 2
                    for label, at in picks.items():
                        key = _key(roles[k].type, elems[at])
                        if key is None:
                            continue
                        a = list(args)
                        a[b], a[k] = Buffer(tuple(elems)), key
                        yield InputCase(tuple(a), "%s = %s[%d] (%s)" % (p.names[k], p.names[b], at, label))
                    if count >= 3:
                        twice = list(elems)
                        twice[count - 1] = twice[1]
                        key = _key(roles[k].type, twice[1])
                        if key is None:
                            continue
                        a = list(args)
                        a[b], a[k] = Buffer(tuple(twice)), key
                        yield InputCase(
                            tuple(a), "%s = %s[1] = %s[%d] (twice)" % (p.names[k], p.names[b], p.names[b], count - 1)
                        )
                    absent = next((v for v in range(-1, -300, -1) if v not in elems), -1)
                    key = _key(roles[k].type, absent)
                    if key is None:
                        continue
                    a = list(args)
                    a[b], a[k] = Buffer(tuple(elems)), key
                    yield InputCase(tuple(a), "%s absent from %s" % (p.names[k], p.names[b]))


def _key(t: CType, v: Value) -> Value:
    """`v` as a value of the scalar type `t`, or None when it does not fit."""
    if t.kind == "float":
        return float(v) if isinstance(v, (int, float)) else None
    if isinstance(v, float):
        if not math.isfinite(v) or v != int(v):
            return None
        v = int(v)
    return _fit(t, v) if isinstance(v, int) else None
