/* coopt verify corpus: correct, faster candidate derived from originals/bzip2_mmed3.c.
   Branchless min/max median. */
/* mmed3 from bzip2 1.0.8 (blocksort.c), Copyright (C) 1996-2019 Julian Seward; bzip2 license.
   Made extern (it is static __inline__ there) so that it has a symbol to test. */
typedef unsigned char UChar;

UChar mmed3 ( UChar a, UChar b, UChar c )
{
   UChar lo = a < b ? a : b, hi = a < b ? b : a;
   UChar m = hi < c ? hi : c;
   return lo > m ? lo : m;
}
