/* files.h - opening inputs and outputs safely; shared by the trainer and
 * ninjac (plain POSIX, no other dependency).
 *
 * Outputs: the path is resolved through symlinks (the link stays; its final
 * target is what gets written). A regular or missing target is written to a
 * new temporary file in the target's directory, created with O_EXCL (so a
 * planted name is never followed), synced, and renamed over it; a character
 * device (/dev/null) is written to directly, never replaced; anything else
 * (directory, FIFO, socket, block device) is refused. Temporaries in flight
 * are removed when SIGINT, SIGTERM or SIGHUP arrive (files_catch_signals).
 * Inputs: regular files only, opened without blocking on a FIFO.
 * Errors are written to err as "PATH: message" and the call returns -1. */
#ifndef NINJAC_FILES_H
#define NINJAC_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define FILES_PATH_MAX 4096

typedef struct {
    char path[FILES_PATH_MAX];  /* absolute, symlinks resolved; may not exist yet */
    bool exists;
    bool direct;                /* a character device: written in place */
    dev_t dev;                  /* of the existing target */
    ino_t ino;
    mode_t type;                /* S_IFREG, S_IFDIR, ... of the existing target */
    mode_t mode;                /* the new file's permissions */
} OutPath;

/* Resolves path without touching anything; refuses only what cannot be
 * resolved (an empty path, "dir/", a parent that is a file, a link loop). */
int path_resolve(const char *path, OutPath *o, char *err, size_t errlen);
/* path_resolve, then refuses a target that out_open would not write. */
int out_check(const char *path, OutPath *o, char *err, size_t errlen);
/* Whether two checked paths (or an input's) name the same file. */
bool out_same(const OutPath *a, const OutPath *b);
/* "a directory", "a FIFO", ... for messages. */
const char *file_kind(mode_t type);

typedef struct {
    OutPath to;
    char tmp[FILES_PATH_MAX + 32];
    FILE *fp;
} OutFile;

/* out_open gives f->fp to write to; out_sync flushes, syncs and closes it
 * (any write error of fp, also an earlier one, makes it fail and remove the
 * temporary); out_commit does that if not done and renames the temporary
 * into place; out_abort removes it. */
int out_open(OutFile *f, const char *path, char *err, size_t errlen);
int out_sync(OutFile *f, char *err, size_t errlen);
int out_commit(OutFile *f, char *err, size_t errlen);
void out_abort(OutFile *f);
/* Commits n opened files as a set: all are synced before any is renamed,
 * and if a rename fails, the files already renamed get their old contents
 * back (or are removed if they did not exist). On failure every temporary
 * is removed. */
#define OUT_COMMIT_MAX 4
int out_commit_all(OutFile *f, int n, char *err, size_t errlen);

/* fopen(path, "rb") of a regular file; anything else is refused. */
FILE *in_open(const char *path, char *err, size_t errlen);

/* SIGINT, SIGTERM, SIGHUP: remove the temporaries in flight and exit with
 * status 128 + the signal's number. */
void files_catch_signals(void);

#endif
