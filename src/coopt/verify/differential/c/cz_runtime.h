/* coopt's differential harness: the part that is the same for every function (the generated harness.c includes
   it first; harness.py writes the per-function parts). Defines expected from the generated file: CZ_MAX_ELEMS.

   One harness process runs ONE side's code (the original's or the candidate's), except the libFuzzer target
   (-DCZ_FUZZ), which runs both to find inputs and decides nothing. For each input the side decodes the blob into
   arguments, calls its function, and serializes what can be observed afterwards (the return value, every buffer
   the harness allocated for the call, every writable global) in a canonical form: pointers as an object and an
   offset into it, every NaN as one NaN, words of globals that hold pointers as their object and offset. Two
   sides that behave alike write the same bytes; the trusted driver (diffrun.py) compares them. */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

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
    if (c > CZ_MAX_ELEMS) c = CZ_MAX_ELEMS;
    return c;
}

/* ---- buffers decoded for one call, freed together (the benchmark and fuzz loops run many calls) ---- */
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

/* ---- the serialized result of one call ----
   payload  := section* 'Z'
   section  := kind:u8 form:u8 id:u32 count:u32 es:u32 body
     kind: 'r' return value, 'm' buffer of parameter `id`, 's' buffer of the call's `id`th pointer field,
           'g' global `id` (the harness's table of globals)
     form 'B' (raw elements) and 'F' (floats of es bytes, NaNs made one): nbytes:u32 bytes
     form 'I' (itemized elements): count times value* 'e'
     form 'G' (a global): nbytes:u32 bytes (pointer words zeroed) nann:u32 (wordoffset:u32 pointer)*
   value    := 'b' n:u32 bytes | 'f' f64 (NaNs made one) | 'p' pointer
   pointer  := 0 (NULL) | 1 kind:u8 index:u32 offset:u64 (into a known object) | 2 (elsewhere: heap the
               function allocated, string literals, code) */
typedef struct { unsigned char *p; size_t n, cap; } cz_writer;
static void cz_put(cz_writer *w, const void *src, size_t n) {
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->n + n) cap *= 2;
        unsigned char *q = realloc(w->p, cap);
        if (!q) abort();
        w->p = q; w->cap = cap;
    }
    memcpy(w->p + w->n, src, n);
    w->n += n;
}
static void cz_put8(cz_writer *w, unsigned v) { unsigned char b = (unsigned char)v; cz_put(w, &b, 1); }
static void cz_put32(cz_writer *w, uint32_t v) { cz_put(w, &v, 4); }
static void cz_section(cz_writer *w, char kind, char form, uint32_t id, uint32_t count, uint32_t es) {
    cz_put8(w, (unsigned char)kind); cz_put8(w, (unsigned char)form);
    cz_put32(w, id); cz_put32(w, count); cz_put32(w, es);
}
static const double cz_nan = __builtin_nan("");
static void cz_w_bytes(cz_writer *w, const void *p, size_t n) { cz_put8(w, 'b'); cz_put32(w, (uint32_t)n); cz_put(w, p, n); }
static void cz_w_double(cz_writer *w, double d) {
    if (d != d) d = cz_nan;
    cz_put8(w, 'f'); cz_put(w, &d, 8);
}
static void cz_w_end(cz_writer *w) { cz_put8(w, 'e'); }
/* A float of any width: float and double through double (exact), wider ones as their value bytes. */
#define CZ_W_FLOAT(w, x) do { if (sizeof(x) <= 8) cz_w_double((w), (double)(x)); \
    else cz_w_bytes((w), &(x), 10); } while (0)

/* Objects a pointer may point into: the call's buffers and the side's globals, with their kind and index (the
   same on both sides, since both decode the same input with the same code). */
typedef struct { const unsigned char *base; size_t size; char kind; uint32_t index; } cz_region;
#define CZ_MAX_REGIONS 4096
static cz_region cz_regions[CZ_MAX_REGIONS];
static int cz_nregions;
static void cz_add_region(const void *base, size_t size, char kind, uint32_t index) {
    if (cz_nregions < CZ_MAX_REGIONS && base) {
        cz_region *g = &cz_regions[cz_nregions++];
        g->base = base; g->size = size; g->kind = kind; g->index = index;
    }
}
static const cz_region *cz_find(const void *p, size_t *off) {
    const unsigned char *a = p;
    for (int i = 0; i < cz_nregions; i++) {
        const cz_region *g = &cz_regions[i];
        if (a >= g->base && a <= g->base + g->size) { *off = (size_t)(a - g->base); return g; }
    }
    return 0;
}
static void cz_put_ptr(cz_writer *w, const void *p) {
    size_t off = 0;
    const cz_region *g = p ? cz_find(p, &off) : 0;
    if (!p) { cz_put8(w, 0); return; }
    if (!g) { cz_put8(w, 2); return; }
    uint64_t o64 = off;
    cz_put8(w, 1); cz_put8(w, (unsigned char)g->kind); cz_put32(w, g->index); cz_put(w, &o64, 8);
}
static void cz_w_ptr(cz_writer *w, const void *p) { cz_put8(w, 'p'); cz_put_ptr(w, p); }

