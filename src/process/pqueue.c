/* conc_pqueue: a bounded FIFO queue between processes, in a segment of its
 * own.
 *
 * The segment holds a header (struct conc__pq_shared) and `capacity` slots
 * of `item_size` bytes. The state is four words:
 *   tail  items ever put       head  items ever taken
 *   done  task_done calls      shut  0, normal or immediate shutdown
 * The item at position i lives in slot i % capacity; the queue holds
 * tail - head items (none once shut down immediately: those are discarded
 * without moving head), and the unfinished tasks are tail - done, or
 * head - done (at least 0) after an immediate shutdown, which is how one
 * store discards every queued item.
 *
 * Two locks, each a conc_pmutex, as the two-lock queue of Michael and
 * Scott: puts take `put_lock`, which guards tail; gets, task_done and join
 * take `get_lock`, which guards head and done; a shutdown takes both (put
 * first). A producer and a consumer therefore never wait for each other's
 * lock; each reads the other's index without a lock (acquire), and a slot
 * is written only after the get that emptied it stored head (release), and
 * read only after the put that filled it stored tail (release).
 *
 * Death of a holder. Every change is a single store made after the bytes it
 * publishes are in place: a put copies its item into slot tail % capacity,
 * then stores tail + 1; a get copies the item out, then stores head + 1. A
 * process killed with a lock held has made the store or not, so the next
 * locker, which gets CONC_EOWNERDEAD, finds a whole state and only marks
 * the lock consistent. The killed call counts as done if its store was
 * made, else as never started: a put that returned 0 is delivered exactly
 * once, the killed call at most once.
 *
 * Spinning. A call that must wait first watches `seq` for ~20 µs without a
 * lock (the other side is usually mid-call; a sleep would cost a futex call
 * on each side per item), yielding when the last change was made on its
 * own CPU.
 *
 * Sleeping. Blocked callers sleep on the futex word `seq` (process-shared),
 * which every change bumps after its store. A caller reads `seq` before it
 * looks at the state, and sleeps only while `seq` still has that value, so
 * a change it did not see makes the sleep return at once; a changer wakes
 * only when `sleepers` (counted before the sleep, seq_cst on both sides)
 * says someone may sleep. `sleepers` is a hint (a killed sleeper leaves it
 * high: a needless wake-up, never a missed one). A process killed between
 * its store and the bump owes a wake-up nobody will make: sleepers
 * therefore sleep at most CONC_PQUEUE_RECHECK_NS before looking again, and
 * the locker that finds a dead owner bumps and wakes at once. Every wake-up
 * wakes all sleepers (getters, putters and joiners share the word): with a
 * few processes that costs less than the bookkeeping of waking the right
 * one, and a waiter that gives up cannot swallow a wake-up another needed.
 */
#define _GNU_SOURCE
#include "conc/process.h"
#include "arch/cpu.h"
#include "core/deadline.h"
#include "core/misuse.h"
#include "core/platform.h"
#include "process/pqueue_impl.h"

#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define CONC__PQ_MAGIC 0x636f6e6370717565ull /* "concpque" */
#define CONC__PQ_SHUT_NORMAL 1u
#define CONC__PQ_SHUT_IMMEDIATE 2u

#ifdef CONC_TEST_HOOKS
void (*conc__test_pqueue_put_copied)(conc_pqueue *q);
void (*conc__test_pqueue_get_copied)(conc_pqueue *q);
void (*conc__test_pqueue_put_published)(conc_pqueue *q);
#endif

struct conc__pq_shared {
    _Atomic uint64_t magic; /* CONC__PQ_MAGIC, stored last by create */
    uint64_t item_size, capacity;
    _Atomic uint32_t shut;       /* under both locks; read under either, or alone */
    _Atomic uint32_t seq;        /* bumped by every change: the sleepers' futex word */
    _Atomic uint32_t sleepers;   /* a hint: at least the processes' threads asleep */
    _Atomic int32_t changer_cpu; /* where the last change was made (a spinner's hint) */
    /* The producers' line, then the consumers'. */
    _Alignas(64) conc_pmutex put_lock;
    _Atomic uint64_t tail;       /* under put_lock; read alone by the others */
    _Alignas(64) conc_pmutex get_lock;
    _Atomic uint64_t head, done; /* under get_lock; read alone by the others */
};

