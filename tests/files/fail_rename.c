/* fail_rename.c - an LD_PRELOAD shim for tests/files/ninjac_files.py that
 * injects two faults into ninjac's writing of its outputs:
 *   NJ_TEST_FAIL_RENAME=SUFFIX  rename() fails with EIO when its new name
 *       ends in SUFFIX (the second rename of the pair, after the first
 *       succeeded);
 *   NJ_TEST_TERM_AFTER_CREATE=1  SIGTERM is raised the moment a file whose
 *       name holds ".tmp." has been created (by open or mkostemp), before
 *       the caller has seen its descriptor.
 * Every call goes on to libc. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define LIBC(name, type) ((type)dlsym(RTLD_NEXT, name))

int rename(const char *from, const char *to) {
    const char *suffix = getenv("NJ_TEST_FAIL_RENAME");
    size_t n = strlen(to), k = suffix ? strlen(suffix) : 0;
    if (suffix && k && n >= k && !strcmp(to + n - k, suffix)) {
        errno = EIO;
        return -1;
    }
    return LIBC("rename", int (*)(const char *, const char *))(from, to);
}

static int created(int fd, const char *path) {
    if (fd >= 0 && getenv("NJ_TEST_TERM_AFTER_CREATE") && strstr(path, ".tmp."))
        raise(SIGTERM);
    return fd;
}

static int open_as(const char *name, const char *path, int flags, va_list ap) {
    mode_t mode = flags & O_CREAT ? (mode_t)va_arg(ap, int) : 0;
    int fd = LIBC(name, int (*)(const char *, int, ...))(path, flags, mode);
    return flags & O_CREAT ? created(fd, path) : fd;
}

int open(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    int fd = open_as("open", path, flags, ap);
    va_end(ap);
    return fd;
}

int open64(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    int fd = open_as("open64", path, flags, ap);
    va_end(ap);
    return fd;
}

int mkostemp(char *tmpl, int flags) {
    return created(LIBC("mkostemp", int (*)(char *, int))(tmpl, flags), tmpl);
}
