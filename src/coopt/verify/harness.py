"""The generated differential test program (C source).

It includes the original TU with every function body replaced by a trap (so the TU's types, macros and
declarations are in scope, none of its code), declares the original's and the candidate's copy of each function
under test through `__typeof__` and asm labels (`__coopt_o_f`, `__coopt_c_f`: see build.py for the renaming),
decodes each input blob into arguments (inputs.py describes the encoding), calls both sides on separate copies
of the same arguments, and compares the return values, every buffer reachable through the pointer arguments,
and every writable global both objects define. Pointers compare equal when they point at the same offset of
corresponding objects (a buffer, a global, a function).

Each input runs in a forked child with an alarm, so a crash, a hang or a sanitizer report on one input is a
result for that input, not the end of the run. The parent prints one `@@res INDEX STATUS` line per input.
Modes: `d` (differential), `o` / `c` (one side alone), `bo` / `bc` (benchmark loop over all inputs, no fork).
Built with `-DCZ_FUZZ` the same source is a libFuzzer target instead (`FUZZ_ENTRY`, used by fuzz.py): no `main`,
both sides in-process on each input, buffers ending at a guard page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from coopt.verify.inputs import MAX_ELEMS, CallPlan, field_elem, int_max, record_plan
from coopt.verify.signatures import CType

ORIG_PREFIX = "__coopt_o_"
CAND_PREFIX = "__coopt_c_"
EXIT_SAME = 42  # the child compared and found no difference
EXIT_DIFF = 43  # the child found a difference (details on stdout)
EXIT_FINDING = 44  # the fuzz target saved an input on which the candidate misbehaved
TRAP_BODY = b"{ __builtin_trap(); }"


@dataclass(frozen=True)
class GlobalPair:
    """A symbol both objects define: compared after each call when writable, used to translate pointers."""

    name: str
    size: int
    writable: bool


RUNTIME = r"""
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

/* MSan's fork interceptor locks its whole stack and origin depots, about 20 ms a fork; the harness has one thread,
   so the raw system call is safe there and ten times faster. */
#if defined(__has_feature)
#if __has_feature(memory_sanitizer)
#define CZ_FORK() ((pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0))
#endif
#endif
#ifndef CZ_FORK
#define CZ_FORK() fork()
#endif

typedef struct { const unsigned char *p; size_t n; } cz_reader;
static void cz_rd(cz_reader *r, void *dst, size_t n) {
    size_t k = n < r->n ? n : r->n;
    memcpy(dst, r->p, k);
    if (k < n) memset((char *)dst + k, 0, n - k);
    r->p += k; r->n -= k;
}
static unsigned cz_u8(cz_reader *r) { unsigned char v; cz_rd(r, &v, 1); return v; }
static uint32_t cz_u32(cz_reader *r) { uint32_t v; cz_rd(r, &v, 4); return v; }
static size_t cz_count(cz_reader *r, size_t packed) {
    size_t c = cz_u32(r), most = packed ? r->n / packed : 65536;
    if (c > most) c = most;
    if (c > %(max_elems)d) c = %(max_elems)d;
    return c;
}

typedef struct { const unsigned char *o, *c; size_t size; } cz_region;
#define CZ_MAX_REGIONS 4096
static cz_region cz_regions[CZ_MAX_REGIONS];
static int cz_nregions;
static void cz_add_region(const void *o, const void *c, size_t size) {
    if (cz_nregions < CZ_MAX_REGIONS) {
        cz_regions[cz_nregions].o = o; cz_regions[cz_nregions].c = c; cz_regions[cz_nregions].size = size;
        cz_nregions++;
    }
}
/* Same pointer: equal, or the same offset into corresponding objects; unknown on both sides (heap memory the
   functions allocated themselves) counts as equal, since nothing ties the two together. */
