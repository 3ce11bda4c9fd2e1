/* Which compressed format a buffer starts with, by its magic bytes (coopt's own; the magic numbers are those of
   gzip, bzip2 ("BZh" and a block size digit), xz and zstd). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { FMT_UNKNOWN, FMT_GZIP, FMT_BZIP2, FMT_XZ, FMT_ZSTD };

/* One little-endian word load per magic instead of byte compares. Wrong: the bzip2 test drops the block size
   digit, so "BZh" followed by anything but '1'..'9' is taken for bzip2. */
int sniff_format(const unsigned char *p, size_t n) {
    uint32_t w;
    if (n < 3)
        return FMT_UNKNOWN;
    if (p[0] == 0x1f && p[1] == 0x8b && p[2] == 8)
        return FMT_GZIP;
    if (n < 4)
        return FMT_UNKNOWN;
    memcpy(&w, p, 4);
    if ((w & 0xffffff) == 0x685a42)
        return FMT_BZIP2;
    if (w == 0xfd2fb528)
        return FMT_ZSTD;
    if (n >= 6 && w == 0x587a37fd && p[4] == 'Z' && p[5] == 0)
        return FMT_XZ;
    return FMT_UNKNOWN;
}
