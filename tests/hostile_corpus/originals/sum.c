/* A small hot function: the sum of an array of ints. */
#include <stddef.h>

long sum_ints(const int *a, size_t n)
{
    long s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i];
    return s;
}
