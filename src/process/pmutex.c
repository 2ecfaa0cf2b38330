/* conc_pmutex: the robust process-shared mutex.
 *
 * The kernel keeps one robust-futex list per thread (set_robust_list) and,
 * when the thread dies, marks every lock word on it FUTEX_OWNER_DIED and
 * wakes a waiter. glibc owns that list and offers no way to add foreign
 * entries, so the lock is glibc's own: a pthread mutex made ROBUST,
 * PROCESS_SHARED and ERRORCHECK (a re-lock is EDEADLK, not a hang; an
 * unlock by another thread is EPERM), with conc's codes for its answers.
 *
 * Beside it: `state`, the life of the object (all zero: never initialised,
 * LIVE, DEAD after destroy), and `owner`, the kernel thread id of the
 * holder, written only by the holder (after locking, before unlocking), so
 * that "owner == me" read without a lock is exact. A holder that dies
 * leaves its id there until the next locker, which gets EOWNERDEAD,
 * overwrites it. That locker's unlock without conc_pmutex_consistent sets
 * `given_up` before glibc marks the mutex not recoverable, and every lock
 * reads it first: the answer is then CONC_ENOTRECOVERABLE without asking
 * glibc.
 *
 * Timed locks and tries use pthread_mutex_clocklock on CLOCK_MONOTONIC
 * (pthread_mutex_timedlock counts on the wall clock, which may jump).
 * ThreadSanitizer intercepts pthread_mutex_lock but not _clocklock (clang
 * 14, gcc 12): in its build the timed lock announces itself with the mutex
 * annotations, or every unlock after it would be reported as the unlock of
 * an unlocked mutex.
 */
#define _GNU_SOURCE
#include "conc/process.h"
#include "core/deadline.h"
#include "core/misuse.h"
#include "core/platform.h"
#include "core/tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#if CONC__TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define CONC__PM_LIVE 0x706d7478u /* "pmtx" */
#define CONC__PM_DEAD 0xdead0b1u

struct conc__pmutex {
    pthread_mutex_t m;
    _Atomic uint32_t state;
    _Atomic uint32_t owner;    /* the holder's tid; 0: none (or it died) */
    uint32_t inconsistent;     /* the holder got it with EOWNERDEAD; the holder's */
    _Atomic uint32_t given_up; /* unlocked while inconsistent: not recoverable */
};

_Static_assert(sizeof(struct conc__pmutex) <= sizeof(conc_pmutex) &&
                   _Alignof(struct conc__pmutex) <= _Alignof(conc_pmutex),
               "conc__pmutex must fit conc_pmutex");

static inline struct conc__pmutex *conc__pmutex_of(conc_pmutex *p)
{
    return (struct conc__pmutex *)(void *)p;
}

/* 0 for a live mutex, else the misuse code with its detail, in the name of
 * fn, the public call. */
static int conc__pmutex_check(struct conc__pmutex *m, const char *fn)
{
    uint32_t s = atomic_load_explicit(&m->state, memory_order_acquire);
    if (conc__likely(s == CONC__PM_LIVE))
        return 0;
    if (s == CONC__PM_DEAD)
        return conc__misuse_at(CONC_EBADF, fn, "the robust mutex was destroyed");
    return conc__misuse_at(CONC_EINVAL, fn,
                           "the robust mutex was never initialised (conc_pmutex_init)");
}

int conc_pmutex_init(conc_pmutex *p, const conc_pmutex_opts *opts)
{
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL;
    if (!p)
        return CONC__MISUSE(CONC_EINVAL, "NULL robust mutex");
    struct conc__pmutex *m = conc__pmutex_of(p);
    pthread_mutexattr_t a;
    if (pthread_mutexattr_init(&a) != 0)
        return CONC_ENOMEM;
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    memset(m, 0, sizeof *m);
    int rc = pthread_mutex_init(&m->m, &a);
    pthread_mutexattr_destroy(&a);
    if (rc != 0)
        return rc == ENOMEM ? CONC_ENOMEM : CONC_EAGAIN;
    atomic_store_explicit(&m->state, CONC__PM_LIVE, memory_order_release);
    return 0;
}

/* The lock itself. The untimed form is pthread_mutex_lock; the timed one
 * pthread_mutex_clocklock on the monotonic clock; a try, the timed one with
 * a deadline long past, never pthread_mutex_trylock, which in glibc 2.36
 * takes a given-up mutex, answers ENOTRECOVERABLE and leaves it locked by
 * the caller for ever.
 *
 * ThreadSanitizer learns of an owner's death (and forgets the dead owner)
 * only in the calls it intercepts, pthread_mutex_lock and _trylock: in its
 * build the timed forms try pthread_mutex_trylock first (a given-up mutex
 * never gets there: see given_up), and only a holder in the same process
 * that dies while a timed lock already waits is still reported there, as
 * a double lock. */
