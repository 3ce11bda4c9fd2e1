/* Kind: repeated linear lookups. Every lookup scans the symbol table from the start with strcmp; the table never
 * changes while it is searched. */
#include <string.h>

#include "common.h"

#define SCALE 90000
#define EXPECT 11797328461748094510ULL

enum { NSYM = 1500 };
static char names[NSYM][16];
static int values[NSYM];

static int lookup(const char *name) {
    for (int i = 0; i < NSYM; i++)
        if (strcmp(names[i], name) == 0)
            return values[i];
    return -1;
}

int main(int argc, char **argv) {
    int queries = bench_scale(argc, argv, SCALE);
    for (int i = 0; i < NSYM; i++) {
        snprintf(names[i], sizeof names[i], "sym_%05u", bench_rand() % 90000);
        values[i] = (int)(bench_rand() % 1000);
    }
    char key[16];
    unsigned long long total = 0;
    for (int q = 0; q < queries; q++) {
        if (q % 4 == 0)
            snprintf(key, sizeof key, "sym_%05u", bench_rand() % 90000); /* mostly misses */
        else
            memcpy(key, names[bench_rand() % NSYM], sizeof key);
        total = total * 31 + (unsigned)(lookup(key) + 1);
    }
    return bench_report("linear_lookup", queries, SCALE, total, EXPECT);
}
