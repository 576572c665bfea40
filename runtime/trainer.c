/* trainer.c - the trainer every spec gets: init, train, eval, sample, grads.
 * Memory: each command owns a State and a Dataset and frees them on every
 * path out; nothing is allocated per training step. */
#include "trainer.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "data.h"
#include "files.h"
#include "optim.h"
#include "safetensors.h"
#include "state.h"

#define DATA_SEED 42        /* random.seed(42) in the notebook */
#define MAKEMORE_SEED 3407  /* makemore.py's --seed: its split, init and batches */
#define WORDS_STEPS "10000" /* makemore.py trains until stopped; the trainer stops here by default */
#define LOSS_WINDOW 1000    /* the log's lossi_window_mean is over windows of this many steps */
#define LOG_HEADER "step,loss,lossi_window_mean\n"
#define DEFAULT_DATA NINJAC_DEFAULT_DATA
#define THREADS_HELP "threads for ninjac's matrix products, each cut into bands of at least 2^20 " \
                     "multiply-adds (the results do not depend on N; OpenBLAS's calls keep one thread)"

/* The thread count of runtime/ninjac_kernels.h's nj_gemm and the most
 * threads a product ran on; the header defines them weak: these
 * definitions are the program's when a trainer links. */
int nj_threads = 1, nj_threads_ran = 1;

/* ---- options ---- */

typedef struct {
    const char *name, *arg, *help;
    const char *value;      /* as given, or the default */
} Opt;

typedef struct {
    const char *name, *summary;
    Opt opts[24];
} Command;

typedef struct {
    int count;
    uint64_t seed;
    double temperature;     /* the logits are divided by it */
    int top_k;              /* 0: every character may be drawn */
} SampleOpts;

static int usage_error(const Command *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see %s --help)\n", c->name);
    va_end(ap);
    return 2;
}

static void print_help(const NinjacModel *m, const Command *c) {
    printf("usage: %s %s [options]\n\n%s\n\noptions:\n", m->name, c->name, c->summary);
    for (const Opt *o = c->opts; o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        printf("  %-26s %s", left, o->help);
        if (o->value && o->arg)
            printf(" (default: %s)", o->value);
        printf("\n");
    }
}

/* Fills c->opts from argv; returns 0, 1 for --help, 2 for a usage error. */
static int parse_opts(const NinjacModel *m, Command *c, int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_help(m, c);
            return 1;
        }
        Opt *o = c->opts;
        while (o->name && strcmp(o->name, argv[i]))
            o++;
        if (!o->name)
            return usage_error(c, "unknown option '%s' for %s", argv[i], c->name);
        if (!o->arg) {
            o->value = "1";
            continue;
        }
        if (++i == argc)
            return usage_error(c, "%s needs %s", o->name, o->arg);
        o->value = argv[i];
    }
    return 0;
}

static const char *opt(const Command *c, const char *name) {
    for (const Opt *o = c->opts; o->name; o++)
        if (!strcmp(o->name, name))
            return o->value;
    return NULL;
}

/* An option's integer in [lo, hi]: the whole string, nothing truncated. */
static bool opt_int(const Command *c, const char *name, int64_t lo, int64_t hi, int64_t *out) {
    const char *v = opt(c, name);
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) {
        fprintf(stderr, "error: %s must be an integer from %lld to %lld, got '%s'\n", name, (long long)lo,
                (long long)hi, v);
        return false;
    }
    *out = x;
    return true;
}

/* --threads N: what nj_gemm may use from here on. */
static bool opt_threads(const Command *c) {
    int64_t n;
    if (!opt_int(c, "--threads", 1, 256, &n))
        return false;
    nj_threads = (int)n;
    return true;
}

/* With --threads N > 1: whether the products were big enough to use them. */
static void report_threads(void) {
    if (nj_threads > 1)
        printf("threads:    %d asked, products ran on up to %d (a band is at least 2^20 multiply-adds)\n",
               nj_threads, nj_threads_ran);
}

static bool opt_double(const Command *c, const char *name, double *out) {
    const char *v = opt(c, name);
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !isfinite(x) || x < 0) {
        fprintf(stderr, "error: %s must be a non-negative number, got '%s'\n", name, v);
        return false;
    }
    *out = x;
    return true;
}

/* --betas B1,B2: two numbers, nothing else (range checks: adamw_invalid). */
static bool opt_betas(const Command *c, double *b1, double *b2) {
    const char *v = opt(c, "--betas");
    char *end1, *end2 = NULL;
    errno = 0;
    *b1 = strtod(v, &end1);
    bool ok = *v && !isspace((unsigned char)*v) && end1 != v && *end1 == ',';
    if (ok) {
        const char *second = end1 + 1;
        *b2 = strtod(second, &end2);
        ok = *second && !isspace((unsigned char)*second) && end2 != second && !*end2;
    }
    if (!ok)
        fprintf(stderr, "error: --betas must be two numbers separated by a comma, such as 0.9,0.99; got '%s'\n", v);
    return ok;
}

/* ---- shared pieces ---- */

/* --temperature and --top-k into o. */
static bool sample_opts(const Command *c, SampleOpts *o) {
    int64_t k;
    if (!opt_double(c, "--temperature", &o->temperature) || !opt_int(c, "--top-k", 0, 256, &k))
        return false;
    if (!(o->temperature > 0) || o->temperature > FLT_MAX) {
        usage_error(c, "--temperature must be a positive float, not %s", opt(c, "--temperature"));
        return false;
    }
    o->top_k = (int)k;
    return true;
}

static int new_state(const NinjacModel *m, State *s) {
    if (m->elem_size != sizeof(float)) {
        fprintf(stderr, "error: %s was compiled with --dtype f64; the trainer runs f32 models\n", m->name);
        return -1;
    }
    if (state_new(s, m) != 0) {
        fprintf(stderr, "error: out of memory\n");
        return -1;
    }
    return 0;
}

/* The data layout is picked from the spec's inputs, in declaration order
 * (README, "Data layouts"): a context and a target, both < the vocabulary
 * size, where
 *   X: int[n, block], Y: int[n]  the notebook's windows: the block characters
 *                     before the target, '.' (0) before the word starts;
 *   xs: int[n], ys: int[n]  lecture 1's pairs: the character before the target;
 *   idx: int[b, t], targets: int[b, t]  makemore.py's CharDataset: one word a
 *                     row, targets shifted by one, -1 past the end.
 * A pair is a window of one character, laid out the same in memory, so
 * both come from data_load. */
typedef enum { LAYOUT_NONE, LAYOUT_PAIRS, LAYOUT_WINDOWS, LAYOUT_WORDS } Layout;

static Layout layout_of(const NinjacModel *m) {
    const NjInput *in = m->inputs;
    if (m->ninputs != 2 || in[0].bound != in[1].bound)
        return LAYOUT_NONE;
    if (in[1].rank == 1 && in[0].rank == 1)
        return LAYOUT_PAIRS;
    if (in[1].rank == 1 && in[0].rank == 2)
        return LAYOUT_WINDOWS;
    if (in[0].rank == 2 && in[1].rank == 2 && in[0].shape[1] == in[1].shape[1])
        return LAYOUT_WORDS;
    return LAYOUT_NONE;
}

static Layout known_layout(const NinjacModel *m) {
    Layout layout = layout_of(m);
    if (layout != LAYOUT_NONE)
        return layout;
    const NjInput *in = m->inputs;
    char have[512] = "";
    size_t len = 0;
    for (int k = 0; k < m->ninputs && len < sizeof have; k++) {
        len += (size_t)snprintf(have + len, sizeof have - len, "%s%s: int[", k ? ", " : "", in[k].name);
        for (int d = 0; d < in[k].rank && len < sizeof have; d++)
            len += (size_t)snprintf(have + len, sizeof have - len, "%s%d", d ? ", " : "", in[k].shape[d]);
        if (len < sizeof have)
            len += (size_t)snprintf(have + len, sizeof have - len, "] < %d", (int)in[k].bound);
    }
    fprintf(stderr, "error: %s's inputs fit none of the trainer's data layouts, a context then a target, both "
            "< the vocabulary size:\n  X: int[n, block], Y: int[n]   the notebook's context windows\n"
            "  xs: int[n], ys: int[n]        lecture 1's pairs of consecutive characters\n"
            "  idx: int[b, t], targets: int[b, t]   makemore.py's words, one a row\n"
            "%s declares %s\n", m->name, m->name, m->ninputs ? have : "no inputs");
    return LAYOUT_NONE;
}

