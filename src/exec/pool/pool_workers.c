/* The pool's workers on demand (pool_impl.h): starting one when a push
 * finds every live worker busy, joining them, listing them.
 *
 * Starts are rare (at most max_workers in a pool's life) and cost a
 * thread's creation anyway, so they take start_lock: one start at a time,
 * never more than max_workers, and a stop that reads `started` under the
 * same lock after its state change joins every worker a start made. */
#include "conc/thread.h"
#include "core/misuse.h"
#include "core/deadline.h"
#include "exec/pool/pool_impl.h"

#include <stdio.h>

/* Counts on an idle worker other than the caller to look for the task just
 * pushed: IDLE → RELIED. One push per worker: a RELIED one is taken, so
 * that every queued task has its own worker that will look for it. */
static bool conc__pool_rely_on_idle(conc_pool *p)
{
    struct conc__worker *self = conc__tls.worker;
    int n = atomic_load_explicit(&p->started, memory_order_acquire);
    for (int i = 0; i < n; i++) {
        struct conc__worker *w = &p->workers[i];
        uint32_t idle = CONC__W_IDLE;
        if (w != self && atomic_load_explicit(&w->busy, memory_order_relaxed) == CONC__W_IDLE &&
            atomic_compare_exchange_strong_explicit(&w->busy, &idle, CONC__W_RELIED,
                                                    memory_order_seq_cst, memory_order_relaxed))
            return true;
    }
    return false;
}

/* Starts worker i (= started), holding start_lock. Its slot is published
 * before its thread runs, so that thieves and sleepers see its deque from
 * its first push; FRESH until the thread exists, so that nobody counts on
 * a worker whose start may still fail. */
static int conc__pool_start_worker(conc_pool *p, int i)
{
    struct conc__worker *w = &p->workers[i];
    /* A slot whose start failed keeps its deque: a thief that saw the slot
     * published may still be reading it. */
    if (!atomic_load_explicit(&w->dq.buf, memory_order_relaxed) && conc__deque_init(&w->dq, 8) != 0)
        return CONC_ENOMEM;
    atomic_store_explicit(&w->busy, CONC__W_FRESH, memory_order_relaxed);
    atomic_store_explicit(&p->started, i + 1, memory_order_release);
    char tname[80];
    snprintf(tname, sizeof tname, "%s-%d", p->name, i);
    conc_thread_opts topts = {.name = tname};
    int rc = conc_thread_create(&w->thread, conc__worker_main, w, &topts);
    if (rc) {
        w->thread = NULL;
        atomic_store_explicit(&p->started, i, memory_order_release);
        return rc;
    }
    uint32_t fresh = CONC__W_FRESH; /* unless it took a task already */
    atomic_compare_exchange_strong_explicit(&w->busy, &fresh, CONC__W_IDLE, memory_order_seq_cst,
                                            memory_order_relaxed);
    if (i + 1 == p->max_workers)
        atomic_store_explicit(&p->full, true, memory_order_relaxed);
    return 0;
}

int conc__pool_grow(conc_pool *p)
{
    if (conc__pool_rely_on_idle(p))
        return 0;
    /* Again under the lock: a start that held it may have made a worker
     * that now searches, or that is idle. A searcher or a sleeper counted
     * now looks for work after our push (the Dekker pair of pool.c), so
     * skipping the start then is safe. And nothing queued any more means
     * a worker took the task meanwhile (it is busy with it, which is why
     * it looked busy): no start is needed for it. */
    int rc = 0;
    conc_mutex_lock(&p->start_lock);
    int n = atomic_load_explicit(&p->started, memory_order_relaxed);
    if (n < p->max_workers &&
        atomic_load_explicit(&p->state, memory_order_acquire) == CONC__POOL_RUNNING &&
        atomic_load_explicit(&p->searching, memory_order_relaxed) == 0 &&
        atomic_load_explicit(&p->sleepers, memory_order_relaxed) == 0 &&
        conc__pool_has_work(p) && !conc__pool_rely_on_idle(p))
        rc = conc__pool_start_worker(p, n);
    conc_mutex_unlock(&p->start_lock);
    return rc;
}

int conc__pool_join(conc_pool *p, int64_t deadline)
{
    conc_mutex_lock(&p->start_lock);
    int n = atomic_load_explicit(&p->started, memory_order_relaxed);
    conc_mutex_unlock(&p->start_lock);
    for (int i = 0; i < n; i++) {
        conc_thread *t = p->workers[i].thread;
        if (!t)
            continue;
        int64_t left = CONC_FOREVER;
        if (deadline != CONC__NO_DEADLINE) {
            int64_t now = conc__now();
            left = deadline > now ? deadline - now : 0;
        }
        if (conc_thread_join_timed(t, NULL, left) != 0)
            return CONC_ETIMEDOUT;
        /* Out of the list first: conc_pool_enumerate_workers reads the
         * handles under start_lock. */
        conc_mutex_lock(&p->start_lock);
        p->workers[i].thread = NULL;
        conc_mutex_unlock(&p->start_lock);
        conc_thread_destroy(t);
    }
    return 0;
}

/* Fills out[0..min(n, cap)) with the live workers; returns n. Holding
 * start_lock. */
static int conc__pool_list_workers(conc_pool *p, conc_thread_info *out, size_t cap)
{
    int n = 0;
    int started = atomic_load_explicit(&p->started, memory_order_relaxed);
    for (int i = 0; i < started; i++) {
        conc_thread *t = p->workers[i].thread;
        if (!t || conc_thread_is_alive(t) != 1)
            continue;
        if ((size_t)n < cap) {
            conc_thread_info *info = &out[n];
            info->id = conc_thread_id(t);
            conc_thread_get_name(t, info->name, sizeof info->name);
            info->started_by_conc = true;
        }
        n++;
    }
    return n;
}

int conc__pool_live_workers(conc_pool *p)
{
    conc_mutex_lock(&p->start_lock);
    int n = conc__pool_list_workers(p, NULL, 0);
    conc_mutex_unlock(&p->start_lock);
    return n;
}

int64_t conc_pool_enumerate_workers(conc_pool *p, conc_thread_info *out, size_t cap)
{
    if (!p)
        return CONC__MISUSE(CONC_EINVAL, "NULL pool");
    if (!out && cap)
        return CONC__MISUSE(CONC_EINVAL, "NULL array with cap > 0");
    if (conc__executor_lost(&p->exec))
        return CONC_EBROKEN; /* its workers stayed in the parent */
    conc_mutex_lock(&p->start_lock);
    int n = conc__pool_list_workers(p, out, cap);
    conc_mutex_unlock(&p->start_lock);
    return n;
}
