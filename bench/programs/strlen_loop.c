/* Kind: an invariant expensive call recomputed. The loop condition calls strlen on every iteration; the compiler
 * cannot hoist it because the loop writes through a char pointer that may alias the source. */
#include <ctype.h>
#include <string.h>

#include "common.h"

#define SCALE 3000
#define EXPECT 18175388962625978180ULL

static void upper_copy(char *dst, const char *src) {
    for (size_t i = 0; i < strlen(src); i++)
        dst[i] = (char)toupper((unsigned char)src[i]);
    dst[strlen(src)] = '\0';
}

int main(int argc, char **argv) {
    enum { LEN = 3000 };
    int rounds = bench_scale(argc, argv, SCALE);
    /* The two lines swap roles every round: the compiler cannot tell that upper_copy's arguments never alias. */
    static char bufs[2][LEN + 1];
    unsigned long long total = 0;
    for (int r = 0; r < rounds; r++) {
        char *line = bufs[r & 1], *out = bufs[(r + 1) & 1];
        int len = LEN - (int)(bench_rand() % 64);
        for (int i = 0; i < len; i++)
            line[i] = (char)('a' + bench_rand() % 26 - (i % 7 == 0 ? 32 : 0));
        line[len] = '\0';
        upper_copy(out, line);
        for (int i = 0; i < len; i += 97)
            total = total * 131 + (unsigned char)out[i];
        total += (unsigned)strlen(out);
    }
    return bench_report("strlen_loop", rounds, SCALE, total, EXPECT);
}
