/* Blending two 8-bit channels, one loop for every mode. The mode is the same for the whole call, yet it is tested
 * for every pixel: at -O2 clang keeps the switch inside the loop and cannot vectorize it. At -O3 clang unswitches
 * the loop (one copy per mode) and vectorizes each copy; coopt's `flags` level finds that without any LLM. */
#include "blend.h"

void blend(uint8_t *dst, const uint8_t *a, const uint8_t *b, size_t n, enum blend_mode mode)
{
    for (size_t i = 0; i < n; i++) {
        unsigned x = a[i], y = b[i], r;
        switch (mode) {
        case BLEND_ADD:
            r = x + y > 255 ? 255 : x + y;
            break;
        case BLEND_SUBTRACT:
            r = x > y ? x - y : 0;
            break;
        case BLEND_MULTIPLY:
            r = x * y / 255;
            break;
        case BLEND_SCREEN:
            r = 255 - (255 - x) * (255 - y) / 255;
            break;
        case BLEND_LIGHTEN:
            r = x > y ? x : y;
            break;
        default:
            r = x < y ? x : y;
            break;
        }
        dst[i] = (uint8_t)r;
    }
}
