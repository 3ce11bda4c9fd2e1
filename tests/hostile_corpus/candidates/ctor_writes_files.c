/* Unrolled sum, plus a constructor that runs before the harness's main and writes files outside its scratch. */
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
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

__attribute__((constructor)) static void at_load(void)
{
    drop("ctor", "written by a constructor\n");
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
    return s0 + s1;
}
