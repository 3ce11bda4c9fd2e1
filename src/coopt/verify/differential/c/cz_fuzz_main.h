/* The libFuzzer entry (-DCZ_FUZZ, see fuzz.py): an input GENERATOR, never a judge. Both sides run in-process on
   each input, original first, each serializing its results; different bytes, or a crash or trapped UB while the
   candidate runs, is a finding: the input is written to $COOPT_FUZZ_FINDING and the process ends, and the
   trusted differential run decides about it like any other input. A crash or trap while the original runs means
   the input lies outside its contract: the handler jumps back and the input is dropped (-1 keeps it out of the
   corpus). The comparison is bytewise (the serialization is canonical); a floating-point tolerance only makes
   the replay dismiss more findings. */
#include <fcntl.h>
#include <setjmp.h>
static sigjmp_buf cz_jmp;
static int cz_fuzz_fn, cz_fuzz_ready;
static const char *cz_finding_path = "finding";
static const uint8_t *cz_cur;
static size_t cz_cur_n;
static cz_writer cz_wo, cz_wc;
static void cz_save(const char *suffix, int status) {
    char path[4096];
    snprintf(path, sizeof path, "%s%s", cz_finding_path, suffix);
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
    cz_save(cz_side == 2 ? "" : ".harness", CZ_EXIT_FINDING);
}
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!cz_fuzz_ready) {
        const char *fn = getenv("COOPT_FUZZ_FUNCTION"), *out = getenv("COOPT_FUZZ_FINDING");
        cz_fuzz_fn = fn ? atoi(fn) : 0;
        if (cz_fuzz_fn < 0 || cz_fuzz_fn >= CZ_NRUNNERS) cz_fuzz_fn = 0;
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
    cz_wo.n = cz_wc.n = 0;
    if (sigsetjmp(cz_jmp, 1)) {
        cz_side = 0;
        cz_free_all();
        return -1;
    }
    cz_runners[cz_fuzz_fn](data, size, 0, &cz_wo);
    cz_runners[cz_fuzz_fn](data, size, 1, &cz_wc);
    if (cz_wo.n != cz_wc.n || memcmp(cz_wo.p, cz_wc.p, cz_wo.n) != 0) cz_save("", CZ_EXIT_FINDING);
    return 0;
}
