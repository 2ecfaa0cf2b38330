/* conc_cond: a condition variable on the wait core.
 *
 * A waiter announces itself and queues its record under c->q's lock *before*
 * it releases the user's mutex, so a notifier that takes the mutex afterwards
 * always finds it: no wake-up is lost between "predicate false" and "asleep".
 * Lock order: c->q.lock, then (to release it) the user mutex's internals;
 * nothing takes them the other way round. The mutex is re-taken after c->q is
 * released, with no deadline: the wait returns holding it, as every condition
 * variable must, also after a timeout.
 */
#include "core/deadline.h"
#include "core/misuse.h"
#include "sync/sync_impl.h"

#include <string.h>

static inline struct conc__cond *conc__cond_of(conc_cond *c)
{
    return (struct conc__cond *)(void *)c;
}

int conc_cond_init(conc_cond *cx, const conc_cond_opts *opts)
{
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL;
    if (!cx)
        return CONC__MISUSE(CONC_EINVAL, "NULL condition");
    struct conc__cond *c = conc__cond_of(cx);
    memset(c, 0, sizeof *c);
    conc__waitq_init(&c->q, opts && opts->pshared ? CONC__WQ_PSHARED : 0);
    return 0;
}

int conc_cond_destroy(conc_cond *cx)
{
    if (!cx)
        return CONC__MISUSE(CONC_EINVAL, "NULL condition");
    struct conc__cond *c = conc__cond_of(cx);
    if (conc__waitq_dead(&c->q))
        return CONC__MISUSE(CONC_EBADF, "the condition was destroyed already");
    if (conc__waitq_kill(&c->q) != 0)
        return CONC__MISUSE(CONC_EBUSY, "threads wait on the condition");
    return 0;
}

/* Both objects alive, and the caller holds m. Shared by every wait on a
 * condition: its detail names no function. */
static int conc__cond_check(struct conc__cond *c, struct conc__mutex *m)
{
    if (conc__waitq_dead(&c->q))
        return conc__misuse_at(CONC_EBADF, NULL, "the condition was destroyed");
    if (conc__waitq_dead(&m->q))
        return conc__misuse_at(CONC_EBADF, NULL, "the mutex was destroyed");
    if (atomic_load_explicit(&m->owner, memory_order_relaxed) != conc__owner_self(&m->q))
        return conc__misuse_at(CONC_EPERM, NULL,
                               "waiting on a condition without holding its mutex");
    return 0;
}

/* The arguments of the condition's waits, in order: 0, or the misuse code
 * with its detail (fn: the public call). */
static inline int conc__cond_args(const char *fn, const void *c, const void *m, bool has_pred,
                           int64_t timeout, int64_t *deadline)
{
    if (!c)
        return conc__misuse_at(CONC_EINVAL, fn, "NULL condition");
    if (!m)
        return conc__misuse_at(CONC_EINVAL, fn, "NULL mutex");
    if (!has_pred)
        return conc__misuse_at(CONC_EINVAL, fn, "NULL predicate");
    return conc__deadline(timeout, deadline);
}

/* depth: the recursive mutex's depth to release and restore, or NULL. */
static int conc__cond_wait(struct conc__cond *c, struct conc__mutex *m, uint32_t *depth,
                           int64_t deadline)
{
    int rc = conc__cond_check(c, m);
    if (rc)
        return rc;
    struct conc__waiter w;
    conc__waiter_init(&w, 0, 0);
    uint32_t saved_depth = depth ? *depth : 0;
    conc__waitq_lock(&c->q);
    conc__waitq_announce(&c->q);
    if (depth)
        *depth = 0;
    conc__mutex_unlock(m);
    uint32_t s = conc__waitq_sleep(&c->q, &w, deadline);
    conc__waitq_retire(&c->q);
    conc__waitq_unlock(&c->q);
    conc__mutex_lock_until(m, CONC__NO_DEADLINE);
    if (depth)
        *depth = saved_depth;
    return s == CONC__W_WOKEN ? 0 : CONC_ETIMEDOUT;
}

int conc_cond_wait_timed(conc_cond *c, conc_mutex *m, int64_t timeout)
{
    int64_t deadline = CONC__NO_DEADLINE;
    int rc = conc__cond_args(__func__, c, m, true, timeout, &deadline);
    if (rc)
        return rc;
    return conc__cond_wait(conc__cond_of(c), (struct conc__mutex *)(void *)m, 0, deadline);
}

