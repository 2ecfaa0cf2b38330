/* conc_queue: Python's queue.Queue family on the wait core.
 *
 * Two stores behind one blocking layer:
 *   - a bounded FIFO keeps its items in a lock-free ring (queue_ring.c): a put
 *     or get that finds room or an item takes no lock and makes no syscall;
 *   - LIFO, PRIORITY and unbounded FIFO queues keep them in queue_store.c
 *     under q->slock, a short internal lock.
 * Both offer "try": conc__queue_try_put / conc__queue_try_get never block.
 *
 * Blocking: a caller whose try fails spins while spins pay (the wait core's
 * score on q->wq), then takes q->wq's lock, counts itself in getters,
 * putters or joiners, issues the heavy fence, tries once more, and sleeps on
 * q->wq with its want. A successful put issues the light fence and reads
 * getters: only if someone sleeps does it take q->wq's lock to wake one
 * (likewise get/putters, task_done/joiners). The fences make that test safe:
 * either the sleeper's last try sees the item, or the putter sees the
 * sleeper (wait.h, asymmetric fences). The sleeper holds q->wq's lock from
 * its count to its sleep, so a waker that saw the count finds it queued.
 *
 * Tasks: unfinished = puts - done - dropped, where puts is the ring's tail
 * or q->puts; task_done moves done with a compare-and-swap that refuses to
 * pass puts - dropped (Python's ValueError).
 *
 * Shutdown sets q->shutdown and wakes everyone to re-check. A put racing
 * with it may still land; it counts as put before the shutdown. An
 * immediate shutdown also empties the queue, and from then on gets fail at
 * once; a put that found the queue open and lands its item after that drain
 * sees the shutdown when it is done (a Dekker pair: the put's light fence
 * after its item is in, the shutdown's heavy fence before its drain) and
 * drains again itself, so no item is ever left in a queue shut down
 * immediately: the put happened before the shutdown, and the drain dropped
 * its item, lowering the unfinished tasks as Python's does.
 */
#include "queue/queue_impl.h"
#include "core/deadline.h"
#include "core/hooks.h"
#include "core/misuse.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef CONC_TEST_HOOKS
void (*conc__test_put_checked)(conc_queue *q);
void (*conc__test_put_landed)(conc_queue *q);
#endif

static void conc__queue_drop_all(conc_queue *q);

/* A line for conc_debug_dump: which queue a sleeping thread's wait queue
 * belongs to, and its state. */
static void conc__queue_describe(struct conc__dump_source *src,
                                 void (*line)(void *ctx, const char *text), void *ctx)
{
    conc_queue *q = (conc_queue *)(void *)((char *)src - offsetof(conc_queue, dump));
    char text[256];
    snprintf(text, sizeof text,
             "queue \"%s\" (wait queue %p): %lld item%s, %lld unfinished; %u getter%s, "
             "%u putter%s, %u joiner%s waiting%s\n",
             q->name, (void *)&q->wq, (long long)conc_queue_size(q),
             conc_queue_size(q) == 1 ? "" : "s", (long long)conc_queue_unfinished_tasks(q),
             atomic_load(&q->getters), atomic_load(&q->getters) == 1 ? "" : "s",
             atomic_load(&q->putters), atomic_load(&q->putters) == 1 ? "" : "s",
             atomic_load(&q->joiners), atomic_load(&q->joiners) == 1 ? "" : "s",
             atomic_load(&q->shutdown) ? "; shut down" : "");
    line(ctx, text);
}

