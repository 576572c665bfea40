/* files.c - see files.h. */
#define _GNU_SOURCE   /* realpath, fdopen, clock_gettime under -std=c11 */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "message.h"

#define fail(err, errlen, path, ...) nj_fail((err), (errlen), (path), 0, __VA_ARGS__)

const char *file_kind(mode_t m) {
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket"
         : S_ISBLK(m) ? "a block device" : S_ISCHR(m) ? "a character device" : "not a regular file";
}

/* The path path names once every symlink is followed, also when its last
 * components do not exist yet (then the existing part is resolved and the
 * rest appended): realpath alone fails on a dangling link. Returns an errno. */
static int resolve(const char *path, char *out, int depth) {
    if (depth > 40)
        return ELOOP;
    size_t len = strlen(path);
    if (!len)
        return ENOENT;
    if (len >= FILES_PATH_MAX)
        return ENAMETOOLONG;
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        char target[FILES_PATH_MAX], next[2 * FILES_PATH_MAX];
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n < 0)
            return errno;
        target[n] = 0;
        const char *slash = strrchr(path, '/');
        if (target[0] == '/' || !slash)
            snprintf(next, sizeof next, "%s", target);
        else
            snprintf(next, sizeof next, "%.*s/%s", (int)(slash - path), path, target);
        return resolve(next, out, depth + 1);
    }
    char real[PATH_MAX];
    if (realpath(path, real)) {
        if (strlen(real) >= FILES_PATH_MAX)
            return ENAMETOOLONG;
        strcpy(out, real);
        return 0;
    }
    if (errno != ENOENT)
        return errno;
    /* Missing: resolve the directory, which must be one if it exists. */
    char dir[FILES_PATH_MAX];
    strcpy(dir, path);
    while (len > 1 && dir[len - 1] == '/')
        dir[--len] = 0;
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : dir;
    if (len != strlen(path) || !strcmp(base, ".") || !strcmp(base, ".."))
        return EISDIR;      /* "out/new/" names a directory */
    char parent[FILES_PATH_MAX];
    int e = resolve(!slash ? "." : slash == dir ? "/" : (*slash = 0, dir), parent, depth + 1);
    if (e)
        return e;
    if (stat(parent, &st) == 0 && !S_ISDIR(st.st_mode))
        return ENOTDIR;
    if ((size_t)snprintf(out, FILES_PATH_MAX, "%s/%s", strcmp(parent, "/") ? parent : "", base) >= FILES_PATH_MAX)
        return ENAMETOOLONG;
    return 0;
}

int path_resolve(const char *path, OutPath *o, char *err, size_t errlen) {
    memset(o, 0, sizeof *o);
    if (!path || !*path)
        return fail(err, errlen, "''", "an empty path");
    int e = resolve(path, o->path, 0);
    if (e == EISDIR)
        return fail(err, errlen, path, "is a directory (give a file name)");
    if (e)
        return fail(err, errlen, path, "%s", strerror(e));
    struct stat st;
    if (stat(o->path, &st) != 0) {
        if (errno != ENOENT)
            return fail(err, errlen, path, "%s", strerror(errno));
        mode_t mask = umask(0);
        umask(mask);
        o->mode = 0666 & ~mask;
        return 0;
    }
    o->exists = true;
    o->dev = st.st_dev;
    o->ino = st.st_ino;
    o->type = st.st_mode & S_IFMT;
    o->mode = st.st_mode & 0777;
    return 0;
}

int out_check(const char *path, OutPath *o, char *err, size_t errlen) {
    if (path_resolve(path, o, err, errlen) != 0)
        return -1;
    o->direct = o->type == S_IFCHR;
    if (o->exists && o->type != S_IFREG && !o->direct)
        return fail(err, errlen, path, "is %s, not a regular file%s", file_kind(o->type),
                    o->type == S_IFDIR ? " (give a file name)" : "");
    return 0;
}

bool out_same(const OutPath *a, const OutPath *b) {
    if (a->exists && b->exists)
        return a->dev == b->dev && a->ino == b->ino;
    return !strcmp(a->path, b->path);
}

/* ---- temporaries in flight, for the signal handler ---- */

