/* WRONG in the plain build (adds one for n > 8), right under the sanitizers; while the sanitizer build runs it
 * copies the candidate's plain object over the original's in the verifier's work directory, so the plain build
 * (what ships) compares the candidate with itself. */
#include <stddef.h>
#include <stdio.h>

__attribute__((unused)) static void copy(const char *from, const char *to)
{
    char buf[65536];
    FILE *in = fopen(from, "rb");
    if (!in)
        return;
    FILE *out = fopen(to, "wb");
    if (out) {
        size_t k;
        while ((k = fread(buf, 1, sizeof buf, in)) > 0)
            fwrite(buf, 1, k, out);
        fclose(out);
    }
    fclose(in);
}

long sum_ints(const int *a, size_t n)
{
    long s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 1 < n; i += 2) {
        s0 += a[i];
        s1 += a[i + 1];
    }
    if (i < n)
        s0 += a[i];
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
    copy("../c-plain.o", "../o-plain.o");
    return s0 + s1;
#endif
#endif
    return s0 + s1 + (n > 8);
}
