/* coopt verify corpus: wrong candidate derived from originals/bzip2_mmed3.c.
   Forgets to re-check a after clamping b to c. */
/* mmed3 from bzip2 1.0.8 (blocksort.c), Copyright (C) 1996-2019 Julian Seward; bzip2 license.
   Made extern (it is static __inline__ there) so that it has a symbol to test. */
typedef unsigned char UChar;

UChar mmed3 ( UChar a, UChar b, UChar c )
{
   UChar t;
   if (a > b) { t = a; a = b; b = t; };
   if (b > c) b = c;
   return b;
}
