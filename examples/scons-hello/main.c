#include <stdio.h>

#include "hello.h"

int main(void) {
    const char *g = greeting();
    printf("%s\n", g);
    printf("%d vowels\n", count_vowels(g));
    return 0;
}