static int load_data(const NinjacModel *m, const char *path, Dataset *ds) {
    Layout layout = known_layout(m);
    if (layout == LAYOUT_NONE)
        return -1;
    char err[1024];
    const NjInput *in = m->inputs;
    int rc = layout == LAYOUT_WORDS
           ? data_load_makemore(path, MAKEMORE_SEED, in[0].shape[1], in[0].bound, ds, err, sizeof err)
           : data_load(path, layout == LAYOUT_PAIRS ? 1 : in[0].shape[1], in[0].bound, DATA_SEED, ds, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    return 0;
}

/* makemore.py's minibatches: after torch.manual_seed(seed), create_datasets'
 * torch.randperm and the model's init draw from the default generator;
 * iter(DataLoader) then draws its _base_seed, and the RandomSampler
 * (replacement=True) of the InfiniteDataLoader draws the seed of its own
 * generator, from which every batch is torch.randint(n, (32,)). */
static int makemore_batches(const NinjacModel *m, uint64_t seed, int nwords, void *params, TorchGen *batches) {
    int64_t *perm = malloc(sizeof *perm * (size_t)nwords);
    void *scratch = params ? NULL : malloc(m->params_bytes);
    if (!perm || (!params && !scratch)) {
        free(perm);
        free(scratch);
        fprintf(stderr, "error: out of memory\n");
        return -1;
    }
    TorchGen g;
    tg_seed(&g, seed);
    tg_randperm(&g, perm, nwords);
    init_params_from(m, params ? params : scratch, &g, &g);
    tg_random64(&g);   /* the DataLoader iterator's _base_seed */
    tg_seed(batches, tg_random64(&g) % (UINT64_C(1) << 63));   /* random_() of an int64: [0, 2^63) */
    free(perm);
    free(scratch);
    return 0;
}

/* The batch statistics over the whole training set. Finite params can
 * still be large enough for them to overflow: that is an error, since
 * every loss and sample computed from them would be NaN. */
static int calibrate(State *s, const Split *train) {
    if (!s->m->nstats) {
        s->calibrated = true;
        return 0;
    }
    const int32_t *in[2] = {train->X, train->Y};
    if (s->m->calibrate(s->params, in, train->rows, s->stats, s->ws) != 0) {
        fprintf(stderr, "error: out of memory while calibrating batch statistics\n");
        return -1;
    }
    const NjTensor *bad = first_nonfinite_stat(s);
    if (bad) {
        fprintf(stderr, "error: calibrating the batch statistics over the training set made %s non-finite "
                "(the parameters are finite but too large)\n  from %s\n", bad->name, bad->origin);
        return -1;
    }
    s->calibrated = true;
    return 0;
}

/* Data whose characters differ from the ones the params were trained on
 * would be encoded to other indices: refused, also when their number is
 * the same. */
static int check_vocab(State *s, const Dataset *ds, const char *params_path, const char *data_path) {
    char vocab[sizeof s->vocab];
    memcpy(vocab, ds->itos, (size_t)ds->vocab_size);
    vocab[ds->vocab_size] = 0;
    if (s->vocab[0] && strcmp(s->vocab, vocab)) {
        fprintf(stderr, "error: %s was trained on the characters \"%s\", but %s has \"%s\" "
                "(hint: give --data the file it was trained on)\n", params_path, s->vocab + 1, data_path, vocab + 1);
        return -1;
    }
    memcpy(s->vocab, vocab, sizeof vocab);
    return 0;
}

static double read_real(const void *base, size_t offset) {
    return *(const float *)((const char *)base + offset);
}

/* Mean loss over a whole split, batch statistics frozen. The first
 * activation to go non-finite is reported in *bad (NULL if none), with the
 * first row of its chunk in *bad_row. */
static double split_loss(State *s, const Split *sp, const NjTensor **bad, int64_t *bad_row) {
    const NinjacModel *m = s->m;
    double total = 0;
    int64_t kept = 0;
    *bad = NULL;
    for (int64_t r0 = 0; r0 < sp->rows; r0 += m->infer_chunk) {
        int rows = (int)(sp->rows - r0 < m->infer_chunk ? sp->rows - r0 : m->infer_chunk);
        const int32_t *Y = sp->Y + r0 * sp->target_width;
        const int32_t *in[2] = {sp->X + r0 * sp->block_size, Y};
        m->infer(s->params, s->stats, in, rows, s->ws);
        double chunk_loss = read_real(s->ws, (size_t)m->infer_loss_offset);
        if (!isfinite(chunk_loss) && !*bad) {
            *bad = first_nonfinite_infer_act(s, rows);
            *bad_row = r0;
        }
        /* the chunk's loss is a mean over its targets, -1 ones skipped (ignore_index) */
        int64_t chunk_kept = 0;
        for (int64_t k = 0; k < (int64_t)rows * sp->target_width; k++)
            chunk_kept += Y[k] != -1;
        if (chunk_kept)
            total += chunk_loss * (double)chunk_kept;
        kept += chunk_kept;
    }
    return total / (double)kept;
}

/* probs = F.softmax(logits / temperature, dim=-1), logits below the top_k-th
 * largest set to -inf first (makemore.py's generate; top_k 0: all kept). */
static void sampling_probs(const float *logits, int vocab, double temperature, int top_k, float *p) {
    float t = (float)temperature, kth = -INFINITY;
    for (int j = 0; j < vocab; j++)
        p[j] = temperature == 1 ? logits[j] : logits[j] / t;
    if (top_k > 0 && top_k < vocab) {
        float sorted[256];
        memcpy(sorted, p, sizeof(float) * (size_t)vocab);
        for (int i = 0; i < top_k; i++)   /* selection: the k largest to the front */
            for (int j = i + 1; j < vocab; j++)
                if (sorted[j] > sorted[i]) {
                    float x = sorted[i];
                    sorted[i] = sorted[j];
                    sorted[j] = x;
                }
        kth = sorted[top_k - 1];
        for (int j = 0; j < vocab; j++)
            if (p[j] < kth)
                p[j] = -INFINITY;
    }
    float mx = p[0], sum = 0;
    for (int j = 1; j < vocab; j++)
        mx = p[j] > mx ? p[j] : mx;
    for (int j = 0; j < vocab; j++)
        sum += p[j] = expf(p[j] - mx);
    float inv = 1 / sum; /* as torch's softmax: times the reciprocal */
    for (int j = 0; j < vocab; j++)
        p[j] *= inv;
}

/* makemore.py's print_samples: generate() from count rows of the token 0,
 * max word length steps, every row drawn at every step (rows in order, as
 * torch.multinomial draws a batch), then each row cut at its first 0. The
 * spec's model reads a whole row of block_size tokens: causal, as every
 * makemore model is, it gives at position k what generate()'s model gives
 * on the first k + 1 tokens, so the rest of the row is left 0. */
static int sample_words(State *s, const Dataset *ds, const SampleOpts *o, TorchGen *rng) {
    const NinjacModel *m = s->m;
    int block = ds->train.block_size, vocab = m->logits_cols, steps = ds->max_word_length;
    int32_t *rows = calloc((size_t)o->count * (size_t)block + 1, sizeof *rows);
    float p[256];
    if (!rows) {
        fprintf(stderr, "error: out of memory\n");
        return -1;
    }
    for (int k = 0; k < steps; k++)
        for (int r0 = 0; r0 < o->count; r0 += m->infer_chunk) {
            int n = o->count - r0 < m->infer_chunk ? o->count - r0 : m->infer_chunk;
            const int32_t *in[2] = {rows + (size_t)r0 * block, NULL};
            m->infer(s->params, s->stats, in, n, s->ws);
            const float *logits = (const float *)((const char *)s->ws + m->infer_logits_offset);
            for (int r = 0; r < n; r++) {
                sampling_probs(logits + ((size_t)r * m->logits_positions + k) * vocab, vocab, o->temperature,
                               o->top_k, p);
                rows[(size_t)(r0 + r) * block + k + 1] = tg_multinomial1(rng, p, vocab);
            }
        }
    for (int r = 0; r < o->count; r++) {
        const int32_t *row = rows + (size_t)r * block;
        for (int k = 1; k <= steps && row[k]; k++)
            putchar(ds->itos[row[k]]);
        putchar('\n');
    }
    free(rows);
    return 0;
}

/* The notebook's sampling cell: one name at a time, the context window
 * shifted by each drawn character until '.' (0). */
static int sample_windows(State *s, const Dataset *ds, const SampleOpts *o, TorchGen *rng) {
    const NinjacModel *m = s->m;
    int block = ds->train.block_size, vocab = m->logits_cols;   /* 1 for pairs */
    int32_t *context = calloc((size_t)block, sizeof *context);   /* any block_size the spec has */
    float p[256];
    if (!context) {
        fprintf(stderr, "error: out of memory\n");
        return -1;
    }
    for (int n = 0; n < o->count; n++) {
        char name[256];
        int len = 0;
        memset(context, 0, sizeof *context * (size_t)block);
        for (;;) {
            const int32_t *in[2] = {context, NULL};
            m->infer(s->params, s->stats, in, 1, s->ws);
            const float *logits = (const float *)((const char *)s->ws + m->infer_logits_offset);
            /* probs = F.softmax(logits, dim=1); torch.multinomial(probs, 1, generator=g) */
            sampling_probs(logits, vocab, o->temperature, o->top_k, p);
            int ix = tg_multinomial1(rng, p, vocab);
            memmove(context, context + 1, sizeof(int32_t) * (size_t)(block - 1));
            context[block - 1] = ix;
            if (ix == 0 || len == (int)sizeof name - 1)
                break;
            name[len++] = ds->itos[ix];
        }
        name[len] = 0;
        printf("%s\n", name);
    }
    free(context);
    return 0;
}

static int sample_names(State *s, const Dataset *ds, const SampleOpts *o) {
    const NinjacModel *m = s->m;
    if (m->infer_logits_offset < 0) {
        fprintf(stderr, "error: %s has no 'logits' [n, vocab] or [b, t, vocab] to sample from\n", m->name);
        return -1;
    }
    if (m->logits_cols > 256 || m->logits_cols != ds->vocab_size) {
        fprintf(stderr, "error: sampling supports vocab <= 256 matching the data\n");
        return -1;
    }
    TorchGen rng;
    tg_seed(&rng, o->seed);
    return ds->max_word_length ? sample_words(s, ds, o, &rng) : sample_windows(s, ds, o, &rng);
}

static int make_parent_dirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "error: cannot create directory %s: %s\n", buf, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    return 0;
}

