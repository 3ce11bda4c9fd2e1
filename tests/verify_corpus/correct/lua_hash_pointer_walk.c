/* coopt verify corpus: correct, faster candidate derived from originals/lua_hash.c.
   Two bytes per iteration, same order. */
/* luaS_hash from Lua 5.4.4 (lstring.c), Copyright (C) 1994-2022 Lua.org, PUC-Rio; MIT license. */
#include <stddef.h>

typedef unsigned char lu_byte;
#define cast_uint(i) ((unsigned int)(i))
#define cast_byte(i) ((lu_byte)(i))

unsigned int luaS_hash (const char *str, size_t l, unsigned int seed) {
  unsigned int h = seed ^ cast_uint(l);
  const unsigned char *s = (const unsigned char *)str;
  while (l >= 2) {
    h ^= ((h<<5) + (h>>2) + s[l - 1]);
    h ^= ((h<<5) + (h>>2) + s[l - 2]);
    l -= 2;
  }
  if (l)
    h ^= ((h<<5) + (h>>2) + s[0]);
  return h;
}
