/* Kind: an invariant expensive call recomputed. Each output element divides by the input's Euclidean norm, which
 * norm() computes again for every element: `out` may alias `in` as far as the compiler knows, so it cannot hoist
 * the call (the caller never passes aliasing arrays). */
#include <math.h>

#include "common.h"

#define SCALE 1200
#define EXPECT 10938907229517398604ULL

static double norm(const double *v, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += v[i] * v[i];
    return sqrt(s);
}

static void normalize_into(double *out, const double *in, int n) {
    for (int i = 0; i < n; i++)
        out[i] = in[i] / norm(in, n);
}

int main(int argc, char **argv) {
    enum { N = 600 };
    int rounds = bench_scale(argc, argv, SCALE);
    /* The two vectors swap roles every round: the compiler cannot tell that in and out never alias. */
    static double vecs[2][N];
    unsigned long long total = 0;
    for (int r = 0; r < rounds; r++) {
        double *in = vecs[r & 1], *out = vecs[(r + 1) & 1];
        for (int i = 0; i < N; i++)
            in[i] = (double)((int)(bench_rand() % 20001) - 10000) / 100.0;
        normalize_into(out, in, N);
        for (int i = 0; i < N; i++)
            total = total * 31 + (unsigned long long)(long long)llround(out[i] * 1e9);
    }
    return bench_report("normalize", rounds, SCALE, total, EXPECT);
}