int conc_cond_wait_rmutex_timed(conc_cond *c, conc_rmutex *m, int64_t timeout)
{
    int64_t deadline = CONC__NO_DEADLINE;
    int rc = conc__cond_args(__func__, c, m, true, timeout, &deadline);
    if (rc)
        return rc;
    struct conc__rmutex *r = (struct conc__rmutex *)(void *)m;
    return conc__cond_wait(conc__cond_of(c), &r->m, &r->depth, deadline);
}

/* Waits until pred(arg), with one deadline; depth as conc__cond_wait. */
static int conc__cond_wait_for(struct conc__cond *c, struct conc__mutex *m, uint32_t *depth,
                               conc_pred_fn pred, void *arg, int64_t deadline)
{
    int rc = conc__cond_check(c, m);
    if (rc)
        return rc; /* checked before pred, which reads state m guards */
    for (;;) {
        int holds = pred(arg);
        if (holds < 0)
            return holds; /* the predicate's own error ends the wait */
        if (holds)
            return 0;
        if (conc__expired(deadline))
            return CONC_ETIMEDOUT;
        rc = conc__cond_wait(c, m, depth, deadline);
        if (rc != 0 && rc != CONC_ETIMEDOUT)
            return rc;
    }
}

int conc_cond_wait_for_timed(conc_cond *c, conc_mutex *m, conc_pred_fn pred, void *arg,
                             int64_t timeout)
{
    int64_t deadline = CONC__NO_DEADLINE;
    int rc = conc__cond_args(__func__, c, m, pred != NULL, timeout, &deadline);
    if (rc)
        return rc;
    return conc__cond_wait_for(conc__cond_of(c), (struct conc__mutex *)(void *)m, NULL, pred, arg,
                               deadline);
}

int conc_cond_wait_for_rmutex_timed(conc_cond *c, conc_rmutex *m, conc_pred_fn pred, void *arg,
                                    int64_t timeout)
{
    int64_t deadline = CONC__NO_DEADLINE;
    int rc = conc__cond_args(__func__, c, m, pred != NULL, timeout, &deadline);
    if (rc)
        return rc;
    struct conc__rmutex *r = (struct conc__rmutex *)(void *)m;
    return conc__cond_wait_for(conc__cond_of(c), &r->m, &r->depth, pred, arg, deadline);
}

int conc_cond_notify_n(conc_cond *cx, size_t n)
{
    if (!cx)
        return CONC__MISUSE(CONC_EINVAL, "NULL condition");
    struct conc__cond *c = conc__cond_of(cx);
    if (conc__waitq_dead(&c->q))
        return CONC__MISUSE(CONC_EBADF, "the condition was destroyed");
    if (n > UINT32_MAX)
        n = UINT32_MAX; /* more than can ever wait */
    if (n == 0 || !conc__waitq_has_waiters(&c->q))
        return 0;
    conc__waitq_lock(&c->q);
    conc__waitq_wake(&c->q, (unsigned)n);
    conc__waitq_unlock(&c->q);
    return 0;
}

int conc_cond_notify(conc_cond *c)
{
    return conc_cond_notify_n(c, 1);
}

int conc_cond_notify_all(conc_cond *c)
{
    return conc_cond_notify_n(c, UINT32_MAX);
}

int conc_cond_wait(conc_cond *c, conc_mutex *m)
{
    return conc_cond_wait_timed(c, m, CONC_FOREVER);
}

int conc_cond_wait_rmutex(conc_cond *c, conc_rmutex *m)
{
    return conc_cond_wait_rmutex_timed(c, m, CONC_FOREVER);
}

int conc_cond_wait_for(conc_cond *c, conc_mutex *m, conc_pred_fn pred, void *arg)
{
    return conc_cond_wait_for_timed(c, m, pred, arg, CONC_FOREVER);
}

int conc_cond_wait_for_rmutex(conc_cond *c, conc_rmutex *m, conc_pred_fn pred, void *arg)
{
    return conc_cond_wait_for_rmutex_timed(c, m, pred, arg, CONC_FOREVER);
}
