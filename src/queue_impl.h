/* The layout of conc_queue, for queue.c and for tests that look inside (how
 * many threads wait, and for what). */
#ifndef CONC_QUEUE_IMPL_H
#define CONC_QUEUE_IMPL_H

#include "queue_store.h"
#include "wait.h"

/* What a waiter on q->wq waits for (its record's want). */
enum conc__queue_want {
    CONC__QW_GET = 1,  /* an item */
    CONC__QW_PUT = 2,  /* room */
    CONC__QW_JOIN = 3, /* no unfinished task */
};

struct conc_queue {
    struct conc__waitq wq;      /* its lock guards everything below */
    struct conc__qstore store;
    uint64_t unfinished;        /* items put and not yet task_done'd */
    bool shutdown;
    bool single_producer, single_consumer;
};

/* How many threads are blocked in q waiting for `want` (a snapshot). */
unsigned conc__queue_waiting(conc_queue *q, enum conc__queue_want want);

#endif
