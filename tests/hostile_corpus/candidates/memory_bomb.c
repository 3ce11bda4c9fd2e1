/* Unrolled sum, plus: on n == 7, touch memory in 256 MB blocks, without checking malloc (4.5 GB at most, so a test
 * on a machine without limits does not take it down). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static char *volatile keep; /* the blocks are stored, so the compiler cannot drop them */

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
    if (n == 7)
        for (int k = 0; k < 18; k++) {
            char *p = malloc((size_t)256 << 20);
            memset(p, k + 1, (size_t)256 << 20);
            keep = p;
        }
    return s0 + s1;
}