int conc_queue_create(conc_queue **out, size_t item_size, const conc_queue_opts *opts)
{
    if (!out)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue pointer");
    *out = NULL;
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL;
    conc_queue_opts o = opts ? *opts : (conc_queue_opts){0};
    if (item_size == 0)
        return CONC__MISUSE(CONC_EINVAL, "item_size is 0");
    if (o.kind != CONC_QUEUE_FIFO && o.kind != CONC_QUEUE_LIFO && o.kind != CONC_QUEUE_PRIORITY)
        return CONC__MISUSE(CONC_EINVAL, "unknown queue kind");
    /* The queue's layout is its own, wherever malloc would have put it:
     * aligned to a cache line, so that the ring's producer and consumer
     * indices (each alone on its line, queue_ring.h) really are, and no
     * neighbouring allocation shares their lines. */
    size_t qsize = (sizeof(conc_queue) + CONC__QUEUE_ALIGN - 1) & ~(size_t)(CONC__QUEUE_ALIGN - 1);
    conc_queue *q = aligned_alloc(CONC__QUEUE_ALIGN, qsize);
    if (!q)
        return CONC_ENOMEM;
    memset(q, 0, qsize);
    /* The ring needs two cells at least: with one, the mark of a published
     * item (pos + 1) is also the mark of a free cell one lap on (pos + cap). */
    q->use_ring = o.kind == CONC_QUEUE_FIFO && o.capacity >= 2;
    int rc = q->use_ring ? conc__qring_init(&q->ring, o.capacity, item_size, o.single_producer,
                                            o.single_consumer)
                         : conc__qstore_init(&q->store, o.kind, item_size, o.capacity);
    if (rc) {
        free(q);
        return rc;
    }
    conc__waitq_init(&q->wq, 0);
    q->single_producer = o.single_producer;
    q->single_consumer = o.single_consumer;
    snprintf(q->name, sizeof q->name, "%s", o.name ? o.name : "queue");
    q->dump.describe = conc__queue_describe;
    conc__dump_source_add(&q->dump);
    *out = q;
    return 0;
}

int conc_queue_destroy(conc_queue *q)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    if (conc__waitq_kill(&q->wq) != 0)
        return CONC__MISUSE(CONC_EBUSY, "threads are blocked in the queue (shut it down first)");
    conc__dump_source_remove(&q->dump); /* waits out a dump describing it */
    if (q->use_ring)
        conc__qring_free(&q->ring);
    else
        conc__qstore_free(&q->store);
    free(q);
    return 0;
}

/* ---- the two stores behind one interface ---- */

static inline size_t conc__queue_item_size(conc_queue *q)
{
    return q->use_ring ? q->ring.item_size : q->store.item_size;
}

static inline uint64_t conc__queue_puts(conc_queue *q)
{
    return q->use_ring ? atomic_load(&q->ring.tail) : atomic_load(&q->puts);
}

/* Returns 1 when put, 0 when full, CONC_ENOMEM when a store cannot grow.
 * exact: the answer "full" will be reported to the caller (queue_ring.h). */
static int conc__queue_try_put(conc_queue *q, const void *item, int64_t key, bool exact)
{
    if (q->use_ring)
        return conc__qring_put(&q->ring, item, exact);
    int rc = 0;
    conc__ilock(&q->slock, false);
    if (!q->store.bound || q->store.count < q->store.bound) {
        rc = conc__qstore_push(&q->store, item, key);
        if (rc == 0) {
            atomic_fetch_add_explicit(&q->puts, 1, memory_order_relaxed);
            rc = 1;
        }
    }
    conc__iunlock(&q->slock, false);
    return rc;
}

/* Returns true when an item was taken into out; exact as for put. */
static bool conc__queue_try_get(conc_queue *q, void *out, int64_t *key, bool exact)
{
    if (q->use_ring) {
        if (key)
            *key = 0;
        return conc__qring_get(&q->ring, out, exact);
    }
    bool got = false;
    conc__ilock(&q->slock, false);
    if (q->store.count) {
        conc__qstore_pop(&q->store, out, key);
        got = true;
    }
    conc__iunlock(&q->slock, false);
    return got;
}

static size_t conc__queue_count(conc_queue *q)
{
    if (q->use_ring)
        return conc__qring_count(&q->ring);
    conc__ilock(&q->slock, false);
    size_t n = q->store.count;
    conc__iunlock(&q->slock, false);
    return n;
}

