/* conc_task_group: structured concurrency over the pool.
 *
 * A group keeps no list of its tasks: each task's future points at the
 * group, whose first member is a cancel scope (future_impl.h). Cancelling
 * the group sets the scope: running tasks see conc_cancel_requested() turn
 * true, and a task not started yet is cancelled when a worker reaches it
 * instead of running. So a group costs O(1) memory however many tasks it
 * spawns, and a spawned task's future is freed as soon as it has run.
 *
 * `active` counts tasks from their submission until they end; waiters
 * sleep on the group's queue until it is zero. The first task that fails
 * stores its status in `first_error` and cancels the scope. */
#include "conc/thread.h"
#include "core/misuse.h"
#include "core/deadline.h"
#include "exec/pool/pool_impl.h"
#include "exec/pool/task_group_impl.h"

#include <stdlib.h>

struct conc_task_group {
    struct conc__cancel_scope scope; /* first: futures point here */
    conc_pool *pool;
    _Atomic size_t active;
    _Atomic uint32_t enders; /* tasks inside conc__task_group_ended */
    _Atomic int first_error;
    struct conc__waitq wq;
};

static conc_task_group *conc__group_of(conc_future *f)
{
    return (conc_task_group *)(void *)f->group;
}

int conc_task_group_create(conc_task_group **out, conc_pool *p)
{
    if (!out || !p)
        return CONC__MISUSE(CONC_EINVAL, "NULL group pointer or pool");
    conc_task_group *g = calloc(1, sizeof *g);
    if (!g) {
        *out = NULL;
        return CONC_ENOMEM;
    }
    g->pool = p;
    conc__waitq_init(&g->wq, 0);
    *out = g;
    return 0;
}

void conc__task_group_added(conc_future *f)
{
    atomic_fetch_add_explicit(&conc__group_of(f)->active, 1, memory_order_relaxed);
}

void conc__task_group_ended(conc_future *f)
{
    conc_task_group *g = conc__group_of(f);
    /* Counted before active can reach zero: destroy waits for enders to
     * leave, since we still touch g after that decrement. */
    atomic_fetch_add_explicit(&g->enders, 1, memory_order_seq_cst);
    bool failed = atomic_load_explicit(&f->state, memory_order_acquire) == CONC__F_FINISHED &&
                  f->status != 0;
    int none = 0;
    if (failed)
        conc__future_mark_retrieved(f); /* the group answers for it */
    if (failed && atomic_compare_exchange_strong_explicit(&g->first_error, &none, f->status,
                                                          memory_order_acq_rel,
                                                          memory_order_relaxed))
        atomic_store_explicit(&g->scope.requested, true, memory_order_relaxed);
    if (atomic_fetch_sub_explicit(&g->active, 1, memory_order_seq_cst) == 1 &&
        conc__waitq_has_waiters(&g->wq)) {
        conc__waitq_lock(&g->wq);
        conc__waitq_wake_all(&g->wq);
        conc__waitq_unlock(&g->wq);
    }
    atomic_fetch_sub_explicit(&g->enders, 1, memory_order_release);
}

int conc_task_group_spawn(conc_task_group *g, conc_task_fn fn, void *arg)
{
    if (!g || !fn)
        return CONC__MISUSE(CONC_EINVAL, "NULL group or function");
    return conc__pool_submit(g->pool, fn, arg, CONC_FOREVER, &g->scope, NULL);
}

int conc_task_group_cancel(conc_task_group *g)
{
    if (!g)
        return CONC__MISUSE(CONC_EINVAL, "NULL group");
    atomic_store_explicit(&g->scope.requested, true, memory_order_relaxed);
    return 0;
}

static bool conc__task_group_idle(conc_task_group *g)
{
    return atomic_load_explicit(&g->active, memory_order_seq_cst) == 0;
}

static bool conc__task_group_idle_cb(void *g)
{
    return conc__task_group_idle(g);
}

int conc_task_group_wait(conc_task_group *g, int *first_error)
{
    return conc_task_group_wait_timed(g, first_error, CONC_FOREVER);
}

int conc_task_group_wait_timed(conc_task_group *g, int *first_error, int64_t timeout)
{
    int64_t deadline;
    if (!g)
        return CONC__MISUSE(CONC_EINVAL, "NULL group");
    int drc = conc__deadline(timeout, &deadline);
    if (drc)
        return drc;
    conc_future *self = conc__current_task();
    if (self && self->group == &g->scope)
        return CONC__MISUSE(CONC_EDEADLK, "waiting for the group from one of its own tasks");
    int rc = 0;
    struct conc__helper *h = conc__tls.helper;
    if (h && deadline == CONC__NO_DEADLINE)
        while (!conc__task_group_idle(g) && h->help_once(h, NULL, 0))
            ;
    if (!conc__task_group_idle(g))
        rc = conc__waitq_wait_for(&g->wq, conc__task_group_idle_cb, g, deadline);
    if (first_error)
        *first_error = atomic_load_explicit(&g->first_error, memory_order_acquire);
    return rc;
}

int conc_task_group_destroy(conc_task_group *g)
{
    if (!g)
        return CONC__MISUSE(CONC_EINVAL, "NULL group");
    int rc = conc_task_group_wait(g, NULL);
    if (rc)
        return rc;
    /* The last task may still be inside conc__task_group_ended, after its
     * decrement: wait for it to leave (a few instructions). */
    while (atomic_load_explicit(&g->enders, memory_order_acquire) != 0)
        conc_yield();
    free(g);
    return 0;
}
