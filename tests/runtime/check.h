/* check.h - the few helpers the runtime unit tests share.
 * Each test program runs one named case (argv[1]) so ctest reports the
 * cases separately; a case returns its number of failed checks.
 * Memory: nothing here allocates. */
#ifndef NINJAC_TEST_CHECK_H
#define NINJAC_TEST_CHECK_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int check_failures;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures++;                                                    \
        }                                                                        \
    } while (0)

/* An error message must exist and mention fragment. */
#define CHECK_ERROR(err, fragment)                                                        \
    do {                                                                                  \
        if (!strstr((err), (fragment))) {                                                 \
            fprintf(stderr, "%s:%d: error message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, \
                    (err), (fragment));                                                   \
            check_failures++;                                                             \
        }                                                                                 \
    } while (0)

typedef struct {
    const char *name;
    void (*run)(void);
} TestCase;

/* Files go under TEST_TMPDIR (in the build tree); each case prefixes its
 * file names with its own name so cases can run in parallel. */
static inline const char *tmp_path(char *buf, size_t n, const char *name) {
    if (mkdir(TEST_TMPDIR, 0777) != 0 && errno != EEXIST)
        fprintf(stderr, "cannot create %s: %s\n", TEST_TMPDIR, strerror(errno));
    snprintf(buf, n, "%s/%s", TEST_TMPDIR, name);
    return buf;
}

static inline int run_named_case(const TestCase *cases, size_t ncases, int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s CASE\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < ncases; i++) {
        if (strcmp(cases[i].name, argv[1]) != 0) continue;
        cases[i].run();
        if (check_failures) fprintf(stderr, "%s: %d check(s) failed\n", argv[1], check_failures);
        else printf("%s: ok\n", argv[1]);
        return check_failures ? 1 : 0;
    }
    fprintf(stderr, "unknown case %s\n", argv[1]);
    return 2;
}

#endif
