/* Which compressed format a buffer starts with, by its magic bytes (coopt's own; the magic numbers are those of
   gzip, bzip2 ("BZh" and a block size digit), xz and zstd). */
#include <stddef.h>
#include <string.h>

enum { FMT_UNKNOWN, FMT_GZIP, FMT_BZIP2, FMT_XZ, FMT_ZSTD };

int sniff_format(const unsigned char *p, size_t n) {
    if (n >= 3 && p[0] == 0x1f && p[1] == 0x8b && p[2] == 8)
        return FMT_GZIP;
    if (n >= 4 && p[0] == 'B' && p[1] == 'Z' && p[2] == 'h' && p[3] >= '1' && p[3] <= '9')
        return FMT_BZIP2;
    if (n >= 6 && memcmp(p, "\xfd" "7zXZ\0", 6) == 0)
        return FMT_XZ;
    if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
        return FMT_ZSTD;
    return FMT_UNKNOWN;
}
