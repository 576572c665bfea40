/* safetensors.c - a strict safetensors reader and a crash-safe writer.
 *
 * Memory: st_read allocates every name, metadata string and (64-byte
 * aligned) tensor buffer it returns and st_free releases them all; on error
 * nothing stays allocated. A writer copies names and metadata but only
 * points at tensor data, which must outlive st_write_atomic. */
#define _POSIX_C_SOURCE 200809L

#include "safetensors.h"
#include "files.h"
#include "message.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* The format is little-endian and tensor bytes are copied verbatim. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

/* Same cap as the reference implementation: anything larger is not a
 * header but a corrupt length field. */
#define ST_MAX_HEADER_BYTES 100000000ull
#define ST_ALIGN 64
#define METADATA_KEY "__metadata__"

/* ------------------------------------------------------------------ */
/* Shared helpers                                                      */
/* ------------------------------------------------------------------ */

static const struct {
    StDtype dtype;
    const char *name;
    size_t size;
} DTYPES[] = {
    {ST_F32, "F32", 4}, {ST_F64, "F64", 8}, {ST_I32, "I32", 4},
    {ST_I64, "I64", 8}, {ST_U64, "U64", 8},
};
#define NDTYPES (sizeof DTYPES / sizeof DTYPES[0])

static int dtype_is_valid(StDtype t) { return (unsigned)t < NDTYPES; }

size_t st_dtype_size(StDtype t) { return dtype_is_valid(t) ? DTYPES[t].size : 0; }

const char *st_dtype_name(StDtype t) { return dtype_is_valid(t) ? DTYPES[t].name : "?"; }

static int dtype_from_name(const char *name, StDtype *out) {
    for (size_t i = 0; i < NDTYPES; i++) {
        if (strcmp(DTYPES[i].name, name) == 0) {
            *out = DTYPES[i].dtype;
            return 0;
        }
    }
    return -1;
}

int64_t st_numel(const StTensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->shape[i];
    return n;
}

#define fail(err, errlen, path, ...) nj_fail((err), (errlen), (path), 0, __VA_ARGS__)

/* Byte size of a tensor, or -1 if it overflows int64 (no file can hold it). */
static int64_t tensor_bytes(StDtype dtype, int rank, const int64_t *shape) {
    int64_t bytes = (int64_t)st_dtype_size(dtype);
    for (int i = 0; i < rank; i++) {
        if (shape[i] != 0 && bytes > INT64_MAX / shape[i]) return -1;
        bytes *= shape[i];
    }
    return bytes;
}

static char *copy_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* Tensor buffers are 64-byte aligned so the trainer can use them with
 * vector loads; aligned_alloc wants a size that is a multiple of the
 * alignment, and a zero-byte tensor still gets a valid pointer. */
static void *alloc_aligned(size_t nbytes) {
    if (nbytes > SIZE_MAX - ST_ALIGN) return NULL;
    size_t rounded = (nbytes + ST_ALIGN - 1) / ST_ALIGN * ST_ALIGN;
    return aligned_alloc(ST_ALIGN, rounded ? rounded : ST_ALIGN);
}

/* ------------------------------------------------------------------ */
/* Reader                                                              */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *path;
    char *err;
    size_t errlen;
    FILE *fp;
    uint64_t file_size;
    uint64_t data_start;  /* 8 + header length */
    uint64_t data_len;    /* bytes after the header */
    uint64_t (*spans)[2]; /* data_offsets per tensor, parallel to out->tensors */
} Reader;

#define RFAIL(r, ...) fail((r)->err, (r)->errlen, (r)->path, __VA_ARGS__)

static int open_regular_file(Reader *r) {
    r->fp = in_open(r->path, r->err, r->errlen);
    if (!r->fp) return -1;
    struct stat st;
    if (fstat(fileno(r->fp), &st) != 0) return RFAIL(r, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode)) return RFAIL(r, "not a regular file");
    r->file_size = (uint64_t)st.st_size;
    return 0;
}

