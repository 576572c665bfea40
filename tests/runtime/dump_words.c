/* dump_words DATA SEED OUT.safetensors: data_load_words' arrays, for
 * check_words.py to compare with makemore.py's own: train.X, train.Y,
 * test.X, test.Y (I32, [rows, width]) and the vocabulary as metadata.
 * Exits 1 with data_load_words' message when it refuses the file. */
#include <stdio.h>
#include <stdlib.h>

#include "data.h"
#include "safetensors.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: dump_words DATA SEED OUT.safetensors\n");
        return 2;
    }
    WordDataset ds;
    char err[1024];
    if (data_load_words(argv[1], strtoull(argv[2], NULL, 10), &ds, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    StWriter *w = st_writer_new();
    int64_t train_shape[2] = {ds.train.rows, ds.train.width}, test_shape[2] = {ds.test.rows, ds.test.width};
    st_add(w, "train.X", ST_I32, 2, train_shape, ds.train.X);
    st_add(w, "train.Y", ST_I32, 2, train_shape, ds.train.Y);
    st_add(w, "test.X", ST_I32, 2, test_shape, ds.test.X);
    st_add(w, "test.Y", ST_I32, 2, test_shape, ds.test.Y);
    char vocab[257];
    snprintf(vocab, sizeof vocab, "%.*s", ds.vocab_size, ds.itos);
    st_add_meta(w, "vocab", vocab);
    int rc = st_write_atomic(w, argv[3], err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "error: %s\n", err);
    st_writer_free(w);
    data_free_words(&ds);
    return rc ? 1 : 0;
}
