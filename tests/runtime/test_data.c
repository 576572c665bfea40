/* test_data.c - data_load on the real names.txt (the notebook's exact
 * split) and on small files that must be refused.
 * Memory: each case frees its Dataset; refused loads must leave nothing
 * allocated, which LeakSanitizer checks. */
#define _POSIX_C_SOURCE 200809L

#include "check.h"
#include "data.h"

#include <stdlib.h>
#include <unistd.h>

#define EXPECTED_VOCAB 27
#define SEED 42

static void write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    if (!fp) return;
    CHECK(fwrite(text, 1, strlen(text), fp) == strlen(text));
    CHECK(fclose(fp) == 0);
}

static int values_in_range(const Split *s, int vocab) {
    for (int64_t i = 0; i < s->rows * s->block_size; i++)
        if (s->X[i] < 0 || s->X[i] >= vocab) return 0;
    for (int64_t i = 0; i < s->rows; i++)
        if (s->Y[i] < 0 || s->Y[i] >= vocab) return 0;
    return 1;
}

/* Expected numbers come from running the notebook's code with CPython:
 *   w = open('names.txt').read().splitlines(); random.seed(42); random.shuffle(w)
 *   -> w[0] == 'yuheng', w[-1] == 'yovani'; the splits hold 182625 / 22655 / 22866
 *   examples (sum of len(word) + 1). */
static void names_split_matches_notebook(void) {
    Dataset ds;
    char err[512] = "";
    CHECK(data_load(NAMES_TXT, 3, EXPECTED_VOCAB, SEED, &ds, err, sizeof err) == 0);
    if (err[0]) fprintf(stderr, "%s\n", err);
    CHECK(ds.nwords == 32033);
    CHECK(ds.vocab_size == 27);
    CHECK(memcmp(ds.itos, ".abcdefghijklmnopqrstuvwxyz", 27) == 0);
    CHECK(ds.stoi['.'] == 0 && ds.stoi['a'] == 1 && ds.stoi['z'] == 26 && ds.stoi['A'] == -1);
    CHECK(ds.train.rows == 182625);
    CHECK(ds.val.rows == 22655);
    CHECK(ds.test.rows == 22866);
    CHECK(ds.train.block_size == 3 && ds.val.block_size == 3 && ds.test.block_size == 3);
    CHECK(values_in_range(&ds.train, 27) && values_in_range(&ds.val, 27) && values_in_range(&ds.test, 27));

    /* "yuheng." gives ... -> y, ..y -> u, .yu -> h, ..., eng -> '.'. */
    static const int32_t first_x[7][3] = {{0, 0, 0}, {0, 0, 25}, {0, 25, 21}, {25, 21, 8},
                                          {21, 8, 5}, {8, 5, 14}, {5, 14, 7}};
    static const int32_t first_y[7] = {25, 21, 8, 5, 14, 7, 0};
    for (int r = 0; r < 7 && ds.train.rows >= 7; r++) {
        CHECK(memcmp(&ds.train.X[r * 3], first_x[r], sizeof first_x[r]) == 0);
        CHECK(ds.train.Y[r] == first_y[r]);
    }
    /* The next word, "diondre", starts from an empty context again. */
    CHECK(ds.train.X[21] == 0 && ds.train.X[22] == 0 && ds.train.X[23] == 0 && ds.train.Y[7] == 4);
    /* Val starts with "amay"; test ends with "yovani": context "ani" -> '.'. */
    CHECK(ds.val.Y[0] == 1 && ds.val.X[0] == 0);
    int64_t last = ds.test.rows - 1;
    CHECK(ds.test.X[last * 3] == 1 && ds.test.X[last * 3 + 1] == 14 && ds.test.X[last * 3 + 2] == 9);
    CHECK(ds.test.Y[last] == 0);
    data_free(&ds);
    CHECK(ds.train.X == NULL && ds.train.rows == 0);
    data_free(&ds); /* idempotent */
}