static uint64_t read_le64(const unsigned char b[8]) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static int read_header_length(Reader *r, uint64_t *len) {
    if (r->file_size < 8)
        return RFAIL(r, "file is only %llu bytes; a safetensors file starts with an 8-byte header length",
                     (unsigned long long)r->file_size);
    unsigned char b[8];
    if (fread(b, 1, 8, r->fp) != 8) return RFAIL(r, "cannot read the header length");
    *len = read_le64(b);
    if (*len > ST_MAX_HEADER_BYTES)
        return RFAIL(r, "header length %llu is absurd (over %llu bytes); not a safetensors file?",
                     (unsigned long long)*len, ST_MAX_HEADER_BYTES);
    if (*len > r->file_size - 8)
        return RFAIL(r, "header length %llu is larger than the file (%llu bytes after the length field); truncated?",
                      (unsigned long long)*len, (unsigned long long)(r->file_size - 8));
    r->data_start = 8 + *len;
    r->data_len = r->file_size - r->data_start;
    return 0;
}

static json_t *load_header_json(Reader *r, uint64_t len) {
    char *text = malloc(len ? len : 1);
    if (!text) {
        RFAIL(r, "out of memory reading a %llu-byte header", (unsigned long long)len);
        return NULL;
    }
    if (fread(text, 1, len, r->fp) != len) {
        free(text);
        RFAIL(r, "cannot read the %llu-byte header", (unsigned long long)len);
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root) {
        if (json_error_code(&jerr) == json_error_duplicate_key)
            RFAIL(r, "duplicate name in header: %s", jerr.text);
        else
            RFAIL(r, "malformed header JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        RFAIL(r, "header is not a JSON object");
        return NULL;
    }
    return root;
}

static int parse_metadata(Reader *r, json_t *meta, StFile *out) {
    if (!json_is_object(meta)) return RFAIL(r, "\"%s\" is not an object", METADATA_KEY);
    size_t n = json_object_size(meta);
    out->meta_keys = calloc(n ? n : 1, sizeof *out->meta_keys);
    out->meta_vals = calloc(n ? n : 1, sizeof *out->meta_vals);
    if (!out->meta_keys || !out->meta_vals) return RFAIL(r, "out of memory");
    const char *key;
    json_t *val;
    json_object_foreach(meta, key, val) {
        if (!json_is_string(val))
            return RFAIL(r, "metadata \"%s\" is not a string (safetensors metadata maps strings to strings)", key);
        out->meta_keys[out->nmeta] = copy_string(key);
        out->meta_vals[out->nmeta] = copy_string(json_string_value(val));
        /* Count first so st_free releases a half-copied pair too. */
        out->nmeta++;
        if (!out->meta_keys[out->nmeta - 1] || !out->meta_vals[out->nmeta - 1]) return RFAIL(r, "out of memory");
    }
    return 0;
}

static int parse_dtype_field(Reader *r, const char *name, json_t *entry, StTensor *t) {
    json_t *dtype = json_object_get(entry, "dtype");
    if (!dtype) return RFAIL(r, "tensor '%s' has no \"dtype\"", name);
    if (!json_is_string(dtype)) return RFAIL(r, "tensor '%s': \"dtype\" is not a string", name);
    if (dtype_from_name(json_string_value(dtype), &t->dtype) != 0)
        return RFAIL(r, "tensor '%s': unknown dtype \"%s\" (supported: F32 F64 I32 I64 U64)", name,
                     json_string_value(dtype));
    return 0;
}

static int parse_shape_field(Reader *r, const char *name, json_t *entry, StTensor *t) {
    json_t *shape = json_object_get(entry, "shape");
    if (!shape) return RFAIL(r, "tensor '%s' has no \"shape\"", name);
    if (!json_is_array(shape)) return RFAIL(r, "tensor '%s': \"shape\" is not an array", name);
    size_t rank = json_array_size(shape);
    if (rank > ST_MAX_RANK) return RFAIL(r, "tensor '%s': rank %zu exceeds the supported %d", name, rank, ST_MAX_RANK);
    t->rank = (int)rank;
    for (size_t i = 0; i < rank; i++) {
        json_t *dim = json_array_get(shape, i);
        if (!json_is_integer(dim) || json_integer_value(dim) < 0)
            return RFAIL(r, "tensor '%s': shape entry %zu is not a non-negative integer", name, i);
        t->shape[i] = json_integer_value(dim);
    }
    return 0;
}

static int parse_offsets_field(Reader *r, const char *name, json_t *entry, uint64_t span[2]) {
    json_t *offsets = json_object_get(entry, "data_offsets");
    if (!offsets) return RFAIL(r, "tensor '%s' has no \"data_offsets\"", name);
    if (!json_is_array(offsets) || json_array_size(offsets) != 2)
        return RFAIL(r, "tensor '%s': \"data_offsets\" is not an array [begin, end]", name);
    for (int i = 0; i < 2; i++) {
        json_t *v = json_array_get(offsets, (size_t)i);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return RFAIL(r, "tensor '%s': \"data_offsets\" entry %d is not a non-negative integer", name, i);
        span[i] = (uint64_t)json_integer_value(v);
    }
    if (span[0] > span[1])
        return RFAIL(r, "tensor '%s': data_offsets [%llu, %llu] end before they begin", name,
                     (unsigned long long)span[0], (unsigned long long)span[1]);
    return 0;
}

/* The byte range must hold exactly shape * dtype bytes and lie inside the
 * data block. */
static int check_span(Reader *r, const char *name, const StTensor *t, const uint64_t span[2]) {
    int64_t need = tensor_bytes(t->dtype, t->rank, t->shape);
    uint64_t have = span[1] - span[0];
    if (need < 0) return RFAIL(r, "tensor '%s': shape is too large to exist", name);
    if ((uint64_t)need != have)
        return RFAIL(r, "tensor '%s': data_offsets [%llu, %llu] span %llu bytes but its shape and dtype %s need %lld",
                     name, (unsigned long long)span[0], (unsigned long long)span[1], (unsigned long long)have,
                     st_dtype_name(t->dtype), (long long)need);
    if (span[1] > r->data_len)
        return RFAIL(r, "tensor '%s': data_offsets [%llu, %llu] run past the end of the %llu-byte data block",
                     name, (unsigned long long)span[0], (unsigned long long)span[1],
                     (unsigned long long)r->data_len);
    return 0;
}

static int parse_tensor_entry(Reader *r, const char *name, json_t *entry, StTensor *t, uint64_t span[2]) {
    if (!json_is_object(entry)) return RFAIL(r, "tensor '%s': entry is not an object", name);
    if (parse_dtype_field(r, name, entry, t) || parse_shape_field(r, name, entry, t) ||
        parse_offsets_field(r, name, entry, span) || check_span(r, name, t, span))
        return -1;
    t->nbytes = (size_t)(span[1] - span[0]);
    t->name = copy_string(name);
    if (!t->name) return RFAIL(r, "out of memory");
    return 0;
}

static int parse_header(Reader *r, json_t *root, StFile *out) {
    size_t n = json_object_size(root);
    out->tensors = calloc(n ? n : 1, sizeof *out->tensors);
    r->spans = calloc(n ? n : 1, sizeof *r->spans);
    if (!out->tensors || !r->spans) return RFAIL(r, "out of memory");
    const char *key;
    json_t *val;
    /* jansson (>= 2.8) iterates objects in file order, so tensors keep it. */
    json_object_foreach(root, key, val) {
        if (strcmp(key, METADATA_KEY) == 0) {
            if (parse_metadata(r, val, out) != 0) return -1;
            continue;
        }
        StTensor *t = &out->tensors[out->count];
        out->count++; /* counted before parsing so st_free sees a partial entry */
        if (parse_tensor_entry(r, key, val, t, r->spans[out->count - 1]) != 0) return -1;
    }
    return 0;
}

typedef struct {
    uint64_t begin, end;
    int index;
} Span;

static int compare_spans(const void *a, const void *b) {
    const Span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Like the reference implementation, the tensors must tile the data block
 * exactly: an overlap means two tensors share bytes, and a hole or a tail
 * means the header and the data disagree about what the file holds. */
static int check_layout(Reader *r, const StFile *f) {
    Span *sorted = malloc((f->count ? (size_t)f->count : 1) * sizeof *sorted);
    if (!sorted) return RFAIL(r, "out of memory");
    for (int i = 0; i < f->count; i++)
        sorted[i] = (Span){r->spans[i][0], r->spans[i][1], i};
    qsort(sorted, (size_t)f->count, sizeof *sorted, compare_spans);
    int rc = 0;
    uint64_t covered = 0;
    for (int i = 0; i < f->count && rc == 0; i++) {
        if (sorted[i].begin < covered)
            rc = RFAIL(r, "tensors '%s' and '%s' overlap (data_offsets [%llu, %llu] and [%llu, %llu])",
                       f->tensors[sorted[i - 1].index].name, f->tensors[sorted[i].index].name,
                       (unsigned long long)sorted[i - 1].begin, (unsigned long long)sorted[i - 1].end,
                       (unsigned long long)sorted[i].begin, (unsigned long long)sorted[i].end);
        else if (sorted[i].begin > covered)
            rc = RFAIL(r, "data bytes [%llu, %llu) belong to no tensor", (unsigned long long)covered,
                       (unsigned long long)sorted[i].begin);
        else
            covered = sorted[i].end;
    }
    if (rc == 0 && covered != r->data_len)
        rc = RFAIL(r, "data block has %llu bytes but the tensors cover only %llu", (unsigned long long)r->data_len,
                   (unsigned long long)covered);
    free(sorted);
    return rc;
}

static int read_tensor_data(Reader *r, StTensor *t, const uint64_t span[2]) {
    t->data = alloc_aligned(t->nbytes);
    if (!t->data) return RFAIL(r, "out of memory for tensor '%s' (%zu bytes)", t->name, t->nbytes);
    if (t->nbytes == 0) return 0;
    if (fseeko(r->fp, (off_t)(r->data_start + span[0]), SEEK_SET) != 0)
        return RFAIL(r, "cannot seek to tensor '%s': %s", t->name, strerror(errno));
    if (fread(t->data, 1, t->nbytes, r->fp) != t->nbytes)
        return RFAIL(r, "cannot read tensor '%s': %s", t->name,
                     ferror(r->fp) ? strerror(errno) : "file ended early (changed while reading?)");
    return 0;
}

int st_read(const char *path, StFile *out, char *err, size_t errlen) {
    if (!path || !out) return fail(err, errlen, path, "st_read: NULL path or output");
    memset(out, 0, sizeof *out);
    Reader r = {.path = path, .err = err, .errlen = errlen};
    json_t *root = NULL;
    uint64_t header_len = 0;
    int rc = -1;
    if (open_regular_file(&r) != 0 || read_header_length(&r, &header_len) != 0) goto done;
    if (!(root = load_header_json(&r, header_len))) goto done;
    if (parse_header(&r, root, out) != 0 || check_layout(&r, out) != 0) goto done;
    for (int i = 0; i < out->count; i++)
        if (read_tensor_data(&r, &out->tensors[i], r.spans[i]) != 0) goto done;
    rc = 0;
done:
    if (rc != 0) st_free(out);
    json_decref(root);
    free(r.spans);
    if (r.fp) fclose(r.fp);
    return rc;
}

const StTensor *st_find(const StFile *f, const char *name) {
    for (int i = 0; i < f->count; i++)
        if (f->tensors[i].name && strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *st_meta(const StFile *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (f->meta_keys[i] && strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

void st_free(StFile *f) {
    for (int i = 0; i < f->count; i++) {
        free(f->tensors[i].name);
        free(f->tensors[i].data);
    }
    for (int i = 0; i < f->nmeta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->tensors);
    free(f->meta_keys);
    free(f->meta_vals);
    memset(f, 0, sizeof *f);
}

/* ------------------------------------------------------------------ */
/* Writer                                                              */
/* ------------------------------------------------------------------ */

typedef struct {
    char *name;
    StDtype dtype;
    int rank;
    int64_t shape[ST_MAX_RANK];
    const void *data; /* borrowed */
    size_t nbytes;
} PendingTensor;

typedef struct {
    char *key, *value;
} MetaPair;

struct StWriter {
    PendingTensor *tensors;
    int count, cap;
    MetaPair *meta;
    int nmeta, meta_cap;
    /* st_add cannot return an error, so the first problem is kept here
     * and reported by st_write_atomic, which then writes nothing. */
    char problem[256];
};

StWriter *st_writer_new(void) { return calloc(1, sizeof(StWriter)); }

void st_writer_free(StWriter *w) {
    if (!w) return;
    for (int i = 0; i < w->count; i++) free(w->tensors[i].name);
    for (int i = 0; i < w->nmeta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->tensors);
    free(w->meta);
    free(w);
}

static void writer_problem(StWriter *w, const char *fmt, ...) {
    if (w->problem[0]) return; /* the first problem is the informative one */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->problem, sizeof w->problem, fmt, ap);
    va_end(ap);
}

/* Grows *items (of *cap elements of size elem) so one more fits. */
static int reserve_one(void **items, int *cap, int count, size_t elem) {
    if (count < *cap) return 0;
    int new_cap = *cap ? *cap * 2 : 8;
    void *p = realloc(*items, (size_t)new_cap * elem);
    if (!p) return -1;
    *items = p;
    *cap = new_cap;
    return 0;
}

/* jansson only stores valid UTF-8; checking in st_add reports a bad name
 * as such instead of as a failure to build the header later. */
static int is_valid_utf8(const char *s) {
    json_t *probe = json_string(s);
    int ok = probe != NULL;
    json_decref(probe);
    return ok;
}

static int writer_has_tensor(const StWriter *w, const char *name) {
    for (int i = 0; i < w->count; i++)
        if (strcmp(w->tensors[i].name, name) == 0) return 1;
    return 0;
}

static int check_new_tensor(StWriter *w, const char *name, StDtype dtype, int rank, const int64_t *shape,
                            const void *data) {
    if (!name || !*name) return writer_problem(w, "st_add: empty tensor name"), -1;
    if (strcmp(name, METADATA_KEY) == 0) return writer_problem(w, "st_add: '%s' is reserved", name), -1;
    if (!is_valid_utf8(name)) return writer_problem(w, "st_add: tensor name is not valid UTF-8"), -1;
    if (writer_has_tensor(w, name)) return writer_problem(w, "st_add: duplicate tensor name '%s'", name), -1;
    if (!dtype_is_valid(dtype)) return writer_problem(w, "st_add: tensor '%s' has an invalid dtype", name), -1;
    if (rank < 0 || rank > ST_MAX_RANK)
        return writer_problem(w, "st_add: tensor '%s' has rank %d (0..%d allowed)", name, rank, ST_MAX_RANK), -1;
    for (int i = 0; i < rank; i++)
        if (shape[i] < 0) return writer_problem(w, "st_add: tensor '%s' has a negative dimension", name), -1;
    int64_t bytes = tensor_bytes(dtype, rank, shape);
    if (bytes < 0 || (uint64_t)bytes > SIZE_MAX)
        return writer_problem(w, "st_add: tensor '%s' is too large", name), -1;
    if (bytes > 0 && !data) return writer_problem(w, "st_add: tensor '%s' has no data", name), -1;
    return 0;
}

void st_add(StWriter *w, const char *name, StDtype dtype, int rank, const int64_t *shape, const void *data) {
    if (!w || check_new_tensor(w, name, dtype, rank, shape, data) != 0) return;
    if (reserve_one((void **)&w->tensors, &w->cap, w->count, sizeof *w->tensors) != 0) {
        writer_problem(w, "st_add: out of memory");
        return;
    }
    PendingTensor *t = &w->tensors[w->count];
    memset(t, 0, sizeof *t);
    t->name = copy_string(name);
    if (!t->name) {
        writer_problem(w, "st_add: out of memory");
        return;
    }
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->shape[i] = shape[i];
    t->data = data;
    t->nbytes = (size_t)tensor_bytes(dtype, rank, shape);
    w->count++;
}

void st_add_meta(StWriter *w, const char *key, const char *value) {
    if (!w) return;
    if (!key || !value) {
        writer_problem(w, "st_add_meta: NULL key or value");
        return;
    }
    if (!is_valid_utf8(key) || !is_valid_utf8(value)) {
        writer_problem(w, "st_add_meta: metadata '%s' is not valid UTF-8", key);
        return;
    }
    for (int i = 0; i < w->nmeta; i++)
        if (strcmp(w->meta[i].key, key) == 0) {
            writer_problem(w, "st_add_meta: duplicate metadata key '%s'", key);
            return;
        }
    if (reserve_one((void **)&w->meta, &w->meta_cap, w->nmeta, sizeof *w->meta) != 0) {
        writer_problem(w, "st_add_meta: out of memory");
        return;
    }
    MetaPair *m = &w->meta[w->nmeta];
    m->key = copy_string(key);
    m->value = copy_string(value);
    if (!m->key || !m->value) {
        free(m->key);
        free(m->value);
        writer_problem(w, "st_add_meta: out of memory");
        return;
    }
    w->nmeta++;
}

/* json_object_set_new / json_array_append_new steal the reference even on
 * failure, so building can simply OR their results together. */
static json_t *tensor_entry_json(const PendingTensor *t, uint64_t begin) {
    json_t *entry = json_object(), *shape = json_array(), *offsets = json_array();
    int bad = !entry || !shape || !offsets;
    for (int i = 0; i < t->rank && !bad; i++) bad |= json_array_append_new(shape, json_integer(t->shape[i]));
    if (!bad) {
        bad |= json_array_append_new(offsets, json_integer((json_int_t)begin));
        bad |= json_array_append_new(offsets, json_integer((json_int_t)(begin + t->nbytes)));
        bad |= json_object_set_new(entry, "dtype", json_string(st_dtype_name(t->dtype)));
        bad |= json_object_set_new(entry, "shape", shape);
        bad |= json_object_set_new(entry, "data_offsets", offsets);
        shape = offsets = NULL; /* now owned by entry */
    }
    json_decref(shape);
    json_decref(offsets);
    if (bad) {
        json_decref(entry);
        return NULL;
    }
    return entry;
}

static json_t *header_json(const StWriter *w) {
    json_t *root = json_object();
    if (!root) return NULL;
    int bad = 0;
    if (w->nmeta > 0) {
        json_t *meta = json_object();
        for (int i = 0; i < w->nmeta && meta; i++)
            bad |= json_object_set_new(meta, w->meta[i].key, json_string(w->meta[i].value));
        bad |= json_object_set_new(root, METADATA_KEY, meta);
    }
    uint64_t offset = 0;
    for (int i = 0; i < w->count && !bad; i++) {
        bad |= json_object_set_new(root, w->tensors[i].name, tensor_entry_json(&w->tensors[i], offset));
        offset += w->tensors[i].nbytes;
    }
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}

/* Serializes the header and pads it with spaces so the data block starts
 * at a multiple of 8 bytes, as the reference writer does. */
static char *header_text(const StWriter *w, size_t *len) {
    json_t *root = header_json(w);
    if (!root) return NULL;
    char *compact = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!compact) return NULL;
    size_t n = strlen(compact);
    size_t padded = (n + 7) / 8 * 8;
    char *text = malloc(padded);
    if (text) {
        memcpy(text, compact, n);
        memset(text + n, ' ', padded - n);
        *len = padded;
    }
    free(compact);
    return text;
}

static int write_all(FILE *fp, const void *data, size_t n) {
    return n == 0 || fwrite(data, 1, n, fp) == n ? 0 : -1;
}

static int write_contents(FILE *fp, const StWriter *w, const char *header, size_t header_len) {
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; i++) len_bytes[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
    if (write_all(fp, len_bytes, 8) || write_all(fp, header, header_len)) return -1;
    for (int i = 0; i < w->count; i++)
        if (write_all(fp, w->tensors[i].data, w->tensors[i].nbytes)) return -1;
    return 0;
}

int st_write_atomic(StWriter *w, const char *path, char *err, size_t errlen) {
    if (!w) return fail(err, errlen, path, "no writer (out of memory?)");
    if (w->problem[0]) return fail(err, errlen, path, "not written: %s", w->problem);
    size_t header_len = 0;
    char *header = header_text(w, &header_len);
    if (!header) return fail(err, errlen, path, "out of memory building the header");

    OutFile f;
    if (out_open(&f, path, err, errlen) != 0) {
        free(header);
        return -1;
    }
    errno = 0;
    (void)write_contents(f.fp, w, header, header_len);   /* out_commit sees any error in f.fp */
    free(header);
    return out_commit(&f, err, errlen);
}
