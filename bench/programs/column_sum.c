/* Kind: a loop order that fights the cache. Column sums of a row-major matrix, walked column by column, all in
 * main: every access lands on another cache line (and often another page). */
#include "common.h"

#define SCALE 8
#define EXPECT 111226420244100264ULL

enum { ROWS = 2048, COLS = 2048 };
static int m[ROWS][COLS];
static long long colsum[COLS];

int main(int argc, char **argv) {
    int rounds = bench_scale(argc, argv, SCALE);
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < COLS; j++)
            m[i][j] = (int)(bench_rand() % 1000) - 500;
    unsigned long long total = 0;
    for (int r = 0; r < rounds; r++) {
        for (int j = 0; j < COLS; j++) {
            long long s = 0;
            for (int i = 0; i < ROWS; i++)
                s += m[i][j];
            colsum[j] = s;
        }
        for (int j = 0; j < COLS; j++)
            total = total * 3 + (unsigned long long)colsum[j];
        m[r % ROWS][(r * 7) % COLS] += r;
    }
    return bench_report("column_sum", rounds, SCALE, total, EXPECT);
}
