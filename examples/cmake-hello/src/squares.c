#include "hello.h"

long sum_of_squares(int n) {
    long total = 0;
    for (int i = 1; i <= n; i++)
        total += (long)i * i;
    return total;
}