/* The slots start on a cache line of their own. */
#define CONC__PQ_SLOTS_AT ((sizeof(struct conc__pq_shared) + 63) & ~(size_t)63)

struct conc_pqueue {
    conc_shm *shm;
    struct conc__pq_shared *sh;
    unsigned char *slots;
    size_t item_size, capacity;
    _Atomic uint32_t blocked; /* this process's threads blocked in the queue */
};

enum conc__pq_op { CONC__PQ_PUT, CONC__PQ_GET, CONC__PQ_JOIN };

/* ---- the lock ---- */

static void conc__pq_bump(struct conc__pq_shared *s)
{
    atomic_store_explicit(&s->changer_cpu, sched_getcpu(), memory_order_relaxed);
    atomic_fetch_add_explicit(&s->seq, 1, memory_order_seq_cst);
}

/* Takes lock. A dead holder left a whole state (see above); it may owe the
 * sleepers a wake-up, which this locker makes. */
static int conc__pq_lock(struct conc__pq_shared *s, conc_pmutex *lock)
{
    int rc = conc_pmutex_lock(lock);
    if (rc == CONC_EOWNERDEAD && (rc = conc_pmutex_consistent(lock)) == 0) {
        conc__pq_bump(s);
        conc__futex_wake(&s->seq, INT_MAX, true);
    }
    return rc;
}

/* Lets lock go, after telling the sleepers of a change. */
static void conc__pq_unlock(struct conc__pq_shared *s, conc_pmutex *lock, bool changed)
{
    conc_pmutex_unlock(lock);
    if (changed) {
        conc__pq_bump(s);
        if (atomic_load_explicit(&s->sleepers, memory_order_seq_cst))
            conc__futex_wake(&s->seq, INT_MAX, true);
    }
}

/* ---- the state ---- */

static uint64_t conc__pq_load(_Atomic uint64_t *w)
{
    return atomic_load_explicit(w, memory_order_acquire);
}

/* The items queued (a snapshot without the lock: at most capacity). */
static uint64_t conc__pq_count(struct conc__pq_shared *s)
{
    if (atomic_load_explicit(&s->shut, memory_order_relaxed) == CONC__PQ_SHUT_IMMEDIATE)
        return 0;
    uint64_t head = conc__pq_load(&s->head); /* first: tail only grows */
    uint64_t n = conc__pq_load(&s->tail) - head;
    return n > s->capacity ? s->capacity : n;
}

static uint64_t conc__pq_unfinished(struct conc__pq_shared *s)
{
    uint64_t done = conc__pq_load(&s->done);
    uint64_t upto = atomic_load_explicit(&s->shut, memory_order_relaxed) == CONC__PQ_SHUT_IMMEDIATE
                        ? conc__pq_load(&s->head)
                        : conc__pq_load(&s->tail);
    return upto > done ? upto - done : 0;
}

/* Called with put_lock held: 0 (done, the state changed), CONC_ESHUTDOWN,
 * or CONC_EAGAIN (must wait). */
static int conc__pq_try_put(conc_pqueue *q, const void *item)
{
    struct conc__pq_shared *s = q->sh;
    if (atomic_load_explicit(&s->shut, memory_order_relaxed))
        return CONC_ESHUTDOWN;
    uint64_t tail = conc__pq_load(&s->tail);
    if (tail - conc__pq_load(&s->head) >= q->capacity)
        return CONC_EAGAIN;
    memcpy(q->slots + (tail % q->capacity) * q->item_size, item, q->item_size);
    CONC__TEST_HOOK(conc__test_pqueue_put_copied, q);
    atomic_store_explicit(&s->tail, tail + 1, memory_order_release);
    CONC__TEST_HOOK(conc__test_pqueue_put_published, q);
    return 0;
}

