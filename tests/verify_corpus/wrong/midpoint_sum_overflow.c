/* coopt verify corpus: wrong candidate derived from originals/numeric.c.
   a + b overflows for large values (equal otherwise). */
/* Scalar numeric helpers (coopt's own). */
#include <math.h>

/* floor((a + b) / 2) without overflow. */
int midpoint(int a, int b) {
    return (a + b) >> 1;
}

long tri(int n) {
    return (long)n * (n + 1) / 2;
}

int iround(double x) {
    if (!(x > -2147483648.0 && x < 2147483647.0))
        return 0;
    return (int)lround(x);
}

double clamp0(double x) {
    return x < 0 ? 0 : x;
}

double max_d(double a, double b) {
    return a > b ? a : b;
}

/* floor(sqrt(x)), the slow way. */
unsigned isqrt(unsigned x) {
    unsigned r = 0;
    while ((unsigned long long)(r + 1) * (r + 1) <= x)
        r++;
    return r;
}
