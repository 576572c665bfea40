/* parser.y - the grammar of a .ninja spec: declarations and forward lines,
 * whose expressions follow Python's precedence. Actions only build nodes.
 * Memory: nodes come from the arena. */
%code requires {
#include "ninjac.h"

#define MAX_DEPTH 200          /* brackets; also bounds expression depth */
#define MAX_STATEMENTS 10000   /* bounds the IR, the output and the time to make them */
#define MAX_INDENT 100         /* nested for loops */

typedef struct {
    const char *text;          /* the whole source */
    int offset;                /* byte offset of the next token */
    int depth;                 /* open brackets */
    Loc open[MAX_DEPTH];       /* where each open bracket is, innermost last */
    bool at_line_start;
    int line_start;            /* offset where the lexer's current line begins */
    bool line_reported;        /* that line has had its error: the lexer adds none */
    bool gave_up;              /* a limit was hit: the lexer has ended the input */
    int indents[MAX_INDENT];   /* columns of the open blocks, innermost last (Python's stack) */
    int nindents;
    bool prev_error;           /* the line before had an error */
    int orphan;                /* the column of a block whose header was refused, or 0 */
} LexState;

typedef struct {
    Program *prog;
    void *scanner;
    bool too_many;             /* MAX_STATEMENTS reached */
    int count;                 /* statements made, loop bodies included */
} ParseState;

/* A rule's location spans its first to its last symbol; an empty rule sits
 * where the previous symbol ended. */
#define YYLLOC_DEFAULT(cur, rhs, n)                                          \
    do {                                                                     \
        if (n) {                                                             \
            (cur).begin = YYRHSLOC(rhs, 1).begin;                            \
            (cur).end = YYRHSLOC(rhs, n).end;                                \
        } else {                                                             \
            (cur).begin = (cur).end = YYRHSLOC(rhs, 0).end;                  \
        }                                                                    \
    } while (0)
}

%code provides {
int nj_raw_lex(NJ_STYPE *yylval, NJ_LTYPE *yylloc, void *scanner);
LexState *nj_get_extra(void *scanner);
}

%code {
#include <string.h>
static void nj_error(YYLTYPE *loc, ParseState *ps, const char *msg);
static Node *new_node(NodeKind kind, Loc loc);
static Node *binary(BinOp op, Node *lhs, Node *rhs, Loc loc);
static Node *unary_minus(Node *operand, Loc loc);
static Node *postfix(NodeKind kind, Node *lhs, Vec *args, const char *name, Loc loc);
static Node *number(double value, bool is_int, Loc loc);
static Node *string(Loc loc, const char *text);
static Node *name_ref(const char *name, Loc loc);
static Node *kwarg(const char *name, Node *value, Loc loc);
static Node *parenthesized(Node *n, Loc loc);
static Node *list(Vec *items, Loc loc);
static Node *slice(Node *start, Node *stop, Node *step, Loc loc);
static Vec *one(Node *n);
static Vec *append(Vec *v, Node *n);
static Vec *prepend(Node *n, Vec *v);
static Stmt *stmt(ParseState *ps, StmtKind kind, Loc loc, const char *name, Loc name_loc,
                 Node *value, Vec *dims, Node *bound, const char *type_name, Loc type_loc);
static Stmt *assignment(ParseState *ps, Vec *targets, Node *value, Loc loc);
static Stmt *augmented(ParseState *ps, Node *target, BinOp op, Loc op_loc, Node *value, Loc loc);
static Stmt *for_stmt(ParseState *ps, const char *name, Loc name_loc, Node *iter, Vec *body, Loc loc);
static int nj_lex(YYSTYPE *yylval, YYLTYPE *yylloc, ParseState *ps);
#define scanner ps->scanner
}

%define api.pure full                   /* no globals: state lives in ParseState */
%define api.prefix {nj_}                /* several parsers could share a program */
%define api.location.type {Loc}         /* byte offsets, turned into line:col when printed */
%define parse.error detailed            /* "unexpected NAME, expecting ')'" */
%define api.value.type union           /* token and rule types declared below */
%locations
%parse-param {ParseState *ps}
%lex-param {ParseState *ps}
%expect 0

