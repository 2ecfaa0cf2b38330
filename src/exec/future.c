/* conc_future: states, waiting, results, cancel and done-callbacks
 * (future_impl.h explains the executor interface and the completion
 * protocol). Waiting on several futures is in future_wait.c. */
#include "exec/future_impl.h"
#include "core/deadline.h"
#include "core/hooks.h"
#include "core/misuse.h"
#include "core/unhandled.h"

#include <stdlib.h>

conc_future *conc__future_new(conc_task_fn fn, void *arg, struct conc__executor *exec,
                              uint32_t refs)
{
    conc_future *f = conc__future_alloc_mem();
    if (!f)
        return NULL;
    atomic_init(&f->state, CONC__F_PENDING);
    atomic_init(&f->refs, refs);
    f->status = 0;
    atomic_init(&f->cancel_requested, false);
    f->ran = false;
    f->value = 0;
    f->free_fn = NULL;
    f->u.task.fn = fn;
    f->u.task.arg = arg;
    f->exec = exec;
    f->group = NULL;
    f->parent = NULL;
    atomic_init(&f->flags, 0);
    atomic_init(&f->cb_head, NULL);
    conc__waitq_init(&f->wq, 0);
    return f;
}

/* At its last reference: an error nobody read is reported (base.h,
 * conc_set_unhandled_hook). A cancellation is no error, and a future that
 * never ran (its pool broke) was never the task's to report. */
static void conc__future_report_unread(conc_future *f)
{
    if (f->ran && f->status != 0 && f->status != CONC_ECANCELED &&
        !(atomic_load_explicit(&f->flags, memory_order_relaxed) & CONC__FF_RETRIEVED))
        conc__report_unhandled(&(conc_unhandled){"future", NULL, f, f->status});
}

int conc_future_retain(conc_future *f)
{
    if (!f)
        return CONC__MISUSE(CONC_EINVAL, "NULL future");
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return 0;
}

int conc_future_release(conc_future *f)
{
    if (!f)
        return CONC__MISUSE(CONC_EINVAL, "NULL future");
    /* A loop, not recursion: freeing a future drops its parent's reference. */
    while (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1) {
        conc__future_report_unread(f);
        conc_future *parent = f->parent;
        if (f->ran && f->free_fn && f->u.buf.data)
            f->free_fn(f->u.buf.data);
        conc__future_free_mem(f);
        f = parent;
    }
    return 0;
}

/* ---- completion ---- */

static void conc__run_callbacks(conc_future *f, struct conc__fcallback *c)
{
    while (c) {
        struct conc__fcallback *next = c->next;
        (void)c->cb(f, c->arg); /* a failure is ignored: the others still run */
        free(c);
        c = next;
    }
}

/* After the final state was stored (seq_cst): wakes the waiters and runs
 * the callbacks, if it sees any (the Dekker pair of future_impl.h). */
static void conc__future_notify(conc_future *f)
{
    if (atomic_load_explicit(&f->cb_head, memory_order_seq_cst) == NULL &&
        !conc__waitq_has_waiters(&f->wq))
        return;
    conc__waitq_lock(&f->wq);
    struct conc__fcallback *list = atomic_load_explicit(&f->cb_head, memory_order_relaxed);
    atomic_store_explicit(&f->cb_head, NULL, memory_order_relaxed);
    conc__waitq_wake_all(&f->wq);
    conc__waitq_unlock(&f->wq);
    conc__run_callbacks(f, list);
}

/* Publishes the final state (status and result are written before). */
static void conc__future_complete(conc_future *f, uint32_t final)
{
    atomic_store_explicit(&f->state, final, memory_order_seq_cst);
    conc__future_notify(f);
}

void conc__future_finish(conc_future *f, int status, const conc_result *result)
{
    f->status = status;
    conc_result r = result ? *result : (conc_result){0};
    f->value = r.value;
    f->free_fn = r.free_fn;
    f->u.buf.data = r.data;
    f->u.buf.len = r.len;
    f->ran = true;
    bool cancelled = status == CONC_ECANCELED && conc__future_cancel_wanted(f);
    conc__future_complete(f, cancelled ? CONC__F_CANCELLED : CONC__F_FINISHED);
}

void conc__future_execute(conc_future *f, _Atomic uint32_t *freed)
{
    struct conc__context ctx = {.ident = (uintptr_t)f, .task = f, .cancel = &f->cancel_requested};
    conc__context_enter(&ctx);
    CONC__TRACE_BEGIN("task", f);
    conc_task_fn fn = f->u.task.fn; /* the union's task half is gone once it ran */
    void *arg = f->u.task.arg;
    conc_result r = {0};
    int status = fn(arg, &r);
    CONC__TRACE_END("task", f);
    conc__context_leave(&ctx);
    if (freed) /* before the end is published: whoever sees it sees this */
        atomic_store_explicit(freed, 0, memory_order_relaxed);
    conc__future_finish(f, status, &r);
}

