/* Record keys compared field by field (coopt's own). */
#include <string.h>

struct key {
    unsigned char kind;
    int id;
    short port;
};

/* Whether two keys are the same: one memcmp instead of three compares. Wrong: it compares the padding after
   `kind` and after `port` too, which nobody initialises. Fresh memory is zero (and ASan fills both keys with
   the same byte), so it usually gives the right answer; MemorySanitizer sees the read. */
int key_equal(const struct key *a, const struct key *b) {
    return memcmp(a, b, sizeof *a) == 0;
}
