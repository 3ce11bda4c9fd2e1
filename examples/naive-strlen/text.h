#ifndef TEXT_H
#define TEXT_H

void upcase(char *dst, const char *src);

#endif
