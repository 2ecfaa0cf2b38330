/* conc_queue: Python's queue.Queue family on the wait core.
 *
 * One wait queue, q->wq, whose internal lock guards the whole queue: the
 * store, the count of unfinished tasks and the shutdown flag. Every blocked
 * caller is a waiter record on q->wq tagged with what it waits for (an item,
 * room, or no unfinished task), so that a put wakes getters only, as many as
 * it added items, a get wakes putters only, and task_done wakes joiners. A
 * woken caller re-checks its condition before its deadline (the wait core's
 * rule), and one that times out at the moment it is chosen passes the wake
 * on. Shutdown wakes everyone to re-check.
 *
 * This first version takes the lock on every call; the bounded FIFO's
 * lock-free ring (issue 5) replaces that path without changing the rest.
 */
#include "queue_impl.h"
#include "deadline.h"
#include "hooks.h"

#include <stdlib.h>
#include <string.h>

int conc_queue_create(conc_queue **out, size_t item_size, const conc_queue_opts *opts)
{
    if (!out)
        return CONC_EINVAL;
    *out = NULL;
    conc_queue_opts o = opts ? *opts : (conc_queue_opts){0};
    if (item_size == 0 || (o.kind != CONC_QUEUE_FIFO && o.kind != CONC_QUEUE_LIFO &&
                           o.kind != CONC_QUEUE_PRIORITY))
        return CONC_EINVAL;
    conc_queue *q = calloc(1, sizeof *q);
    if (!q)
        return CONC_ENOMEM;
    int rc = conc__qstore_init(&q->store, o.kind, item_size, o.capacity);
    if (rc) {
        free(q);
        return rc;
    }
    conc__waitq_init(&q->wq, 0);
    q->single_producer = o.single_producer;
    q->single_consumer = o.single_consumer;
    *out = q;
    return 0;
}

int conc_queue_destroy(conc_queue *q)
{
    if (!q)
        return CONC_EINVAL;
    if (conc__waitq_kill(&q->wq) != 0)
        return CONC_EBUSY;
    conc__qstore_free(&q->store);
    free(q);
    return 0;
}

/* ---- waking by what the waiter wants ---- */

struct conc__qwake {
    uintptr_t want;
    size_t budget; /* how many more to wake */
};

static bool conc__qwake_pick(uintptr_t want, void *arg)
{
    struct conc__qwake *w = arg;
    return want == w->want && w->budget > 0;
}

static void conc__qwake_spend(uintptr_t want, void *arg)
{
    (void)want;
    ((struct conc__qwake *)arg)->budget--;
}

/* Called with q->wq locked: wakes up to n waiters that want `want`. */
static void conc__queue_wake(conc_queue *q, enum conc__queue_want want, size_t n)
{
    if (!q->wq.head || n == 0)
        return;
    struct conc__qwake w = {want, n};
    conc__waitq_wake_if(&q->wq, conc__qwake_pick, conc__qwake_spend, &w);
}

static bool conc__queue_count_pick(uintptr_t want, void *arg)
{
    struct conc__qwake *w = arg;
    if (want == w->want)
        w->budget++;
    return false;
}

unsigned conc__queue_waiting(conc_queue *q, enum conc__queue_want want)
{
    struct conc__qwake w = {want, 0};
    conc__waitq_lock(&q->wq);
    conc__waitq_wake_if(&q->wq, conc__queue_count_pick, NULL, &w); /* wakes none */
    conc__waitq_unlock(&q->wq);
    return (unsigned)w.budget;
}

/* ---- put ---- */

static size_t conc__queue_room(conc_queue *q)
{
    struct conc__qstore *s = &q->store;
    return s->bound ? s->bound - s->count : SIZE_MAX;
}

/* Called with q->wq locked: adds up to n items; returns how many. */
static size_t conc__queue_add(conc_queue *q, const unsigned char *items, size_t n, int64_t key,
                              int *rc)
{
    size_t room = conc__queue_room(q), k = n < room ? n : room, added = 0;
    for (; added < k; added++) {
        *rc = conc__qstore_push(&q->store, items + added * q->store.item_size, key);
        if (*rc)
            break;
    }
    q->unfinished += added;
    conc__queue_wake(q, CONC__QW_GET, added);
    return added;
}

static int conc__queue_put_n(conc_queue *q, const void *items, size_t n, int64_t key,
                             size_t *done, int64_t timeout)
{
    int64_t deadline = CONC__NO_DEADLINE;
    if (done)
        *done = 0;
    if (!q || !items || n == 0 || conc__deadline(timeout, &deadline) != 0)
        return CONC_EINVAL;
    struct conc__waiter w;
    conc__waiter_init(&w, CONC__QW_PUT, 0);
    size_t put = 0;
    int rc = 0;
    conc__waitq_lock(&q->wq);
    conc__waitq_announce(&q->wq);
    while (put < n && rc == 0) {
        if (q->shutdown) {
            rc = CONC_ESHUTDOWN;
        } else if (conc__queue_room(q) > 0) {
            put += conc__queue_add(q, (const unsigned char *)items + put * q->store.item_size,
                                   n - put, key, &rc);
        } else if (conc__expired(deadline)) {
            rc = CONC_EFULL;
        } else {
            CONC__TRACE_BEGIN("queue.put.wait", q);
            conc__waitq_sleep(&q->wq, &w, deadline);
            CONC__TRACE_END("queue.put.wait", q);
        }
    }
    conc__waitq_retire(&q->wq);
    conc__waitq_unlock(&q->wq);
    if (done)
        *done = put;
    return rc;
}

