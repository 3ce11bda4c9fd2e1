/* Kind: a quadratic algorithm where an n log n one exists. Each block of readings is bubble-sorted to take its
 * percentiles. */
#include "common.h"

#define SCALE 220
#define EXPECT 16414529298250573927ULL

static void sort_block(int *a, int n) {
    for (int i = 0; i < n - 1; i++)
        for (int j = 0; j < n - 1 - i; j++)
            if (a[j] > a[j + 1]) {
                int t = a[j];
                a[j] = a[j + 1];
                a[j + 1] = t;
            }
}

int main(int argc, char **argv) {
    enum { N = 1500 };
    int blocks = bench_scale(argc, argv, SCALE);
    static int a[N];
    unsigned long long total = 0;
    for (int b = 0; b < blocks; b++) {
        for (int i = 0; i < N; i++)
            a[i] = (int)(bench_rand() % 100000) - 50000;
        sort_block(a, N);
        total = total * 7 + (unsigned)(a[N / 10] + a[N / 2] * 3 + a[N - N / 10] * 5);
        for (int i = 1; i < N; i++)
            total += a[i - 1] > a[i]; /* counts disorder: 0 for a sorted block */
    }
    return bench_report("bubble_sort", blocks, SCALE, total, EXPECT);
}
