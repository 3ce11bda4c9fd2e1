#ifndef HELLO_H
#define HELLO_H

const char *greeting(void);
int count_vowels(const char *s);

#endif
