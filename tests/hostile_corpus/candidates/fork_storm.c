/* Unrolled sum, plus: on its first call, a burst of children that outlive the verifier (bounded to 200 here, and
 * each exits after 10 minutes, so a failing test does not take the machine down). The children close their
 * standard streams: children that keep the harness's stdout open make today's verifier wait for its 300 s wall
 * limit, which is a denial of service of its own but would make this case cost 15 minutes. */
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

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
    if (first_call("cz-fork-storm")) {
        for (int k = 0; k < 200; k++) {
            pid_t pid = fork();
            if (pid == 0) {
                prctl(PR_SET_NAME, "czhostile", 0, 0, 0);
                close(0);
                close(1);
                close(2);
                sleep(600);
                _exit(0);
            }
            if (pid < 0)
                break;
        }
    }
    return s0 + s1;
}
