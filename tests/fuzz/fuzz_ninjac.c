/* fuzz_ninjac.c - libFuzzer target for ninjac's whole front end: lexer,
 * parser, shape checker, backward derivation and emission (to memory, in
 * both -O0/f32 and -O/f64 modes). Any crash, hang, leak or sanitizer report
 * is a bug; each one found becomes a regression input in corpus/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ninjac.h"

static void emit_both_modes(const Model *m, const Backward *bw) {
    static const EmitOptions modes[3] = {{.opt_level = 0, .f64 = false, .outdir = "."},
                                         {.opt_level = 1, .f64 = true, .outdir = "."},
                                         {.opt_level = 1, .f64 = false, .outdir = "."}};
    for (int k = 0; k < 3; k++) {
        char *text[2];
        size_t len[2];
        Plan plan;
        plan_step(m, bw, &modes[k], &plan);
        emit_c_text(m, bw, &plan, &modes[k], text, len);
        free(text[0]);
        free(text[1]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1 << 20))
        return 0;
    char *text = arena_alloc(size + 1);
    memcpy(text, data, size);
    Source src = {.path = "fuzz.ninja", .name = "fuzz", .text = text, .len = size};
    Program prog = {.src = &src};
    diag_init(&src);
    parse_program(&prog);
    if (!diag_errors) {
        Model model = {0};
        build_model(&prog, &model, NULL, 0);
        if (!diag_errors) {
            Backward bw = {0};
            derive_backward(&model, &bw);
            if (!diag_errors)
                emit_both_modes(&model, &bw);
        }
    }
    arena_free_all();
    return 0;
}
