/* Kind: a table rebuilt on every call. crc32() builds its 256-entry table before checksumming each (short) buffer,
 * although the table is the same every time. */
#include "common.h"

#define SCALE 500000
#define EXPECT 1073771057248279ULL

static uint32_t crc32(const unsigned char *p, size_t n) {
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

int main(int argc, char **argv) {
    enum { SIZE = 1 << 16, MSG = 64 };
    int messages = bench_scale(argc, argv, SCALE);
    static unsigned char data[SIZE + MSG];
    for (int i = 0; i < SIZE + MSG; i++)
        data[i] = (unsigned char)bench_rand();
    unsigned long long total = 0;
    for (int m = 0; m < messages; m++)
        total += crc32(data + (bench_rand() % SIZE), MSG - (size_t)(m % 8));
    return bench_report("crc_table", messages, SCALE, total, EXPECT);
}
