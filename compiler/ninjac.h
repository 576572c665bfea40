/* ninjac.h - the one internal header of the compiler.
 *
 * Pipeline (main.c): lexer.l + parser.y build the AST (Stmt, Node);
 * shape.c lowers it to tensor IR (Tensor, Op) and checks every shape;
 * autodiff.c derives the backward pass (Grad); emit_c.c writes C.
 * Memory: everything the compiler allocates comes from one arena, owned by
 * main and freed once at exit (arena.c). */
#ifndef NINJAC_H
#define NINJAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MAX_RANK 4
#define MAX_NAME 256
#define MAX_DIM_VALUE (1LL << 31)
#define MAX_OPS 20000          /* bounds the generated C and the time to write it */

/* ---- arena.c ---- */
void *arena_alloc(size_t size);   /* zeroed; exits with a message when out of memory */
char *arena_strdup(const char *s);
char *arena_strndup(const char *s, size_t n);
char *arena_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void arena_free_all(void);

/* A growable array of pointers, allocated from the arena. */
typedef struct {
    void **items;
    int len, cap;
} Vec;
void vec_push(Vec *v, void *item);

/* ---- diag.c ---- */
typedef struct {
    int begin, end;     /* byte offsets into the source; end exclusive */
} Loc;

typedef struct {
    const char *path;   /* as given on the command line */
    const char *name;   /* base name without directory or extension */
    const char *text;   /* NUL-terminated contents */
    size_t len;
} Source;