%token DIM "dim" INPUT "input" PARAM "param"
%token NEWLINE "end of line" POW "**" FLOORDIV "//" BADCHAR "invalid character"
%token FOR "for" IN "in" INDENT "indent" DEDENT "dedent"
%token <BinOp> AUGASSIGN "augmented assignment"
%token <const char *> NAME "name"
%token <const char *> STRING "string"
%token <BinOp> COMPARE "comparison"
%token <struct { double value; bool is_int; }> NUMBER "number"
%nterm <Node *> test expr term unary power postfix atom arg
%nterm <Vec *> args exprs stmts
%nterm <Stmt *> stmt
%nterm <Node *> subscript opt_expr      /* shape: x[:, -1, a:b:c], x[..., 0] */
%nterm <Vec *> subscripts

%%

program:
    %empty
  | program stmt          { if ($2) vec_push(&ps->prog->stmts, $2); }
  ;

/* a loop's body */
stmts:
    stmt                  { $$ = arena_alloc(sizeof(Vec)); if ($1) vec_push($$, $1); }
  | stmts stmt            { $$ = $1; if ($2) vec_push($$, $2); }
  ;

stmt:
    NEWLINE               { $$ = NULL; }
  | DIM NAME '=' expr NEWLINE
        { $$ = stmt(ps, S_DIM, @$, $2, @2, $4, NULL, NULL, NULL, @2); }
  | INPUT NAME ':' NAME '[' exprs ']' '<' expr NEWLINE
        { $$ = stmt(ps, S_INPUT, @$, $2, @2, NULL, $6, $9, $4, @4); }
  | PARAM NAME ':' '[' exprs ']' '=' expr NEWLINE
        { $$ = stmt(ps, S_PARAM, @$, $2, @2, $8, $5, NULL, NULL, @2); }
  | exprs '=' test NEWLINE
        { $$ = assignment(ps, $1, $3, @$); }
  | expr AUGASSIGN expr NEWLINE
        { $$ = augmented(ps, $1, $2, @2, $3, @$); }
  | test NEWLINE
        { $$ = stmt(ps, S_EXPR, @$, "", @1, $1, NULL, NULL, NULL, @1); }
  | FOR NAME IN expr ':' NEWLINE INDENT stmts DEDENT
        { $$ = for_stmt(ps, $2, @2, $4, $8, @1); }
  | error NEWLINE
        { yyerrok; $$ = stmt(ps, S_ERROR, @$, "", @$, NULL, NULL, NULL, NULL, @$); }
  ;

exprs:
    expr                  { $$ = one($1); }
  | exprs ',' expr        { $$ = append($1, $3); }
  ;

/* Python's comparisons bind looser than arithmetic; a chain (a < b < c)
 * is not taken */
test:
    expr
  | expr COMPARE expr     { $$ = binary($2, $1, $3, @2); }
  | expr '<' expr         { $$ = binary(BIN_LT, $1, $3, @2); }
  | expr '>' expr         { $$ = binary(BIN_GT, $1, $3, @2); }
  ;

expr:
    term
  | expr '+' term         { $$ = binary(BIN_ADD, $1, $3, @2); }
  | expr '-' term         { $$ = binary(BIN_SUB, $1, $3, @2); }
  ;

term:
    unary
  | term '*' unary        { $$ = binary(BIN_MUL, $1, $3, @2); }
  | term '/' unary        { $$ = binary(BIN_DIV, $1, $3, @2); }
  | term FLOORDIV unary   { $$ = binary(BIN_FLOORDIV, $1, $3, @2); }
  | term '@' unary        { $$ = binary(BIN_MATMUL, $1, $3, @2); }
  ;

unary:
    power
  | '-' unary             { $$ = unary_minus($2, @$); }
  | '+' unary             { $$ = $2; }
  ;

power:
    postfix
  | postfix POW unary     { $$ = binary(BIN_POW, $1, $3, @2); }
  ;

postfix:
    atom
  | postfix '.' NAME                  { $$ = postfix(N_ATTR, $1, NULL, $3, @3); }
  | postfix '(' ')'                   { $$ = postfix(N_CALL, $1, NULL, NULL, @$); }
  | postfix '(' args ')'              { $$ = postfix(N_CALL, $1, $3, NULL, @$); }
  | postfix '(' args ',' ')'          { $$ = postfix(N_CALL, $1, $3, NULL, @$); }
  | postfix '[' subscripts ']'        { $$ = postfix(N_INDEX, $1, $3, NULL, @$); }
  ;