static int cz_ptr_eq(const void *po, const void *pc) {
    const unsigned char *a = po, *b = pc;
    int known = 0;
    if (a == b) return 1;
    for (int i = 0; i < cz_nregions; i++) {
        const cz_region *g = &cz_regions[i];
        int in_o = a >= g->o && a <= g->o + g->size, in_c = b >= g->c && b <= g->c + g->size;
        if (in_o && in_c && a - g->o == b - g->c) return 1;
        if (in_o || in_c) known = 1;
    }
    return !known;
}
static int cz_known(const void *p) {
    const unsigned char *a = p;
    for (int i = 0; i < cz_nregions; i++) {
        const cz_region *g = &cz_regions[i];
        if ((a >= g->o && a <= g->o + g->size) || (a >= g->c && a <= g->c + g->size)) return 1;
    }
    return 0;
}
static int cz_feq_f(float a, float b) { return (a != a && b != b) || memcmp(&a, &b, sizeof a) == 0; }
static int cz_feq_d(double a, double b) { return (a != a && b != b) || memcmp(&a, &b, sizeof a) == 0; }
static int cz_tol_d(double a, double b) {
    double tol = %(tolerance)r, d = a > b ? a - b : b - a, m = (a < 0 ? -a : a);
    if (cz_feq_d(a, b)) return 1;
    if (tol <= 0 || a != a || b != b) return 0;
    return d <= tol * (m > 1 ? m : 1);
}
static int cz_cmp_elem_f(const void *a, const void *b) {
    float x, y; memcpy(&x, a, sizeof x); memcpy(&y, b, sizeof y); return !cz_tol_d(x, y);
}
static int cz_cmp_elem_d(const void *a, const void *b) {
    double x, y; memcpy(&x, a, sizeof x); memcpy(&y, b, sizeof y); return !cz_tol_d(x, y);
}
static void cz_hex(const char *tag, const void *p, size_t n) {
    const unsigned char *b = p;
    printf(" %%s=", tag);
    for (size_t i = 0; i < n && i < 64; i++) printf("%%02x", b[i]);
}
static int cz_cmp_bytes(const char *what, long idx, const void *o, const void *c, size_t n) {
    if (memcmp(o, c, n) == 0) return 0;
    printf("@@diff %%s %%ld", what, idx); cz_hex("o", o, n); cz_hex("c", c, n); printf("\n");
    return 1;
}
/* Writable globals: bytes must match, except 8-byte words holding corresponding pointers. */
static int cz_cmp_global(const char *name, const unsigned char *o, const unsigned char *c, size_t n) {
    if (memcmp(o, c, n) == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        if (o[i] == c[i]) continue;
        size_t w = i & ~(size_t)7;
        if (w + 8 <= n) {
            void *po, *pc;
            memcpy(&po, o + w, 8); memcpy(&pc, c + w, 8);
            /* Words in globals have no type here: only a value that looks like a 64-bit address (heap,
               mmap, stack all live above 4 GiB) may count as a pointer nothing ties to the other side. */
            uintptr_t uo = (uintptr_t)po, uc = (uintptr_t)pc, lo4g = (uintptr_t)1 << 32, hi = (uintptr_t)1 << 47;
            int addr_like = uo >= lo4g && uc >= lo4g && uo < hi && uc < hi;
            if (cz_ptr_eq(po, pc) && (addr_like || cz_known(po) || cz_known(pc))) { i = w + 7; continue; }
        }
        size_t start = w, len = n - w < 16 ? n - w : 16;
        printf("@@diff global %%s %%zu", name, start); cz_hex("o", o + start, len); cz_hex("c", c + start, len);
        printf("\n");
        return 1;
    }
    return 0;
}

