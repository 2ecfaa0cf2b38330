/* The wait core: the one mechanism every blocking primitive parks through.
 *
 * A waiter record (struct conc__waiter) lives on the waiter's stack. Its state
 * word moves WAITING → PARKED (asleep on the futex in the record) and ends in
 * exactly one of WOKEN, TIMED_OUT or CANCELLED. A wake is a compare-and-swap
 * into WOKEN; a waiter whose deadline passed makes its own compare-and-swap into
 * TIMED_OUT. Exactly one of the two wins. A waker that loses moves on to the
 * next waiter, so a wake-one is never swallowed by a waiter that is leaving.
 * A waiter that loses was chosen: it re-checks its condition before its deadline,
 * and takes what it was woken for.
 *
 * A wait queue (struct conc__waitq) is the per-object part: an internal lock
 * word, the count of announced waiters, and one of two back-ends chosen by
 * CONC__WQ_PSHARED:
 *   - in-process: a FIFO list of waiter records; each sleeps on a private futex
 *     in its own record, and a wake targets one chosen record;
 *   - process-shared: no list (records are process-local memory); waiters sleep
 *     on the queue's seq word with shared futexes, a wake bumps seq.
 * Both back-ends offer the same operations, so each primitive is written once.
 *
 * The pattern every primitive follows (q->lock guards the object's slow-path
 * state and the list):
 *
 *     conc__waitq_lock(q);
 *     conc__waitq_announce(q);             // before the last check: see below
 *     for (;;) {
 *         if (condition holds) { take it; break; }
 *         if (conc__expired(deadline)) { rc = CONC_ETIMEDOUT; break; }
 *         conc__waitq_sleep(q, &w, deadline); // unlocks, parks, re-locks
 *     }
 *     conc__waitq_retire(q);
 *     conc__waitq_unlock(q);
 *
 * and a waker makes the condition true, then, only if conc__waitq_has_waiters(),
 * locks q and calls conc__waitq_wake(). The announce (a seq_cst increment) and
 * the waker's seq_cst update of the condition form a Dekker pair: either the
 * waiter's check sees the condition, or the waker sees the waiter and wakes it.
 * That is what lets the fast paths skip the lock and the wake syscall whenever
 * nobody waits.
 *
 * A multi-wait (struct conc__multiwait) is one sleeper with several link
 * records, each linked into a different object's queue (conc_wait over several
 * futures). Waking a link notifies the multi-wait while the waker still holds
 * that queue's lock, and the multi-waiter unlinks every link under each queue's
 * lock before it returns, so the notify never touches a dead record.
 */
#ifndef CONC_WAIT_H
#define CONC_WAIT_H

#include "core/fence.h"
#include "core/platform.h"
#include "core/tls.h"
#include <stdbool.h>
#include <stdint.h>

enum conc__waiter_state {
    CONC__W_WAITING = 0,  /* linked, not yet asleep (may be spinning) */
    CONC__W_PARKED = 1,   /* asleep on the futex: a waker must call futex_wake */
    CONC__W_WOKEN = 2,    /* a waker chose this waiter */
    CONC__W_TIMED_OUT = 3,/* the deadline passed before any waker chose it */
    CONC__W_CANCELLED = 4 /* withdrawn by its owner (multi-wait clean-up) */
};

/* How a waiter of one kind learns that it was woken: a waiter record
 * carries its kind's operations, so a new kind of waiter (a coroutine
 * rescheduled on its loop) plugs in without touching any primitive.
 * wake is called by the waker, with the queue's lock held, after its
 * compare-and-swap moved the record from prev (WAITING or PARKED) to WOKEN.
 * It gets the record's state word and wake_arg, both read before the
 * compare-and-swap: once WOKEN, a thread waiter may return at once and its
 * record, on its stack, be gone. */
struct conc__waiter_ops {
    void (*wake)(void *wake_arg, _Atomic uint32_t *state, uint32_t prev);
};

/* A thread sleeping on the futex in its own record (the default). */
extern const struct conc__waiter_ops conc__thread_waiter;
/* One link of a multi-wait: notifies the multi-wait (wake_arg). */
extern const struct conc__waiter_ops conc__multi_waiter;

struct conc__waiter {
    _Atomic uint32_t state;
    bool linked;                  /* in a queue's list; guarded by that q->lock */
    uintptr_t want;               /* what the waiter waits for (primitive-defined) */
    uintptr_t ctx;                /* conc__self() of the waiter, for hand-offs */
    const struct conc__waiter_ops *ops;
    void *wake_arg;               /* ops->wake's */
    struct conc__waiter *next, *prev;
};