/* A buffer of elements without pointers: raw bytes, or floats with every NaN made the same. */
static void cz_w_block(cz_writer *w, char kind, uint32_t id, const unsigned char *p, size_t count, size_t es, int fl) {
    size_t nbytes = count * es;
    cz_section(w, kind, fl ? 'F' : 'B', id, (uint32_t)count, (uint32_t)es);
    cz_put32(w, (uint32_t)nbytes);
    if (!fl || (es != 4 && es != 8)) { cz_put(w, p, nbytes); return; }
    for (size_t j = 0; j < count; j++) {
        if (es == 4) {
            float x; memcpy(&x, p + j * es, 4);
            if (x != x) x = (float)cz_nan;
            cz_put(w, &x, 4);
        } else {
            double x; memcpy(&x, p + j * es, 8);
            if (x != x) x = cz_nan;
            cz_put(w, &x, 8);
        }
    }
}

/* A writable global: its bytes, except that 8-byte words holding a pointer into a known object, or a value that
   looks like a 64-bit address (heap, mmap, stack: above 4 GiB), are zeroed and listed with the pointer's
   canonical form. Words in globals have no type here; the same rule applies to both sides. */
static void cz_w_global(cz_writer *w, uint32_t id, const unsigned char *g, size_t n) {
    cz_section(w, 'g', 'G', id, 1, (uint32_t)n);
    cz_put32(w, (uint32_t)n);
    size_t start = w->n;
    cz_put(w, g, n);
    cz_writer ann = { 0, 0, 0 };
    uint32_t nann = 0;
    for (size_t o = 0; o + 8 <= n; o += 8) {
        void *p; size_t off;
        memcpy(&p, g + o, 8);
        uintptr_t u = (uintptr_t)p;
        int addr_like = u >= ((uintptr_t)1 << 32) && u < ((uintptr_t)1 << 47);
        if (!p || (!addr_like && !cz_find(p, &off))) continue;
        memset(w->p + start + o, 0, 8);
        cz_put32(&ann, (uint32_t)o); cz_put_ptr(&ann, p);
        nann++;
    }
    cz_put32(w, nann);
    if (ann.n) cz_put(w, ann.p, ann.n);
    free(ann.p);
}

/* ---- buffers that pointer fields of records point to: allocated while the arguments are decoded, then
   registered as objects and written out after the call ---- */
typedef void (*cz_ser_fn)(cz_writer *, const void *);
typedef struct { unsigned char *p; size_t n, es; cz_ser_fn ser; int fl; } cz_sub;
static cz_sub cz_subs[256];
static int cz_nsubs;
static void *cz_sub_alloc(size_t n, size_t es, cz_ser_fn ser, int fl) {
    unsigned char *p = cz_alloc(n * es);
    if (cz_nsubs < 256) {
        cz_sub *s = &cz_subs[cz_nsubs++];
        s->p = p; s->n = n; s->es = es; s->ser = ser; s->fl = fl;
    }
    return p;
}
static void cz_add_sub_regions(void) {
    for (int i = 0; i < cz_nsubs; i++) cz_add_region(cz_subs[i].p, cz_subs[i].n * cz_subs[i].es, 's', (uint32_t)i);
}
static void cz_w_subs(cz_writer *w) {
    for (int i = 0; i < cz_nsubs; i++) {
        const cz_sub *s = &cz_subs[i];
        if (!s->ser) { cz_w_block(w, 's', (uint32_t)i, s->p, s->n, s->es, s->fl); continue; }
        cz_section(w, 's', 'I', (uint32_t)i, (uint32_t)s->n, (uint32_t)s->es);
        for (size_t j = 0; j < s->n; j++) { s->ser(w, s->p + j * s->es); cz_w_end(w); }
    }
}

/* Which side runs now (1 original, 2 candidate, 0 neither): the fuzz target's signal handler needs it. */
static volatile sig_atomic_t cz_side;
/* One function of the harness: decode `p`, call side `side` (0: this build's side; in the fuzz target 0 is the
   original and 1 the candidate), serialize into `w` (NULL: benchmark, nothing written). */
typedef void (*cz_runner)(const unsigned char *p, size_t n, int side, cz_writer *w);
