/*
 * coopt-cc-fast: coopt-cc's miss path in C, for compiler calls the Python wrapper has already decided once.
 *
 * Python's start-up alone costs more than the whole budget of a miss, so after the Python wrapper has classified a
 * call and found no variant for it, it leaves a *replay memo* keyed by everything its decision depended on (working
 * directory, coopt-cc's own path, arguments, PATH, COOPT_COMPILER and the key's environment variables). The next
 * identical call (the next build) comes here: this program checks that the decision still holds (same compiler
 * binary, nothing new ahead of it on PATH), hashes the source, completes the key exactly as Python would, and when
 * no variant exists for that key it journals the compile and execs the real compiler. Anything else -- no memo, a
 * variant that may exist, an environment it does not know, any error -- goes to the Python wrapper, which decides
 * from scratch. Deferring is always safe.
 *
 * It serves a variant only as a replay too: when Python served a *direct* hit for this call (no compiler run: the
 * TU printed nothing and its header search was recorded), its memo lists every fact that hit was decided on as
 * checks (coopt.wrapper.fastpath.hit_replay): the source and headers hash as recorded, the header search's facts
 * hold, the manifest and the entry directory are the same, and every file of the entry (its evidence, its key
 * material, its object) hashes as it did when Python verified it. This program serves the hit again only when the
 * call's key is that hit's key and every check holds (among them: the Python modules that judged it are the same
 * files, so an upgrade decides again); any doubt goes to Python, which decides (and counts the reason) from scratch.
 *
 * A first build has no memo for its TUs yet, so Python also leaves a *shape memo*: the same decision with the source
 * and object names replaced by tokens, keyed by the call with those names replaced (coopt.wrapper.fastpath.shape).
 * A call without a memo of its own looks for the shape memo and fills in its own names: once Python has decided the
 * first compile of a build, the other TUs compiled with the same flags are decided here.
 *
 * It knows nothing of compiler options or the key's layout: both live in Python (coopt.wrapper.fastpath writes the
 * memo), so there is one source of truth. Links and pass-throughs are replayed the same way: their memos hold the
 * journal record (a link's) and the statistics counter to bump.
 *
 * With a launcher behind coopt-cc (ccache, sccache: coopt.wrapper.launcher), the memo names it and the real
 * compiler is run as `LAUNCHER COMPILER ARGS...`, as Python runs it.
 *
 * Usage (from the coopt-cc launcher): coopt-cc-fast PYTHON SELF ARGS...
 */
#define _GNU_SOURCE
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef COOPT_FAST_DIR
#define COOPT_FAST_DIR "fast"
#endif
#define MEMO_MAGIC "coopt-fast-6"
#define NFIELDS 26

static int g_argc;
static char **g_argv;

/* Hand the call to the Python wrapper, unchanged. */
static void defer(void) {
    char **av = calloc((size_t)g_argc + 3, sizeof(char *));
    if (!av) _exit(127);
    int n = 0;
    av[n++] = g_argv[1];
    av[n++] = "-I";
    av[n++] = "-S";
    for (int i = 2; i < g_argc; i++) av[n++] = g_argv[i];
    av[n] = NULL;
    execvp(g_argv[1], av);
    fprintf(stderr, "coopt-cc: error: cannot run %s: %s\n", g_argv[1], strerror(errno));
    _exit(127);
}

/* A growable byte buffer; any allocation failure defers. */
struct buf {
    char *p;
    size_t n, cap;
};

static void put(struct buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 4096);
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) defer();
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

static void line(struct buf *b, const char *tag, const char *value) {
    puts_(b, tag);
    puts_(b, value);
    put(b, "\n", 1);
}

static void hex64(XXH64_hash_t h, char out[17]) {
    XXH64_canonical_t c;
    XXH64_canonicalFromHash(&c, h);
    for (int i = 0; i < 8; i++) sprintf(out + 2 * i, "%02x", c.digest[i]);
}

static void hex128(const void *data, size_t n, char out[33]) {
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(data, n));
    for (int i = 0; i < 16; i++) sprintf(out + 2 * i, "%02x", c.digest[i]);
}

static int read_file(const char *path, struct buf *b) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char chunk[65536];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0) {
            if (errno == EINTR) continue;
            close(fd);
            return -1;
        }
        if (r == 0) break;
        put(b, chunk, (size_t)r);
    }
    close(fd);
    return 0;
}