/* Buffers decoded for one call: freed together (the benchmark and fuzz loops run many calls in one process). */
static int cz_nallocs;
#ifndef CZ_FUZZ
static void *cz_allocs[256];
static void *cz_alloc(size_t n) {
    void *p = malloc(n);
    if (cz_nallocs < 256) cz_allocs[cz_nallocs++] = p;
    return p;
}
static void cz_free_all(void) {
    while (cz_nallocs > 0) free(cz_allocs[--cz_nallocs]);
}
#else
#include <sys/mman.h>
/* The fuzz target has no ASan: each buffer ends where an inaccessible page begins, so an access past its end
   faults at once (and the signal handler knows which side made it) instead of reading garbage that differs
   between the sides or corrupting the heap the fuzzer itself uses. Mappings are reused (zeroed) from a pool:
   the fuzzer runs tens of thousands of inputs a second. */
typedef struct { unsigned char *base; size_t len, start; } cz_map;
static cz_map cz_live[256], cz_pool[32];
static int cz_npool;
static void *cz_alloc(size_t n) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), need = (n + pg - 1) / pg * pg + pg;
    cz_map m = { 0, 0, 0 };
    if (cz_nallocs >= 256) return malloc(n);  /* never freed; cannot happen with 256 parameters or fewer */
    for (int i = 0; i < cz_npool; i++)
        if (cz_pool[i].len >= need) { m = cz_pool[i]; cz_pool[i] = cz_pool[--cz_npool]; break; }
    if (!m.base) {
        void *b = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (b == MAP_FAILED) return malloc(n);
        m.base = b; m.len = need; m.start = need - pg;
        mprotect(m.base + need - pg, pg, PROT_NONE);
    }
    size_t start = m.len - pg - n, low = start < m.start ? start : m.start;
    memset(m.base + low, 0, m.len - pg - low);  /* what the last user of the mapping left */
    m.start = start;
    cz_live[cz_nallocs++] = m;
    return m.base + start;
}
static void cz_free_all(void) {
    while (cz_nallocs > 0) {
        cz_map m = cz_live[--cz_nallocs];
        if (cz_npool < 32) cz_pool[cz_npool++] = m;
        else munmap(m.base, m.len);
    }
}
#endif
/* Buffers pointer fields of records point to: allocated while one side's arguments are decoded (in the same
   order for both sides), then registered as corresponding objects and compared element by element. */
typedef int (*cz_cmp_fn)(const void *, const void *);
typedef struct { unsigned char *o, *c; size_t n, es; cz_cmp_fn cmp; } cz_sub;
static cz_sub cz_subs[256];
static int cz_nsubs_o, cz_nsubs_c, cz_decoding_side;
static void *cz_sub_alloc(size_t n, size_t es, cz_cmp_fn cmp) {
    unsigned char *p = cz_alloc(n * es);
    if (cz_decoding_side == 1 && cz_nsubs_o < 256) {
        cz_sub *s = &cz_subs[cz_nsubs_o++];
        s->o = p; s->n = n; s->es = es; s->cmp = cmp;
    } else if (cz_decoding_side == 2 && cz_nsubs_c < 256) {
        cz_subs[cz_nsubs_c++].c = p;
    }
    return p;
}
static void cz_add_sub_regions(void) {
    for (int i = 0; i < cz_nsubs_o && i < cz_nsubs_c; i++)
        cz_add_region(cz_subs[i].o, cz_subs[i].c, cz_subs[i].n * cz_subs[i].es);
}
static int cz_cmp_subs(void) {
    for (int i = 0; i < cz_nsubs_o && i < cz_nsubs_c; i++) {
        const cz_sub *s = &cz_subs[i];
        for (size_t j = 0; j < s->n; j++) {
            const unsigned char *eo = s->o + j * s->es, *ec = s->c + j * s->es;
            if (s->cmp ? s->cmp(eo, ec) : memcmp(eo, ec, s->es)) {
                printf("@@diff sub%%d %%zu", i, j); cz_hex("o", eo, s->es); cz_hex("c", ec, s->es); printf("\n");
                return 1;
            }
        }
    }
    return 0;
}
/* Which side runs now (1 original, 2 candidate, 0 neither): the fuzz target's signal handler needs it. */
static volatile sig_atomic_t cz_side;

