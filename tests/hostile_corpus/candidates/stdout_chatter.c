/* Unrolled sum, plus a debugging line on stdout and stderr the original never prints. */
#include <stddef.h>
#include <stdio.h>

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
    printf("sum_ints(%zu)\n", n);
    fprintf(stderr, "debug: n=%zu\n", n);
    return s0 + s1;
}
