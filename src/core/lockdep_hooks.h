/* What the locks tell lock-order checking (lockdep.c) besides the hooks
 * (hooks.h): a lock's class at init, and its end at destroy, so that a new
 * lock at the same address starts afresh. Both are cold paths; while nothing
 * was ever recorded they cost one relaxed load. */
#ifndef CONC_LOCKDEP_H
#define CONC_LOCKDEP_H

#include "diag/diag.h"

/* Set once anything was recorded (a class name, an init site, an order). */
extern _Atomic bool conc__lockdep_used;

void conc__lockdep_init_lock(const void *lock, enum conc__lock_kind kind, const char *name,
                             const char *site);
void conc__lockdep_forget(const void *lock);

/* At the end of a successful init: a name is always recorded, a site only
 * while lock-order checking is on; a re-initialised lock forgets its past.
 * Process-shared locks stay out. */
static inline void conc__lockdep_on_init(const void *lock, enum conc__lock_kind kind,
                                         const char *name, const char *site, bool pshared)
{
    if (pshared)
        return;
    if (!conc__diag_on(CONC__DIAG_LOCKDEP))
        site = 0;
    if (name || site || atomic_load_explicit(&conc__lockdep_used, memory_order_relaxed))
        conc__lockdep_init_lock(lock, kind, name, site);
}

/* After a successful destroy. */
static inline void conc__lockdep_on_destroy(const void *lock)
{
    if (atomic_load_explicit(&conc__lockdep_used, memory_order_relaxed))
        conc__lockdep_forget(lock);
}

#endif
