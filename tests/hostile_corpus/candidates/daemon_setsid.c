/* Unrolled sum, plus: on its first call, a double-forked daemon in a session of its own that keeps running after
 * the verifier is done and touches files outside the scratch directory (for 10 minutes at most). */
#include <fcntl.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
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

/* True once per directory: the harness forks a fresh child per input, so a static cannot count calls. */
static int first_call(const char *marker)
{
    int fd = open(marker, O_CREAT | O_EXCL | O_WRONLY, 0600);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
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
    if (first_call("cz-daemon")) {
        pid_t pid = fork();
        if (pid == 0) {
            setsid();
            if (fork() == 0) {
                prctl(PR_SET_NAME, "czhostile", 0, 0, 0);
                close(0);
                close(1);
                close(2);
                for (int k = 0; k < 6000; k++) {
                    drop("daemon", "still here\n");
                    usleep(100000);
                }
            }
            _exit(0);
        }
    }
    return s0 + s1;
}
