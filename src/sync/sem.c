/* conc_sem: counting and bounded semaphores on the wait core.
 *
 * The value is one atomic word. acquire takes n with a compare-and-swap when
 * the value covers n, without any lock (barging is allowed). Otherwise it
 * announces itself on s->q, re-checks, and sleeps with want = n. release adds
 * n with a compare-and-swap that enforces the bound and CONC_SEM_VALUE_MAX
 * (all-or-nothing), then, only if someone announced a wait, takes s->q's lock
 * and wakes, oldest first, the waiters the new value can satisfy: a budget
 * starts at the value and each real wake spends its want, so a waiter wanting
 * more than is left is skipped (and may be overtaken by smaller ones) rather
 * than woken to fail. A woken waiter re-checks and takes its units itself; one
 * that finds them gone to a barging thread passes the wake on (the units left
 * may fit a smaller waiter that was skipped) before it sleeps again or times
 * out. So a waiter the value covers is never left asleep, and nothing is lost:
 * units are only ever held by the value or by the thread that took them.
 *
 * Diagnostics: only a semaphore created with opts.lock_like calls the lock
 * hooks (core/hooks.h), as a lock (a counting semaphore has no owner and no
 * order), and never a process-shared one; while every diagnostic is off an
 * acquire or a release pays one relaxed load and a branch.
 */
#include "core/deadline.h"
#include "core/hooks.h"
#include "core/misuse.h"
#include "sync/sync_impl.h"

#include <string.h>

static inline struct conc__sem *conc__sem_of(conc_sem *s)
{
    return (struct conc__sem *)(void *)s;
}

/* The name in parentheses: conc_sem_init is also a macro (sync.h). */
int(conc_sem_init_at)(conc_sem *sx, size_t value, const conc_sem_opts *opts, const char *site)
{
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL;
    if (!sx)
        return CONC__MISUSE(CONC_EINVAL, "NULL semaphore");
    size_t bound = opts ? opts->bound : 0;
    if (value > CONC_SEM_VALUE_MAX || bound > CONC_SEM_VALUE_MAX)
        return CONC__MISUSE(CONC_EINVAL, "value or bound above CONC_SEM_VALUE_MAX");
    if (bound && value > bound)
        return CONC__MISUSE(CONC_EINVAL, "initial value above the bound");
    struct conc__sem *s = conc__sem_of(sx);
    memset(s, 0, sizeof *s);
    atomic_store(&s->value, (uint32_t)value);
    s->bound = (uint32_t)bound;
    bool pshared = opts && opts->pshared, lock_like = opts && opts->lock_like;
    conc__waitq_init(&s->q, (pshared ? CONC__WQ_PSHARED : 0) | (lock_like ? CONC__WQ_LOCKLIKE : 0));
    if (lock_like)
        conc__lockdep_on_init(sx, CONC__LOCK_SEM, opts->name, site, pshared);
    return 0;
}

int(conc_sem_init)(conc_sem *sx, size_t value, const conc_sem_opts *opts)
{
    return conc_sem_init_at(sx, value, opts, 0);
}

/* Whether the lock hooks apply: a lock-like, in-process semaphore. */
static inline bool conc__sem_hooked(struct conc__sem *s)
{
    return (conc__waitq_flags(&s->q) & (CONC__WQ_LOCKLIKE | CONC__WQ_PSHARED)) == CONC__WQ_LOCKLIKE;
}

int conc_sem_destroy(conc_sem *sx)
{
    if (!sx)
        return CONC__MISUSE(CONC_EINVAL, "NULL semaphore");
    struct conc__sem *s = conc__sem_of(sx);
    if (conc__waitq_dead(&s->q))
        return CONC__MISUSE(CONC_EBADF, "the semaphore was destroyed already");
    if (conc__waitq_kill(&s->q) != 0)
        return CONC__MISUSE(CONC_EBUSY, "threads wait on the semaphore");
    conc__lockdep_on_destroy(s);
    return 0;
}