/* ---- waking sleepers by what they want ---- */

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

/* Called with q->wq locked: wakes up to n sleepers that want `want`. */
static void conc__queue_wake_locked(conc_queue *q, enum conc__queue_want want, size_t n)
{
    if (!q->wq.head || n == 0)
        return;
    struct conc__qwake w = {want, n};
    conc__waitq_wake_if(&q->wq, conc__qwake_pick, conc__qwake_spend, &w);
}

/* After making `want` possible n times: wakes sleepers only if any are
 * counted (the light side of the fence pair). locked: the caller holds
 * q->wq's lock already (a retry inside the blocking loop). */
static void conc__queue_signal(conc_queue *q, _Atomic uint32_t *sleepers,
                               enum conc__queue_want want, size_t n, bool locked)
{
    conc__fence_light();
    if (conc__likely(atomic_load_explicit(sleepers, memory_order_relaxed) == 0))
        return;
    if (locked) {
        conc__queue_wake_locked(q, want, n);
        return;
    }
    conc__waitq_lock(&q->wq);
    conc__queue_wake_locked(q, want, n);
    conc__waitq_unlock(&q->wq);
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

/* ---- the blocking layer ---- */

/* One blocking operation: `attempt` tries it and returns non-zero when it is
 * done (or failed for good, rc set); sleepers is the count this caller joins
 * while asleep on q->wq wanting `want`; `expired_rc` is what running out of
 * time returns. */
struct conc__qop {
    conc_queue *q;
    int (*attempt)(struct conc__qop *op);
    _Atomic uint32_t *sleepers;
    enum conc__queue_want want;
    int expired_rc;
    int rc;
    bool locked; /* attempt runs with q->wq's lock held */
    bool exact;  /* this attempt's "no" is the caller's answer (queue_ring.h) */
    /* the operation's own data */
    const unsigned char *in;
    unsigned char *out;
    size_t n, done;
    unsigned spins; /* conc__qop_ready's calls so far */
    bool gather;    /* a get that waits for a few items (gathering) */
    bool gathered;  /* and they came */
    int64_t key;
    int64_t *key_out;
};

/* How much room a put spinning on a full ring waits for, and for how many
 * spins, before it takes the first free cell. Without this, a producer
 * faster than its consumer keeps the ring full and the two move in lock
 * step: the producer refills each cell as soon as it is freed, so every
 * cache line of cells bounces between the cores, and every get's
 * compare-and-swap waits for its previous store (the freed cell's seq) to
 * win that line back. Waiting for a quarter of the ring (at most 256 cells)
 * lets the consumer free lines nobody else touches, then the producer
 * refill them at a stretch: 2.5-3x the items a second through a default
 * queue (bench/, queue.spsc and queue.mpmc). Only puts wait so: the ring
 * is full, so the consumers have work meanwhile; a get waiting on an empty
 * ring takes the first item, since the one it waits for may be the last. */
#define CONC__QUEUE_REFILL_MAX 256
#define CONC__QUEUE_REFILL_SPINS (CONC__SPIN_BUDGET / 4)

/* Gathering: the gets' side of the same lock step. A consumer faster than
 * its producer keeps the ring nearly empty and takes each item as soon as it
 * lands, so it reads every line of cells while the producer is still
 * writing it: each line crosses between the cores once per item instead of
 * once per line, and the pair settles at 0.6x the items a second it moves
 * when the ring runs full (bench/, queue.spsc: 24 against 40 M/s on an AMD
 * EPYC, whichever regime a run happened to fall into). So a get that finds
 * the ring empty, while the producers stream, waits for CONC__QUEUE_GATHER
 * items (four lines of 8-byte items) for up to CONC__QUEUE_GATHER_SPINS
 * spins (about a microsecond), then takes what there is. Whether they
 * stream is a hint on the gets' own line (ring.gather): set when a get's
 * items came within the spins, cleared when they did not — a consumer
 * waiting for single requests (a ping-pong) stops gathering after one
 * wait, and tries again once every CONC__QUEUE_GATHER_PROBE of its
 * spinning gets (a microsecond per 64 waits). */
#define CONC__QUEUE_GATHER 16
#define CONC__QUEUE_GATHER_SPINS 32
#define CONC__QUEUE_GATHER_PROBE 64

/* Whether a get about to spin on q's empty ring should gather. */
static bool conc__queue_gather_now(conc_queue *q)
{
    if (q->ring.cap < 4 * CONC__QUEUE_GATHER)
        return false;
    if (atomic_load_explicit(&q->ring.gather, memory_order_relaxed))
        return true;
    return ++conc__tls.gather_probe % CONC__QUEUE_GATHER_PROBE == 0;
}

/* After a gathering get's spin: whether the producers stream. */
static void conc__queue_gather_learn(conc_queue *q, bool streaming)
{
    if (atomic_load_explicit(&q->ring.gather, memory_order_relaxed) != streaming)
        atomic_store_explicit(&q->ring.gather, streaming, memory_order_relaxed);
}

/* Spinning: peek at the ring's cells (cheap, see queue_ring.h) and try only
 * once they look ready. */
static bool conc__qop_ready(void *arg)
{
    struct conc__qop *op = arg;
    struct conc__qring *r = &op->q->ring;
    if (op->q->use_ring) {
        if (op->want == CONC__QW_GET) {
            uint64_t items = 1;
            if (op->gather && op->spins++ < CONC__QUEUE_GATHER_SPINS)
                items = CONC__QUEUE_GATHER;
            if (!conc__qring_can_get(r, items))
                return false;
            op->gathered |= items > 1;
        }
        if (op->want == CONC__QW_PUT) {
            uint64_t room = 1;
            if (op->spins++ < CONC__QUEUE_REFILL_SPINS && r->cap >= 8)
                room = r->cap / 4 < CONC__QUEUE_REFILL_MAX ? r->cap / 4 : CONC__QUEUE_REFILL_MAX;
            if (!conc__qring_can_put(r, room))
                return false;
        }
    }
    return op->attempt(op) != 0;
}

/* Whether the threads that would end op's wait are parked on q->wq
 * themselves (conc__spin_until_awake): a get waits for putters, a put for
 * getters. */
static bool conc__qop_other_side_asleep(void *arg)
{
    struct conc__qop *op = arg;
    _Atomic uint32_t *other = op->want == CONC__QW_GET   ? &op->q->putters
                              : op->want == CONC__QW_PUT ? &op->q->getters
                                                         : NULL;
    return other && atomic_load_explicit(other, memory_order_relaxed) > 0;
}

static int conc__qop_block(struct conc__qop *op, int64_t timeout)
{
    conc_queue *q = op->q;
    int64_t deadline = CONC__NO_DEADLINE;
    conc__deadline(timeout, &deadline);
    if (timeout != 0) {
        op->gather = op->want == CONC__QW_GET && q->use_ring && conc__queue_gather_now(q);
        bool ready =
            conc__spin_until_awake(&q->wq, conc__qop_ready, conc__qop_other_side_asleep, op);
        if (op->gather)
            conc__queue_gather_learn(q, op->gathered);
        if (ready)
            return op->rc;
    }
    struct conc__waiter w;
    conc__waiter_init(&w, op->want, 0);
    conc__waitq_lock(&q->wq);
    conc__waitq_announce(&q->wq);
    atomic_fetch_add(op->sleepers, 1);
    conc__fence_heavy();
    op->locked = true;
    while (!op->attempt(op)) {
        if (conc__expired(deadline)) {
            op->exact = true; /* the last word before reporting "no" */
            if (!op->attempt(op))
                op->rc = op->expired_rc;
            break;
        }
        CONC__TRACE_BEGIN("queue.wait", q);
        conc__waitq_sleep(&q->wq, &w, deadline);
        CONC__TRACE_END("queue.wait", q);
    }
    atomic_fetch_sub(op->sleepers, 1);
    conc__waitq_retire(&q->wq);
    conc__waitq_unlock(&q->wq);
    return op->rc;
}

/* ---- put ---- */

/* Puts what it can of op's items; done when all are in, or on shutdown. */
static int conc__qop_put(struct conc__qop *op)
{
    conc_queue *q = op->q;
    size_t size = conc__queue_item_size(q), before = op->done;
    while (op->done < op->n) {
        if (atomic_load_explicit(&q->shutdown, memory_order_acquire)) {
            op->rc = CONC_ESHUTDOWN;
            break;
        }
        CONC__TEST_HOOK(conc__test_put_checked, q);
        int r = conc__queue_try_put(q, op->in + op->done * size, op->key, op->exact);
        if (r <= 0) {
            op->rc = r; /* 0: full, try again later; else CONC_ENOMEM */
            break;
        }
        op->done++;
    }
    if (op->done > before) {
        conc__queue_signal(q, &q->getters, CONC__QW_GET, op->done - before, op->locked);
        CONC__TEST_HOOK(conc__test_put_landed, q);
        /* After signal's light fence: an immediate shutdown whose drain ran
         * before our items landed is seen here (see the top of the file). */
        if (conc__unlikely(atomic_load_explicit(&q->shutdown_immediate, memory_order_relaxed))) {
            conc__queue_drop_all(q);
            /* The drop lowered the unfinished tasks: a joiner that looked
             * between our put and this drain sleeps on a count now lower. */
            conc__queue_signal(q, &q->joiners, CONC__QW_JOIN, SIZE_MAX, op->locked);
        }
    }
    return op->done == op->n || op->rc != 0;
}

/* A put's or a get's arguments are wrong (NULL queue or items, n 0):
 * CONC_EINVAL with the detail. Shared by every put and get, so it names no
 * function but the _many ones', the only ones that take a count. Out of
 * line, so that the puts and gets it serves stay small enough to inline. */
__attribute__((noinline, cold)) static int conc__queue_bad_args(const conc_queue *q,
                                                                const void *items, bool get)
{
    if (!q)
        return conc__misuse_at(CONC_EINVAL, NULL, "NULL queue");
    if (!items)
        return conc__misuse_at(CONC_EINVAL, NULL, get ? "NULL output pointer" : "NULL item pointer");
    return get ? conc__misuse_at(CONC_EINVAL, "conc_queue_get_many_timed", "max is 0")
               : conc__misuse_at(CONC_EINVAL, "conc_queue_put_many_timed", "n is 0");
}

/* Inlined into each put (and conc__queue_get_n into each get), as the
 * compiler chose before the error path called out for the detail: a call
 * there must not cost the success path a call of its own. */
static inline __attribute__((always_inline)) int
conc__queue_put_n(conc_queue *q, const void *items, size_t n, int64_t key, size_t *done,
                  int64_t timeout)
{
    if (done)
        *done = 0;
    if (timeout < 0)
        return conc__bad_timeout();
    if (!q || !items || n == 0)
        return conc__queue_bad_args(q, items, false);
    struct conc__qop op = {.q = q, .attempt = conc__qop_put, .sleepers = &q->putters,
                           .want = CONC__QW_PUT, .expired_rc = CONC_EFULL, .in = items,
                           .n = n, .key = key, .exact = timeout == 0};
    int rc = conc__qop_put(&op) ? op.rc : timeout == 0 ? CONC_EFULL : conc__qop_block(&op, timeout);
    if (done)
        *done = op.done;
    return rc;
}

int conc_queue_put_key_timed(conc_queue *q, const void *item, int64_t key, int64_t timeout)
{
    return conc__queue_put_n(q, item, 1, key, NULL, timeout);
}

int conc_queue_put_timed(conc_queue *q, const void *item, int64_t timeout)
{
    return conc__queue_put_n(q, item, 1, 0, NULL, timeout);
}

int conc_queue_put_many_timed(conc_queue *q, const void *items, size_t n, size_t *done, int64_t timeout)
{
    return conc__queue_put_n(q, items, n, 0, done, timeout);
}

/* ---- get ---- */

/* Takes up to op->n items; done once it has one, or on shutdown of an empty
 * queue. */
static int conc__qop_get(struct conc__qop *op)
{
    conc_queue *q = op->q;
    size_t size = conc__queue_item_size(q);
    if (conc__unlikely(atomic_load_explicit(&q->shutdown_immediate, memory_order_acquire))) {
        op->rc = CONC_ESHUTDOWN; /* emptied: an item landing late is not for us */
        return 1;
    }
    while (op->done < op->n && conc__queue_try_get(q, op->out + op->done * size,
                                                   op->done ? NULL : op->key_out, op->exact))
        op->done++;
    if (op->done) {
        conc__queue_signal(q, &q->putters, CONC__QW_PUT, op->done, op->locked);
        return 1;
    }
    if (atomic_load_explicit(&q->shutdown, memory_order_acquire)) {
        /* An item put just before the shutdown may have landed since. */
        if (conc__queue_try_get(q, op->out, op->key_out, true)) {
            op->done = 1;
            conc__queue_signal(q, &q->putters, CONC__QW_PUT, 1, op->locked);
            return 1;
        }
        op->rc = CONC_ESHUTDOWN;
        return 1;
    }
    return 0;
}

static inline __attribute__((always_inline)) int
conc__queue_get_n(conc_queue *q, void *out, size_t max, size_t *got, int64_t *key,
                  int64_t timeout)
{
    if (got)
        *got = 0;
    if (timeout < 0)
        return conc__bad_timeout();
    if (!q || !out || max == 0)
        return conc__queue_bad_args(q, out, true);
    struct conc__qop op = {.q = q, .attempt = conc__qop_get, .sleepers = &q->getters,
                           .want = CONC__QW_GET, .expired_rc = CONC_EEMPTY, .out = out,
                           .n = max, .key_out = key, .exact = timeout == 0};
    int rc = conc__qop_get(&op) ? op.rc : timeout == 0 ? CONC_EEMPTY : conc__qop_block(&op, timeout);
    if (got)
        *got = op.done;
    return rc;
}

int conc_queue_get_timed(conc_queue *q, void *out, int64_t timeout)
{
    return conc__queue_get_n(q, out, 1, NULL, NULL, timeout);
}

int conc_queue_get_key_timed(conc_queue *q, void *out, int64_t *key, int64_t timeout)
{
    if (!key)
        return CONC__MISUSE(CONC_EINVAL, "NULL key pointer");
    return conc__queue_get_n(q, out, 1, NULL, key, timeout);
}

int conc_queue_get_many_timed(conc_queue *q, void *out, size_t max, size_t *got, int64_t timeout)
{
    return conc__queue_get_n(q, out, max, got, NULL, timeout);
}

/* ---- snapshots ---- */

int64_t conc_queue_size(conc_queue *q)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    return (int64_t)conc__queue_count(q);
}

