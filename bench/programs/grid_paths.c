/* Kind: recomputation that a table would remember. paths() counts monotone lattice paths by plain recursion,
 * solving the same subproblems again and again (exponential work where a table is quadratic). */
#include "common.h"

#define SCALE 13
#define EXPECT 9178767648906715252ULL

static unsigned paths(int r, int c, const unsigned char *blocked, int width) {
    if (blocked[r * width + c])
        return 0;
    if (r == 0 || c == 0)
        return 1;
    return paths(r - 1, c, blocked, width) + paths(r, c - 1, blocked, width);
}

int main(int argc, char **argv) {
    enum { W = 32 };
    int size = bench_scale(argc, argv, SCALE);
    if (size >= W)
        return 2;
    static unsigned char blocked[W * W];
    unsigned long long total = 0;
    for (int trial = 0; trial < 8; trial++) {
        for (int i = 0; i < W * W; i++)
            blocked[i] = bench_rand() % 23 == 0;
        blocked[0] = 0;
        for (int r = size - 1; r <= size; r++)
            total = total * 1000003 + paths(r, size, blocked, W);
    }
    return bench_report("grid_paths", size, SCALE, total, EXPECT);
}
