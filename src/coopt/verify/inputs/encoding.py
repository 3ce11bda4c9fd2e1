"""The byte encoding the harness decodes: `encode` a case into a blob, `decode` any blob back into the valid call
the harness makes of it (counts, lengths and alias offsets clamped alike), and `describe` a call in words."""

from __future__ import annotations

import struct

from coopt.verify.inputs.plan import (
    MAX_ELEMS,
    TAG_ALIAS,
    TAG_BUFFER,
    TAG_NULL,
    Alias,
    Buffer,
    CallPlan,
    CType,
    InputCase,
    Null,
    Role,
    Value,
    _clamp_lengths,
    field_elem,
    int_range,
    record_plan,
)

_INT_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}


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
        code = _INT_CODES.get(t.pointee.size) if t.pointee.kind in ("int", "enum", "bool") else None
        if code:  # in one struct.pack: a record's arrays can hold tens of thousands of integers
            mask = (1 << (8 * t.pointee.size)) - 1
            vals = [int(x) & mask if isinstance(x, (int, float)) else 0 for x in items[:t.count]]
            return struct.pack("<%d%s" % (t.count, code), *vals, *[0] * (t.count - len(vals)))
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
                limit = min(limit, int_range(role.type)[1])
            if limit is not None and int(args[i]) > limit:  # type: ignore[arg-type]
                args[i] = limit
            elif limit is None and int(args[i]) > 0:  # type: ignore[arg-type]
                args[i] = 0  # every buffer is NULL: a positive length would only crash the original
    return InputCase(tuple(args), case.note)


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
    if isinstance(v, tuple):  # a record or an array: its first members (an array may hold thousands)
        return "{%s%s}" % (", ".join(_short(x) for x in v[:16]), ", ..." if len(v) > 16 else "")
    return str(v)