static int save(const State *s, const char *path, bool checkpoint) {
    char err[1024];
    if (make_parent_dirs(path) != 0)
        return -1;
    if (state_save(s, path, checkpoint, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    return 0;
}

static int load(State *s, const char *path, bool *is_checkpoint) {
    char err[1024];
    bool ck;
    if (state_load(s, path, is_checkpoint ? is_checkpoint : &ck, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    return 0;
}

/* One path a command reads or writes, for check_paths. */
typedef struct {
    const char *opt, *path;     /* path NULL or "" (--plot ""): not used */
    enum { IN, OUT, LOG } role; /* LOG: an output that may also be a FIFO (a stream) */
    const char *may_be;         /* the option whose file this one may be (--save of --resume) */
} PathArg;

/* Checks, before any work, every path a command writes: each must be
 * writable as files.h says, and none may name an input or another output
 * (same device and inode once links are followed; the same resolved path
 * for files not there yet), so that no output destroys what the command
 * reads or another output. */
static int check_paths(const PathArg *a, int n) {
    OutPath p[8];
    char err[1024];
    for (int i = 0; i < n; i++) {
        if (!a[i].path)
            continue;
        int rc = a[i].role == OUT ? out_check(a[i].path, &p[i], err, sizeof err)
                                  : path_resolve(a[i].path, &p[i], err, sizeof err);
        if (rc == 0 && a[i].role == LOG && p[i].exists && p[i].type != S_IFREG && p[i].type != S_IFCHR &&
            p[i].type != S_IFIFO)
            rc = -1, snprintf(err, sizeof err, "%s: is %s, not a file, device or FIFO", a[i].path,
                              file_kind(p[i].type));
        if (rc != 0) {
            fprintf(stderr, "error: %s %s\n", a[i].opt, err);
            return -1;
        }
        for (int j = 0; j < i; j++) {
            if (!a[j].path || (a[i].role == IN && a[j].role == IN) ||
                !out_same(&p[i], &p[j]) || (a[i].may_be && !strcmp(a[i].may_be, a[j].opt)) ||
                (p[i].exists && p[i].type == S_IFCHR))   /* /dev/null twice discards twice */
                continue;
            fprintf(stderr, "error: %s '%s' is the same file as %s '%s': an output may not overwrite %s\n",
                    a[i].opt, a[i].path, a[j].opt, a[j].path,
                    a[i].role == IN || a[j].role == IN ? "an input" : "another output");
            return -1;
        }
    }
    return 0;
}

/* ---- init ---- */

static int cmd_init(const NinjacModel *m, int argc, char **argv) {
    Command c = {"init", "Initialise the parameters as PyTorch computes the spec's param lines\n"
                         "(randn(generator=g) from g = torch.Generator().manual_seed(S)).",
                 {{"--seed", "S", "the seed S of the spec's generator g (of torch's default one if the spec names none)",
                   "2147483647"},
                  {"--out", "P.safetensors", "where to write the parameters", NULL},
                  {0}}};
    int rc = parse_opts(m, &c, argc, argv);
    if (rc)
        return rc == 1 ? 0 : rc;
    int64_t seed;
    if (!opt(&c, "--out"))
        return usage_error(&c, "init needs --out");
    if (!opt_int(&c, "--seed", 0, INT64_MAX, &seed))
        return 2;
    if (check_paths((PathArg[]){{"--out", opt(&c, "--out"), OUT, NULL}}, 1) != 0)
        return 1;
    State s;
    if (new_state(m, &s) != 0)
        return 1;
    init_params(m, s.params, (uint64_t)seed, NULL);
    rc = save(&s, opt(&c, "--out"), false);
    state_free(&s);
    return rc ? 1 : 0;
}

/* ---- train ---- */

typedef struct {
    FILE *csv;
    bool tty;
    struct timespec start;
    int64_t first_step;
    const char *kept;       /* the last checkpoint written or resumed from, NULL if none */
    int64_t kept_step;
    bool nan_check;         /* stop at the first non-finite loss or gradient */
} Progress;

static double seconds_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

static void report(Progress *p, int64_t step, int64_t steps, double loss) {
    double elapsed = seconds_since(&p->start);
    double rate = (double)(step + 1 - p->first_step) / (elapsed > 0 ? elapsed : 1e-9);
    double eta = (double)(steps - step - 1) / rate;
    if (p->tty) {
        int width = 30, done = (int)((double)width * (double)(step + 1) / (double)steps);
        fprintf(stderr, "\r[%.*s%*s] %7" PRId64 "/%" PRId64 "  loss %.4f  %8.0f steps/s  ETA %4.0fs ",
                done, "##############################", width - done, "", step + 1, steps, loss, rate, eta);
        fflush(stderr);
    } else {
        printf("%7" PRId64 "/%7" PRId64 ": %.4f   (%.0f steps/s, ETA %.0fs)\n", step, steps, loss, rate, eta);
        fflush(stdout);
    }
}

/* Whether a log line is the row of step k ("k,loss..."). */
static bool is_row_of(const char *line, int64_t k) {
    char *end;
    errno = 0;
    return line[0] >= '0' && line[0] <= '9' && strtoll(line, &end, 10) == k && !errno && *end == ',';
}

/* The length of the log's header and rows of steps 0..step-1, which a
 * checkpoint of that step finds in the log it was written with (the log is
 * flushed before every checkpoint). Rows after them were logged by a run
 * killed after its last checkpoint; the resumed run redoes them. */
static int log_prefix(const char *path, int64_t step, const char *ckpt, off_t *keep) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "error: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int64_t row = -1;       /* -1: the header */
    int rc = 0;
    *keep = 0;
    while (rc == 0 && row < step && (n = getline(&line, &cap, f)) > 0 && line[n - 1] == '\n') {
        if (row < 0 ? strcmp(line, LOG_HEADER) != 0 : !is_row_of(line, row)) {
            char want[64] = "the header";
            if (row >= 0)
                snprintf(want, sizeof want, "the row of step %" PRId64, row);
            fprintf(stderr, "error: %s:%" PRId64 ": expected %s: not the loss log of the run %s continues "
                    "(hint: give --log another file)\n", path, row + 2, want, ckpt);
            rc = -1;
            break;
        }
        *keep += n;
        row++;
    }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "error: cannot read %s: %s\n", path, strerror(errno));
        rc = -1;
    } else if (rc == 0 && row < step) {
        fprintf(stderr, "error: %s: rows for steps 0..%" PRId64 " are missing: %s continues from step %" PRId64
                ", but the log has %" PRId64 " complete row(s) (hint: give --log another file)\n", path, step - 1,
                ckpt, step, row < 0 ? (int64_t)0 : row);
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}

/* The loss log of a run from step s->step: a new one (header, rows from
 * step 0) or, on resume, the log of the run that wrote the checkpoint cut
 * back to its step, so that the resumed run's log is the uninterrupted
 * one's. A resume given a missing or empty log starts a new one from the
 * checkpoint's step; a device or pipe (/dev/null) is appended to as it is.
 * *from: the step of the log's first row. */
static FILE *open_log(const char *path, const State *s, const char *ckpt, int64_t *from) {
    if (make_parent_dirs(path) != 0)
        return NULL;
    struct stat st;
    bool exists = stat(path, &st) == 0;
    if (!exists && errno != ENOENT) {
        fprintf(stderr, "error: cannot write %s: %s\n", path, strerror(errno));
        return NULL;
    }
    bool fresh = !s->step || !exists || (S_ISREG(st.st_mode) && st.st_size == 0);
    off_t keep;
    if (!fresh && S_ISREG(st.st_mode)) {
        if (log_prefix(path, s->step, ckpt, &keep) != 0)
            return NULL;
        if (keep < st.st_size && truncate(path, keep) != 0) {
            fprintf(stderr, "error: cannot cut %s back to step %" PRId64 ": %s\n", path, s->step, strerror(errno));
            return NULL;
        }
    }
    /* O_NONBLOCK: a FIFO without a reader is an error, not a hang. */
    int fd = open(path, O_WRONLY | O_CREAT | O_NOCTTY | O_NONBLOCK | (fresh ? O_TRUNC : O_APPEND), 0666);
    FILE *csv = fd < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0 ? NULL : fdopen(fd, "w");
    if (!csv) {
        if (fd >= 0)
            close(fd);
        fprintf(stderr, "error: cannot write %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if (fresh)
        fputs(LOG_HEADER, csv);
    *from = fresh ? s->step : 0;
    if (fresh && s->step)
        printf("note: %s is a new loss log; its rows start at step %" PRId64 "\n", path, s->step);
    return csv;
}

/* One row of the log; the last step of each window also gets the window's
 * mean. The sum lives in the state because checkpoints carry it. */
static void log_step(Progress *p, State *s, double loss) {
    fprintf(p->csv, "%" PRId64 ",%.6f", s->step, loss);
    s->loss_window_sum += loss;
    if ((s->step + 1) % LOSS_WINDOW == 0) {
        fprintf(p->csv, ",%.6f", s->loss_window_sum / LOSS_WINDOW);
        s->loss_window_sum = 0;
    }
    fputc('\n', p->csv);
}

/* Pushes the log to the file (and, best effort, to disk: pipes and devices
 * refuse fsync), reporting write errors that stdio held back, such as a full
 * disk or a file size limit. */
static int sync_log(FILE *csv, const char *path) {
    errno = 0;
    if (fflush(csv) != 0 || ferror(csv)) {
        fprintf(stderr, "error: cannot write %s: %s\n", path, errno ? strerror(errno) : "write error");
        return -1;
    }
    (void)fsync(fileno(csv));
    return 0;
}

/* The end of a non-finite stop's message: what the user can go back to. */
static void print_kept(const Progress *p) {
    if (p->kept)
        fprintf(stderr, "  training stopped; the last checkpoint (%s, step %" PRId64 ") is kept\n", p->kept,
                p->kept_step);
    else
        fprintf(stderr, "  training stopped; no checkpoint was written yet\n");
}

/* The step check sees gradients before the update; this sees what the
 * update made of the params before they are saved. It holds with
 * --no-nan-check too: no checkpoint ever holds a non-finite value. */
static bool params_saveable(const Progress *p, const State *s) {
    const NjTensor *bad = first_nonfinite_param(s);
    if (!bad)
        return true;
    if (s->step == p->first_step)
        fprintf(stderr, "error: %s is non-finite in the parameters training started from\n  from %s\n", bad->name,
                bad->origin);
    else
        fprintf(stderr, "%serror: step %" PRId64 ": the %s update made %s non-finite (%s)\n  from %s\n",
                p->tty ? "\n" : "", s->step - 1, s->optim == OPTIM_ADAMW ? "AdamW" : "SGD", bad->name,
                s->optim == OPTIM_ADAMW ? "a finite gradient gave a non-finite moment or step"
                                        : "the learning rate times its gradient overflowed", bad->origin);
    print_kept(p);
    return false;
}

/* The log goes first, so that a checkpoint of step N always has rows
 * 0..N-1 in the log to resume (see log_prefix). */
static int checkpoint(Progress *p, const State *s, const char *path, const char *csv_path) {
    const NjTensor *bad = p->nan_check ? NULL : first_nonfinite_param(s);
    if (bad) {   /* --no-nan-check: training goes on, but nothing non-finite is saved */
        fprintf(stderr, "%swarning: step %" PRId64 ": %s is non-finite: no checkpoint written\n", p->tty ? "\n" : "",
                s->step, bad->name);
        return 0;
    }
    if (!params_saveable(p, s) || sync_log(p->csv, csv_path) != 0 || save(s, path, true) != 0)
        return -1;
    p->kept = path;
    p->kept_step = s->step;
    return 0;
}

/* Prints "LABEL loss X" for a split, with its number of examples if
 * count; val and test may have none (see data_load). A loss that is not
 * finite is printed, then reported as an error (-1): a run or an eval that
 * ends in NaN has failed. */
static int print_loss(State *s, const char *label, const Split *sp, bool count) {
    if (!sp->rows) {
        printf("%-5s loss - (no examples)\n", label);
        return 0;
    }
    const NjTensor *bad;
    int64_t bad_row = 0;
    double loss = split_loss(s, sp, &bad, &bad_row);
    printf("%-5s loss %.4f", label, loss);
    if (count)
        printf("  (%" PRId64 " examples)", sp->rows);
    putchar('\n');
    if (isfinite(loss))
        return 0;
    fflush(stdout);
    fprintf(stderr, "error: the %s loss is %g: the parameters%s are finite, but too large for the model's "
            "activations\n", label, loss, s->m->nstats ? " and batch statistics" : "");
    if (bad)
        fprintf(stderr, "  the first non-finite activation is %s, computed from example %" PRId64 " on (%s)\n",
                bad->name, bad_row, bad->origin);
    return -1;
}

/* A path as a gnuplot single-quoted string, where '' stands for ' and
 * nothing else is special; NULL if it holds a newline. */
static char *gnuplot_quoted(const char *path) {
    char *q = malloc(2 * strlen(path) + 3), *o = q;
    if (!q || strchr(path, '\n')) {
        free(q);
        return NULL;
    }
    *o++ = '\'';
    for (const char *p = path; *p; p++) {
        if (*p == '\'')
            *o++ = '\'';
        *o++ = *p;
    }
    *o++ = '\'';
    *o = 0;
    return q;
}

/* Draws the loss curve with gnuplot, no shell in between: the log's path
 * reaches it only inside its script, on its stdin, and the PNG comes back
 * on its stdout into a temporary file that replaces png only if gnuplot
 * exited 0 and drew something. Says why when there is no curve, telling a
 * missing gnuplot from a failing one; its warnings are passed on.
 * windows: the log has window means to draw (runs of 1000 steps or more);
 * shorter ones get the loss of every step. */
static void plot_loss(const char *csv, const char *png, bool windows) {
    char err[1024], said[512] = "";
    char *qcsv = gnuplot_quoted(csv);
    OutFile f = {0};
    int to_gp[2] = {-1, -1}, from_gp[2] = {-1, -1};
    const char *why = NULL;
    struct stat st;
    if (!qcsv)
        why = "the log's path holds a newline";
    else if (stat(csv, &st) != 0 || !S_ISREG(st.st_mode))
        why = "the loss log is not a regular file";
    else if (make_parent_dirs(png) != 0 || out_open(&f, png, err, sizeof err) != 0)
        why = err;
    else if (pipe(to_gp) != 0 || pipe(from_gp) != 0)
        why = strerror(errno);
    pid_t pid = -1;
    if (!why) {
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
            dup2(to_gp[0], 0);
            dup2(fileno(f.fp), 1);
            dup2(from_gp[1], 2);
            for (int k = 0; k < 2; k++)   /* gnuplot's stdin must see EOF */
                close(to_gp[k]), close(from_gp[k]);
            execlp("gnuplot", "gnuplot", (char *)NULL);
            _exit(127);
        }
        if (pid < 0)
            why = strerror(errno);
    }
    if (pid > 0) {
        close(to_gp[0]);
        close(from_gp[1]);
        to_gp[0] = from_gp[1] = -1;
        FILE *script = fdopen(to_gp[1], "w");
        to_gp[1] = -1;
        if (script) {
            fprintf(script, "set terminal pngcairo size 900,500\nset output\nset datafile separator ','\n"
                            "set key off\nset title 'training loss (%s)'\nset xlabel 'step'\n"
                            "set ylabel 'loss'\nset grid\nplot %s using 1:%d every ::1 with lines lw %d\n",
                    windows ? "mean over windows of 1000 steps" : "every step; runs of 1000 steps or more "
                    "show window means", qcsv, windows ? 3 : 2, windows ? 2 : 1);
            fclose(script);
        }
        size_t len = 0;
        ssize_t n;
        char buf[512];
        while ((n = read(from_gp[0], buf, sizeof buf)) > 0)
            for (ssize_t k = 0; k < n && len + 1 < sizeof said; k++)
                if (!isspace((unsigned char)buf[k]) || (len && said[len - 1] != ' '))
                    said[len++] = isspace((unsigned char)buf[k]) ? ' ' : buf[k];   /* one line */
        said[len && said[len - 1] == ' ' ? len - 1 : len] = 0;
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
            why = "gnuplot was killed";
        else if (WEXITSTATUS(status) == 127)
            why = "gnuplot is not installed (not found on PATH)";
        else if (WEXITSTATUS(status) != 0)
            why = "gnuplot failed";
        else if (!f.to.direct && (fstat(fileno(f.fp), &st) != 0 || st.st_size == 0))
            why = "gnuplot drew nothing";
        else if (out_commit(&f, err, sizeof err) != 0)
            why = err;
    }
    for (int k = 0; k < 2; k++) {
        if (to_gp[k] >= 0)
            close(to_gp[k]);
        if (from_gp[k] >= 0)
            close(from_gp[k]);
    }
    free(qcsv);
    if (why) {
        out_abort(&f);
        fprintf(stderr, "warning: no loss curve %s: %s%s%s\n", png, why, *said ? ": " : "", said);
    } else {
        if (*said)
            fprintf(stderr, "note: gnuplot: %s\n", said);
        printf("loss curve: %s\n", png);
    }
}

static int cmd_train(const NinjacModel *m, int argc, char **argv) {
    char default_ckpt[512], default_csv[512], default_png[512];
    snprintf(default_ckpt, sizeof default_ckpt, "out/%s/checkpoint.safetensors", m->name);
    snprintf(default_csv, sizeof default_csv, "out/%s/loss.csv", m->name);
    snprintf(default_png, sizeof default_png, "out/%s/loss.png", m->name);
    /* makemore.py's layout trains as makemore.py does: AdamW, its seed
     * (data split, init and batches all from it); it runs until stopped,
     * the trainer for WORDS_STEPS steps. */
    bool words = layout_of(m) == LAYOUT_WORDS;
    Command c = {"train", "Train with SGD as in the notebook (or torch.optim.AdamW as makemore.py), then\n"
                          "calibrate the batch statistics, print train and val loss and sample names.\n"
                          "--resume continues the checkpoint's optimizer, and with AdamW its --lr, --lr-decay-*,\n"
                          "--weight-decay, --betas and --eps unless given again.",
                 {{"--init", "P.safetensors", "start from these parameters (default: init with --seed)", NULL},
                  {"--seed", "S", words ? "torch.manual_seed(S) before the init, as makemore.py's --seed "
                                          "(default: 3407; not with --resume)"
                                        : "seed of the init's generator g, which the minibatches continue "
                                          "(default: 2147483647; not with --resume)", NULL},
                  {"--steps", "N", "optimizer steps", words ? WORDS_STEPS : "200000"},
                  {"--batch-seed", "S", "draw the minibatches from a new generator seeded S instead", NULL},
                  {"--optim", "NAME", words ? "sgd (p -= lr * grad) or adamw (torch.optim.AdamW's update; default: "
                                              "adamw as makemore.py, or the --resume checkpoint's)"
                                            : "sgd (p -= lr * grad) or adamw (torch.optim.AdamW's update; default: "
                                              "sgd, or the --resume checkpoint's)", NULL},
                  {"--lr", "LR", "learning rate (default: 0.1 with sgd, 5e-4 with adamw)", NULL},
                  {"--lr-decay-step", "N", "the step from which --lr-decay-to applies (default: 100000)", NULL},
                  {"--lr-decay-to", "LR", "learning rate from the decay step on (default: 0.01 with sgd; "
                                          "--lr with adamw, no decay)", NULL},
                  {"--weight-decay", "WD", "adamw: decoupled weight decay of every param, p *= 1 - lr * WD "
                                           "(default: 0.01)", NULL},
                  {"--betas", "B1,B2", "adamw: the moments' decay rates, each in [0, 1) (default: 0.9,0.99)", NULL},
                  {"--eps", "EPS", "adamw: added to the denominator, > 0 (default: 1e-8)", NULL},
                  {"--data", "PATH", "one name per line", DEFAULT_DATA},
                  {"--save", "CKPT", "checkpoint written every --checkpoint-every steps and at the end", default_ckpt},
                  {"--checkpoint-every", "N", "steps between checkpoints (0: only at the end)", "10000"},
                  {"--resume", "CKPT", "continue from this checkpoint", NULL},
                  {"--log", "CSV", "loss of every step", default_csv},
                  {"--plot", "PNG", "loss curve drawn with gnuplot (\"\" for none)", default_png},
                  {"--samples", "N", "names to sample at the end", "20"},
                  {"--temperature", "T", "the samples' logits are divided by T (> 0)", "1.0"},
                  {"--top-k", "K", "sample among the K most likely characters only (0: all)", "0"},
                  {"--no-nan-check", NULL, "do not stop at the first non-finite loss or gradient", NULL},
                  {"--threads", "N", THREADS_HELP, "1"},
                  {0}}};
    int rc = parse_opts(m, &c, argc, argv);
    if (rc)
        return rc == 1 ? 0 : rc;
    int64_t steps, batch_seed, decay_step = 100000, every, seed = words ? MAKEMORE_SEED : 2147483647, samples;
    SampleOpts so = {.seed = 2147483657ULL};
    double lr = 0, lr_late = 0;
    /* Each AdamW option as given, over makemore's defaults (resume: over the checkpoint's). */
    AdamWHyper given = {.lr = ADAMW_DEFAULT_LR, .lr_decay_to = ADAMW_DEFAULT_LR, .lr_decay_step = decay_step,
                        .weight_decay = ADAMW_DEFAULT_WEIGHT_DECAY, .beta1 = ADAMW_DEFAULT_BETA1,
                        .beta2 = ADAMW_DEFAULT_BETA2, .eps = ADAMW_DEFAULT_EPS};
    if (!opt_int(&c, "--steps", 0, INT64_MAX, &steps) ||
        (opt(&c, "--batch-seed") && !opt_int(&c, "--batch-seed", 0, INT64_MAX, &batch_seed)) ||
        (opt(&c, "--lr-decay-step") && !opt_int(&c, "--lr-decay-step", 0, INT64_MAX, &decay_step)) ||
        !opt_int(&c, "--checkpoint-every", 0, INT64_MAX, &every) ||
        (opt(&c, "--seed") && !opt_int(&c, "--seed", 0, INT64_MAX, &seed)) ||
        !opt_int(&c, "--samples", 0, INT_MAX, &samples) || !sample_opts(&c, &so) ||
        (opt(&c, "--lr") && !opt_double(&c, "--lr", &lr)) ||
        (opt(&c, "--lr-decay-to") && !opt_double(&c, "--lr-decay-to", &lr_late)) ||
        (opt(&c, "--weight-decay") && !opt_double(&c, "--weight-decay", &given.weight_decay)) ||
        (opt(&c, "--eps") && !opt_double(&c, "--eps", &given.eps)) ||
        (opt(&c, "--betas") && !opt_betas(&c, &given.beta1, &given.beta2)) || !opt_threads(&c))
        return 2;
    if (!(fabs(lr) <= FLT_MAX) || !(fabs(lr_late) <= FLT_MAX))
        return usage_error(&c, "--lr and --lr-decay-to must be finite floats (at most %g)", (double)FLT_MAX);
    const char *optim = opt(&c, "--optim");
    const char *adamw_only = opt(&c, "--weight-decay") ? "--weight-decay" : opt(&c, "--betas") ? "--betas"
                           : opt(&c, "--eps") ? "--eps" : NULL;
    if (optim && strcmp(optim, "sgd") && strcmp(optim, "adamw"))
        return usage_error(&c, "--optim takes sgd or adamw, not '%s'", optim);
    if (!optim && words && !opt(&c, "--resume"))
        optim = "adamw";
    if (optim && !strcmp(optim, "sgd") && adamw_only)
        return usage_error(&c, "%s applies to --optim adamw, not sgd", adamw_only);
    if (!optim && adamw_only && !opt(&c, "--resume"))
        return usage_error(&c, "%s applies to --optim adamw: give --optim adamw (the default is sgd)", adamw_only);
    const char *why = adamw_invalid(&given);
    if (why)
        return usage_error(&c, "%s", why);
    if (opt(&c, "--init") && opt(&c, "--resume"))
        return usage_error(&c, "--init and --resume exclude each other");
    if ((opt(&c, "--seed") || opt(&c, "--batch-seed")) && opt(&c, "--resume"))
        return usage_error(&c, "--%s and --resume exclude each other (the checkpoint holds the generator)",
                           opt(&c, "--seed") ? "seed" : "batch-seed");
    bool nan_check = !opt(&c, "--no-nan-check");
    PathArg paths[] = {{"--data", opt(&c, "--data"), IN, NULL}, {"--init", opt(&c, "--init"), IN, NULL},
                       {"--resume", opt(&c, "--resume"), IN, NULL}, {"--log", opt(&c, "--log"), LOG, NULL},
                       {"--save", opt(&c, "--save"), OUT, "--resume"}, {"--plot", *opt(&c, "--plot") ? opt(&c, "--plot") : NULL, OUT, NULL}};
    if (check_paths(paths, 6) != 0)
        return 1;

    Dataset ds;
    State s;
    if (load_data(m, opt(&c, "--data"), &ds) != 0)
        return 1;
    if (new_state(m, &s) != 0) {
        data_free(&ds);
        return 1;
    }
    rc = 1;
    Progress p = {.tty = isatty(2), .nan_check = nan_check};
    int32_t *X = malloc(sizeof(int32_t) * (size_t)m->batch * (size_t)ds.train.block_size);
    int32_t *Y = malloc(sizeof(int32_t) * (size_t)m->batch * (size_t)ds.train.target_width);
    if (!X || !Y) {
        fprintf(stderr, "error: out of memory\n");
        goto done;
    }
    if (ds.train.rows > UINT32_MAX) {
        fprintf(stderr, "error: %" PRId64 " training examples: torch.randint draws indices below 2^32\n",
                ds.train.rows);
        goto done;
    }
    const char *resume = opt(&c, "--resume");
    if (resume) {
        bool ck;
        if (load(&s, resume, &ck) != 0)
            goto done;
        if (!ck) {
            fprintf(stderr, "error: %s holds parameters, not a checkpoint: use --init for it\n", resume);
            goto done;
        }
        if (check_vocab(&s, &ds, resume, opt(&c, "--data")) != 0)
            goto done;

        if (steps < s.step) {
            fprintf(stderr, "error: --steps %" PRId64 " is before %s's step %" PRId64 " (nothing to train; "
                    "eval and sample take a checkpoint as it is)\n", steps, resume, s.step);
            goto done;
        }
        s.calibrated = false;
        p.kept = resume;
        p.kept_step = s.step;
        /* The moments belong to one optimizer: another would start from
         * none, which is not a resume. */
        const char *had = s.optim == OPTIM_ADAMW ? "adamw" : "sgd";
        if (optim && strcmp(optim, had)) {
            fprintf(stderr, "error: %s is a checkpoint of an %s run; it cannot continue with --optim %s "
                    "(hint: --init %s --optim %s starts a new run from its parameters)\n", resume, had, optim,
                    resume, optim);
            goto done;
        }
        if (s.optim == OPTIM_SGD && adamw_only) {
            fprintf(stderr, "error: %s applies to --optim adamw; %s is a checkpoint of an sgd run\n", adamw_only,
                    resume);
            goto done;
        }
        optim = had;
        if (s.optim == OPTIM_ADAMW) {
            given.lr = s.adamw.lr;   /* what was not given again continues as the checkpoint has it */
            given.lr_decay_to = s.adamw.lr_decay_to;
            given.lr_decay_step = s.adamw.lr_decay_step;
            for (int k = 0; k < 4; k++) {
                static const char *const names[4] = {"--weight-decay", "--betas", "--betas", "--eps"};
                double *mine[4] = {&given.weight_decay, &given.beta1, &given.beta2, &given.eps};
                const double theirs[4] = {s.adamw.weight_decay, s.adamw.beta1, s.adamw.beta2, s.adamw.eps};
                if (!opt(&c, names[k]))
                    *mine[k] = theirs[k];
            }
        }
    } else {
        /* As in the notebook, the minibatches continue the init's
         * generator; with --init too, as if the init had been drawn. */
        if (words) {
            if ((opt(&c, "--init") && load(&s, opt(&c, "--init"), NULL) != 0) ||
                makemore_batches(m, (uint64_t)seed, ds.nwords, opt(&c, "--init") ? NULL : s.params, &s.batch_rng) != 0)
                goto done;
        } else if (!opt(&c, "--init"))
            init_params(m, s.params, (uint64_t)seed, &s.batch_rng);
        else if (load(&s, opt(&c, "--init"), NULL) != 0 || init_generator(m, (uint64_t)seed, &s.batch_rng) != 0)
            goto done;
        /* Params trained on a vocabulary (a checkpoint) must get it again;
         * new ones take the data's. */
        if (check_vocab(&s, &ds, opt(&c, "--init"), opt(&c, "--data")) != 0)
            goto done;
        if (opt(&c, "--batch-seed"))
            tg_seed(&s.batch_rng, (uint64_t)batch_seed);
        /* --init takes only the parameters, also from a checkpoint: it is a
         * new run from step 0, not a resume. */
        s.step = 0;
        s.loss_window_sum = 0;
        s.calibrated = false;
        /* A new run: new moments, also from an AdamW checkpoint. */
        memset(s.exp_avg, 0, m->params_bytes);
        memset(s.exp_avg_sq, 0, m->params_bytes);
        optim = optim ? optim : "sgd";
    }
    s.optim = !strcmp(optim, "adamw") ? OPTIM_ADAMW : OPTIM_SGD;
    if (s.optim == OPTIM_ADAMW) {
        if (opt(&c, "--lr"))
            given.lr = lr;
        /* No decay unless asked for, as makemore.py trains. */
        given.lr_decay_to = opt(&c, "--lr-decay-to") ? lr_late : opt(&c, "--lr") || !resume ? given.lr
                                                                                            : given.lr_decay_to;
        if (opt(&c, "--lr-decay-step"))
            given.lr_decay_step = decay_step;
        s.adamw = given;
        lr = given.lr, lr_late = given.lr_decay_to, decay_step = given.lr_decay_step;
    } else {
        lr = opt(&c, "--lr") ? lr : 0.1;
        lr_late = opt(&c, "--lr-decay-to") ? lr_late : 0.01;
    }
    const char *csv_path = opt(&c, "--log"), *ckpt = opt(&c, "--save"), *png = opt(&c, "--plot");
    int64_t log_from;
    if (!(p.csv = open_log(csv_path, &s, resume, &log_from)))
        goto done;
    printf("%s: %" PRId64 " parameters, %" PRId64 " training examples, batch %d, steps %" PRId64 "..%" PRId64 "\n",
           m->name, (int64_t)(m->params_bytes / sizeof(float)), ds.train.rows, m->batch, s.step, steps);
    char schedule[64] = "";   /* a rate that stays is said once */
    if (lr_late != lr)
        snprintf(schedule, sizeof schedule, " (%g from step %" PRId64 ")", lr_late, decay_step);
    if (s.optim == OPTIM_ADAMW)
        printf("optimizer: adamw, lr %g%s, weight decay %g, betas %g,%g, eps %g\n", lr, schedule,
               s.adamw.weight_decay, s.adamw.beta1, s.adamw.beta2, s.adamw.eps);
    else
        printf("optimizer: sgd, lr %g%s\n", lr, schedule);
    fflush(stdout);
    clock_gettime(CLOCK_MONOTONIC, &p.start);
    p.first_step = s.step;
    const int32_t *in[2] = {X, Y};
    int block = ds.train.block_size, width = ds.train.target_width;
    while (s.step < steps) {
        for (int r = 0; r < m->batch; r++) {
            int64_t ix = tg_randint(&s.batch_rng, ds.train.rows);
            memcpy(X + (size_t)r * block, ds.train.X + ix * block, sizeof(int32_t) * (size_t)block);
            memcpy(Y + (size_t)r * width, ds.train.Y + ix * width, sizeof(int32_t) * (size_t)width);
        }
        m->forward(s.params, in, s.acts);
        m->backward(s.params, in, s.acts, s.grads);
        double loss = read_real(s.acts, m->loss_offset);
        if (nan_check && !step_looks_finite(&s)) {
            bool in_grads;
            const NjTensor *bad = first_nonfinite(&s, &in_grads);
            if (bad) {
                fprintf(stderr, "%serror: step %" PRId64 ": %s%s became non-finite (%s)\n  from %s\n",
                        p.tty ? "\n" : "", s.step, in_grads ? "the gradient " : "", bad->name,
                        isfinite(loss) ? "loss is finite" : "loss too", bad->origin);
                print_kept(&p);
                goto done;
            }
        }
        if (s.optim == OPTIM_ADAMW)
            adamw_step(m, s.params, s.grads, s.exp_avg, s.exp_avg_sq, &s.adamw, s.step < decay_step ? lr : lr_late,
                       s.step + 1);
        else
            m->sgd(s.params, s.grads, s.step < decay_step ? lr : lr_late);
        log_step(&p, &s, loss);
        if (s.step % 10000 == 0 || (p.tty && s.step % 500 == 0) || s.step + 1 == steps)
            report(&p, s.step, steps, loss);
        s.step++;
        if (every && s.step % every == 0 && s.step < steps && checkpoint(&p, &s, ckpt, csv_path) != 0)
            goto done;
    }
    if (p.tty)
        fputc('\n', stderr);
    int log_rc = sync_log(p.csv, csv_path);
    if (fclose(p.csv) != 0 && log_rc == 0) {
        fprintf(stderr, "error: cannot write %s: %s\n", csv_path, strerror(errno));
        log_rc = -1;
    }
    p.csv = NULL;
    if (log_rc != 0)
        goto done;
    printf("trained %" PRId64 " steps in %.1f s\n", s.step - p.first_step, seconds_since(&p.start));
    if (!params_saveable(&p, &s) || calibrate(&s, &ds.train) != 0 || save(&s, ckpt, true) != 0)
        goto done;
    int losses_rc = print_loss(&s, "train", &ds.train, false);
    losses_rc |= words ? print_loss(&s, "test", &ds.test, false) : print_loss(&s, "val", &ds.val, false);
    printf("checkpoint: %s\nloss log:   %s\n", ckpt, csv_path);
    report_threads();
    if (png && *png)
        plot_loss(csv_path, png, steps / LOSS_WINDOW > log_from / LOSS_WINDOW);
    if (losses_rc != 0)
        goto done;
    if (samples) {
        printf("samples:\n");
        so.count = (int)samples;
        if (sample_names(&s, &ds, &so) != 0)
            goto done;
    }
    rc = 0;
done:
    if (p.csv)
        fclose(p.csv);
    free(X);
    free(Y);
    state_free(&s);
    data_free(&ds);
    return rc;
}

/* ---- eval, sample ---- */

static int load_calibrated(const NinjacModel *m, const char *path, const char *data, State *s, Dataset *ds) {
    if (load_data(m, data, ds) != 0)
        return -1;
    if (new_state(m, s) != 0) {
        data_free(ds);
        return -1;
    }
    if (load(s, path, NULL) != 0 || check_vocab(s, ds, path, data) != 0 ||
        (!s->calibrated && calibrate(s, &ds->train) != 0)) {
        state_free(s);
        data_free(ds);
        return -1;
    }
    return 0;
}

static int cmd_eval(const NinjacModel *m, int argc, char **argv) {
    Command c = {"eval", "Loss on whole splits, batch statistics frozen (calibrated over the training\n"
                         "set if the file holds none).",
                 {{"--load", "CKPT", "parameters or checkpoint", NULL},
                  {"--split", "NAME", "train, val, test or all", "all"},
                  {"--data", "PATH", "one name per line", DEFAULT_DATA},
                  {"--threads", "N", THREADS_HELP, "1"},
                  {0}}};
    int rc = parse_opts(m, &c, argc, argv);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (!opt_threads(&c))
        return 2;
    const char *split = opt(&c, "--split");
    if (!opt(&c, "--load"))
        return usage_error(&c, "eval needs --load");
    if (strcmp(split, "train") && strcmp(split, "val") && strcmp(split, "test") && strcmp(split, "all"))
        return usage_error(&c, "--split takes train, val, test or all, not '%s'", split);
    State s;
    Dataset ds;
    if (load_calibrated(m, opt(&c, "--load"), opt(&c, "--data"), &s, &ds) != 0)
        return 1;
    const char *names[3] = {"train", "val", "test"};
    const Split *splits[3] = {&ds.train, &ds.val, &ds.test};
    rc = 0;
    for (int k = 0; k < 3; k++) {
        if (strcmp(split, "all") && strcmp(split, names[k]))
            continue;
        /* A split asked for by name must have a loss to give. */
        if (!splits[k]->rows && strcmp(split, "all")) {
            fprintf(stderr, "error: %s: the %s split has no examples (%d words%s)\n", opt(&c, "--data"), names[k],
                    ds.nwords, ds.max_word_length ? "; makemore.py's layout has train and test only" : "");
            rc = 1;
            continue;
        }
        if (print_loss(&s, names[k], splits[k], true) != 0)
            rc = 1;
    }
    report_threads();
    state_free(&s);
    data_free(&ds);
    return rc;
}

static int cmd_sample(const NinjacModel *m, int argc, char **argv) {
    Command c = {"sample", "Generate names as the notebook does: softmax of logits, torch.multinomial's\n"
                           "draw, stop at '.'.",
                 {{"--load", "CKPT", "parameters or checkpoint", NULL},
                  {"-n", "N", "how many names", "20"},
                  {"--seed", "S", "seed of the sampling generator (the notebook's 2147483647 + 10)", "2147483657"},
                  {"--temperature", "T", "the logits are divided by T (> 0), as makemore.py's generate()", "1.0"},
                  {"--top-k", "K", "draw among the K most likely characters only (0: all)", "0"},
                  {"--data", "PATH", "the data whose vocabulary the model was trained on", DEFAULT_DATA},
                  {0}}};
    int rc = parse_opts(m, &c, argc, argv);
    if (rc)
        return rc == 1 ? 0 : rc;
    int64_t n, seed;
    if (!opt(&c, "--load"))
        return usage_error(&c, "sample needs --load");
    SampleOpts so;
    if (!opt_int(&c, "-n", 0, INT_MAX, &n) || !opt_int(&c, "--seed", 0, INT64_MAX, &seed) || !sample_opts(&c, &so))
        return 2;
    so.count = (int)n;
    so.seed = (uint64_t)seed;
    State s;
    Dataset ds;
    if (load_calibrated(m, opt(&c, "--load"), opt(&c, "--data"), &s, &ds) != 0)
        return 1;
    rc = sample_names(&s, &ds, &so) ? 1 : 0;
    state_free(&s);
    data_free(&ds);
    return rc;
}

/* ---- grads ---- */

static void add(StWriter *w, const char *prefix, const NjTensor *t, const void *base, char **names, int *count) {
    size_t len = strlen(prefix) + strlen(t->name) + 1;
    char *name = malloc(len);
    if (!name)
        return;
    snprintf(name, len, "%s%s", prefix, t->name);
    names[(*count)++] = name;
    int64_t shape[NJ_MAX_RANK];
    for (int d = 0; d < t->rank; d++)
        shape[d] = t->shape[d];
    st_add(w, name, ST_F32, t->rank, shape, (const char *)base + t->offset);
}

static int cmd_grads(const NinjacModel *m, int argc, char **argv) {
    Command c = {"grads", "One forward and backward pass on a given batch. Writes loss, grad.<name>\n"
                          "for every kept gradient (params; every intermediate with -O0) and act.<name>\n"
                          "for every activation the build keeps (-O0: every name; -O leaves out the\n"
                          "names of rewritten lines and the ones held in registers).",
                 {{"--params", "P.safetensors", "parameters", NULL},
                  {"--inputs", "B.safetensors", "the batch: every input of the spec", NULL},
                  {"--out", "G.safetensors", "where to write", NULL},
                  {0}}};
    int rc = parse_opts(m, &c, argc, argv);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (!opt(&c, "--params") || !opt(&c, "--inputs") || !opt(&c, "--out"))
        return usage_error(&c, "grads needs --params, --inputs and --out");
    PathArg paths[] = {{"--params", opt(&c, "--params"), IN, NULL}, {"--inputs", opt(&c, "--inputs"), IN, NULL},
                       {"--out", opt(&c, "--out"), OUT, NULL}};
    if (check_paths(paths, 3) != 0)
        return 1;
    State s;
    int32_t *inputs[32] = {0};
    char err[1024];
    if (new_state(m, &s) != 0)
        return 1;
    rc = 1;
    if (load(&s, opt(&c, "--params"), NULL) != 0)
        goto done;
    if (load_inputs(m, opt(&c, "--inputs"), inputs, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    m->forward(s.params, (const int32_t *const *)inputs, s.acts);
    m->backward(s.params, (const int32_t *const *)inputs, s.acts, s.grads);
    StWriter *w = st_writer_new();
    char **names = calloc((size_t)(m->nacts + m->ngrads), sizeof(char *));
    int count = 0;
    float loss = (float)read_real(s.acts, m->loss_offset);
    st_add(w, "loss", ST_F32, 0, NULL, &loss);
    st_add_meta(w, "model", m->name);
    st_add_meta(w, "dims", m->dims);
    for (int i = 0; names && i < m->ngrads; i++)
        add(w, "grad.", &m->grads[i], s.grads, names, &count);
    for (int i = 0; names && i < m->nacts; i++)
        add(w, "act.", &m->acts[i], s.acts, names, &count);
    rc = names && make_parent_dirs(opt(&c, "--out")) == 0 &&
         st_write_atomic(w, opt(&c, "--out"), err, sizeof err) == 0 ? 0 : 1;
    if (rc)
        fprintf(stderr, "error: %s\n", names ? err : "out of memory");
    st_writer_free(w);
    for (int i = 0; i < count; i++)
        free(names[i]);
    free(names);
done:
    for (int k = 0; k < m->ninputs; k++)
        free(inputs[k]);
    state_free(&s);
    return rc;
}

/* ---- main ---- */

static void print_usage(const NinjacModel *m, FILE *to) {
    fprintf(to,
            "usage: %s <command> [options]      (%s --help for a command's options)\n\n"
            "The trainer of %s (%s, %s).\n\n"
            "commands:\n"
            "  init     initialise parameters as the spec says\n"
            "  train    train with SGD or AdamW, calibrate, evaluate, sample (the notebook's exercise 4)\n"
            "  eval     loss on whole splits with batch statistics frozen\n"
            "  sample   generate names\n"
            "  grads    one forward and backward pass on a given batch, all gradients to a file\n\n",
            m->name, "<command>", m->spec_file, m->dims, m->opt_level == 0 ? "-O0" : "-O");
    Layout layout = layout_of(m);
    if (layout == LAYOUT_NONE)
        fprintf(to, "data: its inputs fit none of the data layouts (train, eval and sample say which there are)\n");
    else if (layout == LAYOUT_PAIRS)
        fprintf(to, "data: lecture 1's pairs (%s: a character, %s: the next one)\n", m->inputs[0].name,
                m->inputs[1].name);
    else if (layout == LAYOUT_WINDOWS)
        fprintf(to, "data: the notebook's context windows (%s: %d characters, %s: the next one)\n",
                m->inputs[0].name, m->inputs[0].shape[1], m->inputs[1].name);
    else
        fprintf(to, "data: makemore.py's words, one a row (%s: token 0 then the word, %s: the word then 0, "
                "-1 after)\n", m->inputs[0].name, m->inputs[1].name);
}

int ninjac_main(int argc, char **argv, const NinjacModel *m) {
    /* Past a file size limit (ulimit -f) a write then fails with EFBIG,
     * which the writers report (naming the file) and clean up after; by
     * default SIGXFSZ would kill the trainer mid-write instead, leaving its
     * temporary checkpoint behind and no word of why. */
    signal(SIGXFSZ, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);   /* gnuplot gone early: a failed write, not a dead trainer */
    files_catch_signals();      /* SIGINT, SIGTERM: no temporary checkpoint left behind */
    /* A step's matmuls are too small for threads to pay; a user who sets
     * OpenBLAS's thread count gets what they asked for. */
    if (!getenv("OPENBLAS_NUM_THREADS") && !getenv("OMP_NUM_THREADS"))
        openblas_set_num_threads(1);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_usage(m, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    static const struct {
        const char *name;
        int (*run)(const NinjacModel *, int, char **);
    } commands[] = {{"init", cmd_init}, {"train", cmd_train}, {"eval", cmd_eval},
                    {"sample", cmd_sample}, {"grads", cmd_grads}};
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(m, argc - 2, argv + 2);
    fprintf(stderr, "error: unknown command '%s'\n", argv[1]);
    print_usage(m, stderr);
    return 2;
}
