/* Distinct values in an array of 16-bit values (coopt's own): a table of all 65536 values. */
#include <stddef.h>
#include <stdlib.h>

/* Clearing 64 KiB costs more than the whole count for short arrays: take the table uninitialised and clear only
   the entries the input will touch. Never reads an entry it did not clear first. */
size_t distinct_u16(const unsigned short *a, size_t n) {
    unsigned char *seen = malloc(65536);
    size_t k = 0;
    if (!seen)
        return (size_t)-1;
    for (size_t i = 0; i < n; i++)
        seen[a[i]] = 0;
    for (size_t i = 0; i < n; i++) {
        k += !seen[a[i]];
        seen[a[i]] = 1;
    }
    free(seen);
    return k;
}