/* Journal and statistics are best effort, as in Python: a full, read-only or failing file system loses the record
 * (a torn journal line at worst, which readers skip) and the compile goes on. Nothing here may defer or exit. */
static void append(const char *path, const char *data, size_t n) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    while (n > 0) {
        ssize_t w = write(fd, data, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break; /* ENOSPC, EROFS, EIO, EDQUOT: drop the rest */
        data += w;
        n -= (size_t)w;
    }
    (void)close(fd); /* NFS may report the failed write only here; it changes nothing */
}

/* The memo: NFIELDS fields, each "<decimal length>\n<bytes>\n". Returns 0 when well formed. */
static int parse_memo(char *p, size_t n, char *field[NFIELDS], size_t len[NFIELDS]) {
    char *end = p + n;
    for (int i = 0; i < NFIELDS; i++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return -1;
        *nl = 0;
        char *stop;
        unsigned long l = strtoul(p, &stop, 10);
        if (stop != nl || nl + 1 + l + 1 > end || nl[1 + l] != '\n') return -1;
        field[i] = nl + 1;
        len[i] = l;
        field[i][l] = 0; /* NUL-terminate in place of the trailing newline */
        p = nl + 1 + l + 1;
    }
    return p == end ? 0 : -1;
}

/* The same environment names as coopt.cache.key.ENV_ALLOWLIST, in the same order (tests check). */
static const char *const ENV_KEYED[] = {"CCC_OVERRIDE_OPTIONS", "CPATH", "C_INCLUDE_PATH", "COMPILER_PATH",
                                        "GCC_EXEC_PREFIX", "SOURCE_DATE_EPOCH", "SDKROOT", NULL};
/* Settings that change what the wrapper does; when set, Python decides. */
static const char *const ENV_DEFER[] = {"COOPT_DISABLE", "COOPT_DEBUG", "COOPT_READONLY", "COOPT_CONFIG",
                                        "COOPT_JOURNAL", NULL};

/* Shape memos (coopt.wrapper.fastpath.shape): the tokens standing for the call's source and object names. */
#define SHAPE_MARK "@@coopt:"
#define SOURCE_TOKEN SHAPE_MARK "source@@"
#define OUTPUT_TOKEN SHAPE_MARK "output@@"

static int ends_with(const char *s, const char *ext) {
    size_t l = strlen(s), e = strlen(ext);
    return l >= e && strcmp(s + l - e, ext) == 0;
}

/* fastpath._shape_name: a name a shape memo may stand for. */
static int shape_name(const char *s, const char *ext) {
    if (strlen(s) <= strlen(ext) || !ends_with(s, ext) || s[0] == '-' || s[0] == '.' || strstr(s, "/.") ||
        strstr(s, "//"))
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("._+-/", c)))
            return 0;
    }
    return 1;
}

/* fastpath.shape over argv[first..argc): sets the index of the object's name (-1: none, `out` gets the implied
 * one) and of the source; 0 when the call has a shape. */
static int shape_of(int argc, char **argv, int first, int *out_at, int *src_at, char out[PATH_MAX]) {
    *out_at = *src_at = -1;
    for (int i = first; i < argc; i++) {
        if (strstr(argv[i], SHAPE_MARK)) return -1;
        if (strcmp(argv[i], "-o") == 0) {
            if (*out_at >= 0 || i + 1 >= argc) return -1;
            *out_at = i + 1;
        }
    }
    for (int i = first; i < argc; i++) {
        if (i == *out_at || argv[i][0] == '-' || !ends_with(argv[i], ".c")) continue;
        if (*src_at >= 0) return -1;
        *src_at = i;
    }
    if (*src_at < 0) return -1;
    if (*out_at >= 0)
        snprintf(out, PATH_MAX, "%s", argv[*out_at]);
    else { /* fastpath.implied_object */
        const char *slash = strrchr(argv[*src_at], '/');
        const char *base = slash ? slash + 1 : argv[*src_at];
        snprintf(out, PATH_MAX, "%.*s.o", (int)(strlen(base) - 2), base);
    }
    if (!shape_name(out, "") || !shape_name(argv[*src_at], ".c")) return -1;
    return 0;
}

