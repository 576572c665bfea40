/* ninjac.h - the one internal header of the compiler.
 *
 * Pipeline (main.c): lexer.l + parser.y build the AST (Stmt, Node);
 * lower.c (with ir.c, scope.c, init.c, analysis.c; lower.h) lowers it to
 * tensor IR (Tensor, Op) and checks every shape;
 * autodiff.c derives the backward pass (Grad); emit_c.c (with emit_*.c,
 * emit.h) writes C.
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
    X(ADD, "+") X(SUB, "-") X(MUL, "*") X(DIV, "/") X(FLOORDIV, "//") X(POW, "**") X(MATMUL, "@") \
    X(EQ, "==") X(NE, "!=") X(LT, "<") X(LE, "<=") X(GT, ">") X(GE, ">=")

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
    N_SLICE,    /* start:stop:step inside [], args[3], each NULL when left out */
    N_ELLIPSIS, /* ... inside [] */
    N_STR,      /* 'text' as float's argument: name (the text without quotes) */
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
    S_ASSIGN,   /* name = value; name op= value (aug_op) */
    S_UNPACK,   /* a, b, c = value: targets are names */
    S_EXPR,     /* value alone on its line: hiddens.append(h) */
    S_FOR,      /* for name in value: body */
    S_INDEX_ASSIGN, /* target[...] = value */
    S_ERROR,    /* a line with a syntax error: its names are poisoned, not unknown */
} StmtKind;

typedef struct Stmt Stmt;
struct Stmt {
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
    bool augmented; /* S_ASSIGN written name op= rhs: value is name op rhs */
    Node **targets; /* S_UNPACK: N_NAME nodes; S_INDEX_ASSIGN: one N_INDEX */
    int ntargets;
    Stmt **body;    /* S_FOR */
    int nbody;
};

typedef struct {
    Source *src;
    Vec stmts;      /* Stmt* */
} Program;

void parse_program(Program *prog);  /* reports syntax errors through diag */

/* ---- lower.c and its helpers: the tensor IR ---- */
/* DT_BOOL: a mask, as a comparison gives it; stored as 0 and 1 of the real
 * type, and no gradient flows through it (autodiff.c) */
typedef enum { DT_FLOAT, DT_INT, DT_BOOL } DType;

typedef enum {
    T_PARAM,    /* trained, has an init */
    T_INPUT,    /* integer data, one row per example */
    T_ACT,      /* computed by an op */
} TensorKind;

/* ---- ops.c and ops.def: the op table ----
 * One row an op (ops.def), the single source of what ninjac knows about it:
 * how Python spells it, its family (which decides its shape rule and its
 * code), its forward and gradient templates, the C math functions they
 * call, what its gradient reads, its aux array. Lowering, autodiff, the
 * planner, the emitter, names.c's reserved identifiers and the diagnostics'
 * "supported:" lists all read it; `ninjac --list-ops` prints it. */

/* The C math functions generated code calls: the double and float names,
 * the -O float code's own version (runtime/ninjac_kernels.h) if any, and
 * the arity of the vector version -O declares (glibc's libmvec), 0: none
 * (sqrt and fabs are instructions). */
#define NJ_MATH(X) \
    X(EXP,  "exp",  "expf",  NULL,       1) \
    X(LOG,  "log",  "logf",  NULL,       1) \
    X(TANH, "tanh", "tanhf", "nj_tanhf", 1) \
    X(SQRT, "sqrt", "sqrtf", NULL,       0) \
    X(POW,  "pow",  "powf",  NULL,       2) \
    X(FABS, "fabs", "fabsf", NULL,       0) \
    X(ERF,  "erf",  "erff",  NULL,       1)

typedef enum {
#define X(id, dbl, flt, own, simd) MATH_##id,
    NJ_MATH(X)
#undef X
    MATH_COUNT
} MathFn;

typedef struct {
    const char *name[2];    /* double, float */
    const char *own;        /* -O's float version, or NULL */
    int simd_arity;         /* 0: no vector version is declared */
} MathInfo;
extern const MathInfo math_info[MATH_COUNT];
#define M_(id) (1u << MATH_##id)

