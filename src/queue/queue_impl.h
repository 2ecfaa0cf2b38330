/* The layout of conc_queue, for queue.c and for tests that look inside (how
 * many threads wait, and for what). */
#ifndef CONC_QUEUE_IMPL_H
#define CONC_QUEUE_IMPL_H

#include "queue/queue_ring.h"
#include "queue/queue_store.h"
#include "wait/wait.h"

/* What a waiter on q->wq waits for (its record's want). */
enum conc__queue_want {
    CONC__QW_GET = 1,  /* an item */
    CONC__QW_PUT = 2,  /* room */
    CONC__QW_JOIN = 3, /* no unfinished task */
};

/* What a queue's memory is aligned to: a cache line (queue.c). */
#define CONC__QUEUE_ALIGN 64

struct conc_queue {
    struct conc__qring ring;    /* bounded FIFO: the lock-free path */
    bool use_ring;
    bool single_producer, single_consumer;
    _Atomic bool shutdown;
    _Atomic bool shutdown_immediate; /* set before shutdown: gets fail at once */
    /* Threads announced to sleep, per want: a put wakes getters only if
     * getters > 0 (the fast path's test; wait.h's Dekker pair, with the
     * asymmetric fences). */
    _Atomic uint32_t getters, putters, joiners;
    _Atomic uint64_t puts;      /* store: items ever put (ring: its tail) */
    _Atomic uint64_t done;      /* task_done calls */
    _Atomic uint64_t dropped;   /* items discarded by an immediate shutdown */
    _Atomic uint32_t slock;     /* guards store (an internal lock) */
    _Atomic uint32_t drain_lock; /* one immediate-shutdown drain at a time */
    struct conc__qstore store;  /* LIFO, PRIORITY, unbounded FIFO */
    struct conc__waitq wq;      /* sleeping callers; its lock orders sleeping
                                   against waking and shutdown */
    struct conc__dump_source dump; /* conc_debug_dump's line about it */
    char name[48];              /* opts.name, truncated; "queue" by default */
};

#ifdef CONC_TEST_HOOKS
/* Test hook (core/platform.h): called by a put after it found the queue
 * open and before it puts, so a test can shut the queue down there. */
extern void (*conc__test_put_checked)(conc_queue *q);
/* Called by a put after its items are in and the getters told, before it
 * looks for an immediate shutdown that drained the queue meanwhile. */
extern void (*conc__test_put_landed)(conc_queue *q);
#endif

/* How many threads are blocked in q waiting for `want` (a snapshot). */
unsigned conc__queue_waiting(conc_queue *q, enum conc__queue_want want);

#endif