int conc_queue_empty(conc_queue *q)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    int64_t n = conc_queue_size(q);
    return n < 0 ? (int)n : n == 0;
}

int conc_queue_full(conc_queue *q)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    size_t bound = q->use_ring ? q->ring.cap : q->store.bound;
    return bound && conc__queue_count(q) >= bound;
}

/* ---- tasks ---- */

/* done and dropped are read before puts: every item done or dropped was put
 * before, so the difference never goes below 0. */
static uint64_t conc__queue_unfinished(conc_queue *q)
{
    uint64_t done = atomic_load(&q->done);
    uint64_t dropped = atomic_load(&q->dropped);
    return conc__queue_puts(q) - dropped - done;
}

int conc_queue_is_shutdown(conc_queue *q)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    return atomic_load_explicit(&q->shutdown, memory_order_acquire);
}

int64_t conc_queue_unfinished_tasks(conc_queue *q)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    return (int64_t)conc__queue_unfinished(q);
}

int conc_queue_task_done(conc_queue *q)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    uint64_t done = atomic_load(&q->done);
    do {
        if (done + atomic_load(&q->dropped) >= conc__queue_puts(q)) /* Python: ValueError */
            return CONC__MISUSE(CONC_ESTATE, "called more times than items were put");
    } while (!atomic_compare_exchange_weak(&q->done, &done, done + 1));
    if (conc__queue_unfinished(q) == 0)
        conc__queue_signal(q, &q->joiners, CONC__QW_JOIN, SIZE_MAX, false);
    return 0;
}