int conc_queue_put_key(conc_queue *q, const void *item, int64_t key, int64_t timeout)
{
    return conc__queue_put_n(q, item, 1, key, NULL, timeout);
}

int conc_queue_put(conc_queue *q, const void *item, int64_t timeout)
{
    return conc__queue_put_n(q, item, 1, 0, NULL, timeout);
}

int conc_queue_put_many(conc_queue *q, const void *items, size_t n, size_t *done,
                        int64_t timeout)
{
    return conc__queue_put_n(q, items, n, 0, done, timeout);
}

/* ---- get ---- */

/* Called with q->wq locked and the store not empty: takes up to max. */
static size_t conc__queue_take(conc_queue *q, unsigned char *out, size_t max, int64_t *key)
{
    size_t k = q->store.count < max ? q->store.count : max;
    for (size_t i = 0; i < k; i++)
        conc__qstore_pop(&q->store, out + i * q->store.item_size, i == 0 ? key : NULL);
    if (q->store.bound)
        conc__queue_wake(q, CONC__QW_PUT, k);
    return k;
}

static int conc__queue_get_n(conc_queue *q, void *out, size_t max, size_t *got, int64_t *key,
                             int64_t timeout)
{
    int64_t deadline = CONC__NO_DEADLINE;
    if (got)
        *got = 0;
    if (!q || !out || max == 0 || conc__deadline(timeout, &deadline) != 0)
        return CONC_EINVAL;
    struct conc__waiter w;
    conc__waiter_init(&w, CONC__QW_GET, 0);
    size_t taken = 0;
    int rc = 0;
    conc__waitq_lock(&q->wq);
    conc__waitq_announce(&q->wq);
    while (taken == 0 && rc == 0) {
        if (q->store.count > 0) {
            taken = conc__queue_take(q, out, max, key);
        } else if (q->shutdown) {
            rc = CONC_ESHUTDOWN;
        } else if (conc__expired(deadline)) {
            rc = CONC_EEMPTY;
        } else {
            CONC__TRACE_BEGIN("queue.get.wait", q);
            conc__waitq_sleep(&q->wq, &w, deadline);
            CONC__TRACE_END("queue.get.wait", q);
        }
    }
    conc__waitq_retire(&q->wq);
    conc__waitq_unlock(&q->wq);
    if (got)
        *got = taken;
    return rc;
}

int conc_queue_get(conc_queue *q, void *out, int64_t timeout)
{
    return conc__queue_get_n(q, out, 1, NULL, NULL, timeout);
}

int conc_queue_get_key(conc_queue *q, void *out, int64_t *key, int64_t timeout)
{
    if (!key)
        return CONC_EINVAL;
    return conc__queue_get_n(q, out, 1, NULL, key, timeout);
}

int conc_queue_get_many(conc_queue *q, void *out, size_t max, size_t *got, int64_t timeout)
{
    return conc__queue_get_n(q, out, max, got, NULL, timeout);
}

/* ---- snapshots ---- */

int64_t conc_queue_size(conc_queue *q)
{
    if (!q)
        return CONC_EINVAL;
    conc__waitq_lock(&q->wq);
    int64_t n = (int64_t)q->store.count;
    conc__waitq_unlock(&q->wq);
    return n;
}

int conc_queue_empty(conc_queue *q)
{
    int64_t n = conc_queue_size(q);
    return n < 0 ? (int)n : n == 0;
}

int conc_queue_full(conc_queue *q)
{
    if (!q)
        return CONC_EINVAL;
    conc__waitq_lock(&q->wq);
    int full = q->store.bound && q->store.count == q->store.bound;
    conc__waitq_unlock(&q->wq);
    return full;
}

/* ---- tasks ---- */

int conc_queue_task_done(conc_queue *q)
{
    if (!q)
        return CONC_EINVAL;
    int rc = 0;
    conc__waitq_lock(&q->wq);
    if (q->unfinished == 0)
        rc = CONC_EINVAL; /* Python: ValueError, task_done() called too many times */
    else if (--q->unfinished == 0)
        conc__queue_wake(q, CONC__QW_JOIN, SIZE_MAX);
    conc__waitq_unlock(&q->wq);
    return rc;
}

int conc_queue_join(conc_queue *q, int64_t timeout)
{
    int64_t deadline = CONC__NO_DEADLINE;
    if (!q || conc__deadline(timeout, &deadline) != 0)
        return CONC_EINVAL;
    struct conc__waiter w;
    conc__waiter_init(&w, CONC__QW_JOIN, 0);
    int rc = 0;
    conc__waitq_lock(&q->wq);
    conc__waitq_announce(&q->wq);
    while (q->unfinished > 0) {
        if (conc__expired(deadline)) {
            rc = CONC_ETIMEDOUT;
            break;
        }
        conc__waitq_sleep(&q->wq, &w, deadline);
    }
    conc__waitq_retire(&q->wq);
    conc__waitq_unlock(&q->wq);
    return rc;
}

int conc_queue_shutdown(conc_queue *q, bool immediate)
{
    if (!q)
        return CONC_EINVAL;
    conc__waitq_lock(&q->wq);
    q->shutdown = true;
    if (immediate) {
        size_t dropped = conc__qstore_clear(&q->store);
        q->unfinished -= dropped < q->unfinished ? dropped : q->unfinished;
    }
    /* Everyone re-checks: putters fail, getters of an empty queue fail,
     * joiners return if nothing is unfinished any more. */
    conc__waitq_wake_all(&q->wq);
    conc__waitq_unlock(&q->wq);
    return 0;
}