/* Called with get_lock held: as conc__pq_try_put. */
static int conc__pq_try_get(conc_pqueue *q, void *out)
{
    struct conc__pq_shared *s = q->sh;
    uint32_t shut = atomic_load_explicit(&s->shut, memory_order_relaxed);
    uint64_t head = conc__pq_load(&s->head);
    if (shut == CONC__PQ_SHUT_IMMEDIATE)
        return CONC_ESHUTDOWN;
    if (head == conc__pq_load(&s->tail))
        return shut ? CONC_ESHUTDOWN : CONC_EAGAIN;
    memcpy(out, q->slots + (head % q->capacity) * q->item_size, q->item_size);
    CONC__TEST_HOOK(conc__test_pqueue_get_copied, q);
    atomic_store_explicit(&s->head, head + 1, memory_order_release);
    return 0;
}

static int conc__pq_try(conc_pqueue *q, enum conc__pq_op op, void *buf)
{
    switch (op) {
    case CONC__PQ_PUT:
        return conc__pq_try_put(q, buf);
    case CONC__PQ_GET:
        return conc__pq_try_get(q, buf);
    default:
        return conc__pq_unfinished(q->sh) == 0 ? 0 : CONC_EAGAIN;
    }
}

/* ---- waiting ---- */

/* The lock op takes. */
static conc_pmutex *conc__pq_lock_of(struct conc__pq_shared *s, enum conc__pq_op op)
{
    return op == CONC__PQ_PUT ? &s->put_lock : &s->get_lock;
}

/* Sleeps until seq leaves `seen`, the deadline passes, or
 * CONC_PQUEUE_RECHECK_NS went by. */
static void conc__pq_sleep(struct conc__pq_shared *s, uint32_t seen, int64_t deadline)
{
    atomic_fetch_add_explicit(&s->sleepers, 1, memory_order_seq_cst);
    int64_t recheck = conc__now() + CONC_PQUEUE_RECHECK_NS;
    conc__futex_wait(&s->seq, seen, deadline < recheck ? deadline : recheck, true);
    atomic_fetch_sub_explicit(&s->sleepers, 1, memory_order_relaxed);
}

/* How long a blocked call watches the queue before it sleeps. */
#define CONC__PQ_SPIN_NS 20000

/* Waits, spinning, until seq leaves `seen`, the deadline, or
 * CONC__PQ_SPIN_NS went by. */
static void conc__pq_spin(struct conc__pq_shared *s, uint32_t seen, int64_t deadline)
{
    int64_t until = conc__now() + CONC__PQ_SPIN_NS;
    if (until > deadline)
        until = deadline;
    for (unsigned n = 0; atomic_load_explicit(&s->seq, memory_order_relaxed) == seen; n++) {
        if ((n & 63) == 63) {
            if (conc__now() >= until)
                return;
            /* The other side last changed the queue on this CPU: it may
             * wait for it, and only a yield lets it run before our time
             * slice ends. */
            if (atomic_load_explicit(&s->changer_cpu, memory_order_relaxed) == sched_getcpu())
                sched_yield();
        }
        conc__cpu_relax();
    }
}

/* Every blocking call: op until it is done, fails, or the deadline passes
 * (then `expired`, the call's own code). A lock is held only for a copy,
 * so waiting for it is not counted against the timeout. */
static int conc__pq_wait(conc_pqueue *q, enum conc__pq_op op, void *buf, int64_t timeout,
                         int expired)
{
    int64_t deadline;
    int rc = conc__deadline(timeout, &deadline);
    if (rc != 0)
        return rc;
    struct conc__pq_shared *s = q->sh;
    conc_pmutex *lock = conc__pq_lock_of(s, op);
    bool slept = false, spun = false;
    for (;;) {
        /* Before the look: a change after it moves seq, and the wait for
         * seq to move returns at once. */
        uint32_t seen = atomic_load_explicit(&s->seq, memory_order_seq_cst);
        if ((rc = conc__pq_lock(s, lock)) != 0)
            break;
        rc = conc__pq_try(q, op, buf);
        conc__pq_unlock(s, lock, rc == 0 && op != CONC__PQ_JOIN);
        if (rc != CONC_EAGAIN)
            break;
        if (timeout == 0 || conc__expired(deadline)) {
            rc = expired;
            break;
        }
        if (!spun) {
            /* First, a few microseconds watching for a change: the other
             * side is usually mid-call, and a sleep would cost both of us
             * a futex call (theirs to wake us) per item. */
            spun = true;
            conc__pq_spin(s, seen, deadline);
            continue;
        }
        /* Counted from the first sleep to the return, re-checks included:
         * destroy must not free the handle between two sleeps. */
        if (!slept)
            atomic_fetch_add_explicit(&q->blocked, 1, memory_order_relaxed);
        slept = true;
        conc__pq_sleep(s, seen, deadline);
    }
    if (slept)
        atomic_fetch_sub_explicit(&q->blocked, 1, memory_order_relaxed);
    return rc;
}

