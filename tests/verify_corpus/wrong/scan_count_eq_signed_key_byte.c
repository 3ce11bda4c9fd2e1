/* Search and scan kernels (coopt's own): where a scalar argument meets a buffer's contents, and where a literal
   the code compares against decides the answer. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#define HOLE 1000000 /* a value that marks an empty slot */

/* Index of the first element equal to key, or -1. */
long index_of(const int *a, size_t n, int key) {
    for (size_t i = 0; i < n; i++)
        if (a[i] == key)
            return (long)i;
    return -1;
}

/* Index of the last element equal to key, or -1. */
long last_index_of(const int *a, size_t n, int key) {
    long found = -1;
    for (size_t i = 0; i < n; i++)
        if (a[i] == key)
            found = (long)i;
    return found;
}

/* Number of elements equal to key. */
size_t count_eq(const int *a, size_t n, int key) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += (signed char)a[i] == (signed char)key; /* compares the low bytes only */
    return k;
}

/* Whether byte c occurs among the n bytes of buf. */
int has_byte(const unsigned char *buf, size_t n, int c) {
    for (size_t i = 0; i < n; i++)
        if (buf[i] == (unsigned char)c)
            return 1;
    return 0;
}

/* Length of the first field of s: the bytes before the first ';' or the end. */
size_t field_len(const char *s) {
    size_t i = 0;
    while (s[i] && s[i] != ';')
        i++;
    return i;
}

/* Whether s starts with "0x" or "0X". */
int is_hex_prefix(const char *s) {
    return s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
}

/* Value of a hexadecimal digit, or -1. */
int hex_value(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Number of sentence ends ('.', '!', '?') in s. */
size_t count_stops(const char *s) {
    size_t k = 0;
    for (; *s; s++)
        k += *s == '.' || *s == '!' || *s == '?';
    return k;
}

/* Sum of the elements, skipping empty slots (HOLE). */
long sum_skip_holes(const int *a, size_t n) {
    long s = 0;
    for (size_t i = 0; i < n; i++)
        if (a[i] != HOLE)
            s += a[i];
    return s;
}

/* Whether x and y differ by at most 0.001. */
int close_enough(double x, double y) {
    return fabs(x - y) <= 0.001;
}

/* Number of elements in [lo, hi]. */
size_t count_in_range(const int *a, size_t n, int lo, int hi) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += a[i] >= lo && a[i] <= hi;
    return k;
}

/* Adds src[0] to each of dst[0..n). */
void add_first(int *dst, const int *src, size_t n) {
    for (size_t i = 0; i < n; i++)
        dst[i] += src[0];
}

/* Sum of the bytes of s, read as unsigned. */
unsigned sum_chars(const char *s) {
    unsigned t = 0;
    for (; *s; s++)
        t += (unsigned char)*s;
    return t;
}

/* Smallest power of two >= x (1 for 0; 0 when there is none). */
unsigned next_pow2(unsigned x) {
    unsigned p = 1;
    while (p && p < x)
        p <<= 1;
    return p;
}

/* A mixing hash of a 32-bit value. */
unsigned mix_hash(unsigned x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x + 1;
}

/* Sum of the n bytes of b. */
unsigned sum_bytes(const unsigned char *b, size_t n) {
    unsigned s = 0;
    for (size_t i = 0; i < n; i++)
        s += b[i];
    return s;
}
