/* test_safetensors.c - round trips, every refusal of a corrupt file, and
 * the all-or-nothing guarantee of st_write_atomic.
 * Memory: every buffer a case allocates is freed before it returns, so
 * LeakSanitizer checks the library's error paths too. */
#define _POSIX_C_SOURCE 200809L

#include "check.h"
#include "safetensors.h"

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* File helpers                                                        */
/* ------------------------------------------------------------------ */

typedef struct {
    unsigned char *bytes;
    size_t len;
} Blob;

static Blob slurp(const char *path) {
    Blob b = {NULL, 0};
    FILE *fp = fopen(path, "rb");
    if (!fp) return b;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    b.bytes = malloc(n > 0 ? (size_t)n : 1);
    if (b.bytes && fread(b.bytes, 1, (size_t)n, fp) == (size_t)n) b.len = (size_t)n;
    fclose(fp);
    return b;
}

static void spit(const char *path, const void *bytes, size_t len) {
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    if (!fp) return;
    CHECK(fwrite(bytes, 1, len, fp) == len);
    CHECK(fclose(fp) == 0);
}

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

static int same_bytes(Blob a, Blob b) { return a.bytes && b.bytes && a.len == b.len && !memcmp(a.bytes, b.bytes, a.len); }

/* The temp file st_write_atomic would have used for path. */
static const char *temp_name(char *buf, size_t n, const char *path) {
    snprintf(buf, n, "%s.tmp.%ld", path, (long)getpid());
    return buf;
}

