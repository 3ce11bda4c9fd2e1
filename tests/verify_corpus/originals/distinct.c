/* Distinct values in an array of 16-bit values (coopt's own): a table of all 65536 values. */
#include <stddef.h>
#include <stdlib.h>

size_t distinct_u16(const unsigned short *a, size_t n) {
    unsigned char *seen = calloc(65536, 1);
    size_t k = 0;
    if (!seen)
        return (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        if (!seen[a[i]]) {
            seen[a[i]] = 1;
            k++;
        }
    }
    free(seen);
    return k;
}