bool conc__future_cancel_pending(conc_future *f)
{
    uint32_t pending = CONC__F_PENDING;
    if (!atomic_compare_exchange_strong_explicit(&f->state, &pending, CONC__F_CANCELLED,
                                                 memory_order_seq_cst, memory_order_relaxed))
        return false;
    if (f->exec && f->exec->ops->cancelled)
        f->exec->ops->cancelled(f);
    conc__future_notify(f);
    return true;
}

void conc__future_fail_claimed(conc_future *f, int status)
{
    f->status = status;
    f->value = 0;
    f->free_fn = NULL;
    f->u.buf.data = NULL;
    f->u.buf.len = 0;
    conc__future_complete(f, CONC__F_FINISHED);
}

/* ---- queries and cancel ---- */

int conc_future_done(conc_future *f)
{
    if (!f)
        return CONC__MISUSE(CONC_EINVAL, "NULL future");
    return conc__future_is_done(f);
}

int conc_future_running(conc_future *f)
{
    if (!f)
        return CONC__MISUSE(CONC_EINVAL, "NULL future");
    return atomic_load_explicit(&f->state, memory_order_acquire) == CONC__F_RUNNING;
}

int conc_future_cancelled(conc_future *f)
{
    if (!f)
        return CONC__MISUSE(CONC_EINVAL, "NULL future");
    return atomic_load_explicit(&f->state, memory_order_acquire) == CONC__F_CANCELLED;
}

/* The running context's token, or its task group's. */
int conc_cancel_requested(void)
{
    struct conc__context *c = conc__context();
    if (c->cancel && atomic_load_explicit(c->cancel, memory_order_relaxed))
        return 1;
    return c->task && c->task->group &&
           atomic_load_explicit(&c->task->group->requested, memory_order_relaxed);
}

int conc_future_cancel(conc_future *f)
{
    if (!f)
        return CONC__MISUSE(CONC_EINVAL, "NULL future");
    if (conc__future_cancel_pending(f))
        return 0;
    /* Already cancelled counts as success (Python); running or finished not. */
    if (conc_future_cancelled(f))
        return 0;
    return CONC__MISUSE(CONC_EBUSY, "cancelling a running or finished future");
}

int conc_future_request_cancel(conc_future *f)
{
    if (!f)
        return CONC__MISUSE(CONC_EINVAL, "NULL future");
    /* Done before the request: nothing to cancel. Looked at first: a task
     * that sees the request may finish at once, and that is a request
     * delivered, not one too late. */
    if (conc__future_is_done(f))
        return CONC__MISUSE(CONC_EBUSY, "the future is done (finished or cancelled): nothing to cancel");
    atomic_store_explicit(&f->cancel_requested, true, memory_order_relaxed);
    if (conc__future_cancel_pending(f))
        return 0;
    if (f->exec && f->exec->ops->cancel_requested)
        f->exec->ops->cancel_requested(f);
    return 0;
}

/* ---- callbacks ---- */

int conc_future_add_done_callback(conc_future *f, conc_future_callback cb, void *arg)
{
    if (!f)
        return CONC__MISUSE(CONC_EINVAL, "NULL future");
    if (!cb)
        return CONC__MISUSE(CONC_EINVAL, "NULL callback");
    if (conc__future_is_done(f)) {
        (void)cb(f, arg);
        return 0;
    }
    struct conc__fcallback *c = malloc(sizeof *c);
    if (!c)
        return CONC_ENOMEM;
    *c = (struct conc__fcallback){cb, arg, NULL};
    conc__waitq_lock(&f->wq);
    struct conc__fcallback *last = atomic_load_explicit(&f->cb_head, memory_order_relaxed);
    if (last) { /* appended, to run in the order added (lists are short) */
        while (last->next)
            last = last->next;
        last->next = c;
    } else {
        atomic_store_explicit(&f->cb_head, c, memory_order_seq_cst);
    }
    /* Linked first, then looked: if the future is done now, the finisher may
     * or may not have seen our callback; whoever detaches the list under the
     * lock runs it, so take it ourselves (older callbacks with it, in order). */
    struct conc__fcallback *list = NULL;
    if (atomic_load_explicit(&f->state, memory_order_seq_cst) >= CONC__F_FINISHED) {
        list = atomic_load_explicit(&f->cb_head, memory_order_relaxed);
        atomic_store_explicit(&f->cb_head, NULL, memory_order_relaxed);
    }
    conc__waitq_unlock(&f->wq);
    conc__run_callbacks(f, list);
    return 0;
}

