#ifndef HELLO_H
#define HELLO_H

const char *greeting(void);
unsigned long fib(int n);

#endif
