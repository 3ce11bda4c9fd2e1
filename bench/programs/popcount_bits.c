/* Kind: bit counting done bit by bit. Hamming distances between many 64-bit signatures, each counted by testing
 * all 64 bits in turn. */
#include "common.h"

#define SCALE 150
#define EXPECT 2830968372ULL

static int bits(uint64_t x) {
    int c = 0;
    for (int b = 0; b < 64; b++)
        c += (int)((x >> b) & 1);
    return c;
}

static int hamming(uint64_t a, uint64_t b) {
    return bits(a ^ b);
}

int main(int argc, char **argv) {
    enum { N = 1 << 14 };
    int rounds = bench_scale(argc, argv, SCALE);
    static uint64_t sig[N];
    for (int i = 0; i < N; i++)
        sig[i] = ((uint64_t)bench_rand() << 32) | bench_rand();
    unsigned long long total = 0;
    for (int r = 1; r <= rounds; r++)
        for (int i = 0; i < N; i++)
            for (int k = 1; k <= 8; k++)
                total += (unsigned)hamming(sig[i], sig[(i * k + r) % N]) * (unsigned)k;
    return bench_report("popcount_bits", rounds, SCALE, total, EXPECT);
}
