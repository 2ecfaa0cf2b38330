/* conc_event: Python's Event on the wait core.
 *
 * e->state holds the flag (bit 0) and the number of sets so far (above it),
 * so a set raises the flag and counts itself in one atomic step. A waiter
 * notes the count under e->q's lock when it starts and returns as soon as
 * the flag is set *or* the count moved: a set followed at once by a clear
 * still releases every thread that was waiting (the pulse Python
 * guarantees), on both back-ends, since the process-shared one cannot
 * deliver a wake to a chosen record. And a wait that starts after a set —
 * even one whose flag another thread already cleared — sees that set's
 * count and is not released by it: with the flag and the count in two
 * words, a set delayed between them released such a later wait early
 * (found under TSan: an event ping-pong off by one).
 *
 * set() takes the lock only when someone announced a wait (its atomic
 * update and the announce are the Dekker pair of wait.h), and then only to
 * wake them. */
#include "core/deadline.h"
#include "core/misuse.h"
#include "sync/sync_impl.h"

#include <string.h>

#define CONC__EV_SET 1u
#define CONC__EV_COUNT 2u /* one set, in the count above the flag */

static inline struct conc__event *conc__event_of(conc_event *e)
{
    return (struct conc__event *)(void *)e;
}

/* Shared by every call on an event: its detail names no function. */
static inline int conc__event_check(conc_event *ex)
{
    if (!ex)
        return conc__misuse_at(CONC_EINVAL, NULL, "NULL event");
    if (conc__waitq_dead(&conc__event_of(ex)->q))
        return conc__misuse_at(CONC_EBADF, NULL, "the event was destroyed");
    return 0;
}

int conc_event_init(conc_event *ex, const conc_event_opts *opts)
{
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL;
    if (!ex)
        return CONC__MISUSE(CONC_EINVAL, "NULL event");
    struct conc__event *e = conc__event_of(ex);
    memset(e, 0, sizeof *e);
    atomic_store(&e->state, opts && opts->initially_set ? CONC__EV_SET : 0u);
    conc__waitq_init(&e->q, opts && opts->pshared ? CONC__WQ_PSHARED : 0);
    return 0;
}

int conc_event_destroy(conc_event *ex)
{
    int rc = conc__event_check(ex);
    if (rc)
        return rc;
    if (conc__waitq_kill(&conc__event_of(ex)->q) != 0)
        return CONC__MISUSE(CONC_EBUSY, "threads wait on the event");
    return 0;
}

int conc_event_set(conc_event *ex)
{
    int rc = conc__event_check(ex);
    if (rc)
        return rc;
    struct conc__event *e = conc__event_of(ex);
    uint32_t s = atomic_load_explicit(&e->state, memory_order_relaxed);
    do {
        if (s & CONC__EV_SET)
            return 0; /* already set: nothing changes, nobody to release */
    } while (!atomic_compare_exchange_weak_explicit(&e->state, &s,
                                                    (s + CONC__EV_COUNT) | CONC__EV_SET,
                                                    memory_order_seq_cst, memory_order_relaxed));
    if (!conc__waitq_has_waiters(&e->q))
        return 0;
    conc__waitq_lock(&e->q);
    conc__waitq_wake_all(&e->q);
    conc__waitq_unlock(&e->q);
    return 0;
}

int conc_event_clear(conc_event *ex)
{
    int rc = conc__event_check(ex);
    if (rc == 0)
        atomic_fetch_and(&conc__event_of(ex)->state, ~CONC__EV_SET);
    return rc;
}

int conc_event_is_set(conc_event *ex)
{
    int rc = conc__event_check(ex);
    return rc ? rc : (int)(atomic_load(&conc__event_of(ex)->state) & CONC__EV_SET);
}

/* The wait that began at state `start` (flag clear) is over: the flag is
 * set, or a set happened since (the pulse). */
static bool conc__event_fired(struct conc__event *e, uint32_t start)
{
    uint32_t s = atomic_load(&e->state);
    return (s & CONC__EV_SET) || (s >> 1) != (start >> 1);
}

static bool conc__event_ready(void *arg)
{
    struct conc__event *e = arg;
    return atomic_load_explicit(&e->state, memory_order_acquire) & CONC__EV_SET;
}

int conc_event_wait(conc_event *e)
{
    return conc_event_wait_timed(e, CONC_FOREVER);
}

int conc_event_wait_timed(conc_event *ex, int64_t timeout)
{
    int rc = conc__event_check(ex);
    if (rc)
        return rc;
    if (timeout < 0)
        return conc__bad_timeout();
    struct conc__event *e = conc__event_of(ex);
    if (atomic_load_explicit(&e->state, memory_order_acquire) & CONC__EV_SET)
        return 0;
    int64_t deadline = CONC__NO_DEADLINE;
    conc__deadline(timeout, &deadline);
    if (timeout == 0)
        return CONC_ETIMEDOUT;
    if (conc__spin_until(&e->q, conc__event_ready, e))
        return 0;
    struct conc__waiter w;
    conc__waiter_init(&w, 0, 0);
    conc__waitq_lock(&e->q);
    conc__waitq_announce(&e->q);
    uint32_t start = atomic_load(&e->state);
    while (!conc__event_fired(e, start)) {
        if (conc__expired(deadline)) {
            rc = CONC_ETIMEDOUT;
            break;
        }
        if (conc__waitq_sleep_unlocked(&e->q, &w, deadline) == CONC__W_WOKEN &&
            conc__event_fired(e, start)) { /* the common wake: leave lock-free */
            conc__waitq_retire(&e->q);
            return 0;
        }
        conc__waitq_lock(&e->q);
        conc__waitq_forget(&e->q, &w);
    }
    conc__waitq_retire(&e->q);
    conc__waitq_unlock(&e->q);
    return rc;
}
