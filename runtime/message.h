/* message.h - the runtime's error messages: "PATH: message" or
 * "PATH:LINE: message", written into a caller's buffer. */
#ifndef NINJAC_MESSAGE_H
#define NINJAC_MESSAGE_H

#include <stddef.h>

/* Writes the message into err (when there is one) and returns -1, so that
 * callers can `return nj_fail(...)`. line 0: no line number. */
int nj_fail(char *err, size_t errlen, const char *path, long line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
