/* Kind: allocation inside a hot loop. count_distinct() callocs (and so clears) a 64 KiB table on every call to
 * count the distinct values of a 48-element window; the work itself touches 48 bytes of it. */
#include "common.h"

#define SCALE 200
#define EXPECT 427112461738ULL

static int count_distinct(const uint16_t *v, int n) {
    unsigned char *seen = calloc(65536, 1);
    if (!seen) {
        perror("calloc");
        exit(2);
    }
    int distinct = 0;
    for (int i = 0; i < n; i++) {
        if (!seen[v[i]]) {
            seen[v[i]] = 1;
            distinct++;
        }
    }
    free(seen);
    return distinct;
}

int main(int argc, char **argv) {
    enum { N = 1 << 16, W = 48 };
    int rounds = bench_scale(argc, argv, SCALE);
    uint16_t *data = malloc(N * sizeof *data);
    if (!data)
        return 2;
    for (int i = 0; i < N; i++)
        data[i] = (uint16_t)(bench_rand() % 3000);
    unsigned long long total = 0;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i + W <= N; i += W)
            total += (unsigned long long)count_distinct(data + i, W) * (unsigned)(i + r + 1);
        data[r % N] ^= (uint16_t)r;
    }
    free(data);
    return bench_report("alloc_in_loop", rounds, SCALE, total, EXPECT);
}
