"""Scalar values: edge values of integer and floating types, pairs of extremes, and random values (records and
arrays included, with buffers behind their pointer fields)."""

from __future__ import annotations

import math
import random
import struct

from coopt.verify.inputs.plan import Buffer, CType, Null, Value, field_elem, int_range, record_plan

ARRAY_PERIOD = 257


def int_edges(t: CType) -> list[int]:
    """Edge values of an integer type: 0, ±1, powers of two and their neighbours, min and max."""
    lo, hi = int_range(t)
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
    lo, hi = int_range(t)
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
    lo, hi = int_range(t)
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
        # A long in-record array repeats ARRAY_PERIOD random values (a prime: no vector width divides it): a
        # record such as bzip2's EState holds 50 thousand array elements, one Python value each.
        made = tuple(random_value(t.pointee, rng, small, deep) for _ in range(min(t.count, ARRAY_PERIOD)))
        return made if t.count <= ARRAY_PERIOD else (made * (t.count // ARRAY_PERIOD + 1))[:t.count]
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
