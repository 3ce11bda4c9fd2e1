#include <stdio.h>

#include "hello.h"

int main(void) {
    printf("%s\n", greeting());
    printf("fib(40) = %lu\n", fib(40));
    return 0;
}