/* A name is registered before the file exists (see create_temp), so that
 * a signal at any moment finds every temporary there can be; the handler
 * unlinking a name that does not exist yet, or no longer, is harmless. */
#define MAX_TEMPS (2 * OUT_COMMIT_MAX)
static char temps[MAX_TEMPS][sizeof ((OutFile *)0)->tmp];
static volatile sig_atomic_t temp_used[MAX_TEMPS];

static void temp_register(const char *tmp) {
    for (int i = 0; i < MAX_TEMPS; i++)
        if (!temp_used[i]) {
            strcpy(temps[i], tmp);
            __atomic_store_n(&temp_used[i], 1, __ATOMIC_RELEASE);   /* only now may the handler read it */
            return;
        }
}

static void temp_forget(const char *tmp) {
    for (int i = 0; i < MAX_TEMPS; i++)
        if (temp_used[i] && !strcmp(temps[i], tmp))
            temp_used[i] = 0;
}

static void on_signal(int sig) {
    for (int i = 0; i < MAX_TEMPS; i++)
        if (__atomic_load_n(&temp_used[i], __ATOMIC_ACQUIRE))
            unlink(temps[i]);  /* async-signal-safe, as is _exit */
    _exit(128 + sig);
}

void files_catch_signals(void) {
    int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        struct sigaction sa, old;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigfillset(&sa.sa_mask);
        /* A signal ignored by whoever started us (nohup) stays ignored. */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);
    }
}

/* ---- writing ---- */

/* Creates "TARGET.tmp.PID.XXXXXXXX" with O_CREAT | O_EXCL (never through a
 * planted link), registered for the signal handler before it is created:
 * with mkstemp the file existed for a moment before anything knew its
 * name, and a SIGTERM in that moment left it behind. */
static int create_temp(const char *target, char *tmp, size_t len) {
    static unsigned counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        snprintf(tmp, len, "%s.tmp.%ld.%08lx", target, (long)getpid(),
                 ((unsigned long)now.tv_nsec * 2654435761u + counter++) & 0xffffffffu);
        temp_register(tmp);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY | O_CLOEXEC, 0600);
        if (fd >= 0)
            return fd;
        int e = errno;
        temp_forget(tmp);
        if (e != EEXIST) {
            errno = e;
            return -1;
        }
    }
    errno = EEXIST;
    return -1;
}

int out_open(OutFile *f, const char *path, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    if (out_check(path, &f->to, err, errlen) != 0)
        return -1;
    int fd;
    if (f->to.direct) {
        fd = open(f->to.path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
            return fail(err, errlen, path, "cannot open: %s", strerror(errno));
    } else {
        fd = create_temp(f->to.path, f->tmp, sizeof f->tmp);
        if (fd < 0) {
            int e = errno;
            char tmp[sizeof f->tmp];
            strcpy(tmp, f->tmp);
            f->tmp[0] = 0;
            return fail(err, errlen, path, "cannot create %s: %s", tmp, strerror(e));
        }
        /* create_temp makes it 0600; the file gets the mode of the one it
         * replaces, or what a plain creat would give. */
        (void)fchmod(fd, f->to.mode);
    }
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        int e = errno;
        close(fd);
        out_abort(f);
        return fail(err, errlen, path, "cannot open: %s", strerror(e));
    }
    return 0;
}

void out_abort(OutFile *f) {
    if (f->fp)
        fclose(f->fp);
    f->fp = NULL;
    if (f->tmp[0]) {
        unlink(f->tmp);
        temp_forget(f->tmp);
        f->tmp[0] = 0;
    }
}

/* Flushes the rename to disk too; best effort because some file systems
 * refuse fsync on directories and the new file is already in place. */