/* ---- waiting ---- */

static bool conc__future_ready(void *arg)
{
    return conc__future_is_done(arg);
}

static bool conc__future_ready_sc(void *arg)
{
    conc_future *f = arg;
    return atomic_load_explicit(&f->state, memory_order_seq_cst) >= CONC__F_FINISHED;
}

/* Sleeps on f's queue until it is done or the deadline passes. */
static int conc__future_block(conc_future *f, int64_t deadline)
{
    if (conc__spin_until(&f->wq, conc__future_ready, f))
        return 0;
    return conc__waitq_wait_for(&f->wq, conc__future_ready_sc, f, deadline);
}

/* Whether waiting on f from here could never end: f is the caller's own task. */
static inline bool conc__future_is_self(conc_future *f)
{
    return f == conc__current_task();
}

/* Helps while f is not done. When there is nothing to help with, the task
 * we wait for runs elsewhere and may yet push work we can take (a thief's
 * deque fills as it goes): look again a few times, a short spin apart,
 * before going to sleep. */
#define CONC__HELP_RETRIES 32
#define CONC__HELP_RETRY_SPIN 64
#define CONC__HELP_NAP_MIN CONC_USEC(50)
#define CONC__HELP_NAP_MAX CONC_MSEC(10)

static void conc__help_until_done(struct conc__helper *h, conc_future *f)
{
    unsigned idle = 0;
    while (!conc__future_is_done(f)) {
        if (h->help_once(h, &f, 1)) {
            idle = 0;
            continue;
        }
        if (!CONC__SPIN_ENABLED || ++idle > CONC__HELP_RETRIES)
            return;
        for (int i = 0; i < CONC__HELP_RETRY_SPIN && !conc__future_is_done(f); i++)
            conc__cpu_relax();
    }
}

int conc_future_wait_timed(conc_future *f, int64_t timeout)
{
    int64_t deadline;
    if (!f)
        return CONC__MISUSE(CONC_EINVAL, "NULL future");
    int rc = conc__deadline(timeout, &deadline);
    if (rc)
        return rc;
    if (conc__future_is_done(f))
        return 0;
    if (conc__future_is_self(f))
        return CONC__MISUSE(CONC_EDEADLK, "waiting on the caller's own task's future");
    if (f->exec && conc__executor_lost(f->exec))
        return CONC_EBROKEN; /* nobody here will ever run or finish it */
    /* Help only in an untimed wait: a task run meanwhile could overshoot
     * any deadline by its whole length. */
    struct conc__helper *h = conc__tls.helper;
    if (h && deadline == CONC__NO_DEADLINE) {
        /* A helper sleeps in naps: the task it waits for runs elsewhere and
         * may push work of our subtree at any time, which nobody would
         * wake us for. Each nap doubles, up to CONC__HELP_NAP_MAX. */
        int64_t nap = CONC__HELP_NAP_MIN;
        for (;;) {
            conc__help_until_done(h, f);
            if (conc__future_is_done(f) || conc__future_block(f, conc__now() + nap) == 0)
                return 0;
            nap = nap < CONC__HELP_NAP_MAX / 2 ? 2 * nap : CONC__HELP_NAP_MAX;
        }
    }
    if (timeout == 0)
        return CONC_ETIMEDOUT;
    if (f->exec && f->exec->ops->await) {
        f->exec->ops->await(f, deadline);
        if (conc__future_is_done(f))
            return 0;
    }
    return conc__future_block(f, deadline);
}

int conc_future_wait(conc_future *f)
{
    return conc_future_wait_timed(f, CONC_FOREVER);
}

int conc_future_result(conc_future *f, conc_result *out)
{
    return conc_future_result_timed(f, out, CONC_FOREVER);
}

int conc_future_result_timed(conc_future *f, conc_result *out, int64_t timeout)
{
    int rc = conc_future_wait_timed(f, timeout);
    if (rc)
        return rc;
    bool cancelled =
        atomic_load_explicit(&f->state, memory_order_acquire) == CONC__F_CANCELLED;
    conc__future_mark_retrieved(f);
    if (out) {
        /* A task that never ran left no result (the union still holds
         * the task). */
        if (!f->ran)
            *out = (conc_result){0};
        else
            *out = (conc_result){f->value, f->u.buf.data, f->u.buf.len, f->free_fn};
    }
    return cancelled ? CONC_ECANCELED : f->status;
}
