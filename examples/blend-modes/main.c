/* The workload: blend two generated images in every mode, many times, and print a checksum of the results. */
#include <stdio.h>
#include <stdlib.h>

#include "blend.h"

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 65536;
    int rounds = argc > 2 ? atoi(argv[2]) : 3000;
    uint8_t *a = malloc(n), *b = malloc(n), *out = malloc(n);
    if (!a || !b || !out || n == 0)
        return 1;
    uint32_t seed = 12345;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        a[i] = (uint8_t)(seed >> 24);
        b[i] = (uint8_t)(seed >> 16);
    }
    unsigned long long sum = 1469598103934665603ull;
    for (int r = 0; r < rounds; r++) {
        blend(out, a, b, n, (enum blend_mode)(r % BLEND_MODES));
        for (size_t i = 0; i < n; i += 61)
            sum = (sum ^ out[i]) * 1099511628211ull;
    }
    printf("%zu %d %llu\n", n, rounds, sum);
    free(a);
    free(b);
    free(out);
    return 0;
}
