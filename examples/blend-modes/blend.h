#ifndef BLEND_H
#define BLEND_H
#include <stddef.h>
#include <stdint.h>

enum blend_mode { BLEND_ADD, BLEND_SUBTRACT, BLEND_MULTIPLY, BLEND_SCREEN, BLEND_LIGHTEN, BLEND_DARKEN, BLEND_MODES };

void blend(uint8_t *dst, const uint8_t *a, const uint8_t *b, size_t n, enum blend_mode mode);

#endif