/* The shaped word of argv[i], as fastpath.shape writes it. */
static void shape_word(struct buf *b, char **argv, int i, int out_at, int src_at, const char *out) {
    const char *a = argv[i];
    size_t ol = strlen(out);
    /* An absolute name's token comes after a "/". */
    const char *out_token = out[0] == '/' ? "/" OUTPUT_TOKEN : OUTPUT_TOKEN;
    const char *source_token = argv[src_at][0] == '/' ? "/" SOURCE_TOKEN : SOURCE_TOKEN;
    if (i == out_at || strcmp(a, out) == 0)
        puts_(b, out_token);
    else if (strncmp(a, out, ol) == 0 && a[ol] == '.') {
        puts_(b, out_token);
        puts_(b, a + ol);
    } else if (strcmp(a, argv[src_at]) == 0)
        puts_(b, source_token);
    else
        puts_(b, a);
}

/* fastpath.fill: a shape memo's text with the tokens replaced by the call's names. */
static void fill(struct buf *b, const char *t, const char *source, const char *output) {
    size_t sl = strlen(SOURCE_TOKEN), ol = strlen(OUTPUT_TOKEN);
    for (;;) {
        const char *at = strstr(t, SHAPE_MARK);
        if (!at) break;
        put(b, t, (size_t)(at - t));
        if (strncmp(at, SOURCE_TOKEN, sl) == 0) {
            puts_(b, source);
            t = at + sl;
        } else if (strncmp(at, OUTPUT_TOKEN, ol) == 0) {
            puts_(b, output);
            t = at + ol;
        } else {
            put(b, at, 1);
            t = at + 1;
        }
    }
    puts_(b, t);
}

/* The fingerprint (coopt.wrapper.fastpath.fingerprint) of the call, or of its shape when src_at >= 0. */
static void fingerprint(struct buf *fp, const char *cwd, const char *config, const char *config_hash, int argc,
                        char **argv, int src_at, int out_at, const char *out) {
    puts_(fp, src_at >= 0 ? "v=shape1\n" : "v=1\n");
    line(fp, "cwd=", cwd);
    line(fp, "self=", argv[2]);
    if (*config) {
        line(fp, "config=", config);
        line(fp, "config-hash=", config_hash);
    }
    for (int i = 3; i < argc; i++) {
        puts_(fp, "arg=");
        if (src_at >= 0)
            shape_word(fp, argv, i, out_at, src_at, out);
        else
            puts_(fp, argv[i]);
        put(fp, "\n", 1);
    }
    /* The same names as coopt.wrapper.fastpath.FINGERPRINT_ENV, in the same order. */
    static const char *const FINGERPRINT_ENV[] = {"PATH", "COOPT_COMPILER", "COOPT_REMOTE_STORAGE",
                                                  "COOPT_REMOTE_RECHECK", "COOPT_BASE_DIR", "COOPT_LAUNCHER",
                                                  "COOPT_SERVE_UNVERIFIED", NULL};
    for (int pass = 0; pass < 2; pass++) {
        for (const char *const *v = pass ? ENV_KEYED : FINGERPRINT_ENV; *v; v++) {
            const char *val = getenv(*v);
            if (val) {
                puts_(fp, "env:");
                puts_(fp, *v);
                line(fp, "=", val);
            }
        }
    }
}

/* Reads the memo for this fingerprint into `memo`; 0 when there is one and it is well formed. */
static int load_memo(const char *cache, struct buf *fp, struct buf *memo, char *f[NFIELDS], size_t fl[NFIELDS]) {
    char fph[17];
    hex64(XXH3_64bits(fp->p, fp->n), fph);
    char memo_path[PATH_MAX + 64];
    snprintf(memo_path, sizeof memo_path, "%s/%s/%.2s/%s", cache, COOPT_FAST_DIR, fph, fph);
    if (read_file(memo_path, memo) != 0) return -1;
    if (parse_memo(memo->p, memo->n, f, fl) != 0 || strcmp(f[0], MEMO_MAGIC) != 0) return -1;
    return 0;
}

/* One check of a replayed hit, "KIND\tARG\tPATH" (coopt.wrapper.fastpath.HIT_CHECKS): 1 when it holds. `line` is
 * cut in place. The same tests as manifest.match, manifest.lookups_hold and Store.lookup, and no looser. */
