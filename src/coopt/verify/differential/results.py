"""Reading what a side program reports, and comparing two sides' results for one input.

A side program (harness.py, `c/cz_side_main.h`) writes one frame per input to its results file: how the child
that ran the input ended, the canonical serialization of what the call left behind (`c/cz_runtime.h` describes
it), and what the child printed. Nothing here trusts a frame's content beyond its shape: a frame that does not
parse, comes out of order or is cut short ends the side's answers at that input.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from coopt.verify.inputs import CallPlan
from coopt.verify.signatures import CType
from coopt.verify.verdict import Reason

FRAME_MAGIC = 0x31465A43
FRAME_END = 0x444E455A
_HEAD = struct.Struct("<9I")
EXITED, SIGNALED, TIMED_OUT = 0, 1, 2


@dataclass(frozen=True)
class Frame:
    """How one input went in one side's child."""

    index: int
    status: int  # EXITED (code: exit status), SIGNALED (code: signal), TIMED_OUT (killed at its limit)
    code: int
    seconds: float
    payload: bytes
    stdout: bytes
    stderr: bytes

    @property
    def clean(self) -> bool:
        """The child returned from the call and wrote a complete result."""
        return self.status == EXITED and self.code == 0 and self.payload.endswith(b"Z")


def read_frames(data: bytes, count: int) -> tuple[list[Frame], str]:
    """The frames for inputs 0, 1, ... in order, up to the first that is missing or malformed, and what was
    wrong after them ('' when all `count` inputs were answered and nothing else was written)."""
    frames: list[Frame] = []
    pos = 0
    while pos < len(data):
        if len(frames) == count:
            return frames, "bytes after the record of the last input"
        if len(data) - pos < _HEAD.size:
            return frames, "a truncated record"
        magic, idx, status, code, lo, hi, np, no, ne = _HEAD.unpack_from(data, pos)
        if magic != FRAME_MAGIC or status > TIMED_OUT:
            return frames, "a malformed record"
        if idx != len(frames):
            return frames, "a record for input %d where input %d was due" % (idx, len(frames))
        body = pos + _HEAD.size
        end = body + np + no + ne
        if end + 4 > len(data):
            return frames, "a truncated record"
        if struct.unpack_from("<I", data, end)[0] != FRAME_END:
            return frames, "a malformed record"
        code_s = struct.unpack("<i", struct.pack("<I", code))[0]
        frames.append(
            Frame(
                idx,
                status,
                code_s,
                ((hi << 32) | lo) / 1e9,
                data[body : body + np],
                data[body + np : body + np + no],
                data[body + np + no : end],
            )
        )
        pos = end + 4
    return frames, ""


# -- payloads -------------------------------------------------------------------------------------------------------
Value = tuple  # ('b', bytes) | ('f', float) | ('p', pointer tuple)


@dataclass(frozen=True)
class Section:
    kind: str  # r, m, s, g
    form: str  # I, B, F, G
    id: int
    count: int
    es: int
    items: tuple = ()  # form I: one tuple of values per element
    raw: bytes = b""  # forms B, F, G
    pointers: tuple = ()  # form G: (word offset, pointer) pairs


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("truncated")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def pointer(self) -> tuple:
        k = self.u8()
        if k == 1:
            return ("at", chr(self.u8()), self.u32(), int(struct.unpack("<Q", self.take(8))[0]))
        if k in (0, 2):
            return ("null",) if k == 0 else ("elsewhere",)
        raise ValueError("bad pointer")

    def value(self) -> Value | None:
        t = chr(self.u8())
        if t == "b":
            return ("b", self.take(self.u32()))
        if t == "f":
            return ("f", struct.unpack("<d", self.take(8))[0])
        if t == "p":
            return ("p", self.pointer())
        if t == "e":
            return None
        raise ValueError("bad value")


def parse_payload(data: bytes) -> list[Section]:
    """The sections of a payload; ValueError when it is not one."""
    r = _Reader(data)
    out: list[Section] = []
    while True:
        kind = chr(r.u8())
        if kind == "Z":
            if r.pos != len(data):
                raise ValueError("bytes after the end")
            return out
        form = chr(r.u8())
        sid, count, es = r.u32(), r.u32(), r.u32()
        if kind not in "rmsg" or form not in "IBFG":
            raise ValueError("bad section")
        if form == "I":
            items = []
            for _ in range(count):
                vals = []
                while (v := r.value()) is not None:
                    vals.append(v)
                items.append(tuple(vals))
            out.append(Section(kind, form, sid, count, es, items=tuple(items)))
        elif form in "BF":
            out.append(Section(kind, form, sid, count, es, raw=r.take(r.u32())))
        else:
            raw = r.take(r.u32())
            ptrs = tuple((r.u32(), r.pointer()) for _ in range(r.u32()))
            out.append(Section(kind, form, sid, count, es, raw=raw, pointers=ptrs))


