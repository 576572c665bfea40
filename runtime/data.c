/* data.c - loads names.txt into the notebook's train/val/test context
 * windows, bit-for-bit: same vocabulary order, same Python shuffle, same
 * split points.
 *
 * Memory: the file text and the word list live only inside data_load; the
 * Dataset owns its X/Y arrays until data_free, and on error nothing is left
 * allocated and the Dataset is zeroed. */
#include "data.h"
#include "files.h"
#include "message.h"

#include "rng.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define END_TOKEN '.'

typedef struct {
    const char *path;
    char *err;
    size_t errlen;
    char *text;   /* whole file plus a terminating NUL; lines become strings */
    size_t len;
    void **words; /* pointers into text; void* because mt_shuffle shuffles those */
    int nwords;
} Loader;

#define LFAIL(l, line, ...) nj_fail((l)->err, (l)->errlen, (l)->path, (line), __VA_ARGS__)

static int read_whole_file(Loader *l) {
    FILE *fp = in_open(l->path, l->err, l->errlen);
    if (!fp) return -1;
    size_t cap = 1 << 16;
    l->text = malloc(cap);
    int rc = l->text ? 0 : LFAIL(l, 0, "out of memory");
    while (rc == 0) {
        if (cap - l->len < 2) { /* room for one more byte and the NUL */
            char *bigger = cap <= SIZE_MAX / 2 ? realloc(l->text, cap * 2) : NULL;
            if (!bigger) {
                rc = LFAIL(l, 0, "out of memory");
                break;
            }
            l->text = bigger;
            cap *= 2;
        }
        size_t got = fread(l->text + l->len, 1, cap - l->len - 1, fp);
        l->len += got;
        if (got == 0) break;
    }
    if (rc == 0 && ferror(fp)) rc = LFAIL(l, 0, "cannot read: %s", strerror(errno));
    fclose(fp);
    if (rc == 0) l->text[l->len] = '\0';
    return rc;
}

/* A word is one or more printable ASCII characters other than '.', the
 * token that pads contexts and ends every word. */
static int check_word(Loader *l, long line, const char *word, size_t n, int ends_with_newline) {
    if (n == 0) return LFAIL(l, line, "empty line (each line must hold exactly one word)");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)word[i];
        if (c == '\r' && i + 1 == n && ends_with_newline)
            return LFAIL(l, line,
                         "line ends with CRLF (Windows line ends); convert the file to LF line ends, "
                         "e.g. with dos2unix or tr -d '\\r'");
        if (c == END_TOKEN)
            return LFAIL(l, line, "'%c' at column %zu: it is the end-of-word token and cannot appear in a word",
                         END_TOKEN, i + 1);
        if (c < 0x20 || c > 0x7e)
            return LFAIL(l, line, "byte 0x%02x at column %zu is not a printable ASCII character", c, i + 1);
    }
    return 0;
}

static size_t count_lines(const char *text, size_t len) {
    size_t lines = 0;
    for (const char *p = text; (p = memchr(p, '\n', len - (size_t)(p - text))); p++) lines++;
    return lines + 1; /* a last line without its newline */
}

/* Splits text into NUL-terminated words in place. As with Python's
 * splitlines, a final newline does not start another (empty) line. */
static int split_words(Loader *l) {
    if (l->len == 0) return LFAIL(l, 0, "file is empty: no words");
    size_t max_words = count_lines(l->text, l->len);
    if (max_words > INT_MAX) return LFAIL(l, 0, "more than %d lines", INT_MAX);
    l->words = malloc(max_words * sizeof *l->words);
    if (!l->words) return LFAIL(l, 0, "out of memory");
    long line = 0;
    for (size_t start = 0; start < l->len;) {
        line++;
        char *nl = memchr(l->text + start, '\n', l->len - start);
        size_t end = nl ? (size_t)(nl - l->text) : l->len;
        if (check_word(l, line, l->text + start, end - start, nl != NULL) != 0) return -1;
        l->text[end] = '\0';
        l->words[l->nwords++] = l->text + start;
        start = end + 1;
    }
    return 0;
}

/* The vocabulary is '.' then the distinct characters in byte order, which
 * is what sorted(set(''.join(words))) gives for ASCII. */
