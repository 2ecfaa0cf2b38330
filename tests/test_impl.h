/* test.h plus the helpers that read conc's private layouts (sync/sync_impl.h,
 * wait/wait.h): a blocking object's wait queue, its count of announced
 * waiters and its linked records, a mutex's word, and the wait core's
 * after-timeout hook. They are how a test knows that a thread is inside a
 * primitive, and where it is, without sleeping and hoping. */
#ifndef CONC_TEST_IMPL_H
#define CONC_TEST_IMPL_H

#include "test.h"

#include "sync/sync_impl.h"
#include "wait/wait.h"

/* ---- the wait queue of a blocking object ---- */

static inline struct conc__waitq *conc_test_waitq_mutex(conc_mutex *m)
{
    return &((struct conc__mutex *)(void *)m)->q;
}

static inline struct conc__waitq *conc_test_waitq_rmutex(conc_rmutex *m)
{
    return &((struct conc__rmutex *)(void *)m)->m.q;
}

static inline struct conc__waitq *conc_test_waitq_cond(conc_cond *c)
{
    return &((struct conc__cond *)(void *)c)->q;
}

static inline struct conc__waitq *conc_test_waitq_sem(conc_sem *s)
{
    return &((struct conc__sem *)(void *)s)->q;
}

static inline struct conc__waitq *conc_test_waitq_event(conc_event *e)
{
    return &((struct conc__event *)(void *)e)->q;
}

static inline struct conc__waitq *conc_test_waitq_barrier(conc_barrier *b)
{
    return &((struct conc__barrier *)(void *)b)->q;
}

static inline struct conc__waitq *conc_test_waitq_once(conc_once *o)
{
    return &((struct conc__once *)(void *)o)->q;
}

static inline struct conc__waitq *conc_test_waitq_rwlock(conc_rwlock *l)
{
    return &((struct conc__rwlock *)(void *)l)->q;
}

static inline struct conc__waitq *conc_test_waitq_raw(struct conc__waitq *q)
{
    return q;
}

/* The wait queue of obj: a conc_mutex, conc_rmutex, conc_cond, conc_sem,
 * conc_event, conc_barrier, conc_once or conc_rwlock pointer, or a raw
 * struct conc__waitq pointer. */
#define conc_test_waitq(obj)                                                   \
    _Generic((obj),                                                            \
        conc_mutex *: conc_test_waitq_mutex,                                   \
        conc_rmutex *: conc_test_waitq_rmutex,                                 \
        conc_cond *: conc_test_waitq_cond,                                     \
        conc_sem *: conc_test_waitq_sem,                                       \
        conc_event *: conc_test_waitq_event,                                   \
        conc_barrier *: conc_test_waitq_barrier,                               \
        conc_once *: conc_test_waitq_once,                                     \
        conc_rwlock *: conc_test_waitq_rwlock,                                 \
        struct conc__waitq *: conc_test_waitq_raw)(obj)

/* Threads announced on obj's queue: inside the slow path of a wait, under
 * the queue lock or asleep (wait.h, conc__waitq_announce). */
#define conc_test_nwaiters(obj) atomic_load(&conc_test_waitq(obj)->nwaiters)

/* Polls until exactly n threads are announced on obj's queue. */
#define conc_test_await_waiters(obj, n) conc_test_await_count(&conc_test_waitq(obj)->nwaiters, (n))

static inline unsigned conc_test_waitq_len(struct conc__waitq *q)
{
    conc__waitq_lock(q);
    unsigned n = 0;
    for (struct conc__waiter *w = q->head; w; w = w->next)
        n++;
    conc__waitq_unlock(q);
    return n;
}

static inline unsigned conc_test_waitq_parked(struct conc__waitq *q)
{
    conc__waitq_lock(q);
    unsigned n = 0;
    for (struct conc__waiter *w = q->head; w; w = w->next)
        n += atomic_load(&w->state) == CONC__W_PARKED;
    conc__waitq_unlock(q);
    return n;
}

/* The state word of q's oldest linked record (NULL if none), read under q's
 * lock: the futex word an in-process waiter sleeps on. Stays valid while
 * that waiter cannot leave (nobody wakes it, it has no deadline). */
static inline const void *conc_test_waitq_head_word(struct conc__waitq *q)
{
    conc__waitq_lock(q);
    const void *word = q->head ? (const void *)&q->head->state : NULL;
    conc__waitq_unlock(q);
    return word;
}

/* Records linked in obj's queue (in-process back-end), counted under its
 * lock: a wake unlinks the waiters it wakes before it returns, so this is
 * exact. */
#define conc_test_queue_len(obj) conc_test_waitq_len(conc_test_waitq(obj))

/* Of those, the records in state PARKED: waiters that checked their
 * condition, found it false and went to sleep on the futex in their record
 * (or are about to: the state is set just before the futex call). Nobody has
 * woken them: a wake moves the state to WOKEN. */
#define conc_test_queue_parked(obj) conc_test_waitq_parked(conc_test_waitq(obj))

/* The futex word of the oldest waiter in obj's queue. */
#define conc_test_queue_head_word(obj) conc_test_waitq_head_word(conc_test_waitq(obj))

/* ---- mutexes ---- */

/* Whether a thread is (about to be) asleep in m: default mode marks the word
 * CONTENDED, fair mode counts its queued waiter; both after the contended
 * hook ran. */
static inline bool conc_test_mutex_has_waiter(conc_mutex *m)
{
    struct conc__mutex *i = (struct conc__mutex *)(void *)m;
    return atomic_load(&i->word) == CONC__M_CONTENDED || atomic_load(&i->q.nwaiters) > 0;
}

/* ---- the wait core's after-timeout hook (wait.h) ----
 *
 * Holds a waiter that has just timed out (its state TIMED_OUT, still linked
 * in its queue) until the test lets it go: the wake-versus-timeout race made
 * deterministic. install, then await (a waiter is held), release, remove. */

static struct {
    atomic_int entered, release;
} conc_test_timeout_hold_ __attribute__((unused));

static inline void conc_test_timeout_hold_wait_(struct conc__waiter *w)
{
    (void)w;
    atomic_store(&conc_test_timeout_hold_.entered, 1);
    /* Longer than the main thread's polls, so that a hang is reported where
     * it happens. */
    CONC_TEST_POLL_UNTIL_FOR(atomic_load(&conc_test_timeout_hold_.release), 30);
}

static inline void conc_test_timeout_hold_install(void)
{
    atomic_store(&conc_test_timeout_hold_.entered, 0);
    atomic_store(&conc_test_timeout_hold_.release, 0);
    conc__test_after_timeout = conc_test_timeout_hold_wait_;
}

/* Polls until a waiter that timed out is held in the hook. */
static inline void conc_test_timeout_hold_await(void)
{
    CONC_TEST_POLL_UNTIL(atomic_load(&conc_test_timeout_hold_.entered));
}

static inline void conc_test_timeout_hold_release(void)
{
    atomic_store(&conc_test_timeout_hold_.release, 1);
}

/* Every thread that could read the hook must have been joined. */
static inline void conc_test_timeout_hold_remove(void)
{
    conc__test_after_timeout = NULL;
}

#endif
