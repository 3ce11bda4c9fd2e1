/* Text helpers written the naive way: the loop condition measures the whole string again on every iteration.
 * The stores through `dst` may alias `src`, so the compiler cannot move the measuring out of the loop itself:
 * upcase is O(n^2). */
#include <stddef.h>

#include "text.h"

/* The length of a C string: the project's own strlen, as older code bases often have one. */
static size_t text_length(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0')
        n++;
    return n;
}

/* Copy `src` into `dst` with ASCII letters upper-cased; `dst` is not NUL-terminated. */
void upcase(char *dst, const char *src)
{
    for (size_t i = 0; i < text_length(src); i++) {
        char c = src[i];
        dst[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
}
