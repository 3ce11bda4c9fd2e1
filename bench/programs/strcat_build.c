/* Kind: string building by repeated concatenation. Each record is appended with strcat, which walks the whole
 * string built so far to find its end. */
#include <string.h>

#include "common.h"

#define SCALE 18
#define EXPECT 6252394612170186160ULL

static unsigned long long digest(const char *s) {
    unsigned long long h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

int main(int argc, char **argv) {
    enum { RECORDS = 24000 };
    int rounds = bench_scale(argc, argv, SCALE);
    char *buf = malloc(RECORDS * 16 + 1);
    if (!buf)
        return 2;
    unsigned long long total = 0;
    for (int r = 0; r < rounds; r++) {
        buf[0] = '\0';
        for (int i = 0; i < RECORDS; i++) {
            char piece[16];
            snprintf(piece, sizeof piece, "%u,", bench_rand() % 100000);
            strcat(buf, piece);
        }
        total ^= digest(buf) + (unsigned long long)r;
    }
    free(buf);
    return bench_report("strcat_build", rounds, SCALE, total, EXPECT);
}
