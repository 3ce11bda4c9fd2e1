#include <stdio.h>
#include <stdlib.h>

#include "hello.h"

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10;
    printf("%s\n", greeting());
    printf("sum of squares 1..%d = %ld\n", n, sum_of_squares(n));
    return 0;
}
