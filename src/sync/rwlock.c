/* conc_rwlock: a writer-preferring reader-writer lock on the wait core.
 *
 * l->state holds WRITER, WWAIT and the reader count (sync_impl.h). Readers
 * take the lock with one compare-and-swap while neither WRITER nor WWAIT is
 * set; a writer takes a free lock (state 0) the same way. Otherwise the
 * thread announces itself on l->q and waits there with want = READ or WRITE.
 * A waiting writer counts itself in writers_waiting (under q's lock) and keeps
 * WWAIT set while that count is positive, which stops new readers: writers
 * never starve. Wakes: the last reader out wakes one writer; a writer's unlock
 * wakes the next writer if one waits, else every reader; a writer that gives
 * up clears WWAIT when it was the last and wakes everyone to re-check.
 *
 * Diagnostics: as the mutex's (mutex.c), one relaxed load and a branch per
 * operation while they are off; the hooked copies run out of line. A read
 * unlock is reported for the releasing context (which reader unlocks is not
 * tracked); process-shared rwlocks call no hook.
 */
#include "core/deadline.h"
#include "core/hooks.h"
#include "core/misuse.h"
#include "sync/sync_impl.h"

#include <string.h>

enum { CONC__RW_WANT_READ = 1, CONC__RW_WANT_WRITE = 2 };

static inline struct conc__rwlock *conc__rwlock_of(conc_rwlock *l)
{
    return (struct conc__rwlock *)(void *)l;
}

/* The name in parentheses: conc_rwlock_init is also a macro (sync.h). */
int(conc_rwlock_init_at)(conc_rwlock *lx, const conc_rwlock_opts *opts, const char *site)
{
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL;
    if (!lx)
        return CONC__MISUSE(CONC_EINVAL, "NULL rwlock");
    struct conc__rwlock *l = conc__rwlock_of(lx);
    bool pshared = opts && opts->pshared;
    memset(l, 0, sizeof *l);
    conc__waitq_init(&l->q, pshared ? CONC__WQ_PSHARED : 0);
    conc__lockdep_on_init(lx, CONC__LOCK_RWLOCK_WRITE, opts ? opts->name : 0, site, pshared);
    return 0;
}

int(conc_rwlock_init)(conc_rwlock *lx, const conc_rwlock_opts *opts)
{
    return conc_rwlock_init_at(lx, opts, 0);
}

int conc_rwlock_destroy(conc_rwlock *lx)
{
    if (!lx)
        return CONC__MISUSE(CONC_EINVAL, "NULL rwlock");
    struct conc__rwlock *l = conc__rwlock_of(lx);
    /* The dead state has WRITER set, so no fast path can take the lock once
     * destroy has decided; decided whole under q's lock, as the mutex's. */
    int rc = 0;
    uint32_t free_ = 0;
    conc__waitq_lock(&l->q);
    if (conc__waitq_dead(&l->q))
        rc = CONC_EBADF; /* detail set by the caller, below */
    else if (atomic_load(&l->q.nwaiters) != 0 ||
             !atomic_compare_exchange_strong(&l->state, &free_, CONC__RW_DEAD))
        rc = CONC_EBUSY; /* detail set by the caller, below */
    else
        atomic_fetch_or(&l->q.flags, CONC__WQ_DEAD);
    conc__waitq_unlock(&l->q);
    if (rc == CONC_EBADF)
        return CONC__MISUSE(CONC_EBADF, "the rwlock was destroyed already");
    if (rc == CONC_EBUSY)
        return CONC__MISUSE(CONC_EBUSY, "destroying a held rwlock, or one that threads wait for");
    conc__lockdep_on_destroy(l);
    return 0;
}

