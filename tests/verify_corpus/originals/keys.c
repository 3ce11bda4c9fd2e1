/* Record keys compared field by field (coopt's own). */

struct key {
    unsigned char kind;
    int id;
    short port;
};

/* Whether two keys are the same. */
int key_equal(const struct key *a, const struct key *b) {
    return a->kind == b->kind && a->id == b->id && a->port == b->port;
}
