/* The real layouts behind the storage types of conc/sync.h. Each one holds no
 * pointer to process-local memory except the in-process waiter list, which is
 * empty whenever no thread of this process waits; static asserts prove that
 * each fits its storage type. */
#ifndef CONC_SYNC_IMPL_H
#define CONC_SYNC_IMPL_H

#include "conc/sync.h"
#include "core/misuse.h"
#include "core/tls.h"
#include "wait/wait.h"

/* Mutex word values. Default mode is Drepper's three-state futex mutex
 * ("Futexes Are Tricky", mutex 2): waiters sleep on the word itself. Fair mode
 * uses the same word but queues waiters on q, and QUEUED stays set while the
 * queue is not empty, so that unlock takes the hand-off path. */
#define CONC__M_UNLOCKED 0u
#define CONC__M_LOCKED 1u
#define CONC__M_CONTENDED 2u /* default mode: locked, sleepers may exist */
#define CONC__M_QUEUED 2u    /* fair mode: locked, q has waiters (bit) */

/* A mutex's own queue flag (wait.h, CONC__WQ_OWN). */
#define CONC__WQ_FAIR CONC__WQ_OWN(0) /* FIFO hand-off mode */

struct conc__mutex {
    _Atomic uint32_t word;
    uint32_t reserved_;
    _Atomic uintptr_t owner; /* conc__self() (in-process) or the tid (pshared); 0: none */
    struct conc__waitq q;    /* flags (pshared, fair, dead) and the fair-mode queue */
};

struct conc__rmutex {
    struct conc__mutex m;
    uint32_t depth; /* written only by the owner */
};

struct conc__cond {
    struct conc__waitq q;
};

/* A semaphore's own queue flags (wait.h, CONC__WQ_OWN). */
#define CONC__WQ_BOUNDED CONC__WQ_OWN(0) /* it has a bound */
#define CONC__WQ_LOCKLIKE CONC__WQ_OWN(1) /* opts.lock_like: it calls the lock hooks (core/hooks.h) */

struct conc__sem {
    _Atomic uint32_t value;
    uint32_t bound; /* 0: unbounded */
    struct conc__waitq q;
};

struct conc__event {
    /* Bit 0: set. Above it: how many sets there were (the pulse). One word,
     * so that a set raises the flag and counts itself in one atomic step. */
    _Atomic uint32_t state;
    struct conc__waitq q;
};

/* Python's Barrier, state for state: FILLING while threads arrive, DRAINING
 * while the released ones leave (arrivals wait), RESETTING while a reset's
 * broken round drains, BROKEN after an abort, a failed action or a timeout. */
enum { CONC__B_FILLING, CONC__B_DRAINING, CONC__B_RESETTING, CONC__B_BROKEN };

struct conc__barrier {
    uint32_t parties;
    uint32_t count; /* threads inside wait(): arriving, or leaving */
    uint32_t state;
    uint32_t reserved_;
    int (*action)(void *);
    void *action_arg;
    struct conc__waitq q; /* guards all of the above */
};

enum { CONC__O_INIT = 0, CONC__O_RUNNING = 1, CONC__O_DONE = 2 };

struct conc__once {
    _Atomic uint32_t state;
    uint32_t reserved_;
    uintptr_t runner; /* who runs the initialiser; under q.lock */
    struct conc__waitq q;
};

/* rwlock state word: WRITER, WRITERS_WAITING, and the number of readers. */
#define CONC__RW_WRITER (1u << 31)
#define CONC__RW_WWAIT (1u << 30)
#define CONC__RW_READERS (CONC__RW_WWAIT - 1)
#define CONC__RW_DEAD (CONC__RW_WRITER | 0xdeadu) /* destroyed: no fast path matches */

struct conc__rwlock {
    _Atomic uint32_t state;
    uint32_t writers_waiting; /* under q.lock */
    _Atomic uintptr_t owner;  /* the writer's identity */
    struct conc__waitq q;
};

#define CONC__FITS(impl, storage)                                              \
    _Static_assert(sizeof(struct impl) <= sizeof(storage) &&                   \
                       _Alignof(struct impl) <= _Alignof(storage),             \
                   #impl " must fit " #storage)
CONC__FITS(conc__mutex, conc_mutex);
CONC__FITS(conc__rmutex, conc_rmutex);
CONC__FITS(conc__cond, conc_cond);
CONC__FITS(conc__sem, conc_sem);
CONC__FITS(conc__event, conc_event);
CONC__FITS(conc__barrier, conc_barrier);
CONC__FITS(conc__once, conc_once);
CONC__FITS(conc__rwlock, conc_rwlock);

/* The identity that owns a lock whose queue is q: an address in-process, the
 * thread id across processes. */
static inline uintptr_t conc__owner_self(struct conc__waitq *q)
{
    return conc__waitq_pshared(q) ? (uintptr_t)conc__tid() : conc__self();
}

/* Mutex internals shared with the recursive mutex and the condition. */
int conc__mutex_lock_until(struct conc__mutex *m, int64_t deadline);
int conc__mutex_unlock(struct conc__mutex *m);

#endif