/* Ten words "wa".."wj" shuffled like random.seed(42); random.shuffle(l) ->
 * ['wh','wd','wc','wi','wf','wg','wj','we','wa','wb'] (CPython), split at
 * int(0.8*10) = 8 and int(0.9*10) = 9. No final newline, block_size 2. */
static void small_file_split(void) {
    char path[512], err[512] = "";
    write_text(tmp_path(path, sizeof path, "data_small.txt"), "wa\nwb\nwc\nwd\nwe\nwf\nwg\nwh\nwi\nwj");
    Dataset ds;
    CHECK(data_load(path, 2, 12, SEED, &ds, err, sizeof err) == 0);
    if (err[0]) fprintf(stderr, "%s\n", err);
    CHECK(ds.nwords == 10 && ds.vocab_size == 12);
    CHECK(memcmp(ds.itos, ".abcdefghijw", 12) == 0);
    CHECK(ds.train.rows == 24 && ds.val.rows == 3 && ds.test.rows == 3);
    static const char first_train[] = "hdcifgje"; /* second letters, in shuffled order */
    for (int w = 0; w < 8 && ds.train.rows == 24; w++) {
        CHECK(ds.train.Y[3 * w] == 11);                               /* .. -> w */
        CHECK(ds.train.Y[3 * w + 1] == ds.stoi[(int)first_train[w]]); /* .w -> letter */
        CHECK(ds.train.X[2 * (3 * w + 2)] == 11);                     /* w letter -> . */
    }
    CHECK(ds.val.rows == 3 && ds.val.Y[1] == ds.stoi['a']);
    CHECK(ds.test.rows == 3 && ds.test.Y[1] == ds.stoi['b']);
    data_free(&ds);
}

/* data_load must refuse path with a message holding every fragment (NULL
 * ends the list) and leave the Dataset empty. */
static void expect_refused(const char *path, int expected_vocab, const char *const *fragments) {
    Dataset ds;
    char err[1024] = "";
    memset(&ds, 0x5a, sizeof ds);
    CHECK(data_load(path, 3, expected_vocab, SEED, &ds, err, sizeof err) == -1);
    CHECK(ds.train.X == NULL && ds.val.Y == NULL && ds.test.X == NULL && ds.train.rows == 0);
    CHECK(strncmp(err, path, strlen(path)) == 0);
    for (; *fragments; fragments++) CHECK_ERROR(err, *fragments);
    printf("refused as expected: %s\n", err);
}

static void refuse_text(const char *name, const char *text, int expected_vocab, const char *const *fragments) {
    char path[512];
    write_text(tmp_path(path, sizeof path, name), text);
    expect_refused(path, expected_vocab, fragments);
}

#define FRAGMENTS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define ALPHABET "abcdefghijklm\nnopqrstuvwxyz\n"

static void refuses_missing_file(void) {
    char path[512];
    tmp_path(path, sizeof path, "data_missing.txt");
    unlink(path);
    expect_refused(path, 27, FRAGMENTS("cannot open", strerror(ENOENT)));
}

static void refuses_empty_file(void) {
    refuse_text("data_empty.txt", "", 27, FRAGMENTS("empty", "no words"));
    refuse_text("data_only_newline.txt", "\n", 27, FRAGMENTS(":1: empty line"));
}

static void refuses_empty_line(void) {
    refuse_text("data_blank.txt", ALPHABET "emma\n\nolivia\n", 27, FRAGMENTS("data_blank.txt:4: empty line"));
    refuse_text("data_blank_end.txt", ALPHABET "emma\n\n", 27, FRAGMENTS("data_blank_end.txt:4: empty line"));
}

static void refuses_crlf(void) {
    refuse_text("data_crlf.txt", "emma\r\nolivia\r\n", 27, FRAGMENTS("data_crlf.txt:1: ", "CRLF", "convert"));
    refuse_text("data_crlf2.txt", ALPHABET "emma\r\n", 27, FRAGMENTS("data_crlf2.txt:3: ", "CRLF"));
}

