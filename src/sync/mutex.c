/* conc_mutex: an owned lock with a timed form and a fair mode.
 *
 * Default mode is Drepper's three-state futex mutex (sync_impl.h): the fast
 * path is one compare-and-swap to lock and one exchange to unlock; a contended
 * locker marks the word CONTENDED and sleeps on it (no spinning: wait.h says
 * why), and an
 * unlock that finds CONTENDED wakes one sleeper, which competes again with any
 * newcomer (barging: fast, not fair).
 *
 * Fair mode keeps the same fast path while nobody waits, but a contended
 * locker queues a waiter record on m->q (FIFO) and sets QUEUED; an unlock that
 * finds QUEUED never frees the word: under q's lock it hands the mutex to the
 * oldest waiter still waiting, writing that waiter's identity into m->owner
 * before waking it. A waiter that times out in the same instant loses the
 * wake's compare-and-swap, and the hand-off moves to the next one; if none is
 * left, the word is freed. The word is UNLOCKED only while the queue is empty,
 * so no newcomer can pass a queued waiter.
 *
 * Ownership: m->owner is the locker's conc__self() (its tid when pshared),
 * written after the lock is taken and cleared before it is released, only by
 * the owner (or, in fair mode, by the unlocker on the new owner's behalf while
 * the word stays locked). So "owner == me" read without a lock is exact.
 *
 * Diagnostics (core/hooks.h): while every diagnostic is off, a lock or an unlock
 * pays one relaxed load of the diagnostics' flags, folded into a test the
 * fast path makes anyway (conc__diag_or): after the lock's compare-and-swap,
 * "not the all-default mutex (process-shared, fair) or diagnostics on" sends
 * it out of line (conc__mutex_locked_rare), and the unlock's test of the
 * queue flags takes the diagnostics' flags along. An uncontended lock thus
 * meets the lock-order check just after it took the mutex (it cannot have
 * waited), and a refusal hands the mutex straight back; a contended one is
 * checked before it waits. Process-shared mutexes call no hook.
 */
#include "core/deadline.h"
#include "core/hooks.h"
#include "core/misuse.h"
#include "sync/sync_impl.h"

#include <string.h>

#define CONC__M_DEAD 0xdeadu /* the word of a destroyed mutex: no CAS from 0 matches */

static inline struct conc__mutex *conc__mutex_of(conc_mutex *m)
{
    return (struct conc__mutex *)(void *)m;
}

static inline bool conc__timeout_valid(int64_t timeout)
{
    return timeout >= 0; /* CONC_FOREVER is INT64_MAX */
}

static int conc__mutex_setup(struct conc__mutex *m, bool pshared, bool fair)
{
    if (pshared && fair)
        return CONC_ENOTSUP;
    memset(m, 0, sizeof *m);
    conc__waitq_init(&m->q, (pshared ? CONC__WQ_PSHARED : 0) | (fair ? CONC__WQ_FAIR : 0));
    return 0;
}

/* The name in parentheses: conc_mutex_init is also a macro (sync.h). */
int(conc_mutex_init_at)(conc_mutex *mx, const conc_mutex_opts *opts, const char *site)
{
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL;
    if (!mx)
        return CONC__MISUSE(CONC_EINVAL, "NULL mutex");
    bool pshared = opts && opts->pshared;
    int rc = conc__mutex_setup(conc__mutex_of(mx), pshared, opts && opts->fair);
    if (rc == 0)
        conc__lockdep_on_init(mx, CONC__LOCK_MUTEX, opts ? opts->name : 0, site, pshared);
    return rc;
}

int(conc_mutex_init)(conc_mutex *mx, const conc_mutex_opts *opts)
{
    return conc_mutex_init_at(mx, opts, 0);
}

int conc_mutex_destroy(conc_mutex *mx)
{
    if (!mx)
        return CONC__MISUSE(CONC_EINVAL, "NULL mutex");
    struct conc__mutex *m = conc__mutex_of(mx);
    /* Decided whole under q's lock, where fair lockers look at the word, so
     * that a refused destroy never shows them the dead marker. */
    int rc = 0;
    uint32_t unlocked = CONC__M_UNLOCKED;
    conc__waitq_lock(&m->q);
    if (conc__waitq_dead(&m->q))
        rc = CONC_EBADF; /* detail set by the caller, below */
    else if (atomic_load(&m->q.nwaiters) != 0 ||
             !atomic_compare_exchange_strong(&m->word, &unlocked, CONC__M_DEAD))
        rc = CONC_EBUSY; /* detail set by the caller, below */
    else
        atomic_fetch_or(&m->q.flags, CONC__WQ_DEAD);
    conc__waitq_unlock(&m->q);
    if (rc == CONC_EBADF)
        return CONC__MISUSE(CONC_EBADF, "the mutex was destroyed already");
    if (rc == CONC_EBUSY)
        return CONC__MISUSE(CONC_EBUSY, "destroying a locked mutex, or one that threads wait for");
    conc__lockdep_on_destroy(m);
    return 0;
}

