/* The wait core; see wait.h for the protocol. */
#include "wait/wait.h"
#include "conc/base.h"
#include "core/deadline.h"
#include "core/dlist.h"
#include "core/tls.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef CONC_TEST_HOOKS
void (*conc__test_after_timeout)(struct conc__waiter *w);
#endif

/* Called with a queue lock held: the wake is issued at the next unlock. */
static void conc__wake_later(_Atomic uint32_t *addr, int count, bool shared)
{
    struct conc__pending_wakes *p = &conc__tls.pending;
    if (p->n == CONC__PENDING_MAX) {
        conc__futex_wake(addr, count, shared);
        return;
    }
    p->wake[p->n].addr = addr;
    p->wake[p->n].count = count;
    p->wake[p->n].shared = shared;
    p->n++;
}

void conc__pending_flush(void)
{
    struct conc__pending_wakes *p = &conc__tls.pending;
    for (unsigned i = 0; i < p->n; i++)
        conc__futex_wake(p->wake[i].addr, p->wake[i].count, p->wake[i].shared);
    p->n = 0;
}

/* ---- the internal lock: Drepper's three-state futex mutex ---- */

void conc__ilock_slow(_Atomic uint32_t *w, bool shared)
{
    for (int i = 0; CONC__SPIN_ENABLED && i < CONC__ILOCK_SPIN; i++) {
        uint32_t free_ = 0;
        if (atomic_load_explicit(w, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(w, &free_, 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return;
        conc__cpu_relax();
    }
    while (atomic_exchange_explicit(w, 2, memory_order_acquire) != 0)
        conc__futex_wait(w, 2, CONC__NO_DEADLINE, shared);
}

/* ---- adaptive spinning ---- */

/* q->spin: the score, a signed byte, in the low byte (so that an all-zero
 * object starts at 0); the probe level above it. Updated with a racy
 * read-modify-write on purpose: a lost update only blurs a hint. */
#define CONC__SPIN_LEVEL_SHIFT 8

static int conc__spin_score(unsigned word)
{
    return (int8_t)(uint8_t)(word & 0xffu);
}

bool conc__spin_worthwhile(struct conc__waitq *q)
{
    return CONC__SPIN_ENABLED &&
           conc__spin_score(atomic_load_explicit(&q->spin, memory_order_relaxed)) >= 0;
}

unsigned conc__spin_budget(struct conc__waitq *q, bool *probe)
{
    *probe = false;
    if (!CONC__SPIN_ENABLED)
        return 0;
    unsigned word = atomic_load_explicit(&q->spin, memory_order_relaxed);
    if (conc__spin_score(word) >= 0)
        return CONC__SPIN_BUDGET;
    unsigned level = word >> CONC__SPIN_LEVEL_SHIFT;
    if (++conc__tls.spin_probe % (16u << level) != 0)
        return 0;
    *probe = true;
    return CONC__SPIN_BUDGET;
}

void conc__spin_learn(struct conc__waitq *q, bool success, bool probe)
{
    if (!CONC__SPIN_ENABLED)
        return;
    unsigned word = atomic_load_explicit(&q->spin, memory_order_relaxed);
    int score = conc__spin_score(word);
    unsigned level = word >> CONC__SPIN_LEVEL_SHIFT;
    if (success && probe) {
        score = 0; /* spinning pays again: resume it, and let the score judge */
        level = 0;
    } else if (success) {
        score = score + 1 > CONC__SPIN_SCORE_MAX ? CONC__SPIN_SCORE_MAX : score + 1;
        level = 0;
    } else {
        score = score - 4 < CONC__SPIN_SCORE_MIN ? CONC__SPIN_SCORE_MIN : score - 4;
        if (probe && level < CONC__SPIN_PROBE_LEVELS)
            level++;
    }
    atomic_store_explicit(&q->spin,
                          (uint16_t)((uint8_t)(int8_t)score | level << CONC__SPIN_LEVEL_SHIFT),
                          memory_order_relaxed);
}

/* ---- waiter records ---- */

uint32_t conc__waiter_park(struct conc__waiter *w, int64_t deadline, unsigned spin, unsigned *spun)
{
    uint32_t s;
    for (unsigned i = 0; i < spin; i++) {
        s = atomic_load_explicit(&w->state, memory_order_acquire);
        if (s >= CONC__W_WOKEN) {
            *spun = i;
            return s;
        }
        conc__cpu_relax();
    }
    *spun = UINT32_MAX;
    uint32_t expected = CONC__W_WAITING;
    if (!atomic_compare_exchange_strong_explicit(&w->state, &expected, CONC__W_PARKED,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        *spun = spin;
        return expected;
    }
    while ((s = atomic_load_explicit(&w->state, memory_order_acquire)) == CONC__W_PARKED) {
        if (conc__futex_wait(&w->state, CONC__W_PARKED, deadline, false) != CONC_ETIMEDOUT)
            continue;
        expected = CONC__W_PARKED;
        if (atomic_compare_exchange_strong_explicit(&w->state, &expected, CONC__W_TIMED_OUT,
                                                    memory_order_acq_rel,
                                                    memory_order_acquire)) {
            CONC__TEST_HOOK(conc__test_after_timeout, w);
            return CONC__W_TIMED_OUT;
        }
        /* A waker chose us in the same instant: the wake is ours to honour. */
    }
    return s;
}

static void conc__thread_waiter_wake(void *arg, _Atomic uint32_t *state, uint32_t prev)
{
    (void)arg;
    if (prev == CONC__W_PARKED)
        conc__wake_later(state, 1, false); /* the address only: harmless if stale */
}

const struct conc__waiter_ops conc__thread_waiter = {.wake = conc__thread_waiter_wake};

/* A multi-wait's links stay until their owner has taken each queue's lock,
 * which the waker holds: m is alive. */
static void conc__multi_waiter_wake(void *arg, _Atomic uint32_t *state, uint32_t prev)
{
    (void)state, (void)prev;
    struct conc__multiwait *m = arg;
    atomic_fetch_add_explicit(&m->fired, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&m->parked, memory_order_seq_cst))
        conc__wake_later(&m->fired, 1, false);
}

const struct conc__waiter_ops conc__multi_waiter = {.wake = conc__multi_waiter_wake};

/* Moves w from WAITING or PARKED to WOKEN and makes sure it sees it.
 * Returns false if w already left (timed out or cancelled). */
static bool conc__waiter_wake(struct conc__waiter *w)
{
    /* Read all we need before the compare-and-swap (conc__waiter_ops). */
    const struct conc__waiter_ops *ops = w->ops;
    void *arg = w->wake_arg;
    _Atomic uint32_t *word = &w->state;
    uint32_t s = atomic_load_explicit(word, memory_order_relaxed);
    do {
        if (s >= CONC__W_WOKEN)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(word, &s, CONC__W_WOKEN, memory_order_acq_rel,
                                                    memory_order_relaxed));
    ops->wake(arg, word, s);
    return true;
}

/* ---- wait queues ---- */

void conc__waitq_init(struct conc__waitq *q, unsigned flags)
{
    atomic_store_explicit(&q->lock, 0, memory_order_relaxed);
    atomic_store_explicit(&q->seq, 0, memory_order_relaxed);
    atomic_store_explicit(&q->nwaiters, 0, memory_order_relaxed);
    atomic_store_explicit(&q->flags, (uint16_t)flags, memory_order_relaxed);
    atomic_store_explicit(&q->spin, 0, memory_order_relaxed);
    q->head = q->tail = 0;
}

int conc__waitq_kill(struct conc__waitq *q)
{
    conc__waitq_lock(q);
    bool busy = atomic_load_explicit(&q->nwaiters, memory_order_relaxed) != 0;
    if (!busy)
        atomic_fetch_or_explicit(&q->flags, CONC__WQ_DEAD, memory_order_relaxed);
    conc__waitq_unlock(q);
    return busy ? CONC_EBUSY : 0; /* detail set by caller: the destroy that called */
}

static void conc__waitq_link(struct conc__waitq *q, struct conc__waiter *w)
{
    CONC__DLIST_APPEND(q->head, q->tail, w);
    w->linked = true;
}

static void conc__waitq_unlink(struct conc__waitq *q, struct conc__waiter *w)
{
    CONC__DLIST_UNLINK(q->head, q->tail, w);
    w->linked = false;
}

uint32_t conc__waitq_sleep_unlocked(struct conc__waitq *q, struct conc__waiter *w,
                                    int64_t deadline)
{
    if (conc__waitq_pshared(q)) {
        uint32_t snapshot = atomic_load_explicit(&q->seq, memory_order_relaxed);
        conc__waitq_unlock(q);
        conc__note_parked(q);
        int rc = conc__futex_wait(&q->seq, snapshot, deadline, true);
        conc__note_parked(NULL);
        return rc == CONC_ETIMEDOUT ? CONC__W_TIMED_OUT : CONC__W_WOKEN;
    }
    atomic_store_explicit(&w->state, CONC__W_WAITING, memory_order_relaxed);
    conc__waitq_link(q, w);
    /* A second, short chance while queued: a waker that finds us still
     * spinning wakes us without a syscall. Not learnt from: the score is
     * about the spins before queueing. */
    unsigned budget = conc__spin_worthwhile(q) ? CONC__SPIN_QUEUED : 0, spun;
    conc__waitq_unlock(q);
    conc__note_parked(q);
    uint32_t s = conc__waiter_park(w, deadline, budget, &spun);
    conc__note_parked(NULL);
    return s;
}

void conc__waitq_forget(struct conc__waitq *q, struct conc__waiter *w)
{
    if (w->linked) /* timed out: the waker never reached us */
        conc__waitq_unlink(q, w);
}

uint32_t conc__waitq_sleep(struct conc__waitq *q, struct conc__waiter *w, int64_t deadline)
{
    uint32_t s = conc__waitq_sleep_unlocked(q, w, deadline);
    conc__waitq_lock(q);
    conc__waitq_forget(q, w);
    return s;
}

static unsigned conc__waitq_wake_shared(struct conc__waitq *q, unsigned n)
{
    atomic_fetch_add_explicit(&q->seq, 1, memory_order_release);
    conc__wake_later(&q->seq, n > INT32_MAX ? INT32_MAX : (int)n, true);
    return n;
}

unsigned conc__waitq_wake(struct conc__waitq *q, unsigned n)
{
    if (conc__waitq_pshared(q))
        return conc__waitq_wake_shared(q, n);
    unsigned woken = 0;
    while (woken < n && q->head) {
        struct conc__waiter *w = q->head;
        conc__waitq_unlink(q, w);
        woken += conc__waiter_wake(w);
    }
    return woken;
}

unsigned conc__waitq_wake_if(struct conc__waitq *q, bool (*pick)(uintptr_t want, void *arg),
                             void (*took)(uintptr_t want, void *arg), void *arg)
{
    if (conc__waitq_pshared(q))
        return conc__waitq_wake_shared(q, UINT32_MAX);
    unsigned woken = 0;
    struct conc__waiter *w = q->head;
    while (w) {
        struct conc__waiter *next = w->next;
        uintptr_t want = w->want; /* w may be gone once woken */
        if (atomic_load_explicit(&w->state, memory_order_acquire) >= CONC__W_WOKEN) {
            conc__waitq_unlink(q, w); /* timed out: it will find itself unlinked */
        } else if (pick(want, arg)) {
            conc__waitq_unlink(q, w);
            if (conc__waiter_wake(w)) {
                woken++;
                if (took)
                    took(want, arg);
            }
        }
        w = next;
    }
    return woken;
}

bool conc__waitq_handoff(struct conc__waitq *q, void (*before_wake)(struct conc__waiter *, void *),
                         void *arg)
{
    while (q->head) {
        struct conc__waiter *w = q->head;
        conc__waitq_unlink(q, w);
        before_wake(w, arg);
        if (conc__waiter_wake(w))
            return true;
    }
    return false;
}

int conc__waitq_wait_for(struct conc__waitq *q, bool (*ready)(void *), void *arg,
                         int64_t deadline)
{
    int rc = 0;
    conc__waitq_lock(q);
    conc__waitq_announce(q);
    while (!ready(arg)) {
        if (conc__expired(deadline)) {
            rc = CONC_ETIMEDOUT;
            break;
        }
        struct conc__waiter w;
        conc__waiter_init(&w, 0, conc__self());
        conc__waitq_sleep(q, &w, deadline);
    }
    conc__waitq_retire(q);
    conc__waitq_unlock(q);
    return rc;
}

/* ---- multi-wait ---- */

void conc__multiwait_init(struct conc__multiwait *m)
{
    atomic_store_explicit(&m->fired, 0, memory_order_relaxed);
    atomic_store_explicit(&m->parked, 0, memory_order_relaxed);
}

void conc__multiwait_link(struct conc__multiwait *m, struct conc__waitq *q,
                          struct conc__waiter *link, uintptr_t want)
{
    conc__waiter_init(link, want, 0);
    link->ops = &conc__multi_waiter;
    link->wake_arg = m;
    conc__waitq_link(q, link);
}

unsigned conc__multiwait_park(struct conc__multiwait *m, int64_t deadline)
{
    uint32_t fired;
    for (int i = 0; CONC__SPIN_ENABLED && i < CONC__SPIN_QUEUED; i++) {
        if ((fired = atomic_load_explicit(&m->fired, memory_order_acquire)))
            return fired;
        conc__cpu_relax();
    }
    atomic_store_explicit(&m->parked, 1, memory_order_seq_cst);
    conc__note_parked(m);
    while (!(fired = atomic_load_explicit(&m->fired, memory_order_seq_cst))) {
        if (conc__futex_wait(&m->fired, 0, deadline, false) == CONC_ETIMEDOUT) {
            fired = atomic_load_explicit(&m->fired, memory_order_acquire);
            break;
        }
    }
    conc__note_parked(NULL);
    atomic_store_explicit(&m->parked, 0, memory_order_relaxed);
    return fired;
}

bool conc__multiwait_unlink(struct conc__waitq *q, struct conc__waiter *link)
{
    conc__waitq_lock(q);
    if (link->linked)
        conc__waitq_unlink(q, link);
    uint32_t expected = CONC__W_WAITING;
    bool woken = !atomic_compare_exchange_strong_explicit(
        &link->state, &expected, CONC__W_CANCELLED, memory_order_acq_rel, memory_order_acquire);
    conc__waitq_unlock(q);
    return woken && expected == CONC__W_WOKEN;
}