/* A queue's flags: the low byte is the wait core's, the high byte belongs to
 * the primitive that owns the queue, which numbers its own flags from 0
 * with CONC__WQ_OWN(n) (sync/sync_impl.h has the mutex's and the
 * semaphore's). All are set at init and destroy only. */
#define CONC__WQ_PSHARED 1u /* process-shared back-end */
#define CONC__WQ_DEAD 2u    /* the owning object was destroyed */
#define CONC__WQ_OWN(n) (1u << (8 + (n)))

struct conc__waitq {
    _Atomic uint32_t lock;     /* internal lock: 0 free, 1 held, 2 held + sleepers */
    _Atomic uint32_t seq;      /* process-shared back-end: bumped by each wake */
    _Atomic uint32_t nwaiters; /* announced waiters (both back-ends) */
    _Atomic uint16_t flags;    /* CONC__WQ_*, and the owner's CONC__WQ_OWN(n) */
    _Atomic uint16_t spin;     /* spin score and probe level (wait.c) */
    struct conc__waiter *head, *tail; /* in-process back-end; under lock */
};

struct conc__multiwait {
    _Atomic uint32_t fired; /* number of links woken so far */
    _Atomic uint32_t parked;
};

/* ---- spinning ----
 *
 * Spinning before parking wins a hand-off between threads that are both on a
 * CPU (a futex wake-up costs 10-20 us here: a semaphore ping-pong takes
 * ~150 ns a hand-off with both sides spinning, ~12 us with both parking), and
 * loses everything when the thread we wait for is not running: then the
 * spinner only keeps it off the CPU (more threads than cores). So each wait
 * queue keeps a score of its recent spins in q->spin: a spin that ends with
 * the condition met adds 1, one that ends in parking takes 4 (so spinning
 * continues while at least 4 spins in 5 succeed). While the score is not
 * negative, a wait spins for up to CONC__SPIN_BUDGET, long enough to outlast
 * a futex wake-up on the other side. Below 0, a wait spins only as a probe,
 * once every 16 waits; each failed probe doubles that interval (up to 256),
 * a successful one sets the score back to 0, resuming the spins. An
 * oversubscribed object thus pays a fraction of a microsecond a wait for
 * probing, and a fast pair recovers within a few dozen waits — which, once it
 * parks, come only a few thousand a second: an interval of 1024 waits kept a
 * queue's producer and consumer parking for a second and more after one bad
 * start. A new object starts at 0: it spins until spinning proves useless.
 * Never in sanitizer builds, so that the tests exercise the parking paths.
 * Mutexes do not spin: with the lock bouncing between spinning cores, a
 * contended mutex moves 2-4x fewer operations a second than one whose losers
 * sleep (bench/, mutex.contended). */

#if CONC__SANITIZED
#define CONC__SPIN_ENABLED 0
#else
#define CONC__SPIN_ENABLED 1
#endif
#define CONC__SPIN_BUDGET 2000      /* pause iterations: ~20 us at ~10 ns each */
#define CONC__SPIN_QUEUED 100       /* the second, short chance after queueing */
#define CONC__SPIN_SCORE_MAX 16
#define CONC__SPIN_SCORE_MIN (-16)
#define CONC__SPIN_PROBE_LEVELS 4   /* probe every 16 << level waits */
#define CONC__ILOCK_SPIN 100        /* the internal lock: short critical sections */

/* The budget of the next spin on q: 0 for none. *probe tells the learning
 * step that it was a probe. */
unsigned conc__spin_budget(struct conc__waitq *q, bool *probe);
/* Records how a spin on q ended: the condition met, or not. */
void conc__spin_learn(struct conc__waitq *q, bool success, bool probe);
/* Whether q's spins have been paying off lately. */
bool conc__spin_worthwhile(struct conc__waitq *q);

/* Spins within q's budget until ready(arg) holds, before a waiter takes the
 * slow path. Returns whether it did. The outcome is learnt, except a failure
 * while asleep(arg) (if given) says the thread that would make ready() true
 * is itself parked on q: then a wake-up is on its way to it, and the spin
 * failed because it is still waking, not because it is off its CPU for want
 * of one. Two threads handing work back and forth (a queue's producer and
 * consumer) would otherwise learn to park from the moments they both park,
 * and keep parking: each one's probe runs while the other is waking. */