static inline bool conc__sem_try(struct conc__sem *s, uint32_t n)
{
    uint32_t v = atomic_load_explicit(&s->value, memory_order_seq_cst);
    while (v >= n) {
        if (atomic_compare_exchange_weak_explicit(&s->value, &v, v - n, memory_order_seq_cst,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

static bool conc__sem_fits(uintptr_t want, void *budget)
{
    return want <= *(uint32_t *)budget;
}

static void conc__sem_spend(uintptr_t want, void *budget)
{
    *(uint32_t *)budget -= (uint32_t)want;
}

/* Called with s->q locked: wakes, oldest first, the waiters the value can
 * satisfy; each real wake spends its want from a budget that starts at the
 * value. */
static void conc__sem_wake_fitting(struct conc__sem *s)
{
    uint32_t budget = atomic_load(&s->value);
    if (budget)
        conc__waitq_wake_if(&s->q, conc__sem_fits, conc__sem_spend, &budget);
}

struct conc__sem_want {
    struct conc__sem *s;
    uint32_t n;
};

/* Spinning: tries to take the units as soon as they are there. */
static bool conc__sem_ready(void *arg)
{
    struct conc__sem_want *w = arg;
    return atomic_load_explicit(&w->s->value, memory_order_relaxed) >= w->n &&
           conc__sem_try(w->s, w->n);
}

/* diag: the hooks are on for this acquisition (conc__sem_acquire_diag). */
static int conc__sem_acquire_slow(struct conc__sem *s, uint32_t n, int64_t timeout, bool diag)
{
    int64_t deadline = CONC__NO_DEADLINE;
    int rc = conc__deadline(timeout, &deadline);
    if (rc != 0)
        return rc;
    if (diag)
        conc__diag_lock_contended(s, CONC__LOCK_SEM);
    struct conc__waiter w;
    conc__waiter_init(&w, n, 0);
    bool woken = false;
    conc__waitq_lock(&s->q);
    conc__waitq_announce(&s->q);
    while (!conc__sem_try(s, n)) {
        /* Chosen by a release, but a barging thread took the units first:
         * what is left may cover a smaller waiter that was not chosen. */
        if (woken)
            conc__sem_wake_fitting(s);
        if (conc__expired(deadline)) {
            rc = CONC_ETIMEDOUT;
            break;
        }
        woken = conc__waitq_sleep_unlocked(&s->q, &w, deadline) == CONC__W_WOKEN;
        if (woken && conc__sem_try(s, n)) { /* the hand-off: leave lock-free */
            conc__waitq_retire(&s->q);
            return 0;
        }
        conc__waitq_lock(&s->q);
        conc__waitq_forget(&s->q, &w);
    }
    conc__waitq_retire(&s->q);
    conc__waitq_unlock(&s->q);
    return rc;
}

static inline int conc__sem_acquire_core(struct conc__sem *s, uint32_t n, int64_t timeout,
                                         bool diag)
{
    if (conc__likely(conc__sem_try(s, n)))
        return 0;
    if (timeout == 0)
        return CONC_ETIMEDOUT;
    struct conc__sem_want want = {s, n};
    if (conc__spin_until(&s->q, conc__sem_ready, &want))
        return 0;
    return conc__sem_acquire_slow(s, n, timeout, diag);
}

/* Some diagnostic is on: a lock-like semaphore's acquisition with its hooks
 * (core/hooks.h); a try (timeout 0) is recorded unchecked, and a refused one
 * returns CONC_EDEADLK before any attempt. */
__attribute__((noinline)) static int conc__sem_acquire_diag(struct conc__sem *s, uint32_t n,
                                                            int64_t timeout)
{
    if (!conc__sem_hooked(s))
        return conc__sem_acquire_core(s, n, timeout, false);
    int rc = conc__diag_lock_acquire(s, CONC__LOCK_SEM, timeout == 0 ? CONC__LK_TRY : 0);
    if (rc != 0)
        return rc;
    rc = conc__sem_acquire_core(s, n, timeout, true);
    if (rc == 0)
        conc__diag_lock_acquired(s, CONC__LOCK_SEM);
    else
        conc__diag_lock_failed(s, CONC__LOCK_SEM);
    return rc;
}

int conc_sem_acquire_n_timed(conc_sem *sx, size_t n, int64_t timeout)
{
    if (!sx)
        return CONC__MISUSE(CONC_EINVAL, "NULL semaphore");
    if (timeout < 0)
        return conc__bad_timeout();
    struct conc__sem *s = conc__sem_of(sx);
    if (conc__waitq_dead(&s->q))
        return CONC__MISUSE(CONC_EBADF, "the semaphore was destroyed");
    if (n == 0 || n > CONC_SEM_VALUE_MAX || (s->bound && n > s->bound))
        return CONC__MISUSE(CONC_EINVAL, "n is 0, or above the bound: it could never be taken");
    if (conc__unlikely(conc__diag_any()))
        return conc__sem_acquire_diag(s, (uint32_t)n, timeout);
    return conc__sem_acquire_core(s, (uint32_t)n, timeout, false);
}

int conc_sem_acquire_timed(conc_sem *s, int64_t timeout)
{
    return conc_sem_acquire_n_timed(s, 1, timeout);
}

int conc_sem_acquire(conc_sem *s)
{
    return conc_sem_acquire_n_timed(s, 1, CONC_FOREVER);
}

int conc_sem_acquire_n(conc_sem *s, size_t n)
{
    return conc_sem_acquire_n_timed(s, n, CONC_FOREVER);
}

/* Some diagnostic is on: a lock-like semaphore was released. */
__attribute__((noinline)) static void conc__sem_released_diag(struct conc__sem *s)
{
    if (conc__sem_hooked(s))
        conc__diag_lock_release(s, CONC__LOCK_SEM);
}

int conc_sem_release_n(conc_sem *sx, size_t n)
{
    if (!sx)
        return CONC__MISUSE(CONC_EINVAL, "NULL semaphore");
    if (n == 0)
        return CONC__MISUSE(CONC_EINVAL, "n is 0");
    struct conc__sem *s = conc__sem_of(sx);
    if (conc__waitq_dead(&s->q))
        return CONC__MISUSE(CONC_EBADF, "the semaphore was destroyed");
    uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    do {
        if (s->bound && n > s->bound - v) /* Python: ValueError */
            return CONC__MISUSE(CONC_ESTATE, "released too many times: above the bound");
        if (n > CONC_SEM_VALUE_MAX - v)
            return CONC_EOVERFLOW;
    } while (!atomic_compare_exchange_weak_explicit(&s->value, &v, v + (uint32_t)n,
                                                    memory_order_seq_cst, memory_order_relaxed));
    if (conc__unlikely(conc__diag_any()))
        conc__sem_released_diag(s);
    if (!conc__waitq_has_waiters(&s->q))
        return 0;
    conc__waitq_lock(&s->q);
    conc__sem_wake_fitting(s);
    conc__waitq_unlock(&s->q);
    return 0;
}

int conc_sem_release(conc_sem *s)
{
    return conc_sem_release_n(s, 1);
}

int64_t conc_sem_value(conc_sem *sx)
{
    if (!sx)
        return CONC__MISUSE(CONC_EINVAL, "NULL semaphore");
    struct conc__sem *s = conc__sem_of(sx);
    if (conc__waitq_dead(&s->q))
        return CONC__MISUSE(CONC_EBADF, "the semaphore was destroyed");
    return (int64_t)atomic_load_explicit(&s->value, memory_order_relaxed);
}
