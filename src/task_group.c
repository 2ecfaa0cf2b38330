/* conc_task_group: structured concurrency over the pool. Every task spawned
 * into a group is counted in `active` from its submission until it ends;
 * waiters sleep on the group's queue until active is zero. The group keeps
 * a reference on each of its futures so that the first failure can request
 * cancellation of all the others; `lock` guards that list and orders a
 * spawn against a failure: either the spawn sees `first_error` set and
 * cancels its new task, or the failing task finds the new one in the list. */
#include "conc/sync.h"
#include "conc/thread.h"
#include "deadline.h"
#include "pool_impl.h"
#include "task_group_impl.h"

#include <stdlib.h>

struct conc_task_group {
    conc_pool *pool;
    _Atomic size_t active;
    _Atomic uint32_t enders;   /* tasks inside conc__task_group_ended */
    _Atomic int first_error;
    conc_mutex lock;
    conc_future **fs; /* under lock */
    size_t n, cap;
    struct conc__waitq wq;
};

int conc_task_group_create(conc_task_group **out, conc_pool *p)
{
    if (!out || !p)
        return CONC_EINVAL;
    conc_task_group *g = calloc(1, sizeof *g);
    if (!g) {
        *out = NULL;
        return CONC_ENOMEM;
    }
    g->pool = p;
    conc_mutex_init(&g->lock, NULL);
    conc__waitq_init(&g->wq, 0);
    *out = g;
    return 0;
}

void conc__task_group_added(conc_future *f)
{
    conc_task_group *g = f->group;
    atomic_fetch_add_explicit(&g->active, 1, memory_order_relaxed);
}

static void conc__task_group_cancel_all(conc_task_group *g)
{
    conc_mutex_lock(&g->lock);
    for (size_t i = 0; i < g->n; i++)
        (void)conc_future_request_cancel(g->fs[i]);
    conc_mutex_unlock(&g->lock);
}

void conc__task_group_ended(conc_future *f)
{
    conc_task_group *g = f->group;
    bool failed = atomic_load_explicit(&f->state, memory_order_acquire) == CONC__F_FINISHED &&
                  f->status != 0;
    /* Counted before active can reach zero: destroy waits for enders to
     * leave, since we still touch g after that decrement. */
    atomic_fetch_add_explicit(&g->enders, 1, memory_order_seq_cst);
    int none = 0;
    if (failed && atomic_compare_exchange_strong_explicit(&g->first_error, &none, f->status,
                                                          memory_order_acq_rel,
                                                          memory_order_relaxed))
        conc__task_group_cancel_all(g);
    if (atomic_fetch_sub_explicit(&g->active, 1, memory_order_seq_cst) == 1 &&
        conc__waitq_has_waiters(&g->wq)) {
        conc__waitq_lock(&g->wq);
        conc__waitq_wake_all(&g->wq);
        conc__waitq_unlock(&g->wq);
    }
    atomic_fetch_sub_explicit(&g->enders, 1, memory_order_release);
}

static int conc__task_group_track(conc_task_group *g, conc_future *f)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 16;
        conc_future **fs = realloc(g->fs, cap * sizeof *fs);
        if (!fs)
            return CONC_ENOMEM;
        g->fs = fs;
        g->cap = cap;
    }
    g->fs[g->n++] = f;
    return 0;
}

int conc_task_group_spawn(conc_task_group *g, conc_task_fn fn, void *arg)
{
    if (!g || !fn)
        return CONC_EINVAL;
    conc_future *f;
    int rc = conc__pool_submit(g->pool, fn, arg, CONC_FOREVER, g, &f);
    if (rc)
        return rc;
    conc_mutex_lock(&g->lock);
    rc = conc__task_group_track(g, f);
    bool failed = atomic_load_explicit(&g->first_error, memory_order_acquire) != 0;
    conc_mutex_unlock(&g->lock);
    if (failed || rc)
        (void)conc_future_request_cancel(f);
    if (rc) {
        /* Not tracked: wait for it here so that it cannot outlive the group. */
        (void)conc_future_wait(f, CONC_FOREVER);
        conc_future_release(f);
    }
    return rc;
}

int conc_task_group_cancel(conc_task_group *g)
{
    if (!g)
        return CONC_EINVAL;
    conc__task_group_cancel_all(g);
    return 0;
}

static bool conc__task_group_idle(conc_task_group *g)
{
    return atomic_load_explicit(&g->active, memory_order_seq_cst) == 0;
}

int conc_task_group_wait(conc_task_group *g, int64_t timeout, int *first_error)
{
    int64_t deadline;
    if (!g || conc__deadline(timeout, &deadline))
        return CONC_EINVAL;
    conc_future *self = conc__task_self;
    if (self && self->group == g)
        return CONC_EDEADLK;
    int rc = 0;
    struct conc__helper *h = conc__helper_self;
    if (h && deadline == CONC__NO_DEADLINE)
        while (!conc__task_group_idle(g) && h->help_once(h, NULL, 0))
            ;
    if (!conc__task_group_idle(g)) {
        conc__waitq_lock(&g->wq);
        conc__waitq_announce(&g->wq);
        while (!conc__task_group_idle(g)) {
            if (conc__expired(deadline)) {
                rc = CONC_ETIMEDOUT;
                break;
            }
            struct conc__waiter w;
            conc__waiter_init(&w, 0, conc__self());
            conc__waitq_sleep(&g->wq, &w, deadline);
        }
        conc__waitq_retire(&g->wq);
        conc__waitq_unlock(&g->wq);
    }
    if (first_error)
        *first_error = atomic_load_explicit(&g->first_error, memory_order_acquire);
    return rc;
}

int conc_task_group_destroy(conc_task_group *g)
{
    if (!g)
        return CONC_EINVAL;
    int rc = conc_task_group_wait(g, CONC_FOREVER, NULL);
    if (rc)
        return rc;
    /* The last task may still be inside conc__task_group_ended, after its
     * decrement: wait for it to leave (a few instructions). */
    while (atomic_load_explicit(&g->enders, memory_order_acquire) != 0)
        conc_thread_yield();
    for (size_t i = 0; i < g->n; i++)
        conc_future_release(g->fs[i]);
    free(g->fs);
    conc_mutex_destroy(&g->lock);
    free(g);
    return 0;
}