/* Default mode, contended: sleep on the word (no spinning: see wait.h). */
static int conc__mutex_lock_word(struct conc__mutex *m, int64_t deadline)
{
    bool shared = conc__waitq_pshared(&m->q), timed_out = false;
    for (;;) {
        /* Taking it as CONTENDED is conservative: we cannot know whether
         * other sleepers remain, so our unlock will wake one. */
        if (atomic_exchange_explicit(&m->word, CONC__M_CONTENDED, memory_order_acquire) ==
            CONC__M_UNLOCKED)
            return 0;
        if (timed_out)
            return CONC_ETIMEDOUT;
        conc__note_parked(m);
        timed_out = conc__futex_wait(&m->word, CONC__M_CONTENDED, deadline, shared) ==
                    CONC_ETIMEDOUT;
        conc__note_parked(NULL);
    }
}

static void conc__mutex_give_to(struct conc__waiter *w, void *arg)
{
    struct conc__mutex *m = arg;
    atomic_store_explicit(&m->owner, w->ctx, memory_order_relaxed);
}

/* Fair mode, contended: queue and wait for the hand-off. */
static int conc__mutex_lock_fair(struct conc__mutex *m, uintptr_t self, int64_t deadline)
{
    struct conc__waiter w;
    conc__waiter_init(&w, 0, self);
    int rc;
    conc__waitq_lock(&m->q);
    conc__waitq_announce(&m->q);
    for (;;) {
        uint32_t v = atomic_load(&m->word);
        if (v == CONC__M_UNLOCKED) {
            if (atomic_compare_exchange_strong(&m->word, &v, CONC__M_LOCKED)) {
                atomic_store_explicit(&m->owner, self, memory_order_relaxed);
                rc = 0;
                break;
            }
            continue;
        }
        if (conc__expired(deadline)) {
            rc = CONC_ETIMEDOUT;
            break;
        }
        if (!(v & CONC__M_QUEUED) && !atomic_compare_exchange_strong(&m->word, &v, v | CONC__M_QUEUED))
            continue;
        if (conc__waitq_sleep(&m->q, &w, deadline) == CONC__W_WOKEN) {
            rc = 0; /* handed over: the unlocker wrote us into m->owner */
            break;
        }
    }
    if (!m->q.head)
        atomic_fetch_and(&m->word, ~CONC__M_QUEUED);
    conc__waitq_retire(&m->q);
    conc__waitq_unlock(&m->q);
    return rc;
}

/* Contended (or a try, or an error): waits as the mode says. */
static int conc__mutex_lock_wait(struct conc__mutex *m, int64_t timeout, int64_t deadline,
                                 enum conc__lock_kind kind, bool diag)
{
    if (conc__waitq_dead(&m->q))
        return conc__misuse_at(CONC_EBADF, NULL, "the mutex was destroyed");
    uintptr_t self = conc__owner_self(&m->q);
    if (atomic_load_explicit(&m->owner, memory_order_relaxed) == self)
        return conc__misuse_at(CONC_EDEADLK, NULL, "re-locking a mutex the caller holds");
    if (timeout == 0)
        return CONC_ETIMEDOUT;
    int rc;
    if (deadline == 0 && (rc = conc__deadline(timeout, &deadline)) != 0)
        return rc;
    if (diag)
        conc__diag_lock_contended(m, kind);
    if (conc__waitq_flags(&m->q) & CONC__WQ_FAIR)
        return conc__mutex_lock_fair(m, self, deadline);
    rc = conc__mutex_lock_word(m, deadline);
    if (rc == 0)
        atomic_store_explicit(&m->owner, self, memory_order_relaxed);
    return rc;
}

/* A try (timeout 0) cannot deadlock: lock-order checking records it
 * unchecked. An acquisition that lock-order checking refuses returns
 * CONC_EDEADLK and calls no other hook. */
static unsigned conc__mutex_lk_flags(int64_t timeout)
{
    return timeout == 0 ? CONC__LK_TRY : 0;
}