extern int diag_errors;
void diag_init(const Source *src);
void error_at(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void warning_at(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void note_at(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void error_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int loc_line(Loc loc);
const char *line_text(int line);   /* the source line, without its newline */
Loc loc_join(Loc a, Loc b);

/* ---- parser.y / lexer.l: the AST ---- */
/* Python's binary operators: the enum name and the spelling. */
#define NJ_BINOPS(X) \
    X(ADD, "+") X(SUB, "-") X(MUL, "*") X(DIV, "/") X(FLOORDIV, "//") X(POW, "**") X(MATMUL, "@")

typedef enum {
#define X(id, text) BIN_##id,
    NJ_BINOPS(X)
#undef X
} BinOp;
extern const char *const binop_text[];   /* "+", "//", ... */

typedef enum {
    N_NUM,      /* 3, 1e-5: num, is_int */
    N_NAME,     /* x: name */
    N_BINARY,   /* lhs op rhs */
    N_NEG,      /* -lhs */
    N_ATTR,     /* lhs.name */
    N_CALL,     /* lhs(args): args may be N_KWARG */
    N_INDEX,    /* lhs[args] */
    N_KWARG,    /* name=lhs inside a call */
    N_LIST,     /* [args] */
} NodeKind;

typedef struct Node Node;
struct Node {
    NodeKind kind;
    Loc loc;        /* the whole expression */
    Loc op_loc;     /* N_BINARY: the operator */
    BinOp op;       /* N_BINARY */
    int depth;      /* nesting depth, bounded so that no pass recurses too deep */
    Node *lhs, *rhs;
    const char *name;
    double num;
    bool is_int;
    Node **args;
    int nargs;
};

typedef enum {
    S_DIM,      /* dim name = value */
    S_INPUT,    /* input name: int[dims] < bound */
    S_PARAM,    /* param name: [dims] = value */
    S_ASSIGN,   /* name = value */
} StmtKind;

typedef struct {
    StmtKind kind;
    Loc loc;        /* the whole statement */
    Loc name_loc;
    const char *name;
    Node *value;    /* dim value, param init, assigned expression */
    Node **dims;    /* input/param shape */
    int ndims;
    Node *bound;    /* input bound */
    Loc type_loc;   /* input element type name */
    const char *type_name;
} Stmt;

typedef struct {
    Source *src;
    Vec stmts;      /* Stmt* */
} Program;

void parse_program(Program *prog);  /* reports syntax errors through diag */

/* ---- shape.c: the tensor IR ---- */
typedef enum { DT_FLOAT, DT_INT } DType;

typedef enum {
    T_PARAM,    /* trained, has an init */
    T_INPUT,    /* integer data, one row per example */
    T_ACT,      /* computed by an op */
} TensorKind;

/* Every op: its enum name, its printed name, and its family. Elementwise
 * ops also carry their C forward expression and the derivative of the
 * output with respect to each operand, times the incoming gradient $g:
 * $a $b operands, $y output, $c constant, #1.5 a literal of the real type,
 * exp( log( tanh( sqrt( pow( math functions of the real type. */
#define NJ_OPS(X) \
    X(ADD,     "add",      EW2, "$a + $b",            "$g",                         "$g") \
    X(SUB,     "sub",      EW2, "$a - $b",            "$g",                         "-$g") \
    X(MUL,     "mul",      EW2, "$a * $b",            "$g * $b",                    "$g * $a") \
    X(DIV,     "div",      EW2, "$a / $b",            "$g / $b",                    "-$g * $a / ($b * $b)") \
    X(ADD_C,   "add_c",    EW1, "$a + $c",            "$g",                         NULL) \
    X(SUB_C,   "sub_c",    EW1, "$a - $c",            "$g",                         NULL) \
    X(RSUB_C,  "rsub_c",   EW1, "$c - $a",            "-$g",                        NULL) \
    X(MUL_C,   "mul_c",    EW1, "$a * $c",            "$g * $c",                    NULL) \
    X(DIV_C,   "div_c",    EW1, "$a / $c",            "$g / $c",                    NULL) \
    X(RDIV_C,  "rdiv_c",   EW1, "$c / $a",            "-$g * $c / ($a * $a)",       NULL) \
    X(POW_C,   "pow_c",    EW1, "pow($a, $c)",        "$g * ($c * pow($a, $c - #1))", NULL) \
    X(SQUARE,  "square",   EW1, "$a * $a",            "$g * (#2 * $a)",             NULL) \
    X(RECIP,   "recip",    EW1, "#1 / $a",            "$g * (#-1 / ($a * $a))",     NULL) \
    X(RSQRT,   "rsqrt",    EW1, "#1 / sqrt($a)",      "$g * (#-0.5 * pow($a, #-1.5))", NULL) \
    X(SQRT,    "sqrt",     EW1, "sqrt($a)",           "$g * #0.5 / $y",             NULL) \
    X(NEG,     "neg",      EW1, "-$a",                "-$g",                        NULL) \
    X(EXP,     "exp",      EW1, "exp($a)",            "$g * $y",                    NULL) \
    X(LOG,     "log",      EW1, "log($a)",            "$g / $a",                    NULL) \
    X(TANH,    "tanh",     EW1, "tanh($a)",           "$g * (#1 - $y * $y)",        NULL) \
    X(RELU,    "relu",     EW1, "$a > #0 ? $a : #0",  "$a > #0 ? $g : #0",          NULL) \
    X(SIGMOID, "sigmoid",  EW1, "#1 / (#1 + exp(-$a))", "$g * $y * (#1 - $y)",      NULL) \
    X(MATMUL,  "matmul",   SPECIAL, NULL, NULL, NULL) \
    X(SUM,     "sum",      REDUCE,  NULL, NULL, NULL) \
    X(MEAN,    "mean",     REDUCE,  NULL, NULL, NULL) \
    X(VAR,     "var",      REDUCE,  NULL, NULL, NULL) \
    X(MAX,     "max",      REDUCE,  NULL, NULL, NULL) \
    X(EMBED,   "embed",    SPECIAL, NULL, NULL, NULL) \
    X(PICK,    "pick",     SPECIAL, NULL, NULL, NULL) \
    X(VIEW,    "view",     SPECIAL, NULL, NULL, NULL) \
    X(TRANSPOSE, "transpose", SPECIAL, NULL, NULL, NULL) \
    X(SOFTMAX, "softmax",  SPECIAL, NULL, NULL, NULL) \
    X(CROSS_ENTROPY, "cross_entropy", SPECIAL, NULL, NULL, NULL) \
    X(CAT,     "cat",      SPECIAL, NULL, NULL, NULL)

typedef enum {
#define X(id, name, family, fwd, da, db) OP_##id,
    NJ_OPS(X)
#undef X
    OP_COUNT
} OpKind;

typedef enum {
    EW1,        /* elementwise, one tensor (and maybe a constant) */
    EW2,        /* elementwise, two tensors, broadcast */
    REDUCE,     /* over the dims in axes */
    SPECIAL,    /* its own forward and backward code */
} OpFamily;

typedef struct {
    const char *name;
    OpFamily family;
    const char *forward;    /* elementwise only */
    const char *grad[2];    /* elementwise only */
} OpInfo;
extern const OpInfo op_info[OP_COUNT];

/* A compile-time scalar. When it depends on the batch dim, rows_expr
 * spells it in C with the batch size as `rows` (for inference on any
 * number of rows); otherwise rows_expr is NULL. */
typedef struct {
    double value;
    bool is_int;
    bool is_batch;          /* exactly the batch dim, e.g. n or x.shape[0] */
    const char *rows_expr;
} Scalar;

typedef struct Op Op;
typedef struct Tensor Tensor;

struct Tensor {
    int id;
    const char *name;       /* the spec's name, or a generated one for temporaries */
    const char *cname;      /* its identifier in the generated C (names.c); its gradient is d<cname> */
    bool is_temp;           /* no name in the spec */
    TensorKind kind;
    DType dtype;
    int rank;
    int64_t shape[MAX_RANK];
    bool batch[MAX_RANK];   /* this dim is the batch dim (rows) */
    Op *def;                /* T_ACT: the op computing it */
    const Stmt *stmt;       /* the declaration or forward line */
    Loc loc;                /* the expression it came from */
    int input_index;        /* T_INPUT: position among inputs */
    int64_t bound;          /* T_INPUT: values in [0, bound) */
    int param_index;        /* T_PARAM: position among params */
    /* filled by autodiff.c */
    bool needs_grad;        /* depends on a param and reaches loss */
    bool reaches_loss;
    /* filled by shape.c after lowering */
    bool frozen;            /* a batch statistic: frozen in inference */
    uint32_t input_deps;    /* bit k: depends on input k */
};

struct Op {
    OpKind kind;
    int id;
    Tensor *out;
    Tensor **in;            /* the operands: two at least (in[1] NULL for one); CAT's parts */
    int nin;
    Scalar c;               /* the constant of *_C ops, POW_C's exponent */
    uint32_t axes;          /* REDUCE, SOFTMAX (bit d: dim d) */
    bool keepdim;
    bool unbiased;          /* VAR */
    int cat_dim;            /* CAT */
    Loc loc;
    const Stmt *stmt;
    bool batch_reduction;   /* a REDUCE over the batch dim */
    int stop_index;         /* calibration: infer stage that ends before this op */
};

typedef struct {
    const char *name;
    int64_t value;
    bool overridden;
    Loc loc;
} Dim;

/* INIT_NUMBER is a Python number on the way to an init (folded in double);
 * zeros() and ones() are float tensors, INIT_CONST (folded in float). */
typedef enum { INIT_CONST, INIT_RANDN, INIT_UNIFORM, INIT_NUMBER } InitDist;

/* A param's init as PyTorch evaluates it: a draw (or a constant), then
 * float ops with constants, one tensor op at a time, left to right. */
#define MAX_INIT_STEPS 8      /* NJ_MAX_INIT_STEPS in runtime/ninjac_model.h */
typedef struct {
    BinOp op;               /* x = x op value for + - * / */
    bool reversed;          /* x = value op x (value - x) */
    double value;
} InitStep;

typedef struct {
    InitDist dist;
    bool named_generator;   /* randn(generator=g): the spec's generator */
    double value;           /* INIT_CONST, INIT_NUMBER: the value */
    int nsteps;
    InitStep steps[MAX_INIT_STEPS];
} Init;

typedef struct {
    Source *src;
    Vec dims;               /* Dim* */
    Vec tensors;            /* Tensor*, in order of definition */
    Vec ops;                /* Op*, in forward order */
    Vec params;             /* Tensor* */
    Vec inputs;             /* Tensor* */
    Init *inits;            /* per param */
    const char *generator;  /* the name in randn(generator=NAME), if any */
    Tensor *loss;
    Tensor *logits;         /* the tensor named `logits`, if any */
    int64_t batch;          /* rows of a training batch */
    const char *batch_dim;  /* the dim naming it */
} Model;

typedef struct {
    const char *name;
    int64_t value;
    Loc loc;                /* unused for -D */
} Define;

void build_model(Program *prog, Model *m, Define *defs, int ndefs);
int64_t tensor_numel(const Tensor *t);
const char *shape_str(const Tensor *t);   /* "[32, 64]" */

/* ---- names.c: C names ---- */
bool c_keyword(const char *name);        /* refused as a name: no C identifier can take it */
bool generated_local(const char *name);  /* refused for inputs: the generated functions' own locals */
const char *c_identifier(const char *name);   /* the model's id, as CMake's MAKE_C_IDENTIFIER */
void name_tensors(Model *m);             /* sets every tensor's cname */
bool c_name_reserved(const Model *m, const char *name);   /* C cannot use it as it is */
const char *free_c_name(const Model *m, const char *name, bool (*taken)(const void *ctx, const char *name),
                        const void *ctx);

/* ---- autodiff.c ---- */
/* One gradient contribution: d(in[operand]) += (rule of op) applied to d(out). */
typedef struct {
    Op *op;
    int operand;
    Tensor *target;
    uint32_t reduce_axes;   /* out dims summed over because target was broadcast */
} Grad;

typedef struct {
    Vec grads;              /* Grad*, in backward order */
} Backward;

void derive_backward(Model *m, Backward *bw);

/* ---- plan.c: how -O lays out the step (-O0: each op its own loop nest) ---- */
typedef struct {
    int first, count;       /* a run of m->ops (forward) or bw->grads (backward) */
    const Tensor *space;    /* one loop nest over this tensor's indices; NULL: an op with its own code */
} Group;

typedef struct {
    bool fused;             /* -O: the groups below; -O0 emits every op on its own */
    Vec fwd, bwd;           /* Group*, covering the ops and the grads in order */
    Group **op_group;       /* per op id */
    Group **grad_group;     /* per index into bw->grads */
    bool *local;            /* per tensor id: a register of its group, no array */
    bool *dlocal;           /* per tensor id: its gradient is a register of its group */
} Plan;

void plan_step(const Model *m, const Backward *bw, int opt_level, Plan *plan);
bool grad_covers_target(const Grad *g);   /* writes every element of d(target), once */

/* ---- emit_c.c ---- */
typedef enum { GEMM_AUTO, GEMM_OWN, GEMM_BLAS } GemmChoice;

typedef struct {
    int opt_level;          /* 0: keep every intermediate gradient */
    GemmChoice gemm;        /* -O's matmuls: own kernels for small products, a BLAS for big ones */
    bool f64;               /* double instead of float */
    const char *outdir;
} EmitOptions;

/* Writes NAME.h and NAME.c into outdir atomically; returns 0 on success. */
int emit_c(const Model *m, const Backward *bw, const Plan *plan, const EmitOptions *opt);
/* The same two texts in memory (malloc'd; the caller frees them). */
void emit_c_text(const Model *m, const Backward *bw, const Plan *plan, const EmitOptions *opt, char *text[2],
                 size_t len[2]);

/* ---- dump.c ---- */
void dump_ast(FILE *out, const Program *prog);
void dump_model(FILE *out, const Model *m);
void dump_backward(FILE *out, const Model *m, const Backward *bw);
void dump_plan(FILE *out, const Model *m, const Backward *bw, const Plan *plan);

#endif
