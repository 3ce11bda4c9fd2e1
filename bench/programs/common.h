/* Shared by the bench programs: a deterministic generator, the scale argument and the self-check.
 *
 * Each program prints one line "NAME CHECKSUM" and exits 1 when it ran at its default scale and the checksum is not
 * the one recorded here, so a wrong variant fails the program's own test (`make check`) as well as coopt's
 * comparison of outputs. A first argument scales the work (for a quick run); the self-check then only prints. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

static uint32_t bench_seed = 0x2545F491u;

/* xorshift32: the same sequence on every compiler and machine. */
static inline uint32_t bench_rand(void) {
    uint32_t x = bench_seed;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return bench_seed = x;
}

static inline int bench_scale(int argc, char **argv, int dflt) {
    if (argc > 1) {
        int n = atoi(argv[1]);
        if (n <= 0) {
            fprintf(stderr, "usage: %s [scale > 0]\n", argv[0]);
            exit(2);
        }
        return n;
    }
    return dflt;
}

static inline int bench_report(const char *name, int scale, int dflt, unsigned long long got,
                               unsigned long long want) {
    printf("%s %llu\n", name, got);
    if (scale == dflt && got != want) {
        fprintf(stderr, "%s: self-check failed: got %llu, want %llu\n", name, got, want);
        return 1;
    }
    return 0;
}

#endif
