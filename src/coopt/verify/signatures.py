"""Function signatures of a C translation unit, from clang's JSON AST dump (the real parser, no regex on C).

Types are read as clang's type trees, not as strings: for every function the TU defines we append
`typedef __typeof__(f) __coopt_fn_N;` to a probe file that includes the TU, and clang dumps the typedef with the
whole function prototype as a tree (typedef names kept, so each type can be spelled again in the harness). Record
fields are probed the same way (`__typeof__(((T *)0)->field)`), a round at a time, until every reachable record
is resolved.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

Node = dict[str, Any]

PROBE_FN = "__coopt_fn_"
PROBE_FIELD = "__coopt_fld_"
PROBE_KNR = "__coopt_knr_"
MAX_ROUNDS = 6

# clang builtin type name -> (kind, size in bytes, signed). x86-64 / AArch64 LP64; `char` signedness is the
# target's and is decided by the harness anyway (it copies bytes).
BUILTINS: dict[str, tuple[str, int, bool]] = {
    "_Bool": ("bool", 1, False),
    "char": ("int", 1, True),
    "signed char": ("int", 1, True),
    "unsigned char": ("int", 1, False),
    "short": ("int", 2, True),
    "unsigned short": ("int", 2, False),
    "int": ("int", 4, True),
    "unsigned int": ("int", 4, False),
    "long": ("int", 8, True),
    "unsigned long": ("int", 8, False),
    "long long": ("int", 8, True),
    "unsigned long long": ("int", 8, False),
    "float": ("float", 4, True),
    "double": ("float", 8, True),
    "void": ("void", 0, False),
}

# Nodes that only add sugar around the type that matters (their type is their single or last child).
SUGAR = {
    "ElaboratedType",
    "ParenType",
    "AttributedType",
    "MacroQualifiedType",
    "TypeOfType",
    "TypeOfExprType",
    "DecayedType",
    "AdjustedType",
}


class SignatureError(Exception):
    """The source does not parse (the message carries clang's first error line)."""


@dataclass(frozen=True)
class CType:
    """A C type as the harness needs it. `spelling` writes it at file scope, top-level qualifiers removed."""

    kind: str  # void, int, bool, float, enum, pointer, record, array, function, unsupported
    spelling: str
    size: int = 0  # bytes, for scalars
    signed: bool = False
    pointee: CType | None = None
    count: int = 0  # for arrays
    fields: tuple[Field, ...] = ()
    note: str = ""  # why it cannot be driven, when it cannot

    @property
    def is_scalar(self) -> bool:
        return self.kind in ("int", "bool", "float", "enum")

    def packed_size(self, deep: bool = False) -> int:
        """Bytes this type takes at least in the harness's packed input encoding (records without padding). A
        pointer field of a record takes its tag byte, and its buffer when there is one; in a `deep` record (one
        reached through such a pointer) pointer fields stay NULL and take nothing."""
        if self.is_scalar:
            return self.size
        if self.kind == "array" and self.pointee is not None:
            return self.count * self.pointee.packed_size(deep)
        if self.kind == "record":
            return sum(
                8 if f.bitfield else f.type.packed_size(deep) if f.type.kind != "pointer" else int(fillable(f, deep))
                for f in self.fields
            )
        return 0

    def drivable(self, as_element: bool = False) -> str:
        """Empty when the harness can make values of this type, else why not."""
        if self.is_scalar:
            return ""
        if self.kind == "record":
            for f in self.fields:
                if f.type.kind == "pointer":
                    continue  # left NULL
                why = f.type.drivable(as_element=True)
                if why:
                    return "field %s: %s" % (f.name, why)
            return "" if self.fields else "record without fields"
        if self.kind == "array" and as_element and self.pointee is not None:
            return self.pointee.drivable(as_element=True)
        if self.kind == "pointer" and not as_element and self.pointee is not None:
            if self.pointee.kind == "void":
                return ""
            if self.pointee.kind == "function":
                return "function pointer"
            if self.pointee.kind == "pointer":
                return "pointer to pointer"
            return self.pointee.drivable(as_element=True)
        return self.note or "%s type %s" % (self.kind, self.spelling)


@dataclass(frozen=True)
class Field:
    name: str
    type: CType
    bitfield: bool = False


def fillable(f: Field, deep: bool) -> bool:
    """Whether the harness gives a pointer field of a record a buffer to point to: only in records passed in
    directly (not `deep` ones, so a linked list is one node long), and only when it can fill the pointee (bytes,
    scalars, records with fields); every other pointer field is NULL."""
    t = f.type.pointee
    if deep or f.type.kind != "pointer" or t is None:
        return False
    if t.kind == "record":
        return bool(t.fields) and not t.drivable(as_element=True)
    return t.kind == "void" or t.is_scalar


@dataclass(frozen=True)
class Param:
    name: str
    type: CType


@dataclass(frozen=True)
class FunctionSig:
    """One function the TU defines."""

    name: str
    ret: CType
    params: tuple[Param, ...]
    variadic: bool = False
    static: bool = False

    def drivable(self) -> str:
        """Empty when the harness can call this function with generated inputs, else why not."""
        if self.variadic:
            return "variadic"
        if self.ret.kind not in ("void", "pointer") and self.ret.drivable():
            return "return type: %s" % self.ret.drivable()
        for i, p in enumerate(self.params):
            why = p.type.drivable()
            if why:
                return "parameter %d (%s): %s" % (i + 1, p.name or "unnamed", why)
        return ""

    def canonical(self) -> str:
        """The signature with typedefs and top-level qualifiers gone: two TUs agree on an ABI when these match."""
        return "%s(%s%s)" % (
            _canon(self.ret),
            ", ".join(_canon(p.type) for p in self.params),
            ", ..." if self.variadic else "",
        )


def _canon(t: CType) -> str:
    if t.kind == "pointer" and t.pointee is not None:
        return _canon(t.pointee) + "*"
    if t.kind == "array" and t.pointee is not None:
        return "%s[%d]" % (_canon(t.pointee), t.count)
    if t.kind in ("int", "bool", "float"):
        return "%s%d%s" % (t.kind, t.size, "s" if t.signed else "u")
    return t.spelling


@dataclass
class TranslationUnit:
    """What the verifier needs from one TU: its functions, their body text, and whom they call."""

    path: str
    functions: dict[str, FunctionSig] = field(default_factory=dict)
    undrivable: dict[str, str] = field(default_factory=dict)  # name -> why it has no signature we can drive
    bodies: dict[str, str] = field(default_factory=dict)  # name -> source text of the body
    body_ranges: dict[str, tuple[int, int]] = field(default_factory=dict)  # byte offsets in the file
    calls: dict[str, set[str]] = field(default_factory=dict)  # name -> functions its body refers to
    outside_bodies: str = ""  # the file's text with every function body cut out

    def stripped_source(self) -> bytes:
        """The file with each function body replaced by `;`: its types and declarations, none of its code."""
        with open(self.path, "rb") as f:
            data = f.read()
        for start, end in sorted(self.body_ranges.values(), reverse=True):
            data = data[:start] + b";" + data[end:]
        return data


def _dump(clang: str, probe_text: str, cflags: Sequence[str], filter_: str | None) -> list[Node]:
    with tempfile.TemporaryDirectory(prefix="coopt-ast-") as d:
        probe = os.path.join(d, "probe.c")
        with open(probe, "w", encoding="utf-8") as f:
            f.write(probe_text)
        cmd = [clang, *_parse_flags(cflags), "-fsyntax-only", "-Xclang", "-ast-dump=json"]
        if filter_:
            cmd += ["-Xclang", "-ast-dump-filter=" + filter_]
        proc = subprocess.run(cmd + [probe], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        first = next((ln for ln in proc.stderr.splitlines() if "error" in ln), proc.stderr.strip()[:300])
        raise SignatureError(first.replace(probe, "<probe>"))
    nodes: list[Node] = []
    dec = json.JSONDecoder()
    text, i = proc.stdout, 0
    # A filtered dump is a sequence of JSON documents, an unfiltered one a single document.
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        obj, i = dec.raw_decode(text, i)
        nodes.append(obj)
    return nodes


def _parse_flags(cflags: Sequence[str]) -> list[str]:
    """The flags that change how the TU parses; output, dependency and code generation flags are dropped."""
    out: list[str] = []
    skip_next = False
    for a in cflags:
        if skip_next:
            skip_next = False
            continue
        if a in ("-c", "-S", "-E", "-MD", "-MMD", "-MP"):
            continue
        if a in ("-o", "-MF", "-MT", "-MQ"):
            skip_next = True
            continue
        out.append(a)
    return out


def _walk_files(node: Node, state: list[str]) -> Iterator[tuple[Node, str]]:
    """Yield (node, file it starts in), following the dump's rule that a location names its file only when it
    differs from the previous location printed."""

    def see(loc: Any) -> None:
        if not isinstance(loc, dict):
            return
        for sub in ("spellingLoc", "expansionLoc"):
            see(loc.get(sub))
        if "file" in loc:
            state[0] = loc["file"]

    see(node.get("loc"))
    start_file = state[0]
    rng = node.get("range")
    if isinstance(rng, dict):
        see(rng.get("begin"))
        see(rng.get("end"))
    yield node, start_file
    for child in node.get("inner", ()):
        yield from _walk_files(child, state)


def _offset(loc: Node) -> int | None:
    """Byte offset of a location in its file, or None when it comes from a macro expansion."""
    if "spellingLoc" in loc or "expansionLoc" in loc:
        return None
    off = loc.get("offset")
    return off if isinstance(off, int) else None


def _refs(node: Node) -> Iterator[str]:
    for child in node.get("inner", ()):
        ref = child.get("referencedDecl")
        if child.get("kind") == "DeclRefExpr" and isinstance(ref, dict) and ref.get("kind") == "FunctionDecl":
            yield ref.get("name", "")
        yield from _refs(child)


class _Resolver:
    """Turns type trees into CTypes, asking for field probes of records it has not seen resolved yet."""

    def __init__(self, records: dict[str, list[tuple[str, bool]]], field_types: dict[str, Node]) -> None:
        self.records = records  # record spelling -> [(field name, is bitfield)]
        self.field_types = field_types  # "spelling::field" -> type tree from a probe
        self.wanted: set[str] = set()  # "spelling::field" probes still needed
        self.stack: list[str] = []

    def ctype(self, n: Node, outer: str = "") -> CType:
        kind = n.get("kind", "")
        spelling = n.get("type", {}).get("qualType", "")
        if kind == "QualType":
            return self.ctype(n["inner"][0], outer)
        if kind in SUGAR:
            inner = n.get("inner", [])
            types = [c for c in inner if c.get("kind", "").endswith("Type")]
            return self.ctype(types[-1] if types else inner[-1], outer or spelling)
        if kind == "TypedefType":
            return self.ctype(n["inner"][0], outer or spelling)
        name = outer or spelling
        if kind == "BuiltinType":
            row = BUILTINS.get(spelling)
            if row is None:
                return CType("unsupported", name, note="builtin type %s" % spelling)
            return CType(row[0], name, row[1], row[2])
        if kind == "EnumType":
            return CType("enum", name, 4, True)
        if kind == "PointerType":
            return CType("pointer", name, 8, pointee=self.ctype(n["inner"][0]))
        if kind == "ConstantArrayType":
            return CType("array", name, count=int(n.get("size", 0)), pointee=self.ctype(n["inner"][0]))
        if kind in ("FunctionProtoType", "FunctionNoProtoType"):
            return CType("function", name, note="function type")
        if kind == "RecordType":
            return self._record(n, name)
        return CType("unsupported", name, note="%s %s" % (kind, spelling))

    def _record(self, n: Node, name: str) -> CType:
        plain = n.get("type", {}).get("qualType", "")
        spelling = name if name in self.records else plain
        if spelling not in self.records:
            return CType("unsupported", name, note="incomplete record %s" % name)
        if plain.startswith("union"):
            return CType("unsupported", name, note="union %s" % name)
        if spelling in self.stack:
            return CType("unsupported", name, note="recursive record %s" % name)
        self.stack.append(spelling)
        try:
            fields = []
            for fname, bitfield in self.records[spelling]:
                if not fname:
                    return CType("unsupported", name, note="anonymous member in %s" % name)
                if bitfield:
                    # __typeof__ cannot take a bit-field; the harness assigns it from a 64-bit value.
                    fields.append(Field(fname, CType("int", "unsigned long long", 8, False), True))
                    continue
                key = "%s::%s" % (spelling, fname)
                tree = self.field_types.get(key)
                if tree is None:
                    self.wanted.add(key)
                    fields.append(Field(fname, CType("unsupported", "?", note="unresolved")))
                    continue
                fields.append(Field(fname, self.ctype(tree), bitfield))
        finally:
            self.stack.pop()
        return CType("record", name, fields=tuple(fields))


def _probe_type(decl: Node) -> Node:
    """The type tree under one probe typedef (TypeOfExprType keeps the expression first, the type last)."""
    return decl["inner"][0]


def _index_records(root: Node) -> dict[str, list[tuple[str, bool]]]:
    """Complete struct/union definitions by spelling ("struct s", or the typedef naming an anonymous one)."""
    by_id: dict[str, list[tuple[str, bool]]] = {}
    tag_of: dict[str, str] = {}
    records: dict[str, list[tuple[str, bool]]] = {}

    def visit(n: Node) -> None:
        if n.get("kind") == "RecordDecl" and n.get("completeDefinition"):
            fields = [
                (c.get("name", ""), bool(c.get("isBitfield")))
                for c in n.get("inner", ())
                if c.get("kind") == "FieldDecl"
            ]
            by_id[n["id"]] = fields
            tag_of[n["id"]] = "%s %s" % (n.get("tagUsed", "struct"), n.get("name", ""))
            if n.get("name"):
                records["%s %s" % (n.get("tagUsed", "struct"), n["name"])] = fields
        for c in n.get("inner", ()):
            visit(c)

    visit(root)

    def underlying_record(n: Node) -> str | None:
        while n.get("kind") in ("ElaboratedType", "QualType", "ParenType"):
            n = n["inner"][0]
        if n.get("kind") == "RecordType":
            return str(n.get("decl", {}).get("id"))
        return None

    for n in root.get("inner", ()):
        if n.get("kind") == "TypedefDecl" and n.get("inner"):
            rid = underlying_record(n["inner"][0])
            if rid in by_id:
                records[n["name"]] = by_id[rid]
    return records


def parse(path: str, cflags: Sequence[str] = (), clang: str = "clang") -> TranslationUnit:
    """Parse one C file: the functions it defines, their signatures, bodies and calls."""
    path = os.path.abspath(path)
    with open(path, "rb") as f:
        text_bytes = f.read()
    include = '#include "%s"\n' % path.replace("\\", "\\\\").replace('"', '\\"')
    (root,) = _dump(clang, include, cflags, None)
    tu = TranslationUnit(path)
    order: list[str] = []
    param_names: dict[str, list[str]] = {}
    param_spellings: dict[str, list[str]] = {}
    state = [""]
    for node, fname in _walk_files(root, state):
        if node.get("kind") != "FunctionDecl" or fname != path or node.get("isImplicit"):
            continue
        body = next((c for c in node.get("inner", ()) if c.get("kind") == "CompoundStmt"), None)
        if body is None or not node.get("name"):
            continue
        name = node["name"]
        start, end = _offset(body["range"]["begin"]), _offset(body["range"]["end"])
        if start is not None and end is not None:
            end += int(body["range"]["end"].get("tokLen", 1))
            tu.body_ranges[name] = (start, end)
            tu.bodies[name] = text_bytes[start:end].decode("utf-8", errors="replace")
        if name == "main":
            continue  # cut out of the harness's copy, never driven
        tu.calls[name] = set(_refs(body)) - {name}
        parms = [c for c in node.get("inner", ()) if c.get("kind") == "ParmVarDecl"]
        param_names[name] = [c.get("name", "") for c in parms]
        param_spellings[name] = [c.get("type", {}).get("qualType", "") for c in parms]
        order.append(name)
    tu.outside_bodies = tu.stripped_source().decode("utf-8", errors="replace")

    statics = {n.get("name"): n.get("storageClass") == "static" for n in root.get("inner", ())}
    records = _index_records(root)
    field_types: dict[str, Node] = {}
    fn_trees: dict[str, Node] = {}
    wanted: set[str] = set()  # "spelling::field" probes to ask for
    sigs: dict[str, FunctionSig] = {}
    # K&R-style definitions have no prototype type: their return type is probed as the type of a call with no
    # arguments (valid for them), each parameter from the type its declaration spells.
    knr: set[str] = set()
    knr_trees: dict[tuple[str, int], Node] = {}
    for _ in range(MAX_ROUNDS):
        probe = [include]
        for i, name in enumerate(order):
            probe.append("typedef __typeof__(%s) %s%d;\n" % (name, PROBE_FN, i))
        knr_probes: dict[str, tuple[str, int]] = {}
        for i, name in enumerate(order):
            if name not in knr:
                continue
            probe.append("typedef __typeof__(%s()) %s%d_r;\n" % (name, PROBE_KNR, i))
            knr_probes["%s%d_r" % (PROBE_KNR, i)] = (name, -1)
            for j, spelled in enumerate(param_spellings.get(name, [])):
                probe.append("typedef __typeof__(%s) %s%d_%d;\n" % (spelled, PROBE_KNR, i, j))
                knr_probes["%s%d_%d" % (PROBE_KNR, i, j)] = (name, j)
        field_probes: dict[str, str] = {}  # probe name -> "spelling::field"
        for i, key in enumerate(sorted(wanted)):
            spelling, fname = key.split("::", 1)
            probe.append("typedef __typeof__(((%s *)0)->%s) %s%d;\n" % (spelling, fname, PROBE_FIELD, i))
            field_probes["%s%d" % (PROBE_FIELD, i)] = key
        nodes = _dump(clang, "".join(probe), cflags, "__coopt_")
        for decl in nodes:
            pname = decl.get("name", "")
            if decl.get("kind") != "TypedefDecl":
                continue
            if pname.startswith(PROBE_FN):
                fn_trees[order[int(pname[len(PROBE_FN) :])]] = _probe_type(decl)
            elif pname in field_probes:
                field_types[field_probes[pname]] = _probe_type(decl)
            elif pname in knr_probes:
                knr_trees[knr_probes[pname]] = _probe_type(decl)
        resolver = _Resolver(records, field_types)
        sigs = {}
        for name, tree in fn_trees.items():
            names = param_names.get(name, [])
            proto = _fn_proto(tree)
            if proto is not None and proto.get("kind") == "FunctionNoProtoType" and (name, -1) in knr_trees:
                ret = resolver.ctype(knr_trees[(name, -1)])
                params = tuple(
                    Param(n, resolver.ctype(knr_trees[(name, j)]))
                    for j, n in enumerate(names)
                    if (name, j) in knr_trees
                )
                sigs[name] = FunctionSig(name, ret, params, False, statics.get(name, False))
            else:
                sigs[name] = _signature(resolver, name, tree, statics.get(name, False), names)
        new_knr = {n for n, t in fn_trees.items() if (_fn_proto(t) or {}).get("kind") == "FunctionNoProtoType"} - knr
        new = resolver.wanted - set(field_types)
        if not new and not new_knr:
            break
        wanted |= new
        knr |= new_knr
    for name in order:
        sig = sigs.get(name)
        if sig is None:
            tu.undrivable[name] = "no prototype"
            continue
        tu.functions[name] = sig
        why = sig.drivable()
        if why:
            tu.undrivable[name] = why
    return tu


def _fn_proto(tree: Node) -> Node | None:
    n = tree
    while n.get("kind") in SUGAR or n.get("kind") == "QualType":
        types = [c for c in n.get("inner", ()) if c.get("kind", "").endswith("Type")]
        if not types:
            return None
        n = types[-1]
    return n if n.get("kind") in ("FunctionProtoType", "FunctionNoProtoType") else None


def _signature(resolver: _Resolver, name: str, tree: Node, static: bool, names: list[str]) -> FunctionSig:
    proto = _fn_proto(tree)
    if proto is None:
        return FunctionSig(name, CType("unsupported", "?", note="no prototype"), (), static=static)
    inner = proto.get("inner", [])
    ret = resolver.ctype(inner[0]) if inner else CType("void", "void")
    params = tuple(Param(names[i] if i < len(names) else "", resolver.ctype(t)) for i, t in enumerate(inner[1:]))
    variadic = bool(proto.get("variadic")) or proto.get("kind") == "FunctionNoProtoType"
    return FunctionSig(name, ret, params, variadic, static)
