#ifndef HELLO_H
#define HELLO_H

const char *greeting(void);
long sum_of_squares(int n);

#endif
