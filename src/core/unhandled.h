/* Failures nobody will see (base.h, conc_set_unhandled_hook): the layers
 * that own threads and futures report them here, once each. */
#ifndef CONC_CORE_UNHANDLED_H
#define CONC_CORE_UNHANDLED_H

#include "conc/base.h"

/* Hands u to the program's hook, or writes a line to stderr. */
void conc__report_unhandled(const conc_unhandled *u);

/* Registers the hook's lock in the fork table (core/init.c). */
void conc__unhandled_setup(void);

#endif