static inline bool conc__spin_until_awake(struct conc__waitq *q, bool (*ready)(void *),
                                          bool (*asleep)(void *), void *arg)
{
    bool probe;
    unsigned budget = conc__spin_budget(q, &probe);
    for (unsigned i = 0; i < budget; i++) {
        conc__cpu_relax();
        if (ready(arg)) {
            conc__spin_learn(q, true, probe);
            return true;
        }
    }
    if (budget && !(asleep && asleep(arg)))
        conc__spin_learn(q, false, probe);
    return false;
}

static inline bool conc__spin_until(struct conc__waitq *q, bool (*ready)(void *), void *arg)
{
    return conc__spin_until_awake(q, ready, NULL, arg);
}

/* ---- the internal lock ---- */

void conc__ilock_slow(_Atomic uint32_t *w, bool shared);

/* Short critical sections only: the holder never blocks while holding it. */
static inline void conc__ilock(_Atomic uint32_t *w, bool shared)
{
    uint32_t free_ = 0;
    if (!atomic_compare_exchange_strong_explicit(w, &free_, 1, memory_order_acquire,
                                                 memory_order_relaxed))
        conc__ilock_slow(w, shared);
}

static inline void conc__iunlock(_Atomic uint32_t *w, bool shared)
{
    if (atomic_exchange_explicit(w, 0, memory_order_release) == 2)
        conc__futex_wake(w, 1, shared);
}

/* ---- wait queues ---- */

static inline unsigned conc__waitq_flags(struct conc__waitq *q)
{
    return atomic_load_explicit(&q->flags, memory_order_relaxed);
}

static inline bool conc__waitq_pshared(struct conc__waitq *q)
{
    return conc__waitq_flags(q) & CONC__WQ_PSHARED;
}

static inline bool conc__waitq_dead(struct conc__waitq *q)
{
    return conc__waitq_flags(q) & CONC__WQ_DEAD;
}

/* Sets up an empty queue with the given CONC__WQ_* flags. An all-zero queue is
 * a valid empty in-process one. */
void conc__waitq_init(struct conc__waitq *q, unsigned flags);
/* Marks the queue dead. Returns CONC_EBUSY (and changes nothing) if anyone
 * still waits; without the detail (core/misuse.h), which the caller, a
 * public destroy, sets in words about its object. */
int conc__waitq_kill(struct conc__waitq *q);

static inline void conc__waitq_lock(struct conc__waitq *q)
{
    conc__ilock(&q->lock, conc__waitq_pshared(q));
}

/* Futex wakes decided under a queue lock are issued after it is released:
 * a woken thread's first act is to take that lock again, and finding it still
 * held would cost it a second sleep. The woken record may be gone by then; a
 * futex wake on stale memory is harmless, since every futex waiter re-checks
 * its word (wait.c). The list is in the thread record (core/tls.h); when it is
 * full, wakes are issued at once. */
void conc__pending_flush(void);

static inline void conc__waitq_unlock(struct conc__waitq *q)
{
    conc__iunlock(&q->lock, conc__waitq_pshared(q));
    if (conc__tls.pending.n)
        conc__pending_flush();
}

/* Called with q locked, before the waiter's final check of its condition. */
static inline void conc__waitq_announce(struct conc__waitq *q)
{
    atomic_fetch_add_explicit(&q->nwaiters, 1, memory_order_seq_cst);
}

/* Called when the waiter leaves, with or without q locked. */
static inline void conc__waitq_retire(struct conc__waitq *q)
{
    atomic_fetch_sub_explicit(&q->nwaiters, 1, memory_order_relaxed);
}

/* Whether anyone has announced a wait. Wakers call it after making their
 * condition true with a seq_cst operation (see the Dekker pair above). */
static inline bool conc__waitq_has_waiters(struct conc__waitq *q)
{
    return atomic_load_explicit(&q->nwaiters, memory_order_seq_cst) != 0;
}

/* Called with q locked. Sleeps until woken, until the deadline, or spuriously,
 * with q unlocked meanwhile; returns with q locked again. Returns
 * CONC__W_WOKEN or CONC__W_TIMED_OUT. Either way the caller re-checks its
 * condition before the deadline. w->want is the caller's to set first. */
uint32_t conc__waitq_sleep(struct conc__waitq *q, struct conc__waiter *w, int64_t deadline);

/* As conc__waitq_sleep, but returns with q *unlocked*, so that a woken waiter
 * whose condition now holds can leave without touching the lock (a hand-off's
 * hot path). After CONC__W_WOKEN the record is off the queue; after
 * CONC__W_TIMED_OUT it may still be on it: the caller re-locks q and calls
 * conc__waitq_forget before anything else. */
uint32_t conc__waitq_sleep_unlocked(struct conc__waitq *q, struct conc__waiter *w,
                                    int64_t deadline);