/* The fast path's compare-and-swap failed: the hooks around the wait when a
 * diagnostic is on (core/hooks.h), the wait alone otherwise. */
__attribute__((noinline)) static int conc__mutex_lock_slow(struct conc__mutex *m,
                                                          int64_t timeout, int64_t deadline,
                                                          enum conc__lock_kind kind)
{
    if (conc__likely(!conc__diag_any()) || conc__waitq_pshared(&m->q))
        return conc__mutex_lock_wait(m, timeout, deadline, kind, false);
    int rc = conc__diag_lock_acquire(m, kind, conc__mutex_lk_flags(timeout));
    if (rc != 0)
        return rc;
    rc = conc__mutex_lock_wait(m, timeout, deadline, kind, true);
    if (rc == 0)
        conc__diag_lock_acquired(m, kind);
    else
        conc__diag_lock_failed(m, kind);
    return rc;
}

static void conc__mutex_unlock_fair(struct conc__mutex *m);

/* Undoes an uncontended acquisition that lock-order checking refused. */
static void conc__mutex_give_back(struct conc__mutex *m)
{
    atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
    if (conc__waitq_flags(&m->q) & CONC__WQ_FAIR)
        conc__mutex_unlock_fair(m);
    else if (atomic_exchange_explicit(&m->word, CONC__M_UNLOCKED, memory_order_release) ==
             CONC__M_CONTENDED)
        conc__futex_wake(&m->word, 1, false);
}

/* The fast path took a mutex that is not the all-default one (process-shared:
 * its owner is the thread id, sync_impl.h; or fair), or a diagnostic is on:
 * the owner, and the hooks after the fact. Out of line, so that the fast
 * path needs no stack frame; the unlock's fast path leaves those mutexes to
 * conc__mutex_unlock_slow the same way. */
__attribute__((noinline)) static int conc__mutex_locked_rare(struct conc__mutex *m, int64_t timeout,
                                                             enum conc__lock_kind kind)
{
    if (conc__waitq_pshared(&m->q)) {
        atomic_store_explicit(&m->owner, (uintptr_t)conc__tid(), memory_order_relaxed);
        return 0;
    }
    atomic_store_explicit(&m->owner, conc__self(), memory_order_relaxed);
    if (conc__likely(!conc__diag_any()))
        return 0;
    int rc = conc__diag_lock_acquire(m, kind, conc__mutex_lk_flags(timeout));
    if (rc != 0) {
        conc__mutex_give_back(m);
        return rc;
    }
    conc__diag_lock_acquired(m, kind);
    return 0;
}

/* Whether v, or the diagnostics' flags (core/hooks.h), is non-zero: a
 * fast path's own test of the queue flags and the diagnostics' one in a
 * single branch (arch/cpu.h). */
static inline bool conc__diag_or(uint32_t v)
{
#if defined(CONC_NO_DIAG)
    return v != 0;
#else
    return conc__or_nonzero(v, &conc__diag_flags, !CONC__SANITIZED);
#endif
}

static inline int conc__mutex_lock_fast(struct conc__mutex *m, int64_t timeout, int64_t deadline,
                                        enum conc__lock_kind kind)
{
    uint32_t unlocked = CONC__M_UNLOCKED;
    if (conc__likely(atomic_compare_exchange_strong_explicit(
            &m->word, &unlocked, CONC__M_LOCKED, memory_order_acquire, memory_order_relaxed))) {
        if (conc__unlikely(conc__diag_or(conc__waitq_flags(&m->q))))
            return conc__mutex_locked_rare(m, timeout, kind);
        atomic_store_explicit(&m->owner, conc__self(), memory_order_relaxed);
        return 0;
    }
    return conc__mutex_lock_slow(m, timeout, deadline, kind);
}

int conc__mutex_lock_until(struct conc__mutex *m, int64_t deadline)
{
    return conc__mutex_lock_fast(m, CONC_FOREVER, deadline, CONC__LOCK_MUTEX);
}

int conc_mutex_lock(conc_mutex *m)
{
    if (!m)
        return CONC__MISUSE(CONC_EINVAL, "NULL mutex");
    return conc__mutex_lock_fast(conc__mutex_of(m), CONC_FOREVER, CONC__NO_DEADLINE,
                                 CONC__LOCK_MUTEX);
}

int conc_mutex_lock_timed(conc_mutex *m, int64_t timeout)
{
    if (!m)
        return CONC__MISUSE(CONC_EINVAL, "NULL mutex");
    if (!conc__timeout_valid(timeout))
        return conc__bad_timeout();
    return conc__mutex_lock_fast(conc__mutex_of(m), timeout, 0, CONC__LOCK_MUTEX);
}

