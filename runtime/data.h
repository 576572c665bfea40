/* data.h - the makemore data set: words -> vocabulary -> shuffled 80/10/10
 * split -> context windows, exactly as the notebook builds them.
 * Memory: data_load fills a Dataset that data_free releases. */
#ifndef NINJAC_DATA_H
#define NINJAC_DATA_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t rows;
    int block_size;
    int32_t *X;   /* [rows][block_size] */
    int32_t *Y;   /* [rows] */
} Split;

typedef struct {
    int vocab_size;      /* '.' plus the distinct characters */
    char itos[256];      /* index -> character; itos[0] == '.' */
    int stoi[256];       /* character -> index, -1 if absent */
    int nwords;
    Split train, val, test;
} Dataset;

/* Reads one word per line from path. The vocabulary is '.' followed by the
 * sorted distinct characters; it must have exactly expected_vocab symbols.
 * Words are shuffled as Python's random.seed(seed); random.shuffle(words)
 * does, then split at 80% and 90% as the notebook does; the training split
 * must not be empty (val and test may be). Returns -1 with a message in err
 * (naming the file and line) on any problem. */
int data_load(const char *path, int block_size, int expected_vocab, uint32_t seed,
              Dataset *ds, char *err, size_t errlen);
void data_free(Dataset *ds);

#endif