static int conc__qop_join(struct conc__qop *op)
{
    return conc__queue_unfinished(op->q) == 0;
}

int conc_queue_join_timed(conc_queue *q, int64_t timeout)
{
    if (timeout < 0)
        return conc__bad_timeout();
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    struct conc__qop op = {.q = q, .attempt = conc__qop_join, .sleepers = &q->joiners,
                           .want = CONC__QW_JOIN, .expired_rc = CONC_ETIMEDOUT};
    if (conc__qop_join(&op))
        return 0;
    if (timeout == 0)
        return CONC_ETIMEDOUT;
    return conc__qop_block(&op, timeout);
}

/* ---- shutdown ---- */

/* Immediate shutdown: takes every queued item out, counting them dropped. */
static void conc__queue_drop_all(conc_queue *q)
{
    /* One drain at a time (the shutdown's and a late put's): a queue made
     * for a single consumer must not see two. */
    conc__ilock(&q->drain_lock, false);
    unsigned char scratch[256];
    size_t size = conc__queue_item_size(q);
    void *item = size <= sizeof scratch ? scratch : malloc(size);
    uint64_t n = 0;
    if (item) {
        while (conc__queue_try_get(q, item, NULL, true))
            n++;
    } else { /* no memory for a scratch item: the store can clear in place */
        if (!q->use_ring) {
            conc__ilock(&q->slock, false);
            n = conc__qstore_clear(&q->store);
            conc__iunlock(&q->slock, false);
        }
    }
    if (item && item != scratch)
        free(item);
    atomic_fetch_add(&q->dropped, n);
    conc__iunlock(&q->drain_lock, false);
}