static void conc__mutex_unlock_fair(struct conc__mutex *m)
{
    uint32_t locked = CONC__M_LOCKED;
    if (atomic_compare_exchange_strong_explicit(&m->word, &locked, CONC__M_UNLOCKED,
                                                memory_order_release, memory_order_relaxed))
        return;
    conc__waitq_lock(&m->q);
    if (conc__waitq_handoff(&m->q, conc__mutex_give_to, m)) {
        if (!m->q.head)
            atomic_fetch_and(&m->word, ~CONC__M_QUEUED);
    } else {
        atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
        atomic_store_explicit(&m->word, CONC__M_UNLOCKED, memory_order_release);
    }
    conc__waitq_unlock(&m->q);
}

/* An unlock by a caller that does not hold m: CONC_EBADF when m was
 * destroyed, else CONC_EPERM, with the detail. Out of line: the unlocks'
 * fast paths only branch to it. */
__attribute__((noinline, cold)) static int conc__mutex_not_owner(struct conc__mutex *m,
                                                                enum conc__lock_kind kind)
{
    const char *fn = kind == CONC__LOCK_RMUTEX ? "conc_rmutex_unlock" : "conc_mutex_unlock";
    if (conc__waitq_dead(&m->q))
        return conc__misuse_at(CONC_EBADF, fn, "the mutex was destroyed");
    return conc__misuse_at(CONC_EPERM, fn, "unlock by a thread that does not hold the mutex");
}

/* Process-shared, fair or destroyed, or a diagnostic is on (core/hooks.h). */
__attribute__((noinline)) static int conc__mutex_unlock_slow(struct conc__mutex *m,
                                                             enum conc__lock_kind kind)
{
    unsigned flags = conc__waitq_flags(&m->q);
    uintptr_t self = flags & CONC__WQ_PSHARED ? (uintptr_t)conc__tid() : conc__self();
    if (atomic_load_explicit(&m->owner, memory_order_relaxed) != self)
        return conc__mutex_not_owner(m, kind);
    atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
    if (!(flags & CONC__WQ_PSHARED))
        conc__lock_release(m, kind);
    if (flags & CONC__WQ_FAIR) {
        conc__mutex_unlock_fair(m);
        return 0;
    }
    if (atomic_exchange_explicit(&m->word, CONC__M_UNLOCKED, memory_order_release) ==
        CONC__M_CONTENDED)
        conc__futex_wake(&m->word, 1, flags & CONC__WQ_PSHARED);
    return 0;
}

__attribute__((noinline)) static void conc__mutex_wake_one(struct conc__mutex *m)
{
    conc__futex_wake(&m->word, 1, false);
}

/* The fast path covers the all-default mutex (in-process, barging, alive)
 * while no diagnostic is on. Inlined into conc_mutex_unlock, so the public
 * call makes no second jump. */
static inline int conc__mutex_unlock_fast(struct conc__mutex *m, enum conc__lock_kind kind)
{
    if (conc__unlikely(conc__diag_or(conc__waitq_flags(&m->q))))
        return conc__mutex_unlock_slow(m, kind);
    if (atomic_load_explicit(&m->owner, memory_order_relaxed) != conc__self())
        return conc__mutex_not_owner(m, kind);
    atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
    if (conc__unlikely(atomic_exchange_explicit(&m->word, CONC__M_UNLOCKED,
                                                memory_order_release) == CONC__M_CONTENDED))
        conc__mutex_wake_one(m);
    return 0;
}

int conc__mutex_unlock(struct conc__mutex *m)
{
    return conc__mutex_unlock_fast(m, CONC__LOCK_MUTEX);
}

int conc_mutex_unlock(conc_mutex *m)
{
    if (!m)
        return CONC__MISUSE(CONC_EINVAL, "NULL mutex");
    return conc__mutex_unlock_fast(conc__mutex_of(m), CONC__LOCK_MUTEX);
}

/* ---- recursive mutex: an owned mutex plus a depth only the owner touches ---- */

static inline struct conc__rmutex *conc__rmutex_of(conc_rmutex *m)
{
    return (struct conc__rmutex *)(void *)m;
}

int(conc_rmutex_init_at)(conc_rmutex *rx, const conc_mutex_opts *opts, const char *site)
{
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL;
    if (!rx)
        return CONC__MISUSE(CONC_EINVAL, "NULL recursive mutex");
    bool pshared = opts && opts->pshared;
    struct conc__rmutex *r = conc__rmutex_of(rx);
    r->depth = 0;
    int rc = conc__mutex_setup(&r->m, pshared, opts && opts->fair);
    if (rc == 0)
        conc__lockdep_on_init(rx, CONC__LOCK_RMUTEX, opts ? opts->name : 0, site, pshared);
    return rc;
}

