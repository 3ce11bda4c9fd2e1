/* Counting character classes in a NUL-terminated string (coopt's own). */
#include <stddef.h>

size_t count_upper(const char *s) {
    size_t k = 0;
    for (size_t i = 0; s[i]; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            k++;
    return k;
}
