/* The workload: upper-case a long generated text a few times and print a checksum of the result. */
#include <stdio.h>
#include <stdlib.h>

#include "text.h"

int main(int argc, char **argv)
{
    size_t len = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 8000;
    int rounds = argc > 2 ? atoi(argv[2]) : 12;
    char *text = malloc(len + 1), *out = malloc(len + 1);
    if (!text || !out)
        return 1;
    for (size_t i = 0; i < len; i++)
        text[i] = "the quick brown fox jumps over the lazy dog "[i % 44];
    text[len] = '\0';
    unsigned long sum = 0;
    for (int r = 0; r < rounds; r++) {
        text[r % len] = (char)('a' + r % 26);
        upcase(out, text);
        for (size_t i = 0; i < len; i++)
            sum = sum * 31 + (unsigned char)out[i];
    }
    printf("%zu %d %lu\n", len, rounds, sum);
    free(text);
    free(out);
    return 0;
}
