/* The side runner's main (not in the fuzz target). Included by the generated harness after its tables.

     harness r FUNCTION INPUTS RESULTS [LIMITS]   run each input in a forked child, one frame per input
     harness b FUNCTION INPUTS ITERATIONS          benchmark: call the function over all inputs, no fork, no output

   A frame goes to the RESULTS file (never stdout: what the functions print is data, captured per input):
     magic:u32 index:u32 status:u32 code:i32 nanoseconds:u64 npayload:u32 nstdout:u32 nstderr:u32
     payload stdout stderr end:u32
   status 0: the child exited (code: its status; payload: what it serialized), 1: killed by signal `code`,
   2: killed at its time limit. LIMITS holds one u32 of microseconds per input (default COOPT_INPUT_TIMEOUT
   seconds). The driver trusts these frames only from the original's build; from the candidate's they are
   claims it checks. */
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>

#define CZ_FRAME_MAGIC 0x31465a43u
#define CZ_FRAME_END 0x444e455au
#define CZ_MAX_TEXT 65536

/* MSan's fork interceptor locks its whole stack and origin depots, about 20 ms a fork; the runner has one
   thread, so the raw system call is safe there and ten times faster. */
#if defined(__has_feature)
#if __has_feature(memory_sanitizer)
#define CZ_FORK() ((pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0))
#endif
#endif
#ifndef CZ_FORK
#define CZ_FORK() fork()
#endif

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

static void cz_write_all(int fd, const void *p, size_t n) {
    const unsigned char *b = p;
    while (n > 0) {
        ssize_t k = write(fd, b, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) _exit(3);
        b += k; n -= (size_t)k;
    }
}

