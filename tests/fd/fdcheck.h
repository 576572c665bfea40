/* fdcheck.h - the finite-difference checker of any model ninjac compiled
 * with --dtype f64 -O0. The glue file that ninjac_add_fdcheck generates
 * defines NINJAC_FD_HOOK(k, p, n) as fdcheck_hook(k, p, n), includes the
 * generated NAME.c and calls fdcheck_main with NAME_model. */
#ifndef NINJAC_FDCHECK_H
#define NINJAC_FDCHECK_H

#include "ninjac_model.h"

/* Called by the generated forward right after named activation k (its
 * index in the descriptor's acts table) is computed; may nudge one element. */
void fdcheck_hook(int k, double *data, long long count);

/* `<checker> [--seed S] [options]`: returns the exit status (0 all good,
 * 1 some gradient disagrees, 2 usage or setup error). */
int fdcheck_main(int argc, char **argv, const NinjacModel *m);

#endif
