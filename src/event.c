/* conc_event: Python's Event on the wait core.
 *
 * flag is the state; gen counts the sets that found waiters. A waiter notes gen
 * under e->q's lock when it starts and returns as soon as the flag is set *or*
 * gen moved: a set followed at once by a clear still releases every thread
 * that was waiting (the pulse Python guarantees), on both back-ends, since the
 * process-shared one cannot deliver a wake to a chosen record. set() only
 * takes the lock when someone announced a wait (the flag exchange and the
 * announce are the Dekker pair of wait.h).
 */
#include "deadline.h"
#include "sync_impl.h"

#include <string.h>

static inline struct conc__event *conc__event_of(conc_event *e)
{
    return (struct conc__event *)(void *)e;
}

static inline int conc__event_check(conc_event *ex)
{
    if (!ex)
        return CONC_EINVAL;
    return conc__waitq_dead(&conc__event_of(ex)->q) ? CONC_EBADF : 0;
}

int conc_event_init(conc_event *ex, const conc_event_opts *opts)
{
    if (!ex)
        return CONC_EINVAL;
    struct conc__event *e = conc__event_of(ex);
    memset(e, 0, sizeof *e);
    atomic_store(&e->flag, opts && opts->initially_set);
    conc__waitq_init(&e->q, opts && opts->pshared ? CONC__WQ_PSHARED : 0);
    return 0;
}

int conc_event_destroy(conc_event *ex)
{
    int rc = conc__event_check(ex);
    return rc ? rc : conc__waitq_kill(&conc__event_of(ex)->q);
}

int conc_event_set(conc_event *ex)
{
    int rc = conc__event_check(ex);
    if (rc)
        return rc;
    struct conc__event *e = conc__event_of(ex);
    if (atomic_exchange(&e->flag, 1) == 1 || !conc__waitq_has_waiters(&e->q))
        return 0;
    conc__waitq_lock(&e->q);
    atomic_fetch_add_explicit(&e->gen, 1, memory_order_release);
    conc__waitq_wake_all(&e->q);
    conc__waitq_unlock(&e->q);
    return 0;
}

int conc_event_clear(conc_event *ex)
{
    int rc = conc__event_check(ex);
    if (rc == 0)
        atomic_store(&conc__event_of(ex)->flag, 0);
    return rc;
}

int conc_event_is_set(conc_event *ex)
{
    int rc = conc__event_check(ex);
    return rc ? rc : (int)atomic_load(&conc__event_of(ex)->flag);
}

/* The wait that began at generation gen is over: the flag is set, or a set
 * happened since (the pulse). */
static bool conc__event_fired(struct conc__event *e, uint32_t gen)
{
    return atomic_load(&e->flag) || atomic_load_explicit(&e->gen, memory_order_acquire) != gen;
}

static bool conc__event_ready(void *arg)
{
    struct conc__event *e = arg;
    return atomic_load_explicit(&e->flag, memory_order_acquire) != 0;
}

int conc_event_wait(conc_event *ex, int64_t timeout)
{
    int rc = conc__event_check(ex);
    if (rc)
        return rc;
    if (timeout < 0 && timeout != CONC_FOREVER)
        return CONC_EINVAL;
    struct conc__event *e = conc__event_of(ex);
    if (atomic_load_explicit(&e->flag, memory_order_acquire))
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
    uint32_t gen = atomic_load_explicit(&e->gen, memory_order_relaxed);
    while (!conc__event_fired(e, gen)) {
        if (conc__expired(deadline)) {
            rc = CONC_ETIMEDOUT;
            break;
        }
        if (conc__waitq_sleep_unlocked(&e->q, &w, deadline) == CONC__W_WOKEN &&
            conc__event_fired(e, gen)) { /* the common wake: leave lock-free */
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
