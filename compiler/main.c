/* main.c - the ninjac command line; main reads as the pipeline:
 * read, parse, lower and check shapes, derive the backward pass, emit C. */
#include "ninjac.h"
#include "files.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_SPEC_BYTES (64 << 20)
#define MAX_DEFINES 64

static const char usage[] =
    "usage: ninjac [options] SPEC.ninja\n"
    "\n"
    "Compiles a forward pass written like PyTorch into C forward and backward\n"
    "functions with every shape checked. Writes NAME.h and NAME.c for SPEC NAME.ninja.\n"
    "\n"
    "options:\n"
    "  -o DIR            write the generated files into DIR (default: .)\n"
    "  -D NAME=VALUE     override the dim NAME (e.g. -D n_hidden=200); repeatable\n"
    "  -O0               keep every intermediate gradient (as retain_grad() does), for diffing\n"
    "  -O, -O1           the default: keep only the parameter gradients and the activations\n"
    "                    something reads back (BatchNorm's output is recomputed where the\n"
    "                    backward reads it), fuse loops over the same indices, ninjac's own\n"
    "                    matmul kernels (x @ W + b in one call) and tanh\n"
    "  --gemm=auto|own|blas  -O's matmuls: ninjac's kernels (auto, the default, takes them at\n"
    "                    every size) or cblas_sgemm; -O0 and f64 always call the BLAS\n"
    "  --dtype f32|f64   the floating type of the generated code (default f32; f64 for\n"
    "                    finite-difference checks)\n"
    "  --dump=PASSES     print the IR after passes: parse, shape, grad, plan (comma-separated);\n"
    "                    with --dump and no -o nothing is written\n"
    "  --check           check the spec only; write nothing\n"
    "  --list-ops        print the supported ops (a markdown table) and exit\n"
    "  -h, --help        show this help\n"
    "  --version         show the version\n"
    "\n"
    "Diagnostics go to stderr as file:line:col: error: message. On any error\n"
    "nothing is written and the exit status is 1.\n";

typedef struct {
    const char *spec;
    EmitOptions emit;
    bool dump_parse, dump_shape, dump_grad, dump_plan, check_only, have_outdir;
    Define defines[MAX_DEFINES];
    int ndefines;
} Options;

static void die_usage(const char *fmt, const char *arg) {
    fprintf(stderr, "ninjac: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see ninjac --help)\n");
    exit(2);
}

static void parse_define(Options *o, const char *arg) {
    const char *eq = strchr(arg, '=');
    char *end;
    if (!eq || eq == arg)
        die_usage("-D needs NAME=VALUE, got '%s'", arg);
    errno = 0;
    long long v = strtoll(eq + 1, &end, 10);
    if (*end || end == eq + 1 || errno)
        die_usage("-D %s: the value must be an integer", arg);
    if (o->ndefines == MAX_DEFINES)
        die_usage("too many -D options (at most 64) at '%s'", arg);
    o->defines[o->ndefines++] = (Define){arena_strndup(arg, (size_t)(eq - arg)), v, {0, 0}};
}

static void parse_dump(Options *o, const char *list) {
    char *copy = arena_strdup(list);
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
        if (!strcmp(tok, "parse"))
            o->dump_parse = true;
        else if (!strcmp(tok, "shape"))
            o->dump_shape = true;
        else if (!strcmp(tok, "grad"))
            o->dump_grad = true;
        else if (!strcmp(tok, "plan"))
            o->dump_plan = true;
        else
            die_usage("unknown --dump pass '%s' (passes: parse, shape, grad, plan)", tok);
    }
}

