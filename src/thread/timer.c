/* conc_timer (thread.h): Python's threading.Timer on a conc_thread.
 *
 * The timer's thread waits on the `cancelled` event for the delay, then
 * claims the run with a compare-and-swap WAITING → RUNNING; a cancel makes
 * its own WAITING → CANCELLED and sets the event to wake the thread at
 * once. Exactly one of the two wins, so fn runs only if no cancel came
 * first, and a cancel that wins means fn never runs. */
#include "conc/thread.h"
#include "conc/sync.h"
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
    (void)conc_event_wait(&t->cancelled, t->delay); /* set: cancelled; else the delay passed */
    int waiting = CONC__TM_WAITING;
    if (!atomic_compare_exchange_strong(&t->state, &waiting, CONC__TM_RUNNING))
        return CONC_ECANCELED;
    return t->fn(t->arg);
}

int conc_timer_start(conc_timer **out, int64_t delay, conc_thread_fn fn, void *arg,
                     const char *name)
{
    if (!out || !fn || delay < 0)
        return CONC_EINVAL;
    *out = NULL;
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
    conc_thread_opts opts = {.name = name};
    int rc = conc_thread_start(&t->thread, conc__timer_main, t, &opts);
    if (rc) {
        conc_event_destroy(&t->cancelled);
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int conc_timer_cancel(conc_timer *t)
{
    if (!t)
        return CONC_EINVAL;
    int waiting = CONC__TM_WAITING;
    if (atomic_compare_exchange_strong(&t->state, &waiting, CONC__TM_CANCELLED)) {
        conc_event_set(&t->cancelled);
        return 0;
    }
    return waiting == CONC__TM_CANCELLED ? 0 : CONC_EBUSY;
}

int conc_timer_join(conc_timer *t, int64_t timeout, int *status)
{
    if (!t)
        return CONC_EINVAL;
    int rc = conc_thread_join(t->thread, timeout, status);
    if (rc == 0)
        atomic_store(&t->joined, true);
    return rc;
}

int conc_timer_destroy(conc_timer *t)
{
    if (!t)
        return CONC_EINVAL;
    if (t->thread == conc__tls.thread) /* from fn itself: it would wait for itself */
        return CONC_EDEADLK;
    conc_timer_cancel(t);
    if (!atomic_load(&t->joined))
        conc_thread_join(t->thread, CONC_FOREVER, NULL);
    conc_thread_destroy(t->thread);
    conc_event_destroy(&t->cancelled);
    free(t);
    return 0;
}