/* The whole of a scratch file a child wrote (at most `most` bytes), from its start. */
static unsigned char *cz_slurp(int fd, size_t most, size_t *n) {
    struct stat sb;
    size_t len = fstat(fd, &sb) == 0 && sb.st_size > 0 ? (size_t)sb.st_size : 0, got = 0;
    if (len > most) len = most;
    unsigned char *buf = malloc(len ? len : 1);
    while (got < len) {
        ssize_t k = pread(fd, buf + got, len - got, (off_t)got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    *n = got;
    return buf;
}

static int cz_scratch_file(const char *what) {
    char path[64];
    snprintf(path, sizeof path, ".cz-%ld-%s", (long)getpid(), what);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) { perror(path); exit(2); }
    unlink(path);  /* the descriptors are enough; nothing is left in the scratch directory */
    return fd;
}

/* Sanitizer builds reserve terabytes of address space, so RLIMIT_AS cannot bound them, and their runtime's
   hard_rss_limit_mb thread does not survive fork. A child instead gets RLIMIT_DATA at what it has mapped now
   plus COOPT_MEM_LIMIT_MB: the shadow is already counted, what the allocator maps for the call is not. */
static void cz_mem_limit(long mb) {
    if (mb <= 0) return;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmData:", 7) == 0) { kb = atol(line + 7); break; }
    fclose(f);
    if (kb < 0) return;
    rlim_t lim = ((rlim_t)kb << 10) + ((rlim_t)mb << 20);
    struct rlimit rl = { lim, lim };
    setrlimit(RLIMIT_DATA, &rl);
}

static pid_t cz_child;
static volatile sig_atomic_t cz_fired;
static void cz_on_alarm(int sig) {
    (void)sig;
    if (cz_child > 0) { kill(cz_child, SIGKILL); cz_fired = 1; }
}

static void cz_frame(int fd, uint32_t idx, uint32_t status, int32_t code, uint64_t ns, int pay, int out, int err) {
    size_t np, no, ne;
    unsigned char *p = cz_slurp(pay, (size_t)1 << 31, &np), *o = cz_slurp(out, CZ_MAX_TEXT, &no),
                  *e = cz_slurp(err, CZ_MAX_TEXT, &ne);
    uint32_t head[9] = { CZ_FRAME_MAGIC, idx, status, (uint32_t)code, (uint32_t)ns, (uint32_t)(ns >> 32),
                         (uint32_t)np, (uint32_t)no, (uint32_t)ne };
    uint32_t end = CZ_FRAME_END;
    cz_write_all(fd, head, sizeof head);
    cz_write_all(fd, p, np); cz_write_all(fd, o, no); cz_write_all(fd, e, ne);
    cz_write_all(fd, &end, 4);
    free(p); free(o); free(e);
}

static void cz_reset(int fd) {
    if (ftruncate(fd, 0) != 0) _exit(3);
    lseek(fd, 0, SEEK_SET);
}

static int cz_main(int argc, char **argv, cz_runner *runners, int nrunners) {
    if (argc < 5 || (argv[1][0] != 'r' && argv[1][0] != 'b')) {
        fprintf(stderr, "usage: harness r FUNCTION INPUTS RESULTS [LIMITS] | b FUNCTION INPUTS ITERATIONS\n");
        return 2;
    }
    int fn = atoi(argv[2]);
    if (fn < 0 || fn >= nrunners) { fprintf(stderr, "no function %d\n", fn); return 2; }
    size_t n;
    unsigned char *data = cz_read_file(argv[3], &n);
    if (argv[1][0] == 'b') {
        long iters = atol(argv[4]);
        for (long it = 0; it < iters; it++)
            for (size_t pos = 0; pos + 4 <= n;) {
                uint32_t len; memcpy(&len, data + pos, 4); pos += 4;
                if (len > n - pos) len = (uint32_t)(n - pos);
                runners[fn](data + pos, len, 0, NULL);
                pos += len;
            }
        return 0;
    }
    int res = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (res < 0) { perror(argv[4]); return 2; }
    size_t nlimits = 0;
    unsigned char *limits = argc > 5 ? cz_read_file(argv[5], &nlimits) : NULL;
    uint64_t default_us = 2000000;
    if (getenv("COOPT_INPUT_TIMEOUT")) default_us = (uint64_t)(atof(getenv("COOPT_INPUT_TIMEOUT")) * 1e6);
    long mem_mb = getenv("COOPT_MEM_LIMIT_MB") ? atol(getenv("COOPT_MEM_LIMIT_MB")) : 0;
    int pay = cz_scratch_file("payload"), out = cz_scratch_file("stdout"), err = cz_scratch_file("stderr");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cz_on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    for (size_t pos = 0, idx = 0; pos + 4 <= n; idx++) {
        uint32_t len; memcpy(&len, data + pos, 4); pos += 4;
        if (len > n - pos) len = (uint32_t)(n - pos);
        uint64_t us = default_us;
        if (limits && (idx + 1) * 4 <= nlimits) { uint32_t v; memcpy(&v, limits + idx * 4, 4); us = v; }
        if (us == 0) us = 1;
        cz_reset(pay); cz_reset(out); cz_reset(err);
        fflush(NULL);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cz_fired = 0;
        cz_child = CZ_FORK();
        if (cz_child == 0) {
            close(res);
            dup2(out, 1); dup2(err, 2);
            rlim_t cpu = (rlim_t)(us / 1000000) + 1;
            struct rlimit rl = { cpu, cpu + 1 };
            setrlimit(RLIMIT_CPU, &rl);
            cz_mem_limit(mem_mb);
            cz_writer w = { 0, 0, 0 };
            runners[fn](data + pos, len, 0, &w);
            cz_put8(&w, 'Z');
            fflush(NULL);
            cz_write_all(pay, w.p, w.n);
            _exit(0);
        }
        if (cz_child < 0) { perror("fork"); return 3; }
        struct itimerval it;
        memset(&it, 0, sizeof it);
        it.it_value.tv_sec = (time_t)(us / 1000000);
        it.it_value.tv_usec = (suseconds_t)(us % 1000000);
        setitimer(ITIMER_REAL, &it, NULL);
        int st = 0;
        while (waitpid(cz_child, &st, 0) < 0 && errno == EINTR) {}
        memset(&it, 0, sizeof it);
        setitimer(ITIMER_REAL, &it, NULL);
        cz_child = 0;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        uint64_t ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)(t1.tv_nsec - t0.tv_nsec);
        uint32_t status = cz_fired ? 2 : WIFEXITED(st) ? 0 : 1;
        int32_t code = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? WTERMSIG(st) : -1;
        cz_frame(res, (uint32_t)idx, status, code, ns, pay, out, err);
        pos += len;
    }
    close(res);
    return 0;
}

int main(int argc, char **argv) { return cz_main(argc, argv, cz_runners, CZ_NRUNNERS); }