/* ---- shape: subscripts (Python's basic indexing) ---- */
subscripts:
    subscript             { $$ = one($1); }
  | subscripts ',' subscript { $$ = append($1, $3); }
  ;

subscript:
    expr
  | opt_expr ':' opt_expr { $$ = slice($1, $3, NULL, @$); }
  | opt_expr ':' opt_expr ':' opt_expr { $$ = slice($1, $3, $5, @$); }
  | '.' '.' '.'           { $$ = new_node(N_ELLIPSIS, @$); }
  ;

opt_expr:
    %empty                { $$ = NULL; }
  | expr
  ;

args:
    arg                   { $$ = one($1); }
  | args ',' arg          { $$ = append($1, $3); }
  ;

/* a string is an argument (float('-inf')); lowering refuses it elsewhere */
arg:
    test
  | NAME '=' test         { $$ = kwarg($1, $3, @$); }
  | STRING                { $$ = string(@1, $1); }
  ;

atom:
    NUMBER                { $$ = number($1.value, $1.is_int, @$); }
  | NAME                  { $$ = name_ref($1, @$); }
  | '(' test ')'          { $$ = parenthesized($2, @$); }
  | '(' expr ',' ')'      { $$ = list(one($2), @$); }
  | '(' expr ',' exprs ')' { $$ = list(prepend($2, $4), @$); }
  | '[' exprs ']'         { $$ = list($2, @$); }
  | '[' ']'               { $$ = list(NULL, @$); }
  ;

%%

/* A statement left inside open brackets runs on over the next lines
 * (implicit line joining), so its error shows up later: point at the
 * bracket that is still open. */
static void nj_error(YYLTYPE *loc, ParseState *ps, const char *msg) {
    LexState *lex = nj_get_extra(scanner);   /* scanner: ps->scanner */
    if (lex->gave_up || strstr(msg, "invalid character"))
        return;   /* the lexer has said what it was */
    /* A block after a refused line (def, if, a broken for) is indented
     * Python: its indentation is no news after that error. */
    if (diag_errors && (strstr(msg, "unexpected indent") || strstr(msg, "unexpected dedent")))
        return;
    if (strstr(msg, "memory exhausted"))
        msg = "statement too deeply nested";
    if (strstr(msg, "unexpected string"))   /* the grammar takes one only as a call's argument */
        msg = "a string is outside the spec language (but as float('-inf'), float('inf'), float('nan'))";
    error_at(*loc, "%s", msg);
    if (loc->begin >= lex->line_start)   /* not an error at the end of the line before */
        lex->line_reported = true;
    if (lex->depth > 0) {
        Loc open = lex->open[lex->depth - 1];
        if (strstr(msg, "end of file") || loc_line(*loc) > loc_line(open))
            note_at(open, "to match this '%c'", ps->prog->src->text[open.begin]);
    }
}

static int depth_of(const Node *n) { return n ? n->depth : 0; }

static Node *new_node(NodeKind kind, Loc loc) {
    Node *n = arena_alloc(sizeof(Node));
    n->kind = kind;
    n->loc = loc;
    return n;
}

/* Depth grows by one per level, so a chain of nodes crosses the limit at
 * exactly one node: the error is reported there, once. Nodes above it are
 * dropped, which keeps every later recursion (dumps included) bounded. */
static Node *deeper(Node *n, Node *a, Node *b) {
    int d = depth_of(a) > depth_of(b) ? depth_of(a) : depth_of(b);
    if (d + 1 > 2 * MAX_DEPTH + 1)
        return a;
    n->depth = d + 1;
    if (n->depth == 2 * MAX_DEPTH + 1)
        error_at(n->loc, "expression nested more than %d deep", 2 * MAX_DEPTH);
    return n;
}

static Node *binary(BinOp op, Node *lhs, Node *rhs, Loc op_loc) {
    Node *n = new_node(N_BINARY, loc_join(lhs->loc, rhs->loc));
    n->op = op;
    n->op_loc = op_loc;
    n->lhs = lhs;
    n->rhs = rhs;
    return deeper(n, lhs, rhs);
}

static Node *unary_minus(Node *operand, Loc loc) {
    Node *n = new_node(N_NEG, loc_join(loc, operand->loc));
    n->lhs = operand;
    return deeper(n, operand, NULL);
}

static Node *number(double value, bool is_int, Loc loc) {
    Node *n = new_node(N_NUM, loc);
    n->num = value;
    n->is_int = is_int;
    return n;
}