static uint64_t le64(const unsigned char *b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static void put_le64(unsigned char *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
}

/* Writes length + header + data, the header taken verbatim. */
static void write_raw(const char *path, const char *header, const void *data, size_t datalen) {
    size_t hl = strlen(header);
    unsigned char *buf = malloc(8 + hl + datalen);
    put_le64(buf, hl);
    memcpy(buf + 8, header, hl);
    if (datalen) memcpy(buf + 8 + hl, data, datalen);
    spit(path, buf, 8 + hl + datalen);
    free(buf);
}

/* ------------------------------------------------------------------ */
/* Round trip                                                          */
/* ------------------------------------------------------------------ */

static void roundtrip_every_dtype(void) {
    char path[512];
    tmp_path(path, sizeof path, "roundtrip.safetensors");
    const float f32[6] = {1.5f, -2.25f, 0.0f, 3.0e38f, -1e-30f, 42.0f};
    const double f64[3] = {3.141592653589793, -0.0, 1e-300};
    const int32_t i32[4] = {INT32_MIN, -1, 0, INT32_MAX};
    const int64_t i64[2] = {INT64_MIN, 1234567890123456789};
    const uint64_t u64[2] = {UINT64_MAX, 0x0123456789abcdefull};
    const float scalar = 7.0f;
    const int64_t s23[2] = {2, 3}, s3[1] = {3}, s22[2] = {2, 2}, s2[1] = {2}, s04[2] = {0, 4};

    StWriter *w = st_writer_new();
    st_add_meta(w, "format", "ninjac-test");
    st_add_meta(w, "quoted", "a \"b\" \\ c h\xc3\xa9llo");
    st_add(w, "weights.f32", ST_F32, 2, s23, f32);
    st_add(w, "f64", ST_F64, 1, s3, f64);
    st_add(w, "i32", ST_I32, 2, s22, i32);
    st_add(w, "i64", ST_I64, 1, s2, i64);
    st_add(w, "u64", ST_U64, 1, s2, u64);
    st_add(w, "scalar", ST_F32, 0, NULL, &scalar);
    st_add(w, "empty", ST_F32, 2, s04, NULL);
    char err[512] = "";
    CHECK(st_write_atomic(w, path, err, sizeof err) == 0);
    if (err[0]) fprintf(stderr, "write: %s\n", err);
    st_writer_free(w);

    StFile f;
    CHECK(st_read(path, &f, err, sizeof err) == 0);
    if (err[0]) fprintf(stderr, "read: %s\n", err);
    static const char *const names[7] = {"weights.f32", "f64", "i32", "i64", "u64", "scalar", "empty"};
    static const StDtype dtypes[7] = {ST_F32, ST_F64, ST_I32, ST_I64, ST_U64, ST_F32, ST_F32};
    const void *datas[7] = {f32, f64, i32, i64, u64, &scalar, NULL};
    static const size_t sizes[7] = {24, 24, 16, 16, 16, 4, 0};
    static const int ranks[7] = {2, 1, 2, 1, 1, 0, 2};
    CHECK(f.count == 7);
    for (int i = 0; i < f.count && i < 7; i++) {
        const StTensor *t = &f.tensors[i];
        CHECK(strcmp(t->name, names[i]) == 0); /* order added is order read */
        CHECK(t->dtype == dtypes[i]);
        CHECK(t->rank == ranks[i]);
        CHECK(t->nbytes == sizes[i]);
        CHECK((int64_t)t->nbytes == st_numel(t) * (int64_t)st_dtype_size(t->dtype));
        CHECK(t->data != NULL && (uintptr_t)t->data % 64 == 0);
        if (datas[i]) CHECK(memcmp(t->data, datas[i], sizes[i]) == 0);
        CHECK(st_find(&f, names[i]) == t);
    }
    CHECK(f.count == 7 && f.tensors[0].shape[0] == 2 && f.tensors[0].shape[1] == 3);
    CHECK(f.count == 7 && f.tensors[6].shape[0] == 0 && f.tensors[6].shape[1] == 4);
    CHECK(f.count == 7 && st_numel(&f.tensors[5]) == 1);
    CHECK(st_find(&f, "missing") == NULL);
    CHECK(st_meta(&f, "format") && strcmp(st_meta(&f, "format"), "ninjac-test") == 0);
    CHECK(st_meta(&f, "quoted") && strcmp(st_meta(&f, "quoted"), "a \"b\" \\ c h\xc3\xa9llo") == 0);
    CHECK(st_meta(&f, "absent") == NULL);
    CHECK(f.nmeta == 2);
    st_free(&f);
    CHECK(f.count == 0 && f.tensors == NULL);
    st_free(&f); /* freeing twice is harmless */

    /* Layout as other readers expect it: header padded with spaces to a
     * multiple of 8, metadata first, compact JSON, data right after. */
    Blob b = slurp(path);
    CHECK(b.len >= 8);
    if (b.len >= 8) {
        uint64_t hl = le64(b.bytes);
        CHECK(hl % 8 == 0);
        CHECK(b.len == 8 + hl + 24 + 24 + 16 + 16 + 16 + 4);
        CHECK(memcmp(b.bytes + 8, "{\"__metadata__\":{\"format\":\"ninjac-test\"", 39) == 0);
        CHECK(b.bytes[8 + hl - 1] == ' ' || b.bytes[8 + hl - 1] == '}');
        CHECK(memcmp(b.bytes + 8 + hl, f32, 24) == 0);
    }
    free(b.bytes);
    char tmp[600];
    CHECK(!file_exists(temp_name(tmp, sizeof tmp, path)));
}

/* The exact bytes of a one-tensor file, as written by hand from the format
 * description: a reader that follows the format reads this. */
static void writes_exact_bytes(void) {
    char path[512];
    tmp_path(path, sizeof path, "exact.safetensors");
    const float one = 1.0f;
    const int64_t shape[1] = {1};
    StWriter *w = st_writer_new();
    st_add(w, "x", ST_F32, 1, shape, &one);
    char err[512] = "";
    CHECK(st_write_atomic(w, path, err, sizeof err) == 0);
    st_writer_free(w);

    const char *json = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"; /* 54 bytes */
    unsigned char want[8 + 56 + 4];
    put_le64(want, 56);
    memcpy(want + 8, json, 54);
    memcpy(want + 8 + 54, "  ", 2);
    memcpy(want + 8 + 56, "\x00\x00\x80\x3f", 4); /* 1.0f little-endian */
    Blob got = slurp(path);
    CHECK(got.len == sizeof want && memcmp(got.bytes, want, sizeof want) == 0);
    free(got.bytes);
}

/* Writes a file that tests/runtime/check_safetensors.py reads with
 * Python's json and struct modules alone. */
static void emit_for_python(void) {
    char path[512];
    tmp_path(path, sizeof path, "for_python.safetensors");
    const float f32[3] = {0.5f, -1.0f, 2.0f};
    const double f64[2] = {0.1, -3.5};
    const int32_t i32[2] = {-7, 7};
    const int64_t i64[1] = {-9000000000};
    const uint64_t u64[1] = {18000000000000000000ull};
    const int64_t s3[1] = {3}, s12[2] = {1, 2}, s2[1] = {2}, s1[1] = {1};
    StWriter *w = st_writer_new();
    st_add_meta(w, "step", "12");
    st_add(w, "f32", ST_F32, 1, s3, f32);
    st_add(w, "f64", ST_F64, 2, s12, f64);
    st_add(w, "i32", ST_I32, 1, s2, i32);
    st_add(w, "i64", ST_I64, 1, s1, i64);
    st_add(w, "u64", ST_U64, 1, s1, u64);
    char err[512] = "";
    CHECK(st_write_atomic(w, path, err, sizeof err) == 0);
    st_writer_free(w);
}

/* ------------------------------------------------------------------ */
/* Corrupt files                                                       */
/* ------------------------------------------------------------------ */

static const float GOOD_A[6] = {1, 2, 3, 4, 5, 6};
static const int64_t GOOD_B[4] = {10, 20, 30, 40};

/* header: {"__metadata__":{"note":"good"},
 *          "a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},
 *          "b":{"dtype":"I64","shape":[4],"data_offsets":[24,56]}} */
static Blob good_file(void) {
    char path[512];
    tmp_path(path, sizeof path, "good.safetensors");
    const int64_t sa[2] = {2, 3}, sb[1] = {4};
    StWriter *w = st_writer_new();
    st_add_meta(w, "note", "good");
    st_add(w, "a", ST_F32, 2, sa, GOOD_A);
    st_add(w, "b", ST_I64, 1, sb, GOOD_B);
    char err[512] = "";
    CHECK(st_write_atomic(w, path, err, sizeof err) == 0);
    st_writer_free(w);
    return slurp(path);
}

/* st_read must refuse path with "PATH: ..." containing fragment, and leave
 * the StFile empty. */
static void expect_refused(const char *path, const char *fragment) {
    StFile f;
    char err[512] = "";
    memset(&f, 0xab, sizeof f); /* st_read must clear it even on error */
    CHECK(st_read(path, &f, err, sizeof err) == -1);
    CHECK(f.count == 0 && f.tensors == NULL && f.nmeta == 0 && f.meta_keys == NULL);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s: ", path);
    CHECK(strncmp(err, prefix, strlen(prefix)) == 0);
    CHECK_ERROR(err, fragment);
    printf("refused as expected: %s\n", err);
}

/* The good header with `from` replaced by `to`, written with the good data
 * block (plus extra_data zero bytes) under a per-case name. */
static void refuse_edited_header(const char *name, const char *from, const char *to, size_t extra_data,
                                 const char *fragment) {
    Blob good = good_file();
    CHECK(good.len >= 8);
    if (good.len < 8) {
        free(good.bytes);
        return;
    }
    uint64_t hl = le64(good.bytes);
    char *header = calloc(1, hl + strlen(to) + 1);
    memcpy(header, good.bytes + 8, hl);
    while (hl && header[hl - 1] == ' ') header[--hl] = '\0';
    char *at = strstr(header, from);
    if (!at) fprintf(stderr, "%s: \"%s\" not in the good header %s\n", name, from, header);
    CHECK(at != NULL);
    if (at) {
        size_t tail = strlen(at + strlen(from));
        memmove(at + strlen(to), at + strlen(from), tail + 1);
        memcpy(at, to, strlen(to));
    }
    size_t datalen = 56 + extra_data;
    unsigned char *data = calloc(1, datalen);
    memcpy(data, good.bytes + 8 + le64(good.bytes), 56);
    char path[512];
    tmp_path(path, sizeof path, name);
    write_raw(path, header, data, datalen);
    expect_refused(path, fragment);
    free(data);
    free(header);
    free(good.bytes);
}

/* The good file cut to its first n bytes, or with its length field patched. */
static void refuse_raw(const char *name, size_t keep, int patch_length, uint64_t length, const char *fragment) {
    Blob good = good_file();
    if (patch_length) put_le64(good.bytes, length);
    char path[512];
    tmp_path(path, sizeof path, name);
    spit(path, good.bytes, keep < good.len ? keep : good.len);
    expect_refused(path, fragment);
    free(good.bytes);
}

static void refuses_missing_and_short_files(void) {
    char path[512];
    expect_refused(tmp_path(path, sizeof path, "does-not-exist.safetensors"), "cannot open");
    expect_refused(TEST_TMPDIR, "not a regular file");
    spit(tmp_path(path, sizeof path, "empty.safetensors"), "", 0);
    expect_refused(path, "only 0 bytes");
    refuse_raw("trunc5.safetensors", 5, 0, 0, "only 5 bytes");
}

static void refuses_bad_lengths(void) {
    refuse_raw("trunc_header.safetensors", 8 + 10, 0, 0, "larger than the file");
    Blob good = good_file();
    size_t len = good.len;
    free(good.bytes);
    /* The data block loses 3 bytes: tensor b no longer fits. */
    refuse_raw("trunc_data.safetensors", len - 3, 0, 0, "run past the end");
    refuse_raw("len_too_big.safetensors", (size_t)-1, 1, len - 8 + 1, "larger than the file");
    refuse_raw("len_absurd.safetensors", (size_t)-1, 1, 1ull << 40, "absurd");
    refuse_raw("len_zero.safetensors", (size_t)-1, 1, 0, "malformed header JSON");
}

static void refuses_bad_json(void) {
    refuse_edited_header("bad_json.safetensors", "\"a\":", "\"a\"", 0, "malformed header JSON");
    refuse_edited_header("unbalanced.safetensors", "{\"__metadata__\"", "[{\"__metadata__\"", 0,
                         "malformed header JSON");
    char path[512];
    const unsigned char data[56] = {0};
    write_raw(tmp_path(path, sizeof path, "array.safetensors"), "[1,2]", data, 56);
    expect_refused(path, "header is not a JSON object");
    refuse_edited_header("dup_name.safetensors", "\"b\":", "\"a\":", 0, "duplicate");
    refuse_edited_header("meta_not_string.safetensors", "\"good\"", "1", 0, "metadata \"note\" is not a string");
    refuse_edited_header("meta_not_object.safetensors", "{\"note\":\"good\"}", "[]", 0, "is not an object");
    refuse_edited_header("entry_not_object.safetensors",
                         "{\"dtype\":\"I64\",\"shape\":[4],\"data_offsets\":[24,56]}", "7", 0,
                         "tensor 'b': entry is not an object");
}

static void refuses_bad_entries(void) {
    refuse_edited_header("no_dtype.safetensors", "\"dtype\":\"F32\",", "", 0, "tensor 'a' has no \"dtype\"");
    refuse_edited_header("no_shape.safetensors", "\"shape\":[2,3],", "", 0, "tensor 'a' has no \"shape\"");
    refuse_edited_header("no_offsets.safetensors", ",\"data_offsets\":[0,24]", "", 0,
                         "tensor 'a' has no \"data_offsets\"");
    refuse_edited_header("unknown_dtype.safetensors", "\"F32\"", "\"F16\"", 0, "unknown dtype \"F16\"");
    refuse_edited_header("dtype_number.safetensors", "\"F32\"", "4", 0, "\"dtype\" is not a string");
    refuse_edited_header("neg_shape.safetensors", "[2,3]", "[-2,3]", 0, "shape entry 0 is not a non-negative integer");
    refuse_edited_header("real_shape.safetensors", "[2,3]", "[2,3.0]", 0, "shape entry 1 is not a non-negative integer");
    refuse_edited_header("string_shape.safetensors", "[2,3]", "[2,\"3\"]", 0, "shape entry 1");
    refuse_edited_header("shape_not_array.safetensors", "[2,3]", "6", 0, "\"shape\" is not an array");
    refuse_edited_header("rank9.safetensors", "[2,3]", "[1,1,1,1,1,1,1,2,3]", 0, "rank 9 exceeds");
    refuse_edited_header("offsets3.safetensors", "[0,24]", "[0,24,48]", 0, "not an array [begin, end]");
    refuse_edited_header("offsets_neg.safetensors", "[0,24]", "[-24,0]", 0, "entry 0 is not a non-negative integer");
    refuse_edited_header("offsets_reversed.safetensors", "[0,24]", "[24,0]", 0, "end before they begin");
}

static void refuses_bad_offsets(void) {
    refuse_edited_header("wrong_size.safetensors", "[2,3]", "[2,4]", 0, "span 24 bytes but its shape and dtype F32 need 32");
    refuse_edited_header("huge_shape.safetensors", "[2,3]", "[4611686018427387904,4611686018427387904]", 0,
                         "too large");
    refuse_edited_header("past_end.safetensors", "[24,56]", "[48,80]", 0, "tensor 'b': data_offsets [48, 80] run past the end");
    refuse_edited_header("overlap.safetensors", "[24,56]", "[16,48]", 0, "tensors 'a' and 'b' overlap");
    refuse_edited_header("gap.safetensors", "[24,56]", "[32,64]", 8, "data bytes [24, 32) belong to no tensor");
    refuse_edited_header("tail.safetensors", "[24,56]", "[24,56]", 8, "data block has 64 bytes but the tensors cover only 56");
}

/* ------------------------------------------------------------------ */
/* Atomic writes                                                       */
/* ------------------------------------------------------------------ */

static void write_small(const char *path, float value) {
    const int64_t shape[1] = {1};
    StWriter *w = st_writer_new();
    st_add(w, "v", ST_F32, 1, shape, &value);
    char err[512] = "";
    CHECK(st_write_atomic(w, path, err, sizeof err) == 0);
    st_writer_free(w);
}

/* A write that fails with EFBIG part way (RLIMIT_FSIZE) must leave the old
 * file byte-identical and no temp file behind. */
static void failed_write_keeps_old_file(void) {
    char path[512], tmp[600];
    tmp_path(path, sizeof path, "atomic_fsize.safetensors");
    write_small(path, 1.0f);
    Blob before = slurp(path);

    enum { N = 1 << 16 };
    float *big = calloc(N, sizeof *big);
    const int64_t shape[1] = {N};
    StWriter *w = st_writer_new();
    st_add(w, "big", ST_F32, 1, shape, big);

    struct rlimit old_limit, small;
    CHECK(getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    small = old_limit;
    small.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN); /* else the kernel kills us */
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    char err[512] = "";
    int rc = st_write_atomic(w, path, err, sizeof err);
    CHECK(setrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    signal(SIGXFSZ, old_handler);

    CHECK(rc == -1);
    CHECK_ERROR(err, path);
    CHECK_ERROR(err, strerror(EFBIG));
    CHECK_ERROR(err, "unchanged");
    printf("refused as expected: %s\n", err);
    Blob after = slurp(path);
    CHECK(same_bytes(before, after));
    CHECK(!file_exists(temp_name(tmp, sizeof tmp, path)));
    free(before.bytes);
    free(after.bytes);
    free(big);
    st_writer_free(w);
}

/* A directory as the target is refused before anything is written (it
 * used to fail only at the rename): no temp file, the directory alone. */
static void failed_rename_cleans_up(void) {
    char path[512], tmp[600];
    tmp_path(path, sizeof path, "atomic_dir_target");
    CHECK(mkdir(path, 0777) == 0 || errno == EEXIST);
    const float v = 2.0f;
    const int64_t shape[1] = {1};
    StWriter *w = st_writer_new();
    st_add(w, "v", ST_F32, 1, shape, &v);
    char err[512] = "";
    CHECK(st_write_atomic(w, path, err, sizeof err) == -1);
    CHECK_ERROR(err, "is a directory");
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(!file_exists(temp_name(tmp, sizeof tmp, path)));

    /* A directory that does not exist: nothing can be created. */
    tmp_path(path, sizeof path, "no/such/dir/x.safetensors");
    CHECK(st_write_atomic(w, path, err, sizeof err) == -1);
    CHECK_ERROR(err, "cannot create");
    CHECK_ERROR(err, strerror(ENOENT));
    st_writer_free(w);
}

static void successful_write_replaces_old_file(void) {
    char path[512], err[512] = "";
    tmp_path(path, sizeof path, "atomic_replace.safetensors");
    write_small(path, 1.0f);
    write_small(path, 3.0f);
    StFile f;
    CHECK(st_read(path, &f, err, sizeof err) == 0);
    const StTensor *t = st_find(&f, "v");
    CHECK(t && *(const float *)t->data == 3.0f);
    st_free(&f);
}

/* Mistakes in st_add are reported by st_write_atomic, which then writes
 * nothing at all. */
static void writer_refuses_bad_tensors(void) {
    char path[512], err[512];
    tmp_path(path, sizeof path, "writer_bad.safetensors");
    unlink(path);
    const float v[2] = {1, 2};
    const int64_t s1[1] = {1}, neg[1] = {-1};
    const struct {
        const char *name;
        int rank;
        const int64_t *shape;
        const void *data;
        const char *fragment;
    } cases[] = {
        {"v", 1, s1, v, "duplicate tensor name 'v'"},
        {"__metadata__", 1, s1, v, "reserved"},
        {"", 1, s1, v, "empty tensor name"},
        {"bad\xff", 1, s1, v, "not valid UTF-8"},
        {"r", 9, s1, v, "rank 9"},
        {"n", 1, neg, v, "negative dimension"},
        {"d", 1, s1, NULL, "has no data"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        StWriter *w = st_writer_new();
        st_add(w, "v", ST_F32, 1, s1, v);
        st_add(w, cases[i].name, ST_F32, cases[i].rank, cases[i].shape, cases[i].data);
        err[0] = '\0';
        CHECK(st_write_atomic(w, path, err, sizeof err) == -1);
        CHECK_ERROR(err, cases[i].fragment);
        CHECK(!file_exists(path));
        st_writer_free(w);
    }
    StWriter *w = st_writer_new();
    st_add_meta(w, "k", "1");
    st_add_meta(w, "k", "2");
    CHECK(st_write_atomic(w, path, err, sizeof err) == -1);
    CHECK_ERROR(err, "duplicate metadata key 'k'");
    st_writer_free(w);
    CHECK(st_write_atomic(NULL, path, err, sizeof err) == -1);
    CHECK(!file_exists(path));
}

int main(int argc, char **argv) {
    static const TestCase cases[] = {
        {"roundtrip", roundtrip_every_dtype},
        {"exact_bytes", writes_exact_bytes},
        {"emit_for_python", emit_for_python},
        {"missing_and_short", refuses_missing_and_short_files},
        {"bad_lengths", refuses_bad_lengths},
        {"bad_json", refuses_bad_json},
        {"bad_entries", refuses_bad_entries},
        {"bad_offsets", refuses_bad_offsets},
        {"atomic_fsize", failed_write_keeps_old_file},
        {"atomic_rename", failed_rename_cleans_up},
        {"atomic_replace", successful_write_replaces_old_file},
        {"writer_refuses", writer_refuses_bad_tensors},
    };
    return run_named_case(cases, sizeof cases / sizeof cases[0], argc, argv);
}
