/* coopt verify corpus: wrong candidate derived from originals/vec.c.
   The library's memmove. Wrong for copy_ints(NULL, NULL, 0): memmove's pointers must be valid even for zero
   bytes (C17 7.24.1), where the original's loop does nothing. This was in correct/ until the libFuzzer source
   found it (its first input is the empty one: every pointer NULL, every length 0). */
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
    memmove(dst, src, n * sizeof *dst);
}

/* Index of the last element equal to key, or -1. */
int find_last(const int *a, int n, int key) {
    int found = -1;
    for (int i = 0; i < n; i++)
        if (a[i] == key)
            found = i;
    return found;
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