static inline bool conc__rw_try_read(struct conc__rwlock *l, int *err)
{
    uint32_t v = atomic_load_explicit(&l->state, memory_order_seq_cst);
    while (!(v & (CONC__RW_WRITER | CONC__RW_WWAIT))) {
        if ((v & CONC__RW_READERS) == CONC__RW_READERS) {
            *err = CONC_EAGAIN; /* 2^30 - 1 readers */
            return false;
        }
        if (atomic_compare_exchange_weak_explicit(&l->state, &v, v + 1, memory_order_seq_cst,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

static inline bool conc__rw_try_write(struct conc__rwlock *l, uintptr_t self)
{
    uint32_t v = atomic_load_explicit(&l->state, memory_order_seq_cst);
    while (!(v & (CONC__RW_WRITER | CONC__RW_READERS))) {
        if (atomic_compare_exchange_weak_explicit(&l->state, &v, v | CONC__RW_WRITER,
                                                  memory_order_seq_cst, memory_order_relaxed)) {
            atomic_store_explicit(&l->owner, self, memory_order_relaxed);
            return true;
        }
    }
    return false;
}

static bool conc__rw_want_is(uintptr_t want, void *arg)
{
    return want == *(uintptr_t *)arg;
}

static void conc__rw_spend(uintptr_t want, void *arg)
{
    (void)want;
    *(uintptr_t *)arg = 0; /* one writer is enough: match nothing more */
}

/* Called with l->q locked. */
static void conc__rw_wake_writer(struct conc__rwlock *l)
{
    uintptr_t want = CONC__RW_WANT_WRITE;
    conc__waitq_wake_if(&l->q, conc__rw_want_is, conc__rw_spend, &want);
}

static void conc__rw_wake_readers(struct conc__rwlock *l)
{
    uintptr_t want = CONC__RW_WANT_READ;
    conc__waitq_wake_if(&l->q, conc__rw_want_is, 0, &want);
}

/* Shared by every lock and unlock of an rwlock: its detail names no
 * function. */
static int conc__rw_check(conc_rwlock *lx, int64_t timeout)
{
    if (!lx)
        return conc__misuse_at(CONC_EINVAL, NULL, "NULL rwlock");
    if (timeout < 0)
        return conc__bad_timeout();
    if (conc__waitq_dead(&conc__rwlock_of(lx)->q))
        return conc__misuse_at(CONC_EBADF, NULL, "the rwlock was destroyed");
    return 0;
}

static bool conc__rw_held_by(struct conc__rwlock *l, uintptr_t self)
{
    return (atomic_load(&l->state) & CONC__RW_WRITER) &&
           atomic_load_explicit(&l->owner, memory_order_relaxed) == self;
}

/* The read lock's slow path: the fast try failed (rc: its error, if any).
 * diag: the hooks are on for this acquisition (conc__rw_lock_diag). */
__attribute__((noinline)) static int conc__rw_rdlock_slow(struct conc__rwlock *l, int64_t timeout,
                                                          int rc, bool diag)
{
    if (rc)
        return rc;
    if (conc__rw_held_by(l, conc__owner_self(&l->q)))
        return conc__misuse_at(CONC_EDEADLK, NULL,
                               "read-locking an rwlock the caller holds for writing");
    int64_t deadline = CONC__NO_DEADLINE;
    conc__deadline(timeout, &deadline);
    if (diag && timeout != 0)
        conc__diag_lock_contended(l, CONC__LOCK_RWLOCK_READ);
    struct conc__waiter w;
    conc__waiter_init(&w, CONC__RW_WANT_READ, 0);
    conc__waitq_lock(&l->q);
    conc__waitq_announce(&l->q);
    while (!conc__rw_try_read(l, &rc) && !rc) {
        if (conc__expired(deadline)) {
            rc = CONC_ETIMEDOUT;
            break;
        }
        conc__waitq_sleep(&l->q, &w, deadline);
    }
    conc__waitq_retire(&l->q);
    conc__waitq_unlock(&l->q);
    return rc;
}

__attribute__((noinline)) static int conc__rw_wrlock_slow(struct conc__rwlock *l, int64_t timeout,
                                                          uintptr_t self, bool diag)
{
    if (conc__rw_held_by(l, self))
        return conc__misuse_at(CONC_EDEADLK, NULL, "re-locking an rwlock the caller holds for writing");
    int64_t deadline = CONC__NO_DEADLINE;
    conc__deadline(timeout, &deadline);
    if (diag && timeout != 0)
        conc__diag_lock_contended(l, CONC__LOCK_RWLOCK_WRITE);
    struct conc__waiter w;
    conc__waiter_init(&w, CONC__RW_WANT_WRITE, 0);
    int rc = 0;
    conc__waitq_lock(&l->q);
    conc__waitq_announce(&l->q);
    l->writers_waiting++;
    atomic_fetch_or(&l->state, CONC__RW_WWAIT);
    while (!conc__rw_try_write(l, self)) {
        if (conc__expired(deadline)) {
            rc = CONC_ETIMEDOUT;
            break;
        }
        conc__waitq_sleep(&l->q, &w, deadline);
    }
    if (--l->writers_waiting == 0) {
        atomic_fetch_and(&l->state, ~CONC__RW_WWAIT);
        if (rc) /* readers held back for us may go now */
            conc__rw_wake_readers(l);
    } else if (rc && !(atomic_load(&l->state) & (CONC__RW_WRITER | CONC__RW_READERS))) {
        conc__rw_wake_writer(l); /* we may have been the one woken for a free lock */
    }
    conc__waitq_retire(&l->q);
    conc__waitq_unlock(&l->q);
    return rc;
}

static inline __attribute__((always_inline)) int conc__rw_rdlock_core(struct conc__rwlock *l,
                                                                      int64_t timeout, bool diag)
{
    int rc = 0;
    if (conc__likely(conc__rw_try_read(l, &rc)))
        return 0;
    return conc__rw_rdlock_slow(l, timeout, rc, diag);
}

static inline __attribute__((always_inline)) int conc__rw_wrlock_core(struct conc__rwlock *l,
                                                                      int64_t timeout, bool diag)
{
    uintptr_t self = conc__owner_self(&l->q);
    if (conc__likely(conc__rw_try_write(l, self)))
        return 0;
    return conc__rw_wrlock_slow(l, timeout, self, diag);
}

/* Some diagnostic is on: the acquisition with its hooks (core/hooks.h); a try
 * (timeout 0) is recorded unchecked by lock-order checking, and a refused
 * acquisition returns CONC_EDEADLK before any attempt. */
__attribute__((noinline)) static int conc__rw_lock_diag(struct conc__rwlock *l, int64_t timeout,
                                                        enum conc__lock_kind kind)
{
    bool write = kind == CONC__LOCK_RWLOCK_WRITE;
    if (conc__waitq_pshared(&l->q))
        return write ? conc__rw_wrlock_core(l, timeout, false)
                     : conc__rw_rdlock_core(l, timeout, false);
    int rc = conc__diag_lock_acquire(l, kind, timeout == 0 ? CONC__LK_TRY : 0);
    if (rc != 0)
        return rc;
    rc = write ? conc__rw_wrlock_core(l, timeout, true) : conc__rw_rdlock_core(l, timeout, true);
    if (rc == 0)
        conc__diag_lock_acquired(l, kind);
    else
        conc__diag_lock_failed(l, kind);
    return rc;
}

static inline __attribute__((always_inline)) int conc__rw_rdlock(conc_rwlock *lx, int64_t timeout)
{
    int rc = conc__rw_check(lx, timeout);
    if (rc)
        return rc;
    struct conc__rwlock *l = conc__rwlock_of(lx);
    if (conc__unlikely(conc__diag_any()))
        return conc__rw_lock_diag(l, timeout, CONC__LOCK_RWLOCK_READ);
    return conc__rw_rdlock_core(l, timeout, false);
}

static inline __attribute__((always_inline)) int conc__rw_wrlock(conc_rwlock *lx, int64_t timeout)
{
    int rc = conc__rw_check(lx, timeout);
    if (rc)
        return rc;
    struct conc__rwlock *l = conc__rwlock_of(lx);
    if (conc__unlikely(conc__diag_any()))
        return conc__rw_lock_diag(l, timeout, CONC__LOCK_RWLOCK_WRITE);
    return conc__rw_wrlock_core(l, timeout, false);
}

int conc_rwlock_rdlock(conc_rwlock *l)
{
    return conc__rw_rdlock(l, CONC_FOREVER);
}

int conc_rwlock_rdlock_timed(conc_rwlock *l, int64_t timeout)
{
    return conc__rw_rdlock(l, timeout);
}

int conc_rwlock_wrlock(conc_rwlock *l)
{
    return conc__rw_wrlock(l, CONC_FOREVER);
}

int conc_rwlock_wrlock_timed(conc_rwlock *l, int64_t timeout)
{
    return conc__rw_wrlock(l, timeout);
}

/* An unlock by a caller that does not hold the lock. Out of line: the
 * unlocks' fast paths only branch to it. */
__attribute__((noinline, cold)) static int conc__rw_not_held(void)
{
    return conc__misuse_at(CONC_EPERM, "conc_rwlock_unlock",
                           "unlock by a thread that does not hold the rwlock");
}

/* diag: call the release hook (some diagnostic is on, not process-shared).
 * Inlined into both callers, so the plain unlock keeps no trace of it. */
static inline __attribute__((always_inline)) int conc__rw_unlock_write(struct conc__rwlock *l,
                                                                       bool diag)
{
    if (atomic_load_explicit(&l->owner, memory_order_relaxed) != conc__owner_self(&l->q))
        return conc__rw_not_held();
    atomic_store_explicit(&l->owner, 0, memory_order_relaxed);
    if (diag)
        conc__diag_lock_release(l, CONC__LOCK_RWLOCK_WRITE);
    atomic_fetch_and_explicit(&l->state, ~CONC__RW_WRITER, memory_order_seq_cst);
    if (!conc__waitq_has_waiters(&l->q))
        return 0;
    conc__waitq_lock(&l->q);
    if (l->writers_waiting)
        conc__rw_wake_writer(l);
    else
        conc__rw_wake_readers(l);
    conc__waitq_unlock(&l->q);
    return 0;
}

static inline __attribute__((always_inline)) int conc__rw_unlock_read(struct conc__rwlock *l,
                                                                      bool diag)
{
    uint32_t v = atomic_load_explicit(&l->state, memory_order_relaxed);
    do {
        if (!(v & CONC__RW_READERS))
            return conc__rw_not_held();
    } while (!atomic_compare_exchange_weak_explicit(&l->state, &v, v - 1, memory_order_seq_cst,
                                                    memory_order_relaxed));
    if (diag)
        conc__diag_lock_release(l, CONC__LOCK_RWLOCK_READ);
    if ((v & CONC__RW_READERS) != 1 || !conc__waitq_has_waiters(&l->q))
        return 0;
    conc__waitq_lock(&l->q);
    conc__rw_wake_writer(l);
    conc__waitq_unlock(&l->q);
    return 0;
}

__attribute__((noinline)) static int conc__rw_unlock_diag(struct conc__rwlock *l, uint32_t v)
{
    bool diag = !conc__waitq_pshared(&l->q);
    if (v & CONC__RW_WRITER)
        return conc__rw_unlock_write(l, diag);
    return conc__rw_unlock_read(l, diag);
}

int conc_rwlock_unlock(conc_rwlock *lx)
{
    int rc = conc__rw_check(lx, 0);
    if (rc)
        return rc;
    struct conc__rwlock *l = conc__rwlock_of(lx);
    uint32_t v = atomic_load(&l->state);
    if (conc__unlikely(conc__diag_any()))
        return conc__rw_unlock_diag(l, v);
    if (v & CONC__RW_WRITER)
        return conc__rw_unlock_write(l, false);
    return conc__rw_unlock_read(l, false);
}
