/* message.c - see message.h. */
#include "message.h"

#include <stdarg.h>
#include <stdio.h>

int nj_fail(char *err, size_t errlen, const char *path, long line, const char *fmt, ...) {
    if (!err || !errlen)
        return -1;
    if (!path)
        path = "(null)";
    int n = line > 0 ? snprintf(err, errlen, "%s:%ld: ", path, line) : snprintf(err, errlen, "%s: ", path);
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}