def float_equal(a: float, b: float, tolerance: float) -> bool:
    """The harness's rule: bitwise equal (so -0.0 != 0.0), any NaN equals any NaN, else within the relative
    `tolerance` (0: exact) of the larger of |a| and 1."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if struct.pack("<d", a) == struct.pack("<d", b):
        return True
    return tolerance > 0 and abs(a - b) <= tolerance * max(abs(a), 1.0)


def _values_equal(a: Sequence[Value], b: Sequence[Value], tol: float) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=False):
        if x[0] != y[0]:
            return False
        if x[0] == "f" and not float_equal(x[1], y[1], tol):
            return False
        if x[0] != "f" and x != y:
            return False
    return True


def _floats(raw: bytes, es: int) -> list[float]:
    if es not in (4, 8):
        return []
    return [v[0] for v in struct.iter_unpack("<f" if es == 4 else "<d", raw[: len(raw) // es * es])]


@dataclass(frozen=True)
class Difference:
    """The first place two payloads differ: the section, the element (or byte, for globals), both renderings."""

    section: Section
    where: int
    original: str
    candidate: str


def first_difference(a: bytes, b: bytes, tolerance: float) -> Difference | None:
    """None when two clean payloads show the same behaviour; raises ValueError when either does not parse."""
    if a == b:
        return None
    sa, sb = parse_payload(a), parse_payload(b)
    for x, y in zip(sa, sb, strict=False):
        if (x.kind, x.form, x.id, x.count, x.es) != (y.kind, y.form, y.id, y.count, y.es):
            return Difference(x, 0, _shape(x), _shape(y))
        if x.form == "I":
            for j, (vx, vy) in enumerate(zip(x.items, y.items, strict=False)):
                if not _values_equal(vx, vy, tolerance):
                    return Difference(x, j, _render(vx), _render(vy))
        elif x.form == "F" and x.es in (4, 8):
            if x.raw != y.raw:
                for j, (fx, fy) in enumerate(zip(_floats(x.raw, x.es), _floats(y.raw, y.es), strict=False)):
                    if not float_equal(fx, fy, tolerance):
                        return Difference(x, j, repr(fx), repr(fy))
        elif x.form in "BF":
            if x.raw != y.raw:
                j = next(k for k in range(min(len(x.raw), len(y.raw))) if x.raw[k] != y.raw[k]) // max(1, x.es)
                es = max(1, x.es)
                return Difference(x, j, x.raw[j * es : (j + 1) * es].hex(), y.raw[j * es : (j + 1) * es].hex())
        elif x.raw != y.raw or x.pointers != y.pointers:
            diff = [k for k in range(min(len(x.raw), len(y.raw))) if x.raw[k] != y.raw[k]]
            px, py = dict(x.pointers), dict(y.pointers)
            diff += [w for w in set(px) | set(py) if px.get(w) != py.get(w)]
            w = min(diff) // 8 * 8 if diff else 0
            return Difference(x, w, _global_words(x, w), _global_words(y, w))
    if len(sa) != len(sb):
        extra = (sa if len(sa) > len(sb) else sb)[min(len(sa), len(sb))]
        return Difference(extra, 0, _shape(extra) if len(sa) > len(sb) else "nothing", _shape(extra))
    return None


def _shape(s: Section) -> str:
    return "section %s%d of %d elements of %d bytes" % (s.kind, s.id, s.count, s.es)


def _pointer_text(p: tuple) -> str:
    if p[0] == "null":
        return "NULL"
    if p[0] == "elsewhere":
        return "a pointer outside the call's objects"
    what = {"m": "argument buffer", "s": "record field buffer", "g": "global"}.get(p[1], p[1])
    return "a pointer to byte %d of %s %d" % (p[3], what, p[2])


def _render(vals: Sequence[Value]) -> str:
    parts = []
    for v in vals:
        parts.append(repr(v[1]) if v[0] == "f" else _pointer_text(v[1]) if v[0] == "p" else "0x" + v[1].hex())
    return parts[0] if len(parts) == 1 else "{%s}" % ", ".join(parts)


def _global_words(s: Section, w: int) -> str:
    ptrs = dict(s.pointers)
    words = []
    for off in range(w, min(w + 16, len(s.raw)), 8):
        words.append(_pointer_text(ptrs[off]) if off in ptrs else "0x" + s.raw[off : off + 8].hex())
    return ", ".join(words)


def _value(t: CType | None, text: str) -> str:
    """A rendered scalar in the words of its type (hex bytes become numbers)."""
    if t is None or not text.startswith("0x"):
        return text
    raw = bytes.fromhex(text[2:])
    if t.kind in ("int", "enum", "bool") and len(raw) <= 8:
        return str(int.from_bytes(raw, "little", signed=t.signed))
    return text


def explain(d: Difference, ret: CType, plan: CallPlan, globals_: Sequence[str]) -> tuple[Reason, str]:
    """A difference in words, and its reason."""
    s = d.section
    if s.kind == "r":
        return Reason.RETURN_VALUE, "return value differs: original %s, candidate %s" % (
            _value(ret, d.original),
            _value(ret, d.candidate),
        )
    if s.kind == "m":
        i = s.id
        name = (plan.names[i] if i < len(plan.names) else "") or "argument %d" % (i + 1)
        elem = plan.roles[i].elem if i < len(plan.roles) else None
        o, c = d.original, d.candidate
        if s.form == "B":
            o, c = _value(elem, "0x" + o), _value(elem, "0x" + c)
        return Reason.MEMORY, "memory behind `%s` differs at element %d: original %s, candidate %s" % (
            name,
            d.where,
            o,
            c,
        )
    if s.kind == "s":
        o, c = (("0x" + v) if s.form == "B" else v for v in (d.original, d.candidate))
        return Reason.MEMORY, (
            "memory a pointer field of an argument points to (buffer %d of the call) differs at element %d: "
            "original %s, candidate %s" % (s.id, d.where, o, c)
        )
    name = globals_[s.id] if s.id < len(globals_) else "#%d" % s.id
    return Reason.GLOBAL, "global `%s` differs at byte %d after the call: original %s, candidate %s" % (
        name,
        d.where,
        d.original,
        d.candidate,
    )