int conc_queue_shutdown(conc_queue *q, bool immediate)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    if (immediate)
        atomic_store(&q->shutdown_immediate, true);
    atomic_store(&q->shutdown, true);
    if (immediate) {
        conc__fence_heavy(); /* the Dekker pair with a put's light fence */
        conc__queue_drop_all(q);
    }
    /* Everyone re-checks: putters fail, getters of an empty queue fail,
     * joiners return if nothing is unfinished any more. */
    conc__waitq_lock(&q->wq);
    conc__waitq_wake_all(&q->wq);
    conc__waitq_unlock(&q->wq);
    return 0;
}

/* ---- the untimed forms ---- */

int conc_queue_put(conc_queue *q, const void *item)
{
    return conc_queue_put_timed(q, item, CONC_FOREVER);
}

int conc_queue_put_key(conc_queue *q, const void *item, int64_t key)
{
    return conc_queue_put_key_timed(q, item, key, CONC_FOREVER);
}

int conc_queue_put_many(conc_queue *q, const void *items, size_t n, size_t *done)
{
    return conc_queue_put_many_timed(q, items, n, done, CONC_FOREVER);
}

int conc_queue_get(conc_queue *q, void *out)
{
    return conc_queue_get_timed(q, out, CONC_FOREVER);
}

int conc_queue_get_key(conc_queue *q, void *out, int64_t *key)
{
    return conc_queue_get_key_timed(q, out, key, CONC_FOREVER);
}

int conc_queue_get_many(conc_queue *q, void *out, size_t max, size_t *got)
{
    return conc_queue_get_many_timed(q, out, max, got, CONC_FOREVER);
}

int conc_queue_join(conc_queue *q)
{
    return conc_queue_join_timed(q, CONC_FOREVER);
}