/* Called with q locked: takes w off the queue if it is still on it. */
void conc__waitq_forget(struct conc__waitq *q, struct conc__waiter *w);

/* The whole slow path of a wait for a condition someone else makes true and
 * then wakes q's waiters for (the pattern above): locks q, announces,
 * sleeps until ready(arg) holds or the deadline passes, retires, unlocks.
 * ready is read after the announce, so a waker that makes it true with a
 * seq_cst operation and then checks conc__waitq_has_waiters cannot be
 * missed. Returns 0 or CONC_ETIMEDOUT. */
int conc__waitq_wait_for(struct conc__waitq *q, bool (*ready)(void *), void *arg,
                         int64_t deadline);

/* Called with q locked. Wakes up to n waiters, oldest first, skipping those
 * that already timed out. Returns how many it woke (process-shared: n). */
unsigned conc__waitq_wake(struct conc__waitq *q, unsigned n);

/* Called with q locked. Wakes all waiters. */
static inline void conc__waitq_wake_all(struct conc__waitq *q)
{
    conc__waitq_wake(q, UINT32_MAX);
}

/* Called with q locked. Wakes, oldest first, each waiter for which
 * pick(want, arg) returns true, where want is the waiter's w->want; took(want,
 * arg) is called after each wake that succeeded (not for a waiter that timed
 * out in the same instant), so a budget kept in arg counts only real wakes.
 * Process-shared back-end: wakes all (it cannot see the waiters). Returns how
 * many were woken. */
unsigned conc__waitq_wake_if(struct conc__waitq *q, bool (*pick)(uintptr_t want, void *arg),
                             void (*took)(uintptr_t want, void *arg), void *arg);

/* Called with q locked, in-process back-end: hands the queue's oldest live
 * waiter a wake, after before_wake(w, arg) has run (a hand-off writes the new
 * owner there). Returns whether a waiter took it. */
bool conc__waitq_handoff(struct conc__waitq *q, void (*before_wake)(struct conc__waiter *, void *),
                         void *arg);

/* ---- single waiter records ---- */

static inline void conc__waiter_init(struct conc__waiter *w, uintptr_t want, uintptr_t ctx)
{
    atomic_store_explicit(&w->state, CONC__W_WAITING, memory_order_relaxed);
    w->linked = false;
    w->want = want;
    w->ctx = ctx;
    w->ops = &conc__thread_waiter;
    w->wake_arg = 0;
    w->next = w->prev = 0;
}

/* Spins up to `spin` iterations, then sleeps until the record leaves
 * WAITING/PARKED or the deadline passes. Returns the final state; *spun is
 * the number of iterations spun, or UINT32_MAX if it had to sleep. */
uint32_t conc__waiter_park(struct conc__waiter *w, int64_t deadline, unsigned spin, unsigned *spun);

/* ---- multi-wait ---- */

void conc__multiwait_init(struct conc__multiwait *m);
/* Called with q locked: links `link` (a record owned by the multi-waiter) into
 * q, for the multi-wait m. */
void conc__multiwait_link(struct conc__multiwait *m, struct conc__waitq *q,
                          struct conc__waiter *link, uintptr_t want);
/* Sleeps until at least one link fired or the deadline passed. Returns the
 * number of links fired so far (0 means the deadline passed). */
unsigned conc__multiwait_park(struct conc__multiwait *m, int64_t deadline);
/* Withdraws a link from its queue (takes q's lock). Returns true if this link
 * had been woken (its wake must then be honoured or passed on by the caller). */
bool conc__multiwait_unlink(struct conc__waitq *q, struct conc__waiter *link);

/* ---- what a sleeping thread sleeps on (for dumps) ----
 *
 * Every sleep of the wait core, and a mutex's, notes the object it sleeps
 * on in the running context's record (core/tls.h: a wait queue's address,
 * or a mutex's), and clears it on waking: a dump (debug.h) shows what each
 * thread waits for even when no diagnostic was on. One store each way, on
 * paths that are about to make a syscall anyway. */
static inline void conc__note_parked(const void *obj)
{
    atomic_store_explicit(&conc__context()->parked_on, obj, memory_order_relaxed);
}

#ifdef CONC_TEST_HOOKS
/* Test hook (core/platform.h): called by a thread waiter right after it
 * timed out (its state is TIMED_OUT) and before it re-takes the queue lock
 * to unlink itself: a test holds the waiter in that window to make the
 * wake-versus-timeout race deterministic. */
extern void (*conc__test_after_timeout)(struct conc__waiter *w);
#endif

#endif
