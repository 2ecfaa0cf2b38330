/* conc_once: run an initialiser once successfully.
 *
 * state goes INIT → RUNNING → DONE, or back to INIT when the initialiser
 * fails, so the failure is not latched: the next caller (a woken waiter
 * included) runs it again. Callers that find RUNNING sleep on o->q; the runner
 * wakes them all when it finishes either way. The DONE check is one acquire
 * load, the only cost once initialised. o->runner (under o->q's lock) names
 * the caller running the initialiser, so that an initialiser calling its own
 * once gets CONC_EDEADLK instead of waiting for itself.
 */
#include "core/deadline.h"
#include "core/misuse.h"
#include "sync/sync_impl.h"

#include <string.h>

int conc_once_init(conc_once *ox)
{
    if (!ox)
        return CONC__MISUSE(CONC_EINVAL, "NULL once");
    memset(ox, 0, sizeof *ox);
    return 0;
}

int conc_once_destroy(conc_once *ox)
{
    if (!ox)
        return CONC__MISUSE(CONC_EINVAL, "NULL once");
    struct conc__once *o = (struct conc__once *)(void *)ox;
    if (conc__waitq_dead(&o->q))
        return CONC__MISUSE(CONC_EBADF, "the once was destroyed already");
    conc__waitq_lock(&o->q);
    bool running = atomic_load_explicit(&o->state, memory_order_relaxed) == CONC__O_RUNNING;
    conc__waitq_unlock(&o->q);
    if (running)
        return CONC__MISUSE(CONC_EBUSY, "its initialiser is running");
    if (conc__waitq_kill(&o->q) != 0)
        return CONC__MISUSE(CONC_EBUSY, "callers wait on it");
    /* Off the DONE fast path, so that a later call sees the dead marker. */
    atomic_store_explicit(&o->state, CONC__O_INIT, memory_order_release);
    return 0;
}

int conc_once_call_timed(conc_once *ox, int (*fn)(void *), void *arg, int64_t timeout)
{
    if (!ox)
        return CONC__MISUSE(CONC_EINVAL, "NULL once");
    if (!fn)
        return CONC__MISUSE(CONC_EINVAL, "NULL function");
    if (timeout < 0)
        return conc__bad_timeout();
    struct conc__once *o = (struct conc__once *)(void *)ox;
    if (conc__likely(atomic_load_explicit(&o->state, memory_order_acquire) == CONC__O_DONE))
        return 0;
    if (conc__waitq_dead(&o->q))
        return CONC__MISUSE(CONC_EBADF, "the once was destroyed");
    int64_t deadline = CONC__NO_DEADLINE;
    conc__deadline(timeout, &deadline);
    uintptr_t self = conc__owner_self(&o->q);
    struct conc__waiter w;
    conc__waiter_init(&w, 0, 0);
    int rc = 0;
    conc__waitq_lock(&o->q);
    conc__waitq_announce(&o->q);
    for (;;) {
        uint32_t s = atomic_load_explicit(&o->state, memory_order_acquire);
        if (s == CONC__O_DONE)
            break;
        if (s == CONC__O_INIT) {
            atomic_store_explicit(&o->state, CONC__O_RUNNING, memory_order_relaxed);
            o->runner = self;
            conc__waitq_unlock(&o->q);
            rc = fn(arg);
            conc__waitq_lock(&o->q);
            o->runner = 0;
            atomic_store_explicit(&o->state, rc == 0 ? CONC__O_DONE : CONC__O_INIT,
                                  memory_order_release);
            conc__waitq_wake_all(&o->q);
            break;
        }
        if (o->runner == self) { /* the initialiser calls its own once */
            rc = CONC__MISUSE(CONC_EDEADLK, "the initialiser calls its own once");
            break;
        }
        if (conc__expired(deadline)) {
            rc = CONC_ETIMEDOUT;
            break;
        }
        conc__waitq_sleep(&o->q, &w, deadline);
    }
    conc__waitq_retire(&o->q);
    conc__waitq_unlock(&o->q);
    return rc;
}

int conc_once_call(conc_once *o, int (*fn)(void *), void *arg)
{
    return conc_once_call_timed(o, fn, arg, CONC_FOREVER);
}
