/* The process queue's test hooks (core/platform.h), for tests that kill a
 * process in the middle of a put or a get. */
#ifndef CONC_PQUEUE_IMPL_H
#define CONC_PQUEUE_IMPL_H

#include "conc/process.h"

#ifdef CONC_TEST_HOOKS
/* Called with the call's lock held: by a put after it copied its item
 * into the slot, before the store that publishes it; by a get after it
 * copied the item out, before the store that takes it. */
extern void (*conc__test_pqueue_put_copied)(conc_pqueue *q);
extern void (*conc__test_pqueue_get_copied)(conc_pqueue *q);
/* Called by a put after the store that publishes its item, before the
 * sleepers are told: a process killed there owes them a wake-up. */
extern void (*conc__test_pqueue_put_published)(conc_pqueue *q);
#endif

#endif