static Node *string(Loc loc, const char *text) {
    Node *n = new_node(N_STR, loc);
    n->name = text;
    return n;
}

static Node *name_ref(const char *name, Loc loc) {
    Node *n = new_node(N_NAME, loc);
    n->name = name;
    return n;
}

static Node *with_args(Node *n, Vec *args) {
    Node *deepest = NULL;
    if (args) {
        n->args = (Node **)args->items;
        n->nargs = args->len;
        for (int i = 0; i < args->len; i++)
            if (depth_of(args->items[i]) > depth_of(deepest))
                deepest = args->items[i];
    }
    return deepest ? deeper(n, deepest, n->lhs) : n->lhs ? deeper(n, n->lhs, NULL) : n;
}

static Node *postfix(NodeKind kind, Node *lhs, Vec *args, const char *name, Loc loc) {
    Node *n = new_node(kind, loc_join(lhs->loc, loc));
    n->lhs = lhs;
    n->name = name;
    if (kind == N_ATTR)
        n->loc = loc;
    return with_args(n, args);
}

/* (x) is x, but its text includes the brackets (an init quoted back, a caret). */
static Node *parenthesized(Node *n, Loc loc) {
    n->loc = loc;
    return n;
}

static Node *kwarg(const char *name, Node *value, Loc loc) {
    Node *n = new_node(N_KWARG, loc);
    n->name = name;
    n->lhs = value;
    return with_args(n, NULL);
}

/* start:stop:step, each part NULL when left out */
static Node *slice(Node *start, Node *stop, Node *step, Loc loc) {
    Vec *parts = arena_alloc(sizeof(Vec));
    vec_push(parts, start);
    vec_push(parts, stop);
    vec_push(parts, step);
    return with_args(new_node(N_SLICE, loc), parts);
}

static Node *list(Vec *items, Loc loc) {
    return with_args(new_node(N_LIST, loc), items);
}

static Vec *one(Node *n) {
    Vec *v = arena_alloc(sizeof(Vec));
    vec_push(v, n);
    return v;
}

static Vec *append(Vec *v, Node *n) {
    vec_push(v, n);
    return v;
}

static Vec *prepend(Node *n, Vec *v) {
    Vec *w = one(n);
    for (int i = 0; i < v->len; i++)
        vec_push(w, v->items[i]);
    return w;
}

static Stmt *stmt(ParseState *ps, StmtKind kind, Loc loc, const char *name, Loc name_loc,
                 Node *value, Vec *dims, Node *bound, const char *type_name, Loc type_loc) {
    if (ps->count == MAX_STATEMENTS) {
        if (!ps->too_many)
            error_at(loc, "a spec has at most %d statements", MAX_STATEMENTS);
        ps->too_many = true;   /* said once; the rest is only parsed */
        return NULL;
    }
    ps->count++;
    Stmt *s = arena_alloc(sizeof(Stmt));
    s->kind = kind;
    s->loc = loc;
    s->name = name;
    s->name_loc = name_loc;
    s->value = value;
    if (dims) {
        s->dims = (Node **)dims->items;
        s->ndims = dims->len;
    }
    s->bound = bound;
    s->type_name = type_name;
    s->type_loc = type_loc;
    return s;
}

/* name = value, a, b = value, x[...] = value: Python's targets, of which
 * ninjac takes names, one indexed name, or a tuple of names. */
static Stmt *assignment(ParseState *ps, Vec *targets, Node *value, Loc loc) {
    Node *first = targets->items[0];
    if (targets->len == 1 && first->kind == N_NAME)
        return stmt(ps, S_ASSIGN, loc, first->name, first->loc, value, NULL, NULL, NULL, first->loc);
    if (targets->len == 1 && first->kind == N_INDEX) {
        Stmt *s = stmt(ps, S_INDEX_ASSIGN, loc, "", first->loc, value, NULL, NULL, NULL, first->loc);
        if (s) {
            s->targets = (Node **)targets->items;
            s->ntargets = 1;
        }
        return s;
    }
    for (int i = 0; i < targets->len; i++) {
        Node *t = targets->items[i];
        if (t->kind != N_NAME) {
            error_at(t->loc, targets->len == 1 ? "cannot assign to this: a forward line assigns a name or x[...]"
                                               : "cannot unpack into this: the targets of a, b = ... are names");
            return stmt(ps, S_ERROR, loc, "", loc, NULL, NULL, NULL, NULL, loc);
        }
    }
    Stmt *s = stmt(ps, S_UNPACK, loc, "", first->loc, value, NULL, NULL, NULL, first->loc);
    if (s) {
        s->targets = (Node **)targets->items;
        s->ntargets = targets->len;
    }
    return s;
}