static int check_holds(char *line, double started) {
    char *arg = strchr(line, '\t');
    if (!arg) return 0;
    *arg++ = 0;
    char *path = strchr(arg, '\t');
    if (!path) return 0;
    *path++ = 0;
    struct stat st;
    if (strcmp(line, "absent") == 0) return stat(path, &st) != 0 && (errno == ENOENT || errno == ENOTDIR);
    if (stat(path, &st) != 0) return 0;
    char have[96];
    long long mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + (long long)st.st_mtim.tv_nsec;
    if (strcmp(line, "isfile") == 0) return S_ISREG(st.st_mode);
    if (strcmp(line, "isdir") == 0) return S_ISDIR(st.st_mode);
    if (strcmp(line, "dirstat") == 0) {
        snprintf(have, sizeof have, "%llu %lld", (unsigned long long)st.st_ino, mtime_ns);
        return strcmp(have, arg) == 0;
    }
    if (strcmp(line, "same") == 0) {
        snprintf(have, sizeof have, "%llu %lld %lld", (unsigned long long)st.st_ino, (long long)st.st_size, mtime_ns);
        return strcmp(have, arg) == 0;
    }
    if (strcmp(line, "inode") == 0) {
        snprintf(have, sizeof have, "%llu", (unsigned long long)st.st_ino);
        return strcmp(have, arg) == 0;
    }
    if (strcmp(line, "hash") == 0) {
        /* Modified at or after this call's start: it may be mid-write (manifest.match's race guard). */
        if ((double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9 >= started) return 0;
        struct buf b = {0};
        if (read_file(path, &b) != 0) return 0;
        char h[33];
        hex128(b.p ? b.p : "", b.n, h);
        free(b.p);
        return strcmp(h, arg) == 0;
    }
    return 0; /* a kind this program does not know */
}

/* Serve the direct hit the memo replays (fields 19-25: coopt.wrapper.fastpath.FIELDS) when every check holds: the
 * entry's object, hashed as recorded, copied over the output atomically. 0 when served; -1 (nothing written) to
 * let Python decide. */
static int serve_hit(char *f[NFIELDS], double started) {
    const char *object = f[21], *digest = f[22], *entry = f[23], *output = f[24];
    struct stat st;
    /* `-o /dev/null` and the like: a rename would put a file in the device's place. */
    if (stat(output, &st) == 0 && !S_ISREG(st.st_mode)) return -1;
    for (char *line = f[20]; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (!check_holds(line, started)) return -1;
        line = nl ? nl + 1 : NULL;
    }
    struct buf obj = {0};
    if (read_file(object, &obj) != 0) return -1;
    char h[33];
    hex128(obj.p ? obj.p : "", obj.n, h);
    if (strcmp(h, digest) != 0) return -1;
    char tmp[PATH_MAX + 64];
    if (snprintf(tmp, sizeof tmp, "%s.coopt-%d.tmp", output, (int)getpid()) >= (int)sizeof tmp) return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) return -1;
    const char *p = obj.p ? obj.p : "";
    size_t left = obj.n;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        p += w;
        left -= (size_t)w;
    }
    if (close(fd) != 0 || left > 0 || rename(tmp, output) != 0) {
        unlink(tmp);
        return -1;
    }
    free(obj.p);
    (void)utimes(entry, NULL); /* LRU: the entry directory's mtime is its last use (Store.lookup) */
    return 0;
}

