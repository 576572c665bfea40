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
    int target_width;   /* targets a row: 1 (windows, pairs) or block_size (makemore's words) */
    int32_t *X;   /* [rows][block_size] */
    int32_t *Y;   /* [rows][target_width]; -1: no target (the loss skips it) */
} Split;

typedef struct {
    int vocab_size;      /* '.' plus the distinct characters */
    char itos[256];      /* index -> character; itos[0] == '.' */
    int stoi[256];       /* character -> index, -1 if absent */
    int nwords;
    int max_word_length;   /* data_load_makemore: makemore's generate() runs this many steps */
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

/* makemore.py's CharDataset: one word a row, x = [0, word..., 0 ...] and
 * y = [word..., 0, -1 ...] (-1: no target, the loss skips it), rows of
 * max word length + 1. No spec can train on it yet (it needs the
 * language of issue 12); it is built and checked against makemore.py's
 * own code (tests/runtime/check_words.py). */
typedef struct {
    int64_t rows;
    int width;    /* max word length + 1 */
    int32_t *X;   /* [rows][width] */
    int32_t *Y;   /* [rows][width] */
} WordSplit;

typedef struct {
    int vocab_size;      /* the special token 0 plus the distinct characters */
    char itos[256];      /* itos[0] == '.', standing for the token */
    int stoi[256];
    int nwords, max_word_length;
    WordSplit train, test;
} WordDataset;

/* As makemore.py's create_datasets(path) after torch.manual_seed(seed):
 * the lines (Python's splitlines) stripped of white space, empty ones
 * dropped; vocabulary as data_load's (any size up to 255 characters);
 * test_set_size = min(1000, int(0.1 * words)); rp = torch.randperm(words);
 * train = rp[:-test_set_size], test = rp[-test_set_size:]. Refused, with
 * a message naming the file (and line): a character that is not printable
 * ASCII or is '.', and an empty training split. */
int data_load_words(const char *path, uint64_t seed, WordDataset *ds, char *err, size_t errlen);
void data_free_words(WordDataset *ds);

/* makemore.py's data as the trainer takes it: data_load_words' arrays
 * (the split of torch.manual_seed(seed); torch.randperm) as a Dataset with
 * train and test (val empty), each row padded to block_size (x with 0, y
 * with -1, as CharDataset pads to its own width). Refused: a vocabulary of
 * another size than expected_vocab, and a block_size below max word length
 * + 1 (CharDataset's width: a word would not fit). */
int data_load_makemore(const char *path, uint64_t seed, int block_size, int expected_vocab, Dataset *ds,
                       char *err, size_t errlen);

#endif