static int build_vocabulary(Loader *l, int expected_vocab, Dataset *ds) {   /* expected_vocab 0: any */
    unsigned char seen[256] = {0};
    for (int w = 0; w < l->nwords; w++)
        for (const unsigned char *p = l->words[w]; *p; p++) seen[*p] = 1;
    for (int c = 0; c < 256; c++) ds->stoi[c] = -1;
    ds->itos[0] = END_TOKEN;
    ds->stoi[END_TOKEN] = 0;
    int size = 1;
    for (int c = 0; c < 256; c++) {
        if (!seen[c]) continue;
        ds->itos[size] = (char)c;
        ds->stoi[c] = size++;
    }
    ds->vocab_size = size;
    if (expected_vocab && size != expected_vocab)
        return LFAIL(l, 0, "vocabulary has %d symbols but %d were expected: '%c' plus the %d characters \"%.*s\"",
                     size, expected_vocab, END_TOKEN, size - 1, size - 1, ds->itos + 1);
    return 0;
}

static int64_t count_examples(void *const *words, int64_t n) {
    int64_t rows = 0;
    for (int64_t w = 0; w < n; w++) rows += (int64_t)strlen(words[w]) + 1; /* +1: the '.' target */
    return rows;
}

/* Context windows: the example for position t of word+'.' has the previous
 * block_size symbols as X (0 = '.' before the word starts) and symbol t as Y. */
static int build_split(Loader *l, void *const *words, int64_t n, int block_size, const int *stoi, Split *s) {
    s->block_size = block_size;
    s->target_width = 1;
    s->rows = count_examples(words, n);
    if (s->rows > (int64_t)(SIZE_MAX / sizeof(int32_t) / (size_t)block_size) - 1)
        return LFAIL(l, 0, "too many examples (%lld)", (long long)s->rows);
    /* At least one element so a successful split never has NULL arrays. */
    s->X = malloc(((size_t)s->rows * (size_t)block_size + 1) * sizeof *s->X);
    s->Y = malloc(((size_t)s->rows + 1) * sizeof *s->Y);
    if (!s->X || !s->Y) return LFAIL(l, 0, "out of memory for %lld examples", (long long)s->rows);
    int64_t row = 0;
    for (int64_t w = 0; w < n; w++) {
        const unsigned char *word = words[w];
        int64_t len = (int64_t)strlen(words[w]);
        for (int64_t t = 0; t <= len; t++, row++) {
            for (int k = 0; k < block_size; k++) {
                int64_t src = t - block_size + k;
                s->X[row * block_size + k] = src < 0 ? 0 : stoi[word[src]];
            }
            s->Y[row] = t < len ? stoi[word[t]] : 0;
        }
    }
    return 0;
}

/* n1 = int(0.8*len(words)): the double product, truncated, like Python.
 * x86-64 and aarch64 evaluate doubles in double precision, so the product
 * rounds exactly as CPython's float multiplication does. */
static int64_t python_split_point(double fraction, int n) { return (int64_t)(fraction * (double)n); }

/* Training samples batches from the training split and calibrates batch
 * statistics over it, so it needs examples; val and test may be empty
 * (fewer than 10 words leave one of them without words). */
static int check_training_split(Loader *l, int64_t n1) {
    if (n1 > 0) return 0;
    return LFAIL(l, 0, "too few words (%d): the training split, the first int(0.8 * %d) = 0 shuffled words, "
                 "is empty, so there are no training examples (at least 2 words are needed)",
                 l->nwords, l->nwords);
}

static int check_arguments(Loader *l, const char *path, int block_size, int expected_vocab, Dataset *ds) {
    if (!path || !ds) return LFAIL(l, 0, "data_load: NULL path or dataset");
    if (block_size < 1) return LFAIL(l, 0, "block_size must be at least 1 (got %d)", block_size);
    if (expected_vocab < 2 || expected_vocab > 256)
        return LFAIL(l, 0, "expected vocabulary size %d is out of range (2..256)", expected_vocab);
    return 0;
}

int data_load(const char *path, int block_size, int expected_vocab, uint32_t seed, Dataset *ds, char *err,
              size_t errlen) {
    Loader l = {.path = path ? path : "(null)", .err = err, .errlen = errlen};
    if (ds) memset(ds, 0, sizeof *ds);
    if (check_arguments(&l, path, block_size, expected_vocab, ds) != 0) return -1;
    int rc = -1;
    if (read_whole_file(&l) != 0 || split_words(&l) != 0 || build_vocabulary(&l, expected_vocab, ds) != 0)
        goto done;
    ds->nwords = l.nwords;

    Mt19937 mt;
    mt_seed_python(&mt, seed);
    mt_shuffle(&mt, l.words, l.nwords);
    int64_t n1 = python_split_point(0.8, l.nwords), n2 = python_split_point(0.9, l.nwords);
    if (check_training_split(&l, n1) != 0) goto done;
    if (build_split(&l, l.words, n1, block_size, ds->stoi, &ds->train) != 0 ||
        build_split(&l, l.words + n1, n2 - n1, block_size, ds->stoi, &ds->val) != 0 ||
        build_split(&l, l.words + n2, l.nwords - n2, block_size, ds->stoi, &ds->test) != 0)
        goto done;
    rc = 0;
done:
    if (rc != 0) data_free(ds);
    free(l.words);
    free(l.text);
    return rc;
}