static void refuses_bad_bytes(void) {
    refuse_text("data_utf8.txt", ALPHABET "ren\xc3\xa9\n", 27,
                FRAGMENTS("data_utf8.txt:3: ", "byte 0xc3 at column 4 is not a printable ASCII character"));
    refuse_text("data_tab.txt", ALPHABET "ann\tmarie\n", 27, FRAGMENTS("data_tab.txt:3: ", "byte 0x09"));
    refuse_text("data_dot.txt", ALPHABET "st.john\n", 27, FRAGMENTS("data_dot.txt:3: ", "'.' at column 3", "end-of-word token"));
}

/* A digit is a printable character, so it joins the vocabulary: 28 symbols
 * where 27 were expected, and the message shows the digit. */
static void refuses_digit(void) {
    refuse_text("data_digit.txt", ALPHABET "r2d2\n", 27,
                FRAGMENTS("vocabulary has 28 symbols but 27 were expected", "\"2abcdefghijklmnopqrstuvwxyz\""));
}

static void refuses_vocab_mismatch(void) {
    refuse_text("data_vocab.txt", ALPHABET, 28,
                FRAGMENTS("vocabulary has 27 symbols but 28 were expected", "\"abcdefghijklmnopqrstuvwxyz\""));
    char path[512];
    tmp_path(path, sizeof path, "data_vocab.txt");
    Dataset ds;
    char err[256];
    CHECK(data_load(path, 0, 27, SEED, &ds, err, sizeof err) == -1);
    CHECK_ERROR(err, "block_size");
}

/* data_load_makemore: data_load_words' rows (checked against makemore.py
 * by check_words.py) padded to the model's block, train and test only. */
static void makemore_rows_padded(void) {
    char path[512], err[512] = "";
    write_text(tmp_path(path, sizeof path, "data_mm.txt"), "ab\nabc\nb\nca\nbca\nab\nc\nbb\ncab\naa\n");
    WordDataset w;
    Dataset ds;
    CHECK(data_load_words(path, 3407, &w, err, sizeof err) == 0);
    CHECK(data_load_makemore(path, 3407, 6, 4, &ds, err, sizeof err) == 0);
    if (err[0]) fprintf(stderr, "%s\n", err);
    CHECK(ds.max_word_length == 3 && ds.vocab_size == 4 && ds.val.rows == 0);
    CHECK(ds.train.rows == w.train.rows && ds.test.rows == w.test.rows && ds.train.target_width == 6);
    for (int64_t r = 0; r < ds.train.rows; r++)
        for (int t = 0; t < 6; t++) {
            CHECK(ds.train.X[r * 6 + t] == (t < 4 ? w.train.X[r * 4 + t] : 0));
            CHECK(ds.train.Y[r * 6 + t] == (t < 4 ? w.train.Y[r * 4 + t] : -1));
        }
    data_free(&ds);
    data_free_words(&w);
    CHECK(data_load_makemore(path, 3407, 3, 4, &ds, err, sizeof err) == -1);
    CHECK_ERROR(err, "block size to 4");
    CHECK(ds.train.X == NULL && ds.test.X == NULL);
    CHECK(data_load_makemore(path, 3407, 6, 27, &ds, err, sizeof err) == -1);
    CHECK_ERROR(err, "takes 27");
    CHECK(ds.train.X == NULL && ds.test.X == NULL);
}

int main(int argc, char **argv) {
    static const TestCase cases[] = {
        {"names_split", names_split_matches_notebook},
        {"small_split", small_file_split},
        {"missing_file", refuses_missing_file},
        {"empty_file", refuses_empty_file},
        {"empty_line", refuses_empty_line},
        {"crlf", refuses_crlf},
        {"bad_bytes", refuses_bad_bytes},
        {"digit", refuses_digit},
        {"vocab_mismatch", refuses_vocab_mismatch},
        {"makemore_rows", makemore_rows_padded},
    };
    return run_named_case(cases, sizeof cases / sizeof cases[0], argc, argv);
}