typedef enum {
#define OP(id, ...) OP_##id,
#include "ops.def"
#undef OP
    OP_COUNT
} OpKind;

typedef enum {
    EW1,        /* elementwise, one tensor (and maybe a constant): out has its shape */
    EW2,        /* elementwise, two tensors: out has their broadcast shape */
    REDUCE,     /* over the dims in axes (keepdim) */
    SPECIAL,    /* its own shape rule (lower.c), forward and backward (emit_ops.c) */
} OpFamily;

/* How Python reaches an op: x.py(), torch.py(x), F.py(x). */
enum { PY_METHOD = 1, PY_TORCH = 2, PY_F = 4 };
/* Which operands of a Python operator are tensors: x op y, x op 2, 2 op x. */
enum { OPND_TT = 1, OPND_TC = 2, OPND_CT = 4 };
/* What a gradient rule reads: operand a, operand b, the output y. */
enum { READ_A = 1, READ_B = 2, READ_Y = 4 };

typedef struct {
    const char *name;       /* printed (dumps, comments) */
    OpFamily family;
    /* how Python spells it */
    const char *py;         /* the method or function name */
    const char *alias;      /* another method name for it (reshape) */
    unsigned forms;         /* PY_* */
    unsigned operands;      /* OPND_*: reached by the operator binop; 0: no operator */
    BinOp binop;
    const char *power;      /* x ** power, a constant exponent */
    const char *syntax;     /* any other spelling (indexing, attributes), for the list */
    /* its code: elementwise templates in $a $b (operands), $y (output), $g
     * (d(out)), $c (the constant), #1.5 (a literal of the real type) and
     * calls of the math functions in `math` */
    unsigned math;          /* M_(EXP) | ...: every math function its code calls */
    const char *forward;
    const char *grad[2];
    unsigned reads[2];      /* READ_*: what the gradient rule of operand k reads */
    bool scatters;          /* its gradient does not write each element of its operand once */
    bool mask;              /* its output is a bool mask (a comparison): no gradient flows through it */
    unsigned mask_in;       /* bit k: operand k must be a mask, and gets no gradient (masked_fill) */
    const char *aux;        /* an array it keeps beside its output, for its backward */
    bool grad_first_only;   /* only operand 0 gets a gradient: the others are functions
                               of it that its rule covers (batchnorm's mean and var) */
} OpInfo;
extern const OpInfo op_info[OP_COUNT];

bool op_elementwise(OpKind kind);
bool math_function_name(const char *name);    /* a name of NJ_MATH, in any version */
const char *op_spellings(OpKind kind);        /* "`x.exp()` `torch.exp(x)`" */
const char *supported_calls(unsigned forms);  /* "torch.exp, torch.log, ..." */
const char *supported_methods(void);          /* "sum mean var ..." */
const char *supported_operators(unsigned operands);   /* "+ - * / @" */
int check_op_table(void);                     /* errors printed; 0 when consistent */
void list_ops(FILE *out);                     /* the table as markdown (--list-ops) */

