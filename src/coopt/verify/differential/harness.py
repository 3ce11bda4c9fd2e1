"""The generated harness programs (the per-function C; the rest lives in the `c/` files beside this module).

A harness includes the original TU with every function body replaced by a trap (so the TU's types, macros and
declarations are in scope, none of its code) and declares each function under test through `__typeof__` and an
asm label `__coopt_s_f`, which the link points at ONE side's renamed copy (`__coopt_o_f` or `__coopt_c_f`: see
build.py for the renaming, `side_links` for the link). The original and the candidate are built into separate
programs, so the process that speaks for the original runs no candidate code. For each input the program
decodes the blob into arguments (inputs.py describes the encoding), calls its function and serializes what can
be observed afterwards: the return value, every buffer the harness allocated for the call (pointer arguments
and pointer fields of records) and every writable global of the TU, in the canonical form `c/cz_runtime.h`
describes. The trusted driver (diffrun.py) compares the two.

Built with `-DCZ_FUZZ` and both sides' prefixes, the same source is a libFuzzer target instead (fuzz.py): both
sides in one process, compared bytewise, to find inputs; what it finds is replayed through the side programs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from coopt.verify.inputs import MAX_ELEMS, CallPlan, field_elem, int_max, record_plan
from coopt.verify.signatures import CType

ORIG_PREFIX = "__coopt_o_"
CAND_PREFIX = "__coopt_c_"
# What a side program's harness calls: linked to one side's copy with --defsym (`side_links`), so one compile
# of the harness serves both sides.
SIDE_PREFIX = "__coopt_s_"
EXIT_FINDING = 44  # the fuzz target saved an input on which the candidate misbehaved
TRAP_BODY = b"{ __builtin_trap(); }"
C_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "c")  # cz_runtime.h and the two mains


@dataclass(frozen=True)
class GlobalPair:
    """A symbol both objects define: serialized after each call when writable, a known object for pointers."""

    name: str
    size: int
    writable: bool


def _decl(t: CType) -> str:
    return "__typeof__(%s)" % t.spelling


def _ser_value(t: CType, expr: str, gen: _Gen) -> str:
    """C that serializes one value of type `t` (an lvalue) into writer `w`."""
    if t.kind == "float":
        return "CZ_W_FLOAT(w, %s);" % expr
    if t.kind == "pointer":
        return "cz_w_ptr(w, (const void *)%s);" % expr
    if t.kind == "record":
        return "cz_ser_rec%d(w, &%s);" % (gen.record(t), expr)
    if t.kind == "bool":
        return "{ unsigned char v = !!(%s); cz_w_bytes(w, &v, 1); }" % expr
    return "cz_w_bytes(w, &%s, sizeof %s);" % (expr, expr)


class _Gen:
    def __init__(self) -> None:
        self.records: dict[tuple[str, bool], int] = {}  # (record spelling, deep) -> index of its functions
        self.record_code: list[str] = []

    # -- records -------------------------------------------------------------------------------------------------
    def record(self, t: CType, deep: bool = False) -> int:
        """Index of the decode and serialize functions of a record type, generating them on first use. In a
        `deep` record (reached through a pointer field) pointer fields stay NULL; otherwise the fillable ones get
        a buffer of their own (inputs.record_plan), registered to be serialized after the call."""
        key = (t.spelling, deep)
        if key in self.records:
            return self.records[key]
        k = len(self.records)
        self.records[key] = k
        rp = record_plan(t, deep)
        dec, ser = ["size_t cz_avail[%d] = {0}; int cz_has[%d] = {0};" % ((len(t.fields) or 1,) * 2)], []
        for i, (f, kind) in enumerate(zip(t.fields, rp.kinds, strict=False)):
            ft = f.type
            x = "x->%s" % f.name
            if f.bitfield:
                dec.append("{ unsigned long long v; cz_rd(r, &v, 8); %s = v; }" % x)
                ser.append("{ unsigned long long v = (unsigned long long)%s; cz_w_bytes(w, &v, 8); }" % x)
            elif ft.kind == "pointer":
                if kind in ("buffer", "string"):
                    dec.append(self._field_buffer(i, f.name, ft, kind == "string"))
                else:
                    dec.append("%s = 0;" % x)
                ser.append("cz_w_ptr(w, (const void *)%s);" % x)
            elif ft.kind == "bool":
                dec.append("%s = cz_u8(r) & 1;" % x)
                ser.append(_ser_value(ft, x, self))
            elif ft.kind == "record":
                dec.append("cz_dec_rec%d(r, &%s);" % (self.record(ft, deep), x))
                ser.append("cz_ser_rec%d(w, &%s);" % (self.record(ft, deep), x))
            elif ft.kind == "array" and ft.pointee is not None and ft.pointee.kind == "record":
                j = self.record(ft.pointee, deep)
                dec.append("for (int i = 0; i < %d; i++) cz_dec_rec%d(r, &%s[i]);" % (ft.count, j, x))
                ser.append("for (int i = 0; i < %d; i++) cz_ser_rec%d(w, &%s[i]);" % (ft.count, j, x))
            else:  # floats (CZ_W_FLOAT), and everything else as its bytes
                dec.append("cz_rd(r, &%s, sizeof %s);" % (x, x))
                ser.append(_ser_value(ft, x, self) if ft.kind == "float" else "cz_w_bytes(w, &%s, sizeof %s);" % (x, x))
        for i, ps in rp.bound:
            name = t.fields[i].name
            dec.append("{ int any = 0; size_t lim = (size_t)-1;")
            for p in ps:
                dec.append("if (cz_has[%d]) { any = 1; if (cz_avail[%d] < lim) lim = cz_avail[%d]; }" % (p, p, p))
            dec.append("if (lim > %du) lim = %du;" % ((int_max(t.fields[i].type),) * 2))
            dec.append("if (!any) { if (x->%s > 0) x->%s = 0; }" % (name, name))
            dec.append("else if (x->%s > 0 && (unsigned long long)x->%s > lim) x->%s = lim; }" % ((name,) * 3))
        dec.append("(void)cz_avail; (void)cz_has;")
        s = t.spelling
        self.record_code.append(
            "static void cz_dec_rec%d(cz_reader *r, void *p) { %s *x = p; %s }\n"
            "static void cz_ser_rec%d(cz_writer *w, const void *p) { const %s *x = p; %s (void)x; }\n"
            % (k, s, " ".join(dec), k, s, " ".join(ser))
        )
        return k

    def _field_buffer(self, i: int, name: str, ft: CType, string: bool) -> str:
        """Decoding of a pointer field that gets a buffer: tag, count, elements (see inputs.pack_value)."""
        e = field_elem(ft)
        esize = "1" if ft.pointee is not None and ft.pointee.kind == "void" else "sizeof(*x->%s)" % name
        if e.kind == "record":
            j = self.record(e, True)
            ser_fn, fl, elem = "cz_ser_rec%d" % j, 0, "cz_dec_rec%d(r, b + j * es);" % j
        else:
            ser_fn, fl = "0", int(e.kind == "float")
            elem = "b[j] = cz_u8(r) & 1;" if e.kind == "bool" else "cz_rd(r, b + j * es, es);"
        return (
            "if (cz_u8(r) %% 3 == 1) { size_t c = cz_count(r, %d), es = %s; %s"
            "unsigned char *b = cz_sub_alloc(c, es, %s, %d); for (size_t j = 0; j < c; j++) { %s } %s"
            "x->%s = (void *)b; cz_avail[%d] = c; cz_has[%d] = 1; } else x->%s = 0;"
            % (
                max(1, e.packed_size(True)),
                esize,
                "if (c == 0) c = 1; " if string else "",
                ser_fn,
                fl,
                elem,
                "b[c - 1] = 0; " if string else "",
                name,
                i,
                i,
                name,
            )
        )

    def record_protos(self) -> str:
        return "".join(
            "static void cz_dec_rec%d(cz_reader *r, void *p);\nstatic void cz_ser_rec%d(cz_writer *, const void *);\n"
            % (k, k)
            for k in self.records.values()
        )

    # -- one function -----------------------------------------------------------------------------------------------
    def function(self, k: int, name: str, ret: CType, plan: CallPlan, prefixes: Sequence[str]) -> str:
        roles = plan.roles
        nparams = len(roles)
        out = ["typedef __typeof__(%s) cz_fn%d_t;" % (name, k)]
        for s, prefix in enumerate(prefixes):
            out.append('extern cz_fn%d_t cz_f%d_%d __asm__("%s%s");' % (k, k, s, prefix, name))
        out.append("struct cz_args%d {" % k)
        for i, r in enumerate(roles):
            out.append("  %s a%d;" % (_decl(r.type), i))
        out.append("  unsigned char *buf[%d]; size_t bytes[%d]; size_t avail[%d]; int tag[%d];" % ((nparams or 1,) * 4))
        out.append("};")
        out += self._decode(k, plan)
        # run: decode, call this side's copy, serialize
        args = ", ".join("A->a%d" % i for i in range(nparams))
        has_ret = ret.kind != "void"
        run = ["static void cz_run%d(const unsigned char *p, size_t n, int side, cz_writer *w) {" % k]
        run.append("  struct cz_args%d S, *A = &S; cz_reader r; r.p = p; r.n = n; cz_nsubs = 0;" % k)
        if has_ret:
            run.append("  %s ret;" % _decl(ret))
        run.append("  cz_decode%d(&r, A);" % k)
        run.append("  cz_side = side + 1;")
        for s in range(len(prefixes)):
            run.append(
                "  %sif (side == %d) %scz_f%d_%d(%s);"
                % ("else " if s else "", s, "ret = " if has_ret else "", k, s, args)
            )
        run.append("  cz_side = 0;")
        run.append("  if (!w) { cz_free_all(); return; }")
        run.append("  cz_nregions = 0;")
        for i, r in enumerate(roles):
            if r.kind in ("buffer", "string"):
                run.append("  if (A->tag[%d] == 1) cz_add_region(A->buf[%d], A->bytes[%d], 'm', %d);" % (i, i, i, i))
        run.append("  cz_add_sub_regions(); cz_add_globals(side);")
        if has_ret:
            run.append("  cz_section(w, 'r', 'I', 0, 1, sizeof ret); %s cz_w_end(w);" % _ser_value(ret, "ret", self))
        for i, r in enumerate(roles):
            if r.kind not in ("buffer", "string"):
                continue
            e = r.elem
            esize = "1" if r.type.pointee is not None and r.type.pointee.kind == "void" else "sizeof(*A->a%d)" % i
            run.append("  if (A->tag[%d] == 1) {" % i)
            if e.kind == "record":
                run.append("    size_t es = %s;" % esize)
                run.append("    cz_section(w, 'm', 'I', %d, (uint32_t)A->avail[%d], (uint32_t)es);" % (i, i))
                run.append("    for (size_t j = 0; j < A->avail[%d]; j++) {" % i)
                run.append("      cz_ser_rec%d(w, A->buf[%d] + j * es); cz_w_end(w); }" % (self.record(e), i))
            else:
                fl = int(e.kind == "float")
                run.append("    cz_w_block(w, 'm', %d, A->buf[%d], A->avail[%d], %s, %d);" % (i, i, i, esize, fl))
            run.append("  }")
        run.append("  cz_w_subs(w); cz_w_globals(w, side);")
        run.append("  cz_free_all();")
        run.append("}")
        out += run
        return "\n".join(out) + "\n"

    def _decode(self, k: int, plan: CallPlan) -> list[str]:
        roles = plan.roles
        nparams = len(roles)
        dec = ["static void cz_decode%d(cz_reader *r, struct cz_args%d *A) {" % (k, k), "  memset(A, 0, sizeof *A);"]
        for i, r in enumerate(roles):
            t = r.type
            if r.kind in ("buffer", "string"):
                e = r.elem
                esize = "1" if t.pointee is not None and t.pointee.kind == "void" else "sizeof(*A->a%d)" % i
                packed = max(1, e.packed_size())
                dec.append("  A->tag[%d] = cz_u8(r) %% 3;" % i)
                dec.append("  if (A->tag[%d] == 1) {" % i)
                dec.append("    size_t c = cz_count(r, %d), es = %s;" % (packed, esize))
                if r.kind == "string":
                    dec.append("    if (c == 0) c = 1;")
                dec.append("    A->bytes[%d] = c * es; A->buf[%d] = cz_alloc(c * es); A->avail[%d] = c;" % (i, i, i))
                dec.append("    for (size_t j = 0; j < c; j++) {")
                if e.kind == "record":
                    dec.append("      cz_dec_rec%d(r, A->buf[%d] + j * es);" % (self.record(e), i))
                elif e.kind == "bool":
                    dec.append("      A->buf[%d][j] = cz_u8(r) & 1;" % i)
                else:
                    dec.append("      cz_rd(r, A->buf[%d] + j * es, es);" % i)
                dec.append("    }")
                if r.kind == "string":
                    dec.append("    A->buf[%d][c - 1] = 0;" % i)
                dec.append("    A->a%d = (void *)A->buf[%d];" % (i, i))
                dec.append("  } else if (A->tag[%d] == 2) {" % i)
                dec.append("    A->avail[%d] = cz_u8(r); A->bytes[%d] = cz_u32(r);  /* target, offset */" % (i, i))
                dec.append("  }")
            elif t.kind == "record":
                dec.append("  cz_dec_rec%d(r, &A->a%d);" % (self.record(t), i))
            elif t.kind == "bool":
                dec.append("  A->a%d = cz_u8(r) & 1;" % i)
            else:
                dec.append("  cz_rd(r, &A->a%d, sizeof A->a%d);" % (i, i))
        # aliases: a pointer into another parameter's buffer
        for i, r in enumerate(roles):
            if r.kind not in ("buffer", "string"):
                continue
            esize = "1" if r.type.pointee is not None and r.type.pointee.kind == "void" else "sizeof(*A->a%d)" % i
            dec.append("  if (A->tag[%d] == 2) {" % i)
            dec.append("    size_t t = A->avail[%d], off = A->bytes[%d];" % (i, i))
            dec.append("    A->avail[%d] = 0; A->bytes[%d] = 0;" % (i, i))
            dec.append("    if (t < %d && A->tag[t] == 1) {" % nparams)
            dec.append("      off %= A->bytes[t] + 1;")
            dec.append(
                "      A->a%d = (void *)(A->buf[t] + off); A->avail[%d] = (A->bytes[t] - off) / %s;" % (i, i, esize)
            )
            dec.append("    } else { A->tag[%d] = 0; }" % i)
            dec.append("  }")
        # lengths never exceed what their buffers hold
        for i, r in enumerate(roles):
            if r.kind != "length":
                continue
            dec.append("  { int any = 0; size_t lim = (size_t)-1;")
            for b in r.bound:
                dec.append("    if (A->tag[%d]) { any = 1; if (A->avail[%d] < lim) lim = A->avail[%d]; }" % (b, b, b))
            dec.append("    if (!any) { if (A->a%d > 0) A->a%d = 0; }" % (i, i))
            dec.append("    else if (A->a%d > 0 && (unsigned long long)A->a%d > lim) A->a%d = lim; }" % (i, i, i))
        dec.append("}")
        return dec


def side_links(names: Sequence[str], prefix: str) -> list[str]:
    """Linker options that point the harness's `SIDE_PREFIX` names at one side's copies."""
    return ["-Wl,--defsym=%s%s=%s%s" % (SIDE_PREFIX, n, prefix, n) for n in names]


def generate(
    stripped_include: str,
    functions: Sequence[tuple[str, CType, CallPlan]],
    globals_: Sequence[GlobalPair],
    prefixes: Sequence[str],
    defines_main: bool = False,
) -> str:
    """The harness source for the sides whose symbol `prefixes` are given: one (a side program) or the
    original's and the candidate's (the fuzz target, built with -DCZ_FUZZ). `stripped_include` is the path of
    the TU copy with trap bodies. Compile it with `-I C_DIR`."""
    g = _Gen()
    parts = ["#define CZ_MAX_ELEMS %d\n#define CZ_EXIT_FINDING %d\n" % (MAX_ELEMS, EXIT_FINDING)]
    parts.append('#include "cz_runtime.h"\n')
    parts.append("/* ---- the original TU, bodies cut out ---- */\n")
    if defines_main:
        parts.append("#define main __coopt_original_main\n")
    parts.append('#include "%s"\n' % stripped_include)
    if defines_main:
        parts.append("#undef main\n")
    parts.append("/* ---- the TU's globals, as this program's side(s) define them ---- */\n")
    for j, gp in enumerate(globals_):
        for s, prefix in enumerate(prefixes):
            parts.append('extern unsigned char cz_g%d_%d[] __asm__("%s%s");\n' % (j, s, prefix, gp.name))
    parts.append("static void cz_add_globals(int side) {\n")
    for s in range(len(prefixes)):
        parts.append("  if (side == %d) {\n" % s)
        for j, gp in enumerate(globals_):
            parts.append("    cz_add_region(cz_g%d_%d, %d, 'g', %d);\n" % (j, s, gp.size, j))
        parts.append("  }\n")
    parts.append("}\nstatic void cz_w_globals(cz_writer *w, int side) {\n  (void)w;\n")
    for s in range(len(prefixes)):
        parts.append("  if (side == %d) {\n" % s)
        for j, gp in enumerate(globals_):
            if gp.writable:
                parts.append("    cz_w_global(w, %d, cz_g%d_%d, %d);\n" % (j, j, s, gp.size))
        parts.append("  }\n")
    parts.append("}\n")
    fn_code = [g.function(k, name, ret, plan, prefixes) for k, (name, ret, plan) in enumerate(functions)]
    parts.append(g.record_protos())
    parts.extend(fn_code)
    parts.extend(g.record_code)
    parts.append("static cz_runner cz_runners[] = { %s };\n" % ", ".join("cz_run%d" % k for k in range(len(functions))))
    parts.append("#define CZ_NRUNNERS %d\n" % len(functions))
    parts.append('#ifndef CZ_FUZZ\n#include "cz_side_main.h"\n#else\n#include "cz_fuzz_main.h"\n#endif\n')
    return "".join(parts)
