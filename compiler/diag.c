/* diag.c - diagnostics in GCC form: file:line:col: error: message, then the
 * source line and a caret under the offending part.
 * Memory: the line table comes from the arena. */
#include "ninjac.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ERRORS 50

int diag_errors;
static const Source *src;
static int *line_starts;   /* byte offset of each line's first character */
static int nlines;

void diag_init(const Source *s) {
    src = s;
    diag_errors = 0;
    nlines = 1;
    for (size_t i = 0; i < s->len; i++)
        nlines += s->text[i] == '\n';
    line_starts = arena_alloc(sizeof(int) * (size_t)(nlines + 1));
    int k = 0;
    line_starts[k++] = 0;
    for (size_t i = 0; i < s->len; i++)
        if (s->text[i] == '\n')
            line_starts[k++] = (int)i + 1;
    line_starts[nlines] = (int)s->len + 1;
}

int loc_line(Loc loc) {
    int lo = 0, hi = nlines - 1;
    while (lo < hi) {   /* the last line starting at or before loc.begin */
        int mid = (lo + hi + 1) / 2;
        if (line_starts[mid] <= loc.begin)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo + 1;
}

static int line_length(int line) {
    const char *start = src->text + line_starts[line - 1];
    const char *nl = memchr(start, '\n', src->len - (size_t)line_starts[line - 1]);
    int len = nl ? (int)(nl - start) : (int)(src->len - (size_t)line_starts[line - 1]);
    if (len > 0 && start[len - 1] == '\r')
        len--;
    return len;
}

const char *line_text(int line) {
    return arena_strndup(src->text + line_starts[line - 1], (size_t)line_length(line));
}

Loc loc_join(Loc a, Loc b) {
    return (Loc){a.begin < b.begin ? a.begin : b.begin, a.end > b.end ? a.end : b.end};
}

/* Long lines (a fuzzer's 1 MB identifier) are shown cut to this width. */
#define SHOW_MAX 160

static void show_line(Loc loc) {
    int line = loc_line(loc);
    int start = line_starts[line - 1];
    int len = line_length(line);
    int col = loc.begin - start;
    int width = (loc.end > loc.begin ? loc.end : loc.begin + 1) - loc.begin;
    if (col + width > len)
        width = len - col > 1 ? len - col : 1;
    int from = col > SHOW_MAX / 2 ? col - SHOW_MAX / 2 : 0;
    int shown = len - from > SHOW_MAX ? SHOW_MAX : len - from;
    fputs("  ", stderr);
    for (int i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)src->text[start + from + i];
        fputc(c == '\t' || (c >= 32 && c < 127) ? c : '?', stderr);
    }
    fputs("\n  ", stderr);
    for (int i = from; i < col; i++)
        fputc(src->text[start + i] == '\t' ? '\t' : ' ', stderr);
    fputc('^', stderr);
    for (int i = 1; i < width && col + i - from < SHOW_MAX; i++)
        fputc('~', stderr);
    fputc('\n', stderr);
}

static void report(Loc loc, const char *kind, const char *fmt, va_list ap) {
    int line = loc_line(loc);
    fprintf(stderr, "%s:%d:%d: %s: ", src->path, line, loc.begin - line_starts[line - 1] + 1, kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    show_line(loc);
}

/* After MAX_ERRORS errors the rest are counted but not shown; the first
 * one not shown says so. */
static bool quiet(void) { return diag_errors >= MAX_ERRORS; }

static void count_error(void) {
    if (++diag_errors == MAX_ERRORS + 1)
        fprintf(stderr, "%s: error: too many errors; the rest are not shown\n", src ? src->path : "ninjac");
}

void error_at(Loc loc, const char *fmt, ...) {
    if (quiet()) {
        count_error();
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    report(loc, "error", fmt, ap);
    va_end(ap);
    count_error();
}

void warning_at(Loc loc, const char *fmt, ...) {
    if (quiet())
        return;
    va_list ap;
    va_start(ap, fmt);
    report(loc, "warning", fmt, ap);
    va_end(ap);
}

void note_at(Loc loc, const char *fmt, ...) {
    if (quiet())
        return;
    va_list ap;
    va_start(ap, fmt);
    report(loc, "note", fmt, ap);
    va_end(ap);
}

void error_plain(const char *fmt, ...) {
    if (quiet()) {
        count_error();
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: ", src ? src->path : "ninjac");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    count_error();
}
