/* fail_rename.c - an LD_PRELOAD shim for tests/files/ninjac_files.py:
 * rename() fails with EIO when its new name ends in $NJ_TEST_FAIL_RENAME,
 * so that the second rename of ninjac's pair of outputs can be made to
 * fail after the first one succeeded. Every other call goes to libc. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rename(const char *from, const char *to) {
    const char *suffix = getenv("NJ_TEST_FAIL_RENAME");
    size_t n = strlen(to), k = suffix ? strlen(suffix) : 0;
    if (suffix && k && n >= k && !strcmp(to + n - k, suffix)) {
        errno = EIO;
        return -1;
    }
    int (*libc_rename)(const char *, const char *) = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    return libc_rename(from, to);
}