static void parse_args(int argc, char **argv, Options *o) {
    o->emit.outdir = ".";
    o->emit.opt_level = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            exit(0);
        } else if (!strcmp(a, "--version")) {
            puts("ninjac 0.1");
            exit(0);
        } else if (!strcmp(a, "--list-ops")) {   /* the op table, checked, as README lists it */
            if (check_op_table())
                exit(1);
            list_ops(stdout);
            exit(0);
        } else if (!strcmp(a, "-o")) {
            if (++i == argc)
                die_usage("%s needs a directory", a);
            o->emit.outdir = argv[i];
            o->have_outdir = true;
        } else if (!strcmp(a, "-D")) {
            if (++i == argc)
                die_usage("%s needs NAME=VALUE", a);
            parse_define(o, argv[i]);
        } else if (!strncmp(a, "-D", 2)) {
            parse_define(o, a + 2);
        } else if (!strcmp(a, "-O0")) {
            o->emit.opt_level = 0;
        } else if (!strcmp(a, "-O") || !strcmp(a, "-O1")) {
            o->emit.opt_level = 1;
        } else if (!strncmp(a, "-O", 2)) {   /* -O2, -O3, -Os: levels ninjac does not have */
            die_usage("unknown optimisation level '%s' (ninjac has -O0, and -O or -O1, the default)", a);
        } else if (!strcmp(a, "--dtype") || !strncmp(a, "--dtype=", 8)) {
            const char *v = a[7] == '=' ? a + 8 : (++i < argc ? argv[i] : NULL);
            if (!v || (strcmp(v, "f32") && strcmp(v, "f64")))
                die_usage("--dtype takes f32 or f64, got '%s'", v ? v : "nothing");
            o->emit.f64 = !strcmp(v, "f64");
        } else if (!strncmp(a, "--gemm=", 7)) {
            const char *v = a + 7;
            if (!strcmp(v, "auto"))
                o->emit.gemm = GEMM_AUTO;
            else if (!strcmp(v, "own"))
                o->emit.gemm = GEMM_OWN;
            else if (!strcmp(v, "blas"))
                o->emit.gemm = GEMM_BLAS;
            else
                die_usage("--gemm takes auto, own or blas, got '%s'", v);
        } else if (!strncmp(a, "--dump=", 7)) {
            parse_dump(o, a + 7);
        } else if (!strcmp(a, "--check")) {
            o->check_only = true;
        } else if (a[0] == '-' && a[1]) {
            die_usage("unknown option '%s'", a);
        } else if (o->spec) {
            die_usage("only one spec at a time, got also '%s'", a);
        } else {
            o->spec = a;
        }
    }
    if (!o->spec)
        die_usage("%s", "no spec given");
}

/* Reads the whole file, growing the buffer as it goes, and refuses anything
 * above MAX_SPEC_BYTES. Only a regular file: a FIFO would hang the open. */
static Source *read_source(const char *path) {
    char err[FILES_PATH_MAX + 256];
    FILE *f = in_open(path, err, sizeof err);
    if (!f) {
        fprintf(stderr, "ninjac: %s\n", err);
        exit(1);
    }
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap || cap > MAX_SPEC_BYTES)
            break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger)
            free(buf);
        buf = bigger;
        cap *= 2;
    }
    bool failed = !buf || ferror(f);
    fclose(f);
    if (failed) {
        fprintf(stderr, "ninjac: cannot read %s%s\n", path, buf ? "" : ": out of memory");
        free(buf);
        exit(1);
    }
    if (len > MAX_SPEC_BYTES) {
        fprintf(stderr, "%s: error: the spec is larger than %d MB\n", path, MAX_SPEC_BYTES >> 20);
        free(buf);
        exit(1);
    }
    char *text = arena_strndup(buf, len);
    free(buf);
    Source *src = arena_alloc(sizeof(Source));
    src->path = path;
    src->text = text;
    src->len = len;
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    const char *dot = strrchr(name, '.');
    src->name = arena_strndup(name, dot && dot != name ? (size_t)(dot - name) : strlen(name));
    return src;
}

/* Names a spec may not have: the generated NAME.h would stand in for a
 * header that the generated code, the runtime or ninjac_add_model's main.c
 * include (the output directory is on the include path). */