int(conc_rmutex_init)(conc_rmutex *rx, const conc_mutex_opts *opts)
{
    return conc_rmutex_init_at(rx, opts, 0);
}

int conc_rmutex_destroy(conc_rmutex *rx)
{
    if (!rx)
        return CONC__MISUSE(CONC_EINVAL, "NULL recursive mutex");
    return conc_mutex_destroy((conc_mutex *)(void *)&conc__rmutex_of(rx)->m);
}

/* NULL, or a negative timeout: CONC_EINVAL with the detail. Out of line:
 * the locks only branch to it. */
__attribute__((noinline, cold)) static int conc__rmutex_bad_args(conc_rmutex *rx)
{
    if (!rx) /* conc_rmutex_lock or conc_rmutex_lock_timed */
        return conc__misuse_at(CONC_EINVAL, NULL, "NULL recursive mutex");
    return conc__bad_timeout();
}

/* Inlined into both locks, as the compiler chose before the error path
 * called out for the detail. */
static inline __attribute__((always_inline)) int conc__rmutex_lock(conc_rmutex *rx,
                                                                   int64_t timeout)
{
    if (!rx || !conc__timeout_valid(timeout))
        return conc__rmutex_bad_args(rx);
    struct conc__rmutex *r = conc__rmutex_of(rx);
    if (atomic_load_explicit(&r->m.owner, memory_order_relaxed) == conc__owner_self(&r->m.q)) {
        if (r->depth == UINT32_MAX)
            return CONC_EAGAIN;
        r->depth++;
        return 0;
    }
    /* Only the outermost acquisition reaches the hooks: recursion by the
     * owner orders nothing. */
    int rc = conc__mutex_lock_fast(&r->m, timeout, timeout == CONC_FOREVER ? CONC__NO_DEADLINE : 0,
                                   CONC__LOCK_RMUTEX);
    if (rc == 0)
        r->depth = 1;
    return rc;
}

int conc_rmutex_lock(conc_rmutex *m)
{
    return conc__rmutex_lock(m, CONC_FOREVER);
}

int conc_rmutex_lock_timed(conc_rmutex *m, int64_t timeout)
{
    return conc__rmutex_lock(m, timeout);
}

int conc_rmutex_unlock(conc_rmutex *rx)
{
    if (!rx)
        return CONC__MISUSE(CONC_EINVAL, "NULL recursive mutex");
    struct conc__rmutex *r = conc__rmutex_of(rx);
    if (atomic_load_explicit(&r->m.owner, memory_order_relaxed) != conc__owner_self(&r->m.q))
        return conc__mutex_not_owner(&r->m, CONC__LOCK_RMUTEX);
    if (--r->depth > 0)
        return 0;
    return conc__mutex_unlock_fast(&r->m, CONC__LOCK_RMUTEX);
}

/* Whether m's word says held (a fair hand-off keeps it held throughout). */
static int conc__mutex_held(struct conc__mutex *m)
{
    if (conc__waitq_dead(&m->q)) /* conc_mutex_locked or conc_rmutex_locked */
        return conc__misuse_at(CONC_EBADF, NULL, "the mutex was destroyed");
    return atomic_load_explicit(&m->word, memory_order_relaxed) != CONC__M_UNLOCKED;
}

int conc_mutex_locked(conc_mutex *mx)
{
    return mx ? conc__mutex_held(conc__mutex_of(mx)) : CONC__MISUSE(CONC_EINVAL, "NULL mutex");
}

int conc_rmutex_locked(conc_rmutex *rx)
{
    return rx ? conc__mutex_held(&conc__rmutex_of(rx)->m)
              : CONC__MISUSE(CONC_EINVAL, "NULL recursive mutex");
}

int64_t conc_rmutex_depth(conc_rmutex *rx)
{
    if (!rx)
        return CONC__MISUSE(CONC_EINVAL, "NULL recursive mutex");
    struct conc__rmutex *r = conc__rmutex_of(rx);
    if (conc__waitq_dead(&r->m.q))
        return CONC__MISUSE(CONC_EBADF, "the recursive mutex was destroyed");
    if (atomic_load_explicit(&r->m.owner, memory_order_relaxed) != conc__owner_self(&r->m.q))
        return 0;
    return r->depth;
}