static void split_free(Split *s) {
    free(s->X);
    free(s->Y);
    memset(s, 0, sizeof *s);
}

void data_free(Dataset *ds) {
    if (!ds) return;
    split_free(&ds->train);
    split_free(&ds->val);
    split_free(&ds->test);
    memset(ds, 0, sizeof *ds);
}

/* ---- makemore.py's CharDataset ---- */

/* The line breaks of Python's str.splitlines() among ASCII bytes. */
static int is_line_break(unsigned char c) {
    return c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1e);
}

/* What str.strip() strips among ASCII bytes: white space, line breaks and 0x1f. */
static int is_py_space(unsigned char c) { return c == ' ' || c == '\t' || c == 0x1f || is_line_break(c); }

/* words = [w.strip() for w in data.splitlines()]; words = [w for w in words if w] */
static int split_stripped_words(Loader *l) {
    size_t max_words = l->len / 2 + 1;   /* a word and a break at least, but for the last */
    if (max_words > INT_MAX) return LFAIL(l, 0, "more than %d lines", INT_MAX);
    l->words = malloc(max_words * sizeof *l->words);
    if (!l->words) return LFAIL(l, 0, "out of memory");
    long line = 1;   /* for messages: lines as an editor counts them */
    for (size_t start = 0; start < l->len;) {
        size_t end = start;
        while (end < l->len && !is_line_break((unsigned char)l->text[end])) end++;
        size_t a = start, b = end;
        while (a < b && is_py_space((unsigned char)l->text[a])) a++;
        while (b > a && is_py_space((unsigned char)l->text[b - 1])) b--;
        if (b > a) {
            if (check_word(l, line, l->text + a, b - a, 0) != 0) return -1;
            l->text[b] = '\0';   /* a space, a break or the final NUL */
            l->words[l->nwords++] = l->text + a;
        }
        line += end < l->len && l->text[end] == '\n';
        start = end + 1;
    }
    if (!l->nwords) return LFAIL(l, 0, "no words (every line is empty or white space)");
    return 0;
}

static int build_word_split(Loader *l, void *const *words, const int64_t *order, int64_t n, int width,
                            const int *stoi, WordSplit *s) {
    s->width = width;
    s->rows = n;
    s->X = malloc(((size_t)n * (size_t)width + 1) * sizeof *s->X);
    s->Y = malloc(((size_t)n * (size_t)width + 1) * sizeof *s->Y);
    if (!s->X || !s->Y) return LFAIL(l, 0, "out of memory for %lld words", (long long)n);
    for (int64_t r = 0; r < n; r++) {
        const unsigned char *w = words[order[r]];
        int32_t *x = s->X + r * width, *y = s->Y + r * width;
        int len = (int)strlen((const char *)w);
        for (int t = 0; t < width; t++) {
            x[t] = t >= 1 && t <= len ? stoi[w[t - 1]] : 0;     /* x[1:1+len] = word */
            y[t] = t < len ? stoi[w[t]] : t == len ? 0 : -1;    /* y[:len] = word, y[len+1:] = -1 */
        }
    }
    return 0;
}

