/* trainer.h - the command line every generated model links with. */
#ifndef NINJAC_TRAINER_H
#define NINJAC_TRAINER_H

#include "ninjac_model.h"

/* Runs `<trainer> <command> [options]` for model m; returns the exit status. */
int ninjac_main(int argc, char **argv, const NinjacModel *m);

#endif