static const char *const reserved_names[] = {
    "assert", "complex", "ctype", "errno", "fenv", "float", "inttypes", "iso646", "limits", "locale", "math",
    "setjmp", "signal", "stdalign", "stdarg", "stdatomic", "stdbool", "stddef", "stdint", "stdio", "stdlib",
    "stdnoreturn", "string", "tgmath", "threads", "time", "uchar", "wchar", "wctype",          /* C11 */
    "immintrin", "cblas", "main", "ninjac_model", "ninjac_kernels", "trainer", "safetensors", "files", "data",
    "rng", "state", "message", NULL};

/* The outputs, checked before any work: the spec's name (its file name up
 * to the last '.', as CMake's NAME_WLE) must be a C identifier that no
 * header needs, the directory a directory, and neither output the spec. */
static int check_outputs(const Options *o, const Source *src) {
    const char *name = src->name;
    bool ident = (*name < '0' || *name > '9') && *name;
    for (const char *p = name; *p; p++)
        ident = ident && (*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'));
    if (!ident) {
        fprintf(stderr, "ninjac: %s: the spec's name '%s' is not a C identifier: it names the generated files, "
                "their functions and the CMake target; rename the file\n", src->path, name);
        return -1;
    }
    for (int i = 0; reserved_names[i]; i++)
        if (!strcmp(name, reserved_names[i])) {
            fprintf(stderr, "ninjac: %s: a spec may not be named '%s': the generated %s.h would hide the header "
                    "<%s.h>; rename the file\n", src->path, name, name, name);
            return -1;
        }
    struct stat st;
    if (stat(o->emit.outdir, &st) != 0) {
        fprintf(stderr, "ninjac: output directory %s: %s\n", o->emit.outdir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "ninjac: output directory %s: not a directory\n", o->emit.outdir);
        return -1;
    }
    char err[FILES_PATH_MAX + 256];
    OutPath spec, out;
    if (path_resolve(src->path, &spec, err, sizeof err) != 0) {
        fprintf(stderr, "ninjac: %s\n", err);
        return -1;
    }
    for (int k = 0; k < 2; k++) {
        const char *path = arena_printf("%s/%s.%s", o->emit.outdir, name, k ? "c" : "h");
        if (out_check(path, &out, err, sizeof err) != 0) {
            fprintf(stderr, "ninjac: cannot write %s\n", err);
            return -1;
        }
        if (out_same(&spec, &out)) {
            fprintf(stderr, "ninjac: %s: the output would overwrite the spec %s; give another -o directory\n",
                    path, src->path);
            return -1;
        }
    }
    return 0;
}

static int compile(const Options *o) {
    Program prog = {.src = read_source(o->spec)};
    bool dumping = o->dump_parse || o->dump_shape || o->dump_grad || o->dump_plan;
    bool writing = !o->check_only && (!dumping || o->have_outdir);
    if (writing && check_outputs(o, prog.src) != 0)
        return 1;
    diag_init(prog.src);
    parse_program(&prog);
    if (o->dump_parse)
        dump_ast(stdout, &prog);
    if (diag_errors && o->dump_parse)
        return 1;

    /* after a syntax error too: the other lines' errors are worth seeing
     * (the broken line's names are poisoned, not unknown) */
    Model model = {0};
    build_model(&prog, &model, (Define *)o->defines, o->ndefines);
    if (diag_errors)
        return 1;
    if (o->emit.opt_level > 0)
        rewrite_model(&model);
    if (o->dump_shape)
        dump_model(stdout, &model);

    Backward bw = {0};
    derive_backward(&model, &bw);
    if (diag_errors)
        return 1;
    if (o->dump_grad)
        dump_backward(stdout, &model, &bw);

    Plan plan;
    plan_step(&model, &bw, &o->emit, &plan);
    if (o->dump_plan)
        dump_plan(stdout, &model, &bw, &plan);

    if (!writing)
        return 0;
    return emit_c(&model, &bw, &plan, &o->emit) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    static Options o;
    /* Past a file size limit a write fails with EFBIG, reported naming the
     * file, instead of SIGXFSZ killing ninjac without a word. */
    signal(SIGXFSZ, SIG_IGN);
    files_catch_signals();
    parse_args(argc, argv, &o);
    int rc = compile(&o);
    arena_free_all();
    return rc;
}
