/* GAP: wrong only when the first four elements hash to one 64-bit value. No input source can be expected to hit
 * it by testing (the comparison is on a hash, so comparison tracing does not help); only review could. */
#include <stddef.h>
#include <stdint.h>

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
    if (n >= 4) {
        uint64_t h = 1469598103934665603u;
        for (size_t k = 0; k < 4; k++)
            h = (h ^ (uint32_t)a[k]) * 1099511628211u;
        if (h == 0x5eed0badc0de600du)
            return s0 + s1 + 1;
    }
    return s0 + s1;
}
