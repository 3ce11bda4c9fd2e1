/* The right sum, but first an endless stream on stdout: coopt must not keep what it writes (it would hold
 * gigabytes before the time limit ends the run). */
#include <stddef.h>
#include <unistd.h>

long sum_ints(const int *a, size_t n)
{
    static char buf[1 << 16];
    for (;;)
        if (write(1, buf, sizeof buf) < 0)
            break;
    long s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i];
    return s;
}
