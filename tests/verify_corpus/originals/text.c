/* String helpers with state in globals (coopt's own). */
#include <stddef.h>
#include <string.h>

unsigned long total_bytes;   /* bytes seen by count_bytes */
int parse_error;             /* set by parse_uint on bad input */

size_t my_strlen(const char *s) {
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

size_t count_char(const char *s, int c) {
    size_t k = 0;
    for (size_t i = 0; s[i]; i++)
        if (s[i] == (char)c)
            k++;
    return k;
}

size_t count_bytes(const char *s) {
    size_t n = strlen(s);
    total_bytes += n;
    return n;
}

/* Decimal digits to unsigned; parse_error = 1 on an empty string or a non-digit. */
unsigned parse_uint(const char *s) {
    unsigned v = 0;
    parse_error = 0;
    if (!*s) {
        parse_error = 1;
        return 0;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            parse_error = 1;
            return v;
        }
        v = v * 10u + (unsigned)(*s - '0');
    }
    return v;
}
