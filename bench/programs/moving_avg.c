/* Kind: a sliding window recomputed from scratch. The moving sums are summed over the whole window at every
 * position, in main, instead of being updated by the element that enters and the one that leaves. */
#include "common.h"

#define SCALE 200
#define EXPECT 991832434663057820ULL

int main(int argc, char **argv) {
    enum { N = 1 << 15, W = 250 };
    int rounds = bench_scale(argc, argv, SCALE);
    static int x[N];
    static long long win[N];
    for (int i = 0; i < N; i++)
        x[i] = (int)(bench_rand() % 2001) - 1000;
    unsigned long long total = 0;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i + W <= N; i++) {
            long long s = 0;
            for (int k = 0; k < W; k++)
                s += x[i + k];
            win[i] = s;
        }
        long long best = win[0];
        for (int i = 1; i + W <= N; i++)
            if (win[i] > best)
                best = win[i];
        total = total * 1315423911u + (unsigned long long)best;
        x[(r * 977) % N] = -x[(r * 977) % N];
    }
    return bench_report("moving_avg", rounds, SCALE, total, EXPECT);
}