/* ---- lifecycle ---- */

static int conc__pq_handle(conc_pqueue **out, conc_shm *shm, size_t item_size, size_t capacity)
{
    conc_pqueue *q = calloc(1, sizeof *q);
    if (!q)
        return CONC_ENOMEM;
    q->shm = shm;
    q->sh = conc_shm_addr(shm);
    q->slots = (unsigned char *)q->sh + CONC__PQ_SLOTS_AT;
    q->item_size = item_size;
    q->capacity = capacity;
    *out = q;
    return 0;
}

/* A misuse detail set by a conc_shm call, told in the name of fn. */
static int conc__pq_shm_err(int rc, const char *fn)
{
    if (conc__is_misuse(rc))
        conc__tls.misuse.fn = fn;
    return rc;
}

int conc_pqueue_create(conc_pqueue **out, size_t item_size, size_t capacity,
                       const conc_pqueue_opts *opts)
{
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL;
    if (!out)
        return CONC__MISUSE(CONC_EINVAL, "NULL output");
    *out = NULL;
    if (item_size == 0)
        return CONC__MISUSE(CONC_EINVAL, "item_size is 0");
    if (capacity == 0)
        return CONC__MISUSE(CONC_EINVAL, "capacity is 0 (a process queue is bounded)");
    size_t bytes;
    if (__builtin_mul_overflow(item_size, capacity, &bytes) ||
        __builtin_add_overflow(bytes, CONC__PQ_SLOTS_AT, &bytes))
        return CONC_EOVERFLOW;
    conc_shm *shm;
    int rc = conc_shm_create(&shm, bytes, &(conc_shm_opts){.name = opts ? opts->name : NULL});
    if (rc != 0)
        return conc__pq_shm_err(rc, __func__);
    struct conc__pq_shared *s = conc_shm_addr(shm);
    s->item_size = item_size;
    s->capacity = capacity;
    if ((rc = conc_pmutex_init(&s->put_lock, NULL)) == 0 &&
        (rc = conc_pmutex_init(&s->get_lock, NULL)) == 0)
        rc = conc__pq_handle(out, shm, item_size, capacity);
    if (rc != 0) {
        conc_shm_destroy(shm);
        return rc;
    }
    atomic_store_explicit(&s->magic, CONC__PQ_MAGIC, memory_order_release);
    return 0;
}

/* Whether the segment shm is a whole queue of items of item_size bytes:
 * 0, or CONC_EINVAL with its detail. */
static int conc__pq_check_segment(conc_shm *shm, size_t item_size)
{
    struct conc__pq_shared *s = conc_shm_addr(shm);
    size_t size = (size_t)conc_shm_size(shm), need;
    if (size < CONC__PQ_SLOTS_AT ||
        atomic_load_explicit(&s->magic, memory_order_acquire) != CONC__PQ_MAGIC)
        return conc__misuse_at(CONC_EINVAL, "conc_pqueue_open",
                               "the segment is not a process queue (or is still being created)");
    if (s->item_size != item_size)
        return conc__misuse_at(CONC_EINVAL, "conc_pqueue_open",
                               "item_size differs from the queue creator's");
    if (s->capacity == 0 || __builtin_mul_overflow(s->item_size, s->capacity, &need) ||
        __builtin_add_overflow(need, CONC__PQ_SLOTS_AT, &need) || need > size)
        return conc__misuse_at(CONC_EINVAL, "conc_pqueue_open",
                               "the segment is smaller than the queue it describes");
    return 0;
}