static int conc__pmutex_acquire(struct conc__pmutex *m, int64_t timeout)
{
    if (timeout == CONC_FOREVER)
        return pthread_mutex_lock(&m->m);
#if CONC__TSAN
    int tried = pthread_mutex_trylock(&m->m);
    if (tried != EBUSY || timeout == 0)
        return tried == EBUSY ? ETIMEDOUT : tried;
#endif
    struct timespec ts = {0, 0};
    if (timeout > 0) {
        int64_t deadline;
        conc__deadline(timeout, &deadline); /* the caller checked the timeout */
        ts = conc__timespec(deadline);
    }
#if CONC__TSAN
    __tsan_mutex_pre_lock(&m->m, 0);
#endif
    int rc = pthread_mutex_clocklock(&m->m, CLOCK_MONOTONIC, &ts);
#if CONC__TSAN
    __tsan_mutex_post_lock(&m->m, rc == 0 || rc == EOWNERDEAD ? 0 : __tsan_mutex_try_lock_failed, 0);
#endif
    return rc;
}

/* Destroy takes the mutex with a try: a live holder (the caller too) makes
 * it CONC_EBUSY; one whose holder died, or that was given up, may go. (A
 * locker that looked at `state` before the dead marker and has yet to call
 * glibc is the program's bug, as any use of an object being destroyed.) */
int conc_pmutex_destroy(conc_pmutex *p)
{
    if (!p)
        return CONC__MISUSE(CONC_EINVAL, "NULL robust mutex");
    struct conc__pmutex *m = conc__pmutex_of(p);
    int rc = conc__pmutex_check(m, __func__);
    if (rc != 0)
        return rc;
    rc = atomic_load(&m->given_up) ? ENOTRECOVERABLE : conc__pmutex_acquire(m, 0);
    if (rc == ETIMEDOUT || rc == EDEADLK)
        return CONC__MISUSE(CONC_EBUSY, "destroying a locked robust mutex");
    uint32_t live = CONC__PM_LIVE;
    if (!atomic_compare_exchange_strong(&m->state, &live, CONC__PM_DEAD)) {
        if (rc == 0 || rc == EOWNERDEAD)
            pthread_mutex_unlock(&m->m);
        return CONC__MISUSE(CONC_EBADF, "the robust mutex was destroyed already");
    }
    if (rc == 0 || rc == EOWNERDEAD) {
        if (rc == EOWNERDEAD)
            pthread_mutex_consistent(&m->m);
        pthread_mutex_unlock(&m->m);
    }
    pthread_mutex_destroy(&m->m);
    return 0;
}

int conc_pmutex_lock_timed(conc_pmutex *p, int64_t timeout)
{
    if (!p)
        return CONC__MISUSE(CONC_EINVAL, "NULL robust mutex");
    struct conc__pmutex *m = conc__pmutex_of(p);
    int rc = conc__pmutex_check(m, __func__);
    if (rc != 0)
        return rc;
    if (timeout < 0)
        return conc__bad_timeout();
    if (atomic_load_explicit(&m->given_up, memory_order_acquire))
        return CONC_ENOTRECOVERABLE;
    switch (rc = conc__pmutex_acquire(m, timeout)) {
    case 0:
    case EOWNERDEAD:
        atomic_store_explicit(&m->owner, conc__tid(), memory_order_relaxed);
        m->inconsistent = rc == EOWNERDEAD;
        return rc == 0 ? 0 : CONC_EOWNERDEAD;
    case ETIMEDOUT:
        return CONC_ETIMEDOUT;
    case ENOTRECOVERABLE:
        return CONC_ENOTRECOVERABLE;
    case EDEADLK:
        return CONC__MISUSE(CONC_EDEADLK, "re-locking a robust mutex the calling thread holds");
    case EAGAIN:
        return CONC_EAGAIN;
    default:
        return CONC__MISUSE(CONC_EINVAL, "the robust mutex's memory is not a robust mutex");
    }
}

int conc_pmutex_lock(conc_pmutex *p)
{
    return conc_pmutex_lock_timed(p, CONC_FOREVER);
}

/* 0 if the calling thread holds m; else the misuse code with its detail,
 * in the name of fn. */
static int conc__pmutex_held(struct conc__pmutex *m, const char *fn)
{
    int rc = conc__pmutex_check(m, fn);
    if (rc != 0)
        return rc;
    if (atomic_load_explicit(&m->owner, memory_order_relaxed) != conc__tid())
        return conc__misuse_at(CONC_EPERM, fn, "the calling thread does not hold the robust mutex");
    return 0;
}

int conc_pmutex_unlock(conc_pmutex *p)
{
    if (!p)
        return CONC__MISUSE(CONC_EINVAL, "NULL robust mutex");
    struct conc__pmutex *m = conc__pmutex_of(p);
    int rc = conc__pmutex_held(m, __func__);
    if (rc != 0)
        return rc;
    if (m->inconsistent)
        atomic_store_explicit(&m->given_up, 1, memory_order_release);
    atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
    if (pthread_mutex_unlock(&m->m) != 0) { /* glibc disagrees: not ours after all */
        atomic_store_explicit(&m->owner, conc__tid(), memory_order_relaxed);
        return CONC__MISUSE(CONC_EPERM, "the calling thread does not hold the robust mutex");
    }
    return 0;
}

int conc_pmutex_consistent(conc_pmutex *p)
{
    if (!p)
        return CONC__MISUSE(CONC_EINVAL, "NULL robust mutex");
    struct conc__pmutex *m = conc__pmutex_of(p);
    int rc = conc__pmutex_held(m, __func__);
    if (rc != 0)
        return rc;
    if (pthread_mutex_consistent(&m->m) != 0)
        return CONC__MISUSE(CONC_ESTATE, "the robust mutex is consistent: no owner died holding it");
    m->inconsistent = 0;
    return 0;
}
