/* The pool's submission queue: Vyukov's intrusive multi-producer,
 * single-consumer FIFO of futures, linked through their pool fields' qnext
 * (pool_task.h).
 *
 * A push is one exchange on `back` plus a store into the previous node:
 * producers never wait for each other or for the consumer. One consumer at
 * a time pops from `front`, holding `lock` (workers take turns with a
 * try-lock; the loser steals instead). Between a producer's exchange and
 * its link, the queue looks empty from the front although `back` has
 * moved: conc__inbox_pop then reports busy, and the consumer comes back.
 *
 * Why not the lock-free stack it replaced: a stack is taken whole, newest
 * first, and a worker had to walk the entire chain (a cache miss per node,
 * since every node was just written by the submitter) to start the oldest
 * one; with a million tasks queued that walk was most of a worker's time
 * (perf). The FIFO hands out the oldest first, one at a time,
 * and each node is touched while it is still warm, just before it runs. */
#ifndef CONC_EXEC_POOL_INBOX_H
#define CONC_EXEC_POOL_INBOX_H

#include "exec/pool/pool_task.h"

struct conc__inbox {
    _Alignas(64) _Atomic(conc_future *) back; /* producers: the newest node */
    _Alignas(64) _Atomic(conc_future *) front; /* the consumer: the oldest node */
    _Atomic uint32_t lock;                     /* the consumer's turn */
    conc_future stub;                          /* keeps the list never empty */
};

void conc__inbox_init(struct conc__inbox *q);

/* Any thread. seq_cst: the pool's sleep/wake Dekker pair relies on it. */
static inline void conc__inbox_push(struct conc__inbox *q, conc_future *f)
{
    atomic_store_explicit(&conc__pool_task(f)->qnext, NULL, memory_order_relaxed);
    conc_future *prev = atomic_exchange_explicit(&q->back, f, memory_order_seq_cst);
    /* Release: the consumer that follows the link sees f's contents. */
    atomic_store_explicit(&conc__pool_task(prev)->qnext, f, memory_order_release);
}

/* Any thread, a hint: whether something was pushed and not yet popped. */
static inline bool conc__inbox_nonempty(struct conc__inbox *q)
{
    return atomic_load_explicit(&q->back, memory_order_seq_cst) != &q->stub ||
           atomic_load_explicit(&q->front, memory_order_relaxed) != &q->stub;
}

static inline bool conc__inbox_trylock(struct conc__inbox *q)
{
    uint32_t free_ = 0;
    return atomic_load_explicit(&q->lock, memory_order_relaxed) == 0 &&
           atomic_compare_exchange_strong_explicit(&q->lock, &free_, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

static inline void conc__inbox_unlock(struct conc__inbox *q)
{
    atomic_store_explicit(&q->lock, 0, memory_order_release);
}

/* The consumer (holding the lock): the oldest future, or NULL when the
 * queue is empty or a push is half done (then *busy, if not NULL, is set). */
conc_future *conc__inbox_pop(struct conc__inbox *q, bool *busy);

/* The consumer (holding the lock): how many futures are linked in, not
 * counting a push half done. For dumps: a walk of the whole list. */
size_t conc__inbox_count(struct conc__inbox *q);

#endif
