/* Byte histograms (coopt's own). */
#include <stdlib.h>
#include <string.h>

/* Number of distinct byte values in buf; counts[256] receives the histogram. */
int histogram(const unsigned char *buf, size_t len, unsigned *counts) {
    unsigned *h = calloc(256, sizeof *h);
    int distinct = 0;
    if (!h)
        return -1;
    for (size_t i = 0; i < len; i++)
        h[buf[i]]++;
    for (int b = 0; b < 256; b++)
        distinct += h[b] != 0;
    if (counts)
        memcpy(counts, h, 256 * sizeof *h);
    free(h);
    return distinct;
}

/* Copies n shorts, widening: dst[i] = src[i]. */
void widen(int *dst, const short *src, unsigned n) {
    for (unsigned i = 0; i < n; i++)
        dst[i] = src[i];
}
