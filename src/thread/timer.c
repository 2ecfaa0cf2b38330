/* conc_timer (thread.h): Python's threading.Timer on a conc_thread.
 *
 * The timer's thread waits on the `cancelled` event for the delay, then
 * claims the run with a compare-and-swap WAITING → RUNNING; a cancel makes
 * its own WAITING → CANCELLED and sets the event to wake the thread at
 * once. Exactly one of the two wins, so fn runs only if no cancel came
 * first, and a cancel that wins means fn never runs. */
#include "conc/thread.h"
#include "conc/sync.h"
#include "core/deadline.h"
#include "core/misuse.h"
#include "core/tls.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

enum { CONC__TM_WAITING, CONC__TM_RUNNING, CONC__TM_CANCELLED };

struct conc_timer {
    conc_thread *thread;
    conc_thread_fn fn;
    void *arg;
    int64_t delay;
    _Atomic int state;
    _Atomic bool joined;
    conc_event cancelled;
};

static int conc__timer_main(void *arg)
{
    conc_timer *t = arg;
    (void)conc_event_wait_timed(&t->cancelled, t->delay); /* set: cancelled; else the delay passed */
    int waiting = CONC__TM_WAITING;
    if (!atomic_compare_exchange_strong(&t->state, &waiting, CONC__TM_RUNNING))
        return CONC_ECANCELED;
    return t->fn(t->arg);
}

int conc_timer_create(conc_timer **out, int64_t delay, conc_thread_fn fn, void *arg,
                      const conc_timer_opts *opts)
{
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL;
    if (!out)
        return CONC__MISUSE(CONC_EINVAL, "NULL timer pointer");
    if (!fn)
        return CONC__MISUSE(CONC_EINVAL, "NULL function");
    *out = NULL;
    if (delay < 0)
        return CONC__MISUSE(CONC_EINVAL, "negative delay");
    const char *name = opts ? opts->name : NULL;
    conc_timer *t = calloc(1, sizeof *t);
    if (!t)
        return CONC_ENOMEM;
    t->fn = fn;
    t->arg = arg;
    t->delay = delay;
    atomic_init(&t->state, CONC__TM_WAITING);
    conc_event_init(&t->cancelled, NULL);
    char default_name[32];
    if (!name) {
        static _Atomic unsigned counter;
        snprintf(default_name, sizeof default_name, "Timer-%u", atomic_fetch_add(&counter, 1) + 1);
        name = default_name;
    }
    conc_thread_opts topts = {.name = name};
    int rc = conc_thread_create(&t->thread, conc__timer_main, t, &topts);
    if (rc) {
        conc_event_destroy(&t->cancelled);
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* Whether fn will never run: cancelled now, or before. */
static bool conc__timer_cancel(conc_timer *t)
{
    int waiting = CONC__TM_WAITING;
    if (atomic_compare_exchange_strong(&t->state, &waiting, CONC__TM_CANCELLED)) {
        conc_event_set(&t->cancelled);
        return true;
    }
    return waiting == CONC__TM_CANCELLED;
}

int conc_timer_cancel(conc_timer *t)
{
    if (!t)
        return CONC__MISUSE(CONC_EINVAL, "NULL timer");
    if (conc__timer_cancel(t))
        return 0;
    return CONC__MISUSE(CONC_EBUSY, "cancelling a timer whose function has started or finished");
}

int conc_timer_join(conc_timer *t, int *status)
{
    return conc_timer_join_timed(t, status, CONC_FOREVER);
}

int conc_timer_join_timed(conc_timer *t, int *status, int64_t timeout)
{
    if (!t)
        return CONC__MISUSE(CONC_EINVAL, "NULL timer");
    /* The thread join's own checks, in its order, told as the timer's. */
    if (timeout < 0)
        return conc__bad_timeout();
    if (t->thread == conc__tls.thread)
        return CONC__MISUSE(CONC_EDEADLK, "called from the timer's own function");
    if (atomic_load(&t->joined))
        return CONC__MISUSE(CONC_ESTATE, "the timer was joined already");
    int rc = conc_thread_join_timed(t->thread, status, timeout);
    if (rc == 0)
        atomic_store(&t->joined, true);
    return rc;
}

int conc_timer_destroy(conc_timer *t)
{
    if (!t)
        return CONC__MISUSE(CONC_EINVAL, "NULL timer");
    if (t->thread == conc__tls.thread) /* from fn itself: it would wait for itself */
        return CONC__MISUSE(CONC_EDEADLK, "called from the timer's own function");
    conc__timer_cancel(t); /* no detail: a fired timer is no misuse here */
    if (!atomic_load(&t->joined))
        conc_thread_join(t->thread, NULL);
    conc_thread_destroy(t->thread);
    conc_event_destroy(&t->cancelled);
    free(t);
    return 0;
}
