/* Byte slices behind a descriptor, the shape of zlib's z_stream input side (coopt's own). */
#include <stddef.h>
#include <string.h>

struct slice {
    const unsigned char *data;
    size_t len;
};

/* Number of lines in the slice: its newlines, plus one for a last line without one. The library's memchr finds
   the newlines a word at a time. */
size_t count_lines(const struct slice *s) {
    size_t n = 0;
    const unsigned char *p, *end;
    if (!s->len)
        return 0; /* data may then be NULL, and NULL + 0 is undefined */
    p = s->data;
    end = s->data + s->len;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        if (++p == end)
            return n;
    }
    return n + 1;
}

/* Moves the slice past its first k bytes (all of them when it is shorter). */
void slice_skip(struct slice *s, size_t k) {
    if (k > s->len)
        k = s->len;
    s->data += k;
    s->len -= k;
}