int data_load_words(const char *path, uint64_t seed, WordDataset *ds, char *err, size_t errlen) {
    Loader l = {.path = path ? path : "(null)", .err = err, .errlen = errlen};
    if (ds) memset(ds, 0, sizeof *ds);
    if (!path || !ds) return LFAIL(&l, 0, "data_load_words: NULL path or dataset");
    Dataset vocab = {0};
    int64_t *rp = NULL;
    int rc = -1;
    if (read_whole_file(&l) != 0 || split_stripped_words(&l) != 0 || build_vocabulary(&l, 0, &vocab) != 0)
        goto done;
    ds->vocab_size = vocab.vocab_size;
    memcpy(ds->itos, vocab.itos, sizeof ds->itos);
    memcpy(ds->stoi, vocab.stoi, sizeof ds->stoi);
    ds->nwords = l.nwords;
    for (int w = 0; w < l.nwords; w++) {
        int len = (int)strlen(l.words[w]);
        ds->max_word_length = len > ds->max_word_length ? len : ds->max_word_length;
    }
    /* Python's rp[:-k] with k = 0 is rp[:0]: fewer than 10 words leave
     * makemore.py no training words (and every word in the test set). */
    int64_t n = l.nwords, test = python_split_point(0.1, l.nwords);
    test = test < 1000 ? test : 1000;
    int64_t ntrain = test ? n - test : 0;
    if (!ntrain) {
        LFAIL(&l, 0, "too few words (%d): makemore.py's split keeps int(0.1 * %d) = 0 for testing and rp[:-0], "
              "no words, for training (at least 10 words are needed)", l.nwords, l.nwords);
        goto done;
    }
    rp = malloc((size_t)n * sizeof *rp);
    if (!rp) {
        LFAIL(&l, 0, "out of memory");
        goto done;
    }
    TorchGen g;
    tg_seed(&g, seed);
    tg_randperm(&g, rp, n);
    int width = ds->max_word_length + 1;
    if (build_word_split(&l, l.words, rp, ntrain, width, ds->stoi, &ds->train) != 0 ||
        build_word_split(&l, l.words, rp + ntrain, n - ntrain, width, ds->stoi, &ds->test) != 0)
        goto done;
    rc = 0;
done:
    if (rc != 0) data_free_words(ds);
    free(rp);
    free(l.words);
    free(l.text);
    return rc;
}

/* One WordSplit's rows, padded from its width to block_size. */
static int pad_word_split(Loader *l, const WordSplit *w, int block_size, Split *s) {
    size_t cells = (size_t)w->rows * (size_t)block_size + 1;
    s->rows = w->rows;
    s->block_size = s->target_width = block_size;
    s->X = malloc(cells * sizeof *s->X);
    s->Y = malloc(cells * sizeof *s->Y);
    if (!s->X || !s->Y) return LFAIL(l, 0, "out of memory for %lld words", (long long)w->rows);
    for (int64_t r = 0; r < w->rows; r++)
        for (int t = 0; t < block_size; t++) {
            s->X[r * block_size + t] = t < w->width ? w->X[r * w->width + t] : 0;
            s->Y[r * block_size + t] = t < w->width ? w->Y[r * w->width + t] : -1;
        }
    return 0;
}

int data_load_makemore(const char *path, uint64_t seed, int block_size, int expected_vocab, Dataset *ds,
                       char *err, size_t errlen) {
    Loader l = {.path = path ? path : "(null)", .err = err, .errlen = errlen};
    WordDataset w;
    memset(ds, 0, sizeof *ds);
    if (data_load_words(path, seed, &w, err, errlen) != 0) return -1;
    int rc = -1;
    if (w.vocab_size != expected_vocab) {
        LFAIL(&l, 0, "%d distinct characters make a vocabulary of %d (with the special token 0), but the model "
              "takes %d", w.vocab_size - 1, w.vocab_size, expected_vocab);
        goto done;
    }
    if (block_size < w.max_word_length + 1) {
        LFAIL(&l, 0, "its longest word has %d characters: makemore.py's rows are %d long (the word and the "
              "token 0), but the model's are %d (hint: set the spec's block size to %d)", w.max_word_length,
              w.max_word_length + 1, block_size, w.max_word_length + 1);
        goto done;
    }
    ds->vocab_size = w.vocab_size;
    memcpy(ds->itos, w.itos, sizeof ds->itos);
    memcpy(ds->stoi, w.stoi, sizeof ds->stoi);
    ds->nwords = w.nwords;
    ds->max_word_length = w.max_word_length;
    ds->val.block_size = ds->val.target_width = block_size;
    if (pad_word_split(&l, &w.train, block_size, &ds->train) != 0 ||
        pad_word_split(&l, &w.test, block_size, &ds->test) != 0)
        goto done;
    rc = 0;
done:
    if (rc != 0) data_free(ds);
    data_free_words(&w);
    return rc;
}

void data_free_words(WordDataset *ds) {
    if (!ds) return;
    free(ds->train.X);
    free(ds->train.Y);
    free(ds->test.X);
    free(ds->test.Y);
    memset(ds, 0, sizeof *ds);
}
