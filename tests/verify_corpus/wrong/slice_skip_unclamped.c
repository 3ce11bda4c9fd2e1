/* Byte slices behind a descriptor, the shape of zlib's z_stream input side (coopt's own). */
#include <stddef.h>

struct slice {
    const unsigned char *data;
    size_t len;
};

/* Number of lines in the slice: its newlines, plus one for a last line without one. */
size_t count_lines(const struct slice *s) {
    size_t n = 0;
    for (size_t i = 0; i < s->len; i++)
        n += s->data[i] == '\n';
    if (s->len && s->data[s->len - 1] != '\n')
        n++;
    return n;
}

/* Moves the slice past its first k bytes. Wrong: "callers never skip more than there is" drops the clamp, so a
   longer skip leaves `data` past the end and `len` wrapped around. */
void slice_skip(struct slice *s, size_t k) {
    s->data += k;
    s->len -= k;
}
