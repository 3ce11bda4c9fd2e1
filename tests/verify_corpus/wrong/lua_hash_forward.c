/* coopt verify corpus: wrong candidate derived from originals/lua_hash.c.
   Hashes the string front to back. */
/* luaS_hash from Lua 5.4.4 (lstring.c), Copyright (C) 1994-2022 Lua.org, PUC-Rio; MIT license. */
#include <stddef.h>

typedef unsigned char lu_byte;
#define cast_uint(i) ((unsigned int)(i))
#define cast_byte(i) ((lu_byte)(i))

unsigned int luaS_hash (const char *str, size_t l, unsigned int seed) {
  unsigned int h = seed ^ cast_uint(l);
  for (size_t i = 0; i < l; i++)
    h ^= ((h<<5) + (h>>2) + cast_byte(str[i]));
  return h;
}