int conc_pqueue_open(conc_pqueue **out, const char *name, size_t item_size)
{
    if (!out)
        return CONC__MISUSE(CONC_EINVAL, "NULL output");
    *out = NULL;
    if (item_size == 0)
        return CONC__MISUSE(CONC_EINVAL, "item_size is 0");
    conc_shm *shm;
    int rc = conc_shm_open(&shm, name);
    if (rc != 0)
        return conc__pq_shm_err(rc, __func__);
    rc = conc__pq_check_segment(shm, item_size);
    if (rc == 0)
        rc = conc__pq_handle(out, shm, item_size,
                             ((struct conc__pq_shared *)conc_shm_addr(shm))->capacity);
    if (rc != 0)
        conc_shm_destroy(shm);
    return rc;
}

int conc_pqueue_destroy(conc_pqueue *q)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    if (atomic_load_explicit(&q->blocked, memory_order_relaxed))
        return CONC__MISUSE(CONC_EBUSY, "threads of this process are blocked in the queue");
    conc_shm_destroy(q->shm);
    free(q);
    return 0;
}

/* ---- operations ---- */

int conc_pqueue_put_timed(conc_pqueue *q, const void *item, int64_t timeout)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    if (!item)
        return CONC__MISUSE(CONC_EINVAL, "NULL item pointer");
    return conc__pq_wait(q, CONC__PQ_PUT, (void *)item, timeout, CONC_EFULL);
}

int conc_pqueue_put(conc_pqueue *q, const void *item)
{
    return conc_pqueue_put_timed(q, item, CONC_FOREVER);
}

int conc_pqueue_get_timed(conc_pqueue *q, void *out, int64_t timeout)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    if (!out)
        return CONC__MISUSE(CONC_EINVAL, "NULL output pointer");
    return conc__pq_wait(q, CONC__PQ_GET, out, timeout, CONC_EEMPTY);
}

int conc_pqueue_get(conc_pqueue *q, void *out)
{
    return conc_pqueue_get_timed(q, out, CONC_FOREVER);
}

int conc_pqueue_join_timed(conc_pqueue *q, int64_t timeout)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    return conc__pq_wait(q, CONC__PQ_JOIN, NULL, timeout, CONC_ETIMEDOUT);
}

int conc_pqueue_join(conc_pqueue *q)
{
    return conc_pqueue_join_timed(q, CONC_FOREVER);
}

int conc_pqueue_task_done(conc_pqueue *q)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    int rc = conc__pq_lock(q->sh, &q->sh->get_lock);
    if (rc != 0)
        return rc;
    bool any = conc__pq_unfinished(q->sh) > 0;
    if (any)
        atomic_store_explicit(&q->sh->done, conc__pq_load(&q->sh->done) + 1, memory_order_release);
    conc__pq_unlock(q->sh, &q->sh->get_lock, any);
    return any ? 0 : CONC__MISUSE(CONC_ESTATE, "called more times than items were put");
}

int conc_pqueue_shutdown(conc_pqueue *q, bool immediate)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    struct conc__pq_shared *s = q->sh;
    int rc = conc__pq_lock(s, &s->put_lock);
    if (rc != 0)
        return rc;
    if ((rc = conc__pq_lock(s, &s->get_lock)) != 0) {
        conc__pq_unlock(s, &s->put_lock, false);
        return rc;
    }
    uint32_t shut = atomic_load_explicit(&s->shut, memory_order_relaxed);
    uint32_t want = immediate ? CONC__PQ_SHUT_IMMEDIATE : CONC__PQ_SHUT_NORMAL;
    if (want > shut)
        atomic_store_explicit(&s->shut, want, memory_order_relaxed);
    conc__pq_unlock(s, &s->get_lock, false);
    conc__pq_unlock(s, &s->put_lock, want > shut);
    return 0;
}

/* ---- snapshots ---- */

int64_t conc_pqueue_size(conc_pqueue *q)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    return (int64_t)conc__pq_count(q->sh);
}

int conc_pqueue_empty(conc_pqueue *q)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    return conc__pq_count(q->sh) == 0;
}

int conc_pqueue_full(conc_pqueue *q)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    return conc__pq_count(q->sh) >= q->capacity;
}

int conc_pqueue_is_shutdown(conc_pqueue *q)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    return atomic_load_explicit(&q->sh->shut, memory_order_relaxed) != 0;
}

int64_t conc_pqueue_unfinished_tasks(conc_pqueue *q)
{
    if (!q)
        return CONC__MISUSE(CONC_EINVAL, "NULL queue");
    return (int64_t)conc__pq_unfinished(q->sh);
}