/* A compile-time scalar. When it depends on the batch dim, rows_expr
 * spells it in C with the batch size as `rows` (for inference on any
 * number of rows), as an expression a cast binds to whole: `rows`, a cast,
 * a call or one in parentheses; otherwise rows_expr is NULL. */
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
    int64_t ignore;         /* T_INPUT: a negative value also accepted (a cross_entropy
                             * target with ignore_index), or 0: none */
    int param_index;        /* T_PARAM: position among params */
    /* T_INPUT computed by torch.roll or x[...] = k (lower_int.c), NULL for
     * an input or its view: position p of a row (the dims after the batch
     * dim, flattened) holds iroot's value at position imap[p] of the same
     * row, or the constant ~imap[p] where imap[p] < 0 */
    const int32_t *imap;
    const Tensor *iroot;
    /* filled by autodiff.c */
    bool needs_grad;        /* depends on a param and reaches loss */
    bool reaches_loss;
    /* filled by analysis.c after lowering */
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
    int8_t perm[MAX_RANK];  /* PERMUTE: out dim d is dim perm[d] of in[0] */
    int64_t ignore;         /* CROSS_ENTROPY: ignore_index (negative), or 0: none */
    Loc loc;
    const Stmt *stmt;
    bool batch_reduction;   /* a REDUCE over the batch dim */
    /* rewrite.c: this op replaces the spec's lines from rewrite_first to
     * its own stmt, by the rule named rewrite_rule */
    const Stmt *rewrite_first;
    const char *rewrite_rule;
    /* SLICE: in dim d is read at start[d] + step[d] * (its out index); step 0:
     * the dim is selected (x[:, i]) and has no out dim */
    int64_t start[MAX_RANK], step[MAX_RANK];
};

const char *mask_constant(const Op *op);   /* ops.c: ", -inf", a mask op's constant for summaries, or "" */

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
bool has_batch(const Tensor *t);             /* a dim of it is (a multiple of) the batch */
const char *shape_str(const Tensor *t);   /* "[32, 64]" */

/* ---- rewrite.c: the default mode's rewrite rules (the atomic
 * cross-entropy chain to one op); returns how many chains it rewrote ---- */
int rewrite_model(Model *m);

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
/* How to emit (main.c reads them off the command line): the plan reads them too. */
typedef enum { GEMM_AUTO, GEMM_OWN, GEMM_BLAS } GemmChoice;

typedef struct {
    int opt_level;          /* 0: keep every intermediate gradient */
    GemmChoice gemm;        /* -O's matmuls: own kernels for small products, a BLAS for big ones */
    bool f64;               /* double instead of float */
    const char *outdir;
} EmitOptions;

typedef struct {
    int first, count;       /* a run of m->ops (forward) or bw->grads (backward) */
    const Tensor *space;    /* one loop nest over this tensor's indices; NULL: an op with its own code */
    const Grad *bn_sums;    /* backward: a batchnorm whose column sums of d(out) ride at the end of this loop */
    bool bn_sums_before;    /* backward: its first grad is a batchnorm whose sums rode in an earlier loop */
} Group;

typedef struct {
    bool fused;             /* -O: the groups below; -O0 emits every op on its own */
    Vec fwd, bwd;           /* Group*, covering the ops and the grads in order */
    Group **op_group;       /* per op id */
    Group **grad_group;     /* per index into bw->grads */
    bool *local;            /* per tensor id: a register of its group, no array */
    bool *recomputed;       /* per tensor id: such a register that the backward recomputes where it reads it */
    bool *dlocal;           /* per tensor id: its gradient is a register of its group */
    const Tensor **galias;  /* per tensor id: the tensor whose gradient array its gradient is (a view's) */
    bool *gin_place;        /* per tensor id: its gradient overwrites galias's array, which is dead (own code) */
    const Tensor **valias;  /* per tensor id: the activation whose array a view reads, instead of a copy */
    const Op **bias_add;    /* per op id: for a matmul, the add of a bias (x @ W + b) that computes its product */
    const Op **product_of;  /* per op id: for such an add, the matmul (whose own place has no code) */
} Plan;

void plan_step(const Model *m, const Backward *bw, const EmitOptions *opt, Plan *plan);
bool same_space(const Tensor *a, const Tensor *b);   /* the same shape, the same dims batch-sized */
bool own_products(const EmitOptions *opt);   /* -O's matmuls run ninjac's kernels, not the BLAS */
bool grad_covers_target(const Grad *g);   /* writes every element of d(target), once */
const Tensor *gradient_array(const Plan *plan, const Tensor *t);   /* whose gradient array holds t's gradient */

/* ---- emit_c.c ---- */
bool emits_special(OpKind kind);   /* emit_ops.c has the forward and backward of this SPECIAL op, and its aux
                                     arrays' declarations if its row names any */
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