/* x += y is x = x + y: a new version of x (SSA), as every assignment. */
static Stmt *augmented(ParseState *ps, Node *target, BinOp op, Loc op_loc, Node *value, Loc loc) {
    if (target->kind != N_NAME) {
        error_at(target->loc, "augmented assignment %s= is supported to a name only", binop_text[op]);
        return stmt(ps, S_ERROR, loc, "", loc, NULL, NULL, NULL, NULL, loc);
    }
    Stmt *s = stmt(ps, S_ASSIGN, loc, target->name, target->loc, binary(op, name_ref(target->name, target->loc), value, op_loc),
                   NULL, NULL, NULL, target->loc);
    if (s)
        s->augmented = true;
    return s;
}

static Stmt *for_stmt(ParseState *ps, const char *name, Loc name_loc, Node *iter, Vec *body, Loc loc) {
    Stmt *s = stmt(ps, S_FOR, loc_join(loc, iter->loc), name, name_loc, iter, NULL, NULL, NULL, name_loc);
    if (s) {
        s->body = (Stmt **)body->items;
        s->nbody = body->len;
    }
    return s;
}

/* Python's blocks: the first token of a line deeper than the open block
 * opens one (INDENT), one shallower closes blocks (a DEDENT each) down to
 * its column, which must be one of theirs. The column is found in the
 * text ahead, skipping what the lexer skips (blank and comment lines), so
 * that the real token is read only once the blocks are settled. */
static int nj_lex(YYSTYPE *yylval, YYLTYPE *yylloc, ParseState *ps) {
    LexState *lex = nj_get_extra(scanner);
    if (!lex->at_line_start || lex->depth > 0 || lex->gave_up)
        return nj_raw_lex(yylval, yylloc, scanner);
    const char *text = lex->text;
    int p = lex->offset, line = lex->offset;
    for (;;) {
        while (text[p] == ' ' || text[p] == '\t' || text[p] == '\r' || text[p] == '\f')
            p++;
        if (text[p] == '#')
            while (text[p] && text[p] != '\n')
                p++;
        if (text[p] != '\n')
            break;
        line = ++p;
    }
    int col = text[p] ? p - line : 0;   /* the end of the file closes every block */
    int top = lex->nindents ? lex->indents[lex->nindents - 1] : 0;
    yylloc->begin = yylloc->end = p;
    if (col > top && (lex->prev_error || (lex->orphan && col >= lex->orphan))) {
        /* the body of a refused line (a def, an if): read as plain lines,
         * each with its own diagnostics, not as one "unexpected indent" */
        if (!lex->orphan)
            lex->orphan = col;
        return nj_raw_lex(yylval, yylloc, scanner);
    }
    lex->orphan = 0;
    if (col > top && lex->nindents < MAX_INDENT) {
        lex->indents[lex->nindents++] = col;
        return INDENT;
    }
    if (col < top) {
        lex->nindents--;
        int outer = lex->nindents ? lex->indents[lex->nindents - 1] : 0;
        if (col > outer) {   /* between two levels: Python's IndentationError */
            error_at(*yylloc, "unindent does not match any outer indentation level");
            lex->indents[lex->nindents++] = col;
        }
        return DEDENT;
    }
    return nj_raw_lex(yylval, yylloc, scanner);
}

#undef scanner
typedef struct yy_buffer_state *YY_BUFFER_STATE;
int nj_lex_init_extra(LexState *extra, void **scanner);
int nj_lex_destroy(void *scanner);
YY_BUFFER_STATE nj__scan_bytes(const char *bytes, int len, void *scanner);

void parse_program(Program *prog) {
    LexState lex = {.text = prog->src->text, .at_line_start = true};
    ParseState ps = {.prog = prog};
    nj_lex_init_extra(&lex, &ps.scanner);
    nj__scan_bytes(prog->src->text, (int)prog->src->len, ps.scanner);
    nj_parse(&ps);
    nj_lex_destroy(ps.scanner);
}
