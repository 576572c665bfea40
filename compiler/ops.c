/* ops.c - the op table (NJ_OPS in ninjac.h) as data, and the spellings of
 * Python's operators. */
#include "ninjac.h"

const char *const binop_text[] = {
#define X(id, text) [BIN_##id] = text,
    NJ_BINOPS(X)
#undef X
};

const OpInfo op_info[OP_COUNT] = {
#define X(id, nm, fam, fwd, da, db) [OP_##id] = {nm, fam, fwd, {da, db}},
    NJ_OPS(X)
#undef X
};
