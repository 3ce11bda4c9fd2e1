/* coopt verify corpus: wrong candidate derived from originals/vec.c.
   Searches from the end and stops at the first hit. Wrong for n == INT_MIN: n - 1 overflows (the original's
   loop just does not run). This was in correct/ until the libFuzzer source found it; the fixed generators only
   try lengths that fit the buffer. */
/* Small array kernels of the kind hot loops are made of (coopt's own). */
#include <stddef.h>
#include <string.h>

double dot(const double *a, const double *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

float sum_f(const float *x, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += x[i];
    return s;
}

void vadd(int *dst, const int *a, const int *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        dst[i] = a[i] + b[i];
}

/* Copies n ints from src to dst; the regions may overlap (like memmove). */
void copy_ints(int *dst, const int *src, size_t n) {
    if (dst < src) {
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i];
    } else {
        for (size_t i = n; i > 0; i--)
            dst[i - 1] = src[i - 1];
    }
}

/* Index of the last element equal to key, or -1. */
int find_last(const int *a, int n, int key) {
    for (int i = n - 1; i >= 0; i--)
        if (a[i] == key)
            return i;
    return -1;
}

/* Index of the first element equal to key, or n. */
size_t search(const int *a, size_t n, int key) {
    size_t i = 0;
    while (i < n && a[i] != key)
        i++;
    return i;
}

/* Largest element; INT_MIN-like sentinel for an empty array. */
int max_of(const int *a, int n) {
    int m = -2147483647 - 1;
    for (int i = 0; i < n; i++)
        if (a[i] > m)
            m = a[i];
    return m;
}