static long cz_timeout_s = 2;
static pid_t cz_child;
static void cz_on_alarm(int sig) { (void)sig; if (cz_child > 0) kill(cz_child, SIGKILL); }
typedef int (*cz_runner)(const unsigned char *, size_t, int);
/* mode: 0 differential, 1 original alone, 2 candidate alone, 3 original for benchmarking, 4 candidate ditto,
   5 differential inside the fuzz target (no fork) */

static unsigned char *cz_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (len == cap) buf = realloc(buf, cap *= 2);
        size_t k = fread(buf + len, 1, cap - len, f);
        if (k == 0) break;
        len += k;
    }
    fclose(f);
    *n = len;
    return buf;
}

#ifndef CZ_FUZZ
static int cz_main(int argc, char **argv, cz_runner *runners, int nrunners) {
    if (argc < 4) { fprintf(stderr, "usage: harness d|o|c|bo|bc FUNCTION-INDEX INPUTS [ITERATIONS]\n"); return 2; }
    const char *m = argv[1];
    int mode = m[0] == 'd' ? 0 : m[0] == 'o' ? 1 : m[0] == 'c' ? 2 : (m[0] == 'b' && m[1] == 'o') ? 3 : 4;
    int fn = atoi(argv[2]);
    if (fn < 0 || fn >= nrunners) { fprintf(stderr, "no function %%d\n", fn); return 2; }
    if (getenv("COOPT_INPUT_TIMEOUT")) cz_timeout_s = atol(getenv("COOPT_INPUT_TIMEOUT"));
    size_t n;
    unsigned char *data = cz_read_file(argv[3], &n);
    long iters = argc > 4 ? atol(argv[4]) : 1;
    if (mode >= 3) {
        for (long it = 0; it < iters; it++)
            for (size_t pos = 0, idx = 0; pos + 4 <= n; idx++) {
                uint32_t len; memcpy(&len, data + pos, 4); pos += 4;
                if (len > n - pos) len = n - pos;
                runners[fn](data + pos, len, mode);
                pos += len;
            }
        return 0;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cz_on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    for (size_t pos = 0, idx = 0; pos + 4 <= n; idx++) {
        uint32_t len; memcpy(&len, data + pos, 4); pos += 4;
        if (len > n - pos) len = n - pos;
        fflush(stdout);
        fprintf(stderr, "@@coopt-input %%zu\n", idx);
        fflush(stderr);
        cz_child = CZ_FORK();
        if (cz_child == 0) {
            struct rlimit cpu = { (rlim_t)cz_timeout_s + 1, (rlim_t)cz_timeout_s + 2 };
            setrlimit(RLIMIT_CPU, &cpu);
            alarm((unsigned)cz_timeout_s);
            int rc = runners[fn](data + pos, len, mode);
            fflush(stdout);
            _exit(rc);
        }
        int st = 0;
        alarm((unsigned)cz_timeout_s + 1);
        while (waitpid(cz_child, &st, 0) < 0) {}
        alarm(0);
        cz_child = 0;
        if (WIFEXITED(st) && WEXITSTATUS(st) == %(same)d) printf("@@res %%zu same\n", idx);
        else if (WIFEXITED(st) && WEXITSTATUS(st) == %(diff)d) printf("@@res %%zu diff\n", idx);
        else if (WIFEXITED(st)) printf("@@res %%zu exit %%d\n", idx, WEXITSTATUS(st));
        else if (WTERMSIG(st) == SIGALRM || WTERMSIG(st) == SIGKILL || WTERMSIG(st) == SIGXCPU)
            printf("@@res %%zu timeout\n", idx);
        else printf("@@res %%zu signal %%d\n", idx, WTERMSIG(st));
        pos += len;
    }
    fflush(stdout);
    return 0;
}
#endif
"""


# The libFuzzer entry (built with -DCZ_FUZZ, see fuzz.py). Both sides run in-process on each input, original
# first. A crash or trapped UB while the original runs means the input lies outside its contract: the handler
# jumps back and the input is dropped (-1 keeps it out of the corpus). A crash while the candidate runs, or a
# difference, is a finding: the input is written to $COOPT_FUZZ_FINDING and the process ends, so the
# differential run can judge it like any other input.
FUZZ_ENTRY = r"""
#include <fcntl.h>
#include <setjmp.h>
static sigjmp_buf cz_jmp;
static int cz_fuzz_fn, cz_fuzz_ready;
static const char *cz_finding_path = "finding";
static const uint8_t *cz_cur;
static size_t cz_cur_n;
static void cz_save(const char *suffix, int status) {
    char path[4096];
    snprintf(path, sizeof path, "%%s%%s", cz_finding_path, suffix);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        for (size_t off = 0; off < cz_cur_n;) {
            ssize_t k = write(fd, cz_cur + off, cz_cur_n - off);
            if (k <= 0) break;
            off += (size_t)k;
        }
        close(fd);
    }
    _exit(status);
}
static void cz_on_fault(int sig) {
    if (cz_side == 1) siglongjmp(cz_jmp, sig);
    cz_save(cz_side == 2 ? "" : ".harness", %(finding)d);
}
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!cz_fuzz_ready) {
        const char *fn = getenv("COOPT_FUZZ_FUNCTION"), *out = getenv("COOPT_FUZZ_FINDING");
        cz_fuzz_fn = fn ? atoi(fn) : 0;
        if (cz_fuzz_fn < 0 || cz_fuzz_fn >= %(nrunners)d) cz_fuzz_fn = 0;
        if (out) cz_finding_path = out;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = cz_on_fault;
        sa.sa_flags = SA_NODEFER;
        int sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP };
        for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
        cz_fuzz_ready = 1;
    }
    cz_cur = data; cz_cur_n = size;
    if (sigsetjmp(cz_jmp, 1)) {
        cz_side = 0;
        cz_free_all();
        return -1;
    }
    int rc = cz_runners[cz_fuzz_fn](data, size, 5);
    cz_free_all();
    if (rc != %(same)d) cz_save("", %(finding)d);
    return 0;
}
"""


def _decl(t: CType) -> str:
    return "__typeof__(%s)" % t.spelling


class _Gen:
    def __init__(self, tolerance: float) -> None:
        self.tolerance = tolerance
        self.records: dict[tuple[str, bool], int] = {}  # (record spelling, deep) -> index of its functions
        self.record_code: list[str] = []

    # -- records -------------------------------------------------------------------------------------------------
    def record(self, t: CType, deep: bool = False) -> int:
        """Index of the decode and compare functions of a record type, generating them on first use. In a `deep`
        record (reached through a pointer field) pointer fields stay NULL; otherwise the fillable ones get a
        buffer of their own (inputs.record_plan), registered for comparing after the call."""
        key = (t.spelling, deep)
        if key in self.records:
            return self.records[key]
        k = len(self.records)
        self.records[key] = k
        rp = record_plan(t, deep)
        dec, cmp_ = ["size_t cz_avail[%d] = {0}; int cz_has[%d] = {0};" % ((len(t.fields) or 1,) * 2)], []
        for i, (f, kind) in enumerate(zip(t.fields, rp.kinds, strict=False)):
            ft = f.type
            if f.bitfield:
                dec.append("{ unsigned long long v; cz_rd(r, &v, 8); x->%s = v; }" % f.name)
                cmp_.append("if (a->%s != b->%s) return 1;" % (f.name, f.name))
            elif ft.kind == "pointer":
                if kind in ("buffer", "string"):
                    dec.append(self._field_buffer(i, f.name, ft, kind == "string"))
                else:
                    dec.append("x->%s = 0;" % f.name)
                cmp_.append("if (!cz_ptr_eq((const void *)a->%s, (const void *)b->%s)) return 1;" % (f.name, f.name))
            elif ft.kind == "bool":
                dec.append("x->%s = cz_u8(r) & 1;" % f.name)
                cmp_.append("if (a->%s != b->%s) return 1;" % (f.name, f.name))
            elif ft.kind == "record":
                j = self.record(ft, deep)
                dec.append("cz_dec_rec%d(r, &x->%s);" % (j, f.name))
                cmp_.append("if (cz_cmp_rec%d(&a->%s, &b->%s)) return 1;" % (j, f.name, f.name))
            elif ft.kind == "array" and ft.pointee is not None and ft.pointee.kind == "record":
                j = self.record(ft.pointee, deep)
                dec.append("for (int i = 0; i < %d; i++) cz_dec_rec%d(r, &x->%s[i]);" % (ft.count, j, f.name))
                cmp_.append(
                    "for (int i = 0; i < %d; i++) if (cz_cmp_rec%d(&a->%s[i], &b->%s[i])) return 1;"
                    % (ft.count, j, f.name, f.name)
                )
            elif ft.kind == "float":
                dec.append("cz_rd(r, &x->%s, sizeof x->%s);" % (f.name, f.name))
                cmp_.append("if (!cz_tol_d(a->%s, b->%s)) return 1;" % (f.name, f.name))
            else:
                dec.append("cz_rd(r, &x->%s, sizeof x->%s);" % (f.name, f.name))
                cmp_.append("if (memcmp(&a->%s, &b->%s, sizeof a->%s)) return 1;" % (f.name, f.name, f.name))
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
            "static int cz_cmp_rec%d(const void *pa, const void *pb) { const %s *a = pa, *b = pb; %s return 0; }\n"
            % (k, s, " ".join(dec), k, s, " ".join(cmp_))
        )
        return k

    def _field_buffer(self, i: int, name: str, ft: CType, string: bool) -> str:
        """Decoding of a pointer field that gets a buffer: tag, count, elements (see inputs.pack_value)."""
        e = field_elem(ft)
        esize = "1" if ft.pointee is not None and ft.pointee.kind == "void" else "sizeof(*x->%s)" % name
        if e.kind == "record":
            j = self.record(e, True)
            cmp_fn, elem = "cz_cmp_rec%d" % j, "cz_dec_rec%d(r, b + j * es);" % j
        else:
            cmp_fn = {4: "cz_cmp_elem_f", 8: "cz_cmp_elem_d"}.get(e.size, "0") if e.kind == "float" else "0"
            elem = "b[j] = cz_u8(r) & 1;" if e.kind == "bool" else "cz_rd(r, b + j * es, es);"
        return (
            "if (cz_u8(r) %% 3 == 1) { size_t c = cz_count(r, %d), es = %s; %s"
            "unsigned char *b = cz_sub_alloc(c, es, %s); for (size_t j = 0; j < c; j++) { %s } %s"
            "x->%s = (void *)b; cz_avail[%d] = c; cz_has[%d] = 1; } else x->%s = 0;"
            % (
                max(1, e.packed_size(True)),
                esize,
                "if (c == 0) c = 1; " if string else "",
                cmp_fn,
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
            "static void cz_dec_rec%d(cz_reader *r, void *p);\nstatic int cz_cmp_rec%d(const void *, const void *);\n"
            % (k, k)
            for k in self.records.values()
        )

    # -- one function -----------------------------------------------------------------------------------------------
    def function(self, k: int, name: str, ret: CType, plan: CallPlan) -> str:
        roles = plan.roles
        nparams = len(roles)
        out = [
            "typedef __typeof__(%s) cz_fn%d_t;" % (name, k),
            'extern cz_fn%d_t cz_o%d __asm__("%s%s");' % (k, k, ORIG_PREFIX, name),
            'extern cz_fn%d_t cz_c%d __asm__("%s%s");' % (k, k, CAND_PREFIX, name),
            "struct cz_args%d {" % k,
        ]
        for i, r in enumerate(roles):
            out.append("  %s a%d;" % (_decl(r.type), i))
        out.append("  unsigned char *buf[%d]; size_t bytes[%d]; size_t avail[%d]; int tag[%d];" % ((nparams or 1,) * 4))
        out.append("};")
        # decode
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
        out += dec
        # run
        args = ", ".join("A->a%d" % i for i in range(nparams))
        run = ["static int cz_run%d(const unsigned char *p, size_t n, int mode) {" % k]
        run.append("  struct cz_args%d so, sc, *A; cz_reader r;" % k)
        run.append("  memset(&so, 0, sizeof so); memset(&sc, 0, sizeof sc); cz_nsubs_o = cz_nsubs_c = 0;")
        has_ret = ret.kind != "void"
        if has_ret:
            run.append("  %s ro, rc;" % _decl(ret))
        run.append("  if (mode != 2 && mode != 4) { r.p = p; r.n = n; cz_decoding_side = 1; cz_decode%d(&r, &so);" % k)
        run.append("    A = &so;")
        run.append("    cz_side = 1; %scz_o%d(%s); cz_side = 0; }" % ("ro = " if has_ret else "", k, args))
        run.append("  if (mode != 1 && mode != 3) { r.p = p; r.n = n; cz_decoding_side = 2; cz_decode%d(&r, &sc);" % k)
        run.append("    A = &sc;")
        run.append("    cz_side = 2; %scz_c%d(%s); cz_side = 0; }" % ("rc = " if has_ret else "", k, args))
        run.append("  if (mode == 3 || mode == 4) { cz_free_all(); return 0; }")
        run.append("  if (mode != 0 && mode != 5) return %d;" % EXIT_SAME)
        run.append("  int bad = 0;")
        run.append("  cz_nregions = 0;")
        for i, r in enumerate(roles):
            if r.kind in ("buffer", "string"):
                run.append("  if (so.tag[%d] == 1) cz_add_region(so.buf[%d], sc.buf[%d], so.bytes[%d]);" % (i, i, i, i))
        run.append("  cz_add_sub_regions();")
        run.append("  cz_add_globals();")
        if has_ret:
            run.append("  " + self._compare_value(ret, "ro", "rc", '"ret", -1L'))
        for i, r in enumerate(roles):
            if r.kind not in ("buffer", "string"):
                continue
            e = r.elem
            run.append("  if (so.tag[%d] == 1) {" % i)
            run.append("    size_t es = so.avail[%d] ? so.bytes[%d] / so.avail[%d] : 1;" % (i, i, i))
            run.append("    for (size_t j = 0; j < so.avail[%d] && !bad; j++) {" % i)
            run.append("      const unsigned char *eo = so.buf[%d] + j * es, *ec = sc.buf[%d] + j * es;" % (i, i))
            if e.kind == "float":
                ctype = "float" if e.size == 4 else "double"
                run.append("      %s vo, vc; memcpy(&vo, eo, es); memcpy(&vc, ec, es);" % ctype)
                run.append('      if (!cz_tol_d(vo, vc)) { printf("@@diff mem%d %%zu", j);' % i)
                run.append('        cz_hex("o", eo, es); cz_hex("c", ec, es); printf("\\n"); bad = 1; }')
            elif e.kind == "record":
                run.append('      if (cz_cmp_rec%d(eo, ec)) { printf("@@diff mem%d %%zu", j);' % (self.record(e), i))
                run.append('        cz_hex("o", eo, es); cz_hex("c", ec, es); printf("\\n"); bad = 1; }')
            else:
                run.append('      if (memcmp(eo, ec, es)) { printf("@@diff mem%d %%zu", j);' % i)
                run.append('        cz_hex("o", eo, es); cz_hex("c", ec, es); printf("\\n"); bad = 1; }')
            run.append("    }")
            run.append("  }")
        run.append("  if (!bad) bad = cz_cmp_subs();")
        run.append("  if (!bad) bad = cz_cmp_globals();")
        run.append("  return bad ? %d : %d;" % (EXIT_DIFF, EXIT_SAME))
        run.append("}")
        out += run
        return "\n".join(out) + "\n"

    def _compare_value(self, t: CType, a: str, b: str, where: str) -> str:
        report = (
            'printf("@@diff %%s %%ld", %s); cz_hex("o", &%s, sizeof %s); cz_hex("c", &%s, sizeof %s); '
            'printf("\\n"); bad = 1;' % (where, a, a, b, b)
        )
        if t.kind == "float":
            return "if (!cz_tol_d(%s, %s)) { %s }" % (a, b, report)
        if t.kind == "pointer":
            return "if (!cz_ptr_eq((const void *)%s, (const void *)%s)) { %s }" % (a, b, report)
        if t.kind == "record":
            return "if (cz_cmp_rec%d(&%s, &%s)) { %s }" % (self.record(t), a, b, report)
        if t.kind == "bool":
            return "if (!%s != !%s) { %s }" % (a, b, report)
        return "if (memcmp(&%s, &%s, sizeof %s)) { %s }" % (a, b, a, report)


def generate(
    stripped_include: str,
    functions: Sequence[tuple[str, CType, CallPlan]],
    globals_: Sequence[GlobalPair],
    tolerance: float = 0.0,
    defines_main: bool = False,
) -> str:
    """The harness source. `stripped_include` is the path of the TU copy with trap bodies."""
    g = _Gen(tolerance)
    parts = [RUNTIME % {"max_elems": MAX_ELEMS, "tolerance": float(tolerance), "same": EXIT_SAME, "diff": EXIT_DIFF}]
    parts.append("/* ---- the original TU, bodies cut out ---- */\n")
    if defines_main:
        parts.append("#define main __coopt_original_main\n")
    parts.append('#include "%s"\n' % stripped_include)
    if defines_main:
        parts.append("#undef main\n")
    parts.append("/* ---- globals of both sides ---- */\n")
    for j, gp in enumerate(globals_):
        parts.append('extern unsigned char cz_go%d[] __asm__("%s%s");\n' % (j, ORIG_PREFIX, gp.name))
        parts.append('extern unsigned char cz_gc%d[] __asm__("%s%s");\n' % (j, CAND_PREFIX, gp.name))
    parts.append("static void cz_add_globals(void) {\n")
    for j, gp in enumerate(globals_):
        parts.append("  cz_add_region(cz_go%d, cz_gc%d, %d);\n" % (j, j, gp.size))
    parts.append("}\nstatic int cz_cmp_globals(void) {\n  int bad = 0;\n")
    for j, gp in enumerate(globals_):
        if gp.writable:
            parts.append('  if (!bad) bad = cz_cmp_global("%s", cz_go%d, cz_gc%d, %d);\n' % (gp.name, j, j, gp.size))
    parts.append("  return bad;\n}\n")
    fn_code = [g.function(k, name, ret, plan) for k, (name, ret, plan) in enumerate(functions)]
    parts.append(g.record_protos())
    parts.extend(fn_code)
    parts.extend(g.record_code)
    parts.append("static cz_runner cz_runners[] = { %s };\n" % ", ".join("cz_run%d" % k for k in range(len(functions))))
    parts.append("#ifndef CZ_FUZZ\n")
    parts.append("int main(int argc, char **argv) { return cz_main(argc, argv, cz_runners, %d); }\n" % len(functions))
    parts.append("#else\n")
    parts.append(FUZZ_ENTRY % {"nrunners": len(functions), "same": EXIT_SAME, "finding": EXIT_FINDING})
    parts.append("#endif\n")
    return "".join(parts)
