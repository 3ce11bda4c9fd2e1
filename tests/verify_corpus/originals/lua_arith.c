/* luaV_idiv, luaV_mod and luaV_modf from Lua 5.4.4 (lvm.c, llimits.h), Copyright (C) 1994-2022 Lua.org,
   PUC-Rio; MIT license. The lua_State argument and the division-by-zero error are dropped (n == 0 gives 0). */
#include <math.h>

typedef long long lua_Integer;
typedef unsigned long long lua_Unsigned;
typedef double lua_Number;
#define l_castS2U(i) ((lua_Unsigned)(i))
#define l_castU2S(i) ((lua_Integer)(i))
#define intop(op,v1,v2) l_castU2S(l_castS2U(v1) op l_castS2U(v2))

#define luai_nummod(a,b,m)  \
  { (m) = fmod(a,b); \
    if (((m) > 0) ? (b) < 0 : ((m) < 0 && (b) > 0)) (m) += (b); }

lua_Integer luaV_idiv (lua_Integer m, lua_Integer n) {
  if (l_castS2U(n) + 1u <= 1u) {  /* special cases: -1 or 0 */
    if (n == 0)
      return 0;
    return intop(-, 0, m);   /* n==-1; avoid overflow with 0x80000...//-1 */
  }
  else {
    lua_Integer q = m / n;  /* perform C division */
    if ((m ^ n) < 0 && m % n != 0)  /* 'm/n' would be negative non-integer? */
      q -= 1;  /* correct result for different rounding */
    return q;
  }
}

lua_Integer luaV_mod (lua_Integer m, lua_Integer n) {
  if (l_castS2U(n) + 1u <= 1u) {  /* special cases: -1 or 0 */
    if (n == 0)
      return 0;
    return 0;   /* m % -1 == 0; avoid overflow with 0x80000...%-1 */
  }
  else {
    lua_Integer r = m % n;
    if (r != 0 && (r ^ n) < 0)  /* 'm/n' would be non-integer negative? */
      r += n;  /* correct result for different rounding */
    return r;
  }
}

lua_Number luaV_modf (lua_Number m, lua_Number n) {
  lua_Number r;
  luai_nummod(m, n, r);
  return r;
}