int main(int argc, char **argv) {
    g_argc = argc;
    g_argv = argv;
    struct timeval start_tv;
    gettimeofday(&start_tv, NULL);
    double started = (double)start_tv.tv_sec + start_tv.tv_usec / 1e6;
    if (argc < 3) {
        fprintf(stderr, "usage: coopt-cc-fast PYTHON SELF ARGS... (run by the coopt-cc launcher)\n");
        return 2;
    }
    for (const char *const *v = ENV_DEFER; *v; v++)
        if (getenv(*v)) defer();
    const char *depth = getenv("COOPT_CC_DEPTH");
    if (depth && *depth && strcmp(depth, "0") != 0) defer();

    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd) || strchr(cwd, '\n')) defer();
    for (int i = 2; i < argc; i++)
        if (argv[i][0] == '@' || strchr(argv[i], '\n')) defer();

    /* The nearest coopt.toml at or above the directory (coopt.wrapper.settings.find_config): its path and the hash
     * of its bytes are part of the fingerprint, so a memo only holds for the configuration Python decided with.
     * (Python leaves no memo when the file names the cache directory: this program would not look there.) */
    char config[PATH_MAX + 16] = "";
    char config_hash[33] = "";
    {
        char d[PATH_MAX];
        strcpy(d, cwd);
        for (;;) {
            char probe[PATH_MAX + 16];
            struct stat cst;
            snprintf(probe, sizeof probe, "%s/coopt.toml", d[1] ? d : "");
            if (stat(probe, &cst) == 0 && S_ISREG(cst.st_mode)) {
                struct buf text = {0};
                if (read_file(probe, &text) != 0) defer();
                hex128(text.p ? text.p : "", text.n, config_hash);
                strcpy(config, probe);
                break;
            }
            if (!d[1]) break; /* "/" was the last */
            char *slash = strrchr(d, '/');
            if (slash == d)
                d[1] = 0;
            else
                *slash = 0;
        }
    }

    /* The cache directory, as coopt.cache.layout.default_cache_dir finds it. */
    char cache[PATH_MAX];
    const char *cd = getenv("COOPT_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (cd && *cd)
        snprintf(cache, sizeof cache, "%s", cd);
    else if (xdg && *xdg)
        snprintf(cache, sizeof cache, "%s/coopt", xdg);
    else if (home && *home)
        snprintf(cache, sizeof cache, "%s/.cache/coopt", home);
    else
        defer();

    /* The memo of this very call, else the shape memo a call of the same shape left: everything the Python
     * decision depended on (coopt.wrapper.fastpath.fingerprint). */
    const char *path_env = getenv("PATH");
    struct buf fp = {0}, memo = {0};
    char *f[NFIELDS];
    size_t fl[NFIELDS];
    fingerprint(&fp, cwd, config, config_hash, argc, argv, -1, -1, NULL);
    if (load_memo(cache, &fp, &memo, f, fl) != 0) {
        int out_at, src_at;
        char out[PATH_MAX];
        if (shape_of(argc, argv, 3, &out_at, &src_at, out) != 0) defer();
        fp.n = 0;
        memo.n = 0;
        fingerprint(&fp, cwd, config, config_hash, argc, argv, src_at, out_at, out);
        if (load_memo(cache, &fp, &memo, f, fl) != 0) defer();
        /* The texts that name the source or the object get this call's names. */
        for (int i = 7; i <= 10; i++) {
            struct buf filled = {0};
            puts_(&filled, "");
            fill(&filled, f[i], argv[src_at], out);
            f[i] = filled.p;
            fl[i] = filled.n;
        }
    }
    const char *exec_path = f[1], *real = f[2], *stamp = f[3], *name = f[4], *dir_index = f[5], *skip_dir = f[6];
    const char *source = f[7], *journal = f[11], *stats_dir = f[12], *manifests = f[13];
    /* The launcher (ccache, sccache, ...) the compiler runs behind, "" for none (coopt.wrapper.launcher). */
    const char *launcher = f[18];
    char launcher_real[PATH_MAX] = "";
    long drop = strtol(f[14], NULL, 10); /* coopt-cc's own arguments that are not the compiler's (prefix form) */
    if (drop < 0 || drop > argc - 3) defer();
    /* With remote stores configured the miss is replayed only until the memo expires; then Python asks them. */
    char *stop_at;
    long long expires = strtoll(f[15], &stop_at, 10);
    if (*stop_at || expires < 0 || (expires > 0 && (long long)time(NULL) >= expires)) defer();

    /* Still the same compiler binary... */
    struct stat st;
    char resolved[PATH_MAX];
    if (!realpath(exec_path, resolved) || strcmp(resolved, real) != 0 || stat(real, &st) != 0) defer();
    char have[64];
    snprintf(have, sizeof have, "%lld %lld", (long long)st.st_size,
             (long long)st.st_mtim.tv_sec * 1000000000LL + (long long)st.st_mtim.tv_nsec);
    if (strcmp(have, stamp) != 0) defer();
    /* ...and nothing of that name appeared ahead of it on PATH. */
    if (*name) {
        long stop = strtol(dir_index, NULL, 10);
        const char *p = path_env ? path_env : "";
        for (long i = 0; i < stop; i++) {
            const char *colon = strchr(p, ':');
            size_t dl = colon ? (size_t)(colon - p) : strlen(p);
            char cand[PATH_MAX * 2];
            snprintf(cand, sizeof cand, "%.*s/%s", (int)dl, dl ? p : ".", name);
            int skipped = strlen(skip_dir) == dl && strncmp(p, skip_dir, dl) == 0;
            if (!skipped && stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) {
                /* The launcher's own symlink named like the compiler (/usr/lib/ccache/clang) is passed over, as
                 * Python's lookup (and the launcher itself) passes over it; anything else there is news. */
                char cand_real[PATH_MAX];
                if (!*launcher || !realpath(cand, cand_real)) defer();
                if (!*launcher_real && !realpath(launcher, launcher_real)) defer();
                if (strcmp(cand_real, launcher_real) != 0) defer();
            }
            if (!colon) defer(); /* PATH changed shape: the fingerprint should have caught it */
            p = colon + 1;
        }
    }

    /* What the decision was (coopt.wrapper.fastpath.KINDS): a compile that missed, a link, or a pass-through. */
    const char *kind = f[16], *counter = f[17];
    if (!*counter || strchr(counter, '/')) defer();
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char head[64];
    snprintf(head, sizeof head, "{\"v\":1,\"time\":%.3f,", (double)tv.tv_sec + tv.tv_usec / 1e6);
    struct buf rec = {0};
    if (strcmp(kind, "compile") == 0) {
        /* The key, completed exactly as coopt.cache.key.direct_material would. */
        struct buf src = {0};
        if (read_file(source, &src) != 0) defer();
        char srch[33];
        hex128(src.p ? src.p : "", src.n, srch);
        struct buf material = {0};
        put(&material, f[8], fl[8]);
        put(&material, srch, 32);
        put(&material, f[9], fl[9]);
        char key[33];
        hex128(material.p, material.n, key);

        puts_(&rec, head);
        put(&rec, f[10], fl[10]); /* the record body, up to "key":" */
        put(&rec, key, 32);
        puts_(&rec, "\"}\n");

        /* The direct hit Python served for this very key, when it still holds: journal it, count it, done. */
        if (*f[19] && strcmp(key, f[19]) == 0 && *f[25] && !strchr(f[25], '/') && serve_hit(f, started) == 0) {
            append(journal, rec.p, rec.n);
            char hit_shard[PATH_MAX + 32];
            snprintf(hit_shard, sizeof hit_shard, "%s/%d", stats_dir, (int)(getpid() % 16));
            append(hit_shard, f[25], fl[25]);
            return 0;
        }

        /* Otherwise a manifest means a variant may exist: Python decides. */
        char manifest[PATH_MAX * 2];
        snprintf(manifest, sizeof manifest, "%s/%.2s/%s", manifests, key, key);
        if (access(manifest, F_OK) == 0) defer();
    } else if (strcmp(kind, "link") == 0) {
        puts_(&rec, head);
        put(&rec, f[10], fl[10]); /* the whole record after its "{" */
        puts_(&rec, "\n");
    } else if (strcmp(kind, "pass") != 0)
        defer();

    /* Journal the call (the same record Python writes), count it, run the real compiler. */
    if (rec.n) append(journal, rec.p, rec.n);
    char shard[PATH_MAX + 32];
    snprintf(shard, sizeof shard, "%s/%d", stats_dir, (int)(getpid() % 16));
    struct buf count = {0};
    line(&count, "", counter);
    append(shard, count.p, count.n);

    setenv("COOPT_CC_DEPTH", "1", 1);
    char **av = calloc((size_t)argc + 1, sizeof(char *));
    if (!av) defer();
    int n = 0;
    if (*launcher) av[n++] = (char *)launcher; /* `LAUNCHER COMPILER ARGS...` */
    av[n++] = (char *)exec_path;
    for (int i = 3 + (int)drop; i < argc; i++) av[n++] = argv[i];
    av[n] = NULL;
    execv(av[0], av);
    defer(); /* the compiler or launcher vanished: let Python report it */
    return 127;
}