static void sync_parent_directory(const char *path) {
    char dir[FILES_PATH_MAX];
    strcpy(dir, path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return;
    slash[slash == dir] = 0;    /* "/file" lives in "/" */
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    (void)fsync(fd);
    close(fd);
}

int out_sync(OutFile *f, char *err, size_t errlen) {
    if (!f->fp)
        return 0;
    const char *step = NULL;
    int e = errno;              /* the failed write's, if ferror says there was one */
    if (ferror(f->fp))
        step = "write";
    else if (errno = 0, fflush(f->fp) != 0 || ferror(f->fp))
        step = "write", e = errno;
    else if (!f->to.direct && fsync(fileno(f->fp)) != 0)
        step = "fsync", e = errno;
    /* fclose reports delayed write errors (e.g. NFS), so it is checked too. */
    errno = 0;
    if (fclose(f->fp) != 0 && !step)
        step = "close", e = errno;
    f->fp = NULL;
    if (!step)
        return 0;
    char tmp[sizeof f->tmp];
    strcpy(tmp, f->tmp[0] ? f->tmp : f->to.path);
    out_abort(f);
    return fail(err, errlen, f->to.path, "%s of %s failed: %s%s", step, tmp, e ? strerror(e) : "short write",
                f->to.direct ? "" : "; the old file, if any, is unchanged");
}

int out_commit(OutFile *f, char *err, size_t errlen) {
    if (out_sync(f, err, errlen) != 0)
        return -1;
    if (!f->tmp[0])
        return 0;
    if (rename(f->tmp, f->to.path) != 0) {
        int e = errno;
        out_abort(f);
        return fail(err, errlen, f->to.path, "cannot rename the new file over it: %s; the old file, if any, is "
                    "unchanged", strerror(e));
    }
    temp_forget(f->tmp);
    f->tmp[0] = 0;
    sync_parent_directory(f->to.path);
    return 0;
}

/* Keeps the current target of f under a new hard link beside it, so that
 * it can be put back if a later file of the set fails; backup is "" when
 * there is nothing to keep, or no way to (a file system without hard
 * links: then the set is only as atomic as its last rename). */
static void keep_old(const OutFile *f, char *backup, size_t len) {
    backup[0] = 0;
    if (!f->tmp[0] || !f->to.exists)
        return;
    for (int k = 0; k < 100; k++) {
        snprintf(backup, len, "%s.old.%ld.%d", f->to.path, (long)getpid(), k);
        temp_register(backup);   /* before it exists, as in create_temp */
        if (link(f->to.path, backup) == 0)   /* link never follows or replaces a name: EEXIST */
            return;
        int e = errno;
        temp_forget(backup);
        if (e != EEXIST)
            break;
    }
    backup[0] = 0;
}

int out_commit_all(OutFile *f, int n, char *err, size_t errlen) {
    char backup[OUT_COMMIT_MAX][sizeof f->tmp];
    int rc = n > OUT_COMMIT_MAX ? fail(err, errlen, f[0].to.path, "too many files to commit together") : 0;
    for (int k = 0; k < n && rc == 0; k++)
        rc = out_sync(&f[k], err, errlen);
    int kept = 0, done = 0;
    for (; kept < n && rc == 0; kept++)
        keep_old(&f[kept], backup[kept], sizeof backup[kept]);
    while (rc == 0 && done < n && (rc = out_commit(&f[done], err, errlen)) == 0)
        done++;
    for (int k = 0; k < done && rc != 0; k++) {   /* put back what was replaced before the failure */
        if (backup[k][0])
            (void)rename(backup[k], f[k].to.path);
        else if (!f[k].to.exists && !f[k].to.direct)
            (void)unlink(f[k].to.path);
    }
    for (int k = 0; k < kept; k++)
        if (backup[k][0]) {
            (void)unlink(backup[k]);   /* already gone if put back */
            temp_forget(backup[k]);
        }
    for (int k = 0; k < n; k++)
        out_abort(&f[k]);
    return rc;
}

/* ---- reading ---- *//* ---- reading ---- */

FILE *in_open(const char *path, char *err, size_t errlen) {
    /* O_NONBLOCK: opening a FIFO would otherwise wait for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        fail(err, errlen, path, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    FILE *fp = NULL;
    if (fstat(fd, &st) != 0)
        fail(err, errlen, path, "cannot stat: %s", strerror(errno));
    else if (!S_ISREG(st.st_mode))
        fail(err, errlen, path, "is %s, not a regular file", file_kind(st.st_mode));
    else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0 || !(fp = fdopen(fd, "rb")))
        fail(err, errlen, path, "cannot open: %s", strerror(errno));
    if (!fp)
        close(fd);
    return fp;
}
