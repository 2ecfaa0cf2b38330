/* conc/sync.h — synchronisation primitives: mutex (timed, fair mode), recursive
 * mutex, condition variable, semaphore (counting and bounded), event, barrier,
 * once, reader-writer lock.
 *
 * Every object lives in caller memory: a struct member, a global, or shared
 * memory. An all-zero object is a valid default one (an unlocked mutex, an
 * unset event, a semaphore of value 0, a once not yet run), and the
 * CONC_X_INIT static initialisers say the same, so a global lock needs no init
 * call. conc_X_init(&x, &opts) chooses options (opts may be NULL: defaults);
 * conc_X_destroy(&x) leaves a dead marker, after which every call returns
 * CONC_EBADF until the object is initialised again. Destroying an object that
 * is in use (a locked mutex, a waited-on event) returns CONC_EBUSY and
 * changes nothing.
 *
 * opts.pshared makes an object usable by several processes when it lives in
 * shared memory (mmap MAP_SHARED): its waiters sleep on shared futexes. It
 * holds no pointer to process-local memory.
 *
 * Lock classes (lock-order checking, conc/debug.h): conc_mutex_init,
 * conc_rmutex_init, conc_rwlock_init and conc_sem_init are macros that pass
 * their call site ("file.c:42") to the conc_X_init_at functions, and the site
 * names the lock's class: every lock initialised on that line is one class.
 * opts.name, where given, names the class instead (locks with one name are
 * one class); a statically initialised lock's class is its address. Calling
 * the function itself, (conc_mutex_init)(&m, &opts), gives no site. A site is
 * recorded only while lock-order checking is on; a name always. Neither is
 * kept in the lock's own memory.
 *
 * Blocking calls come in two forms (base.h): conc_X_lock(&m) waits as long
 * as it takes, conc_X_lock_timed(&m, timeout) gives up with CONC_ETIMEDOUT;
 * a timeout of 0 is the try (pthread's trylock). Predicates (locked,
 * is_set, broken) answer 1 or 0, or a negative error. Every function is
 * thread-safe. NULL objects and negative timeouts are CONC_EINVAL, a
 * destroyed object CONC_EBADF, everywhere.
 *
 * Options structs end in reserved space that must be zero (initialise them
 * with {0}, designated members or a compound literal, and C zeroes it): new
 * options take its place without changing the struct's size, and a non-zero
 * reserved word is CONC_EINVAL (docs/api.md).
 */
#ifndef CONC_SYNC_H
#define CONC_SYNC_H

#include <conc/base.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ===================================================================== mutex
 * An owned lock: the thread that locks it must unlock it. Unlike Python's
 * Lock, which any thread may release, conc_mutex_unlock by another thread
 * returns CONC_EPERM; for a hand-off between threads use a semaphore of 1.
 * Locking a mutex you already hold returns CONC_EDEADLK instead of hanging.
 *
 * Default mode: a thread may take a free mutex ahead of threads already
 * waiting (barging), which is fastest. Fair mode hands the mutex over in FIFO
 * order to the longest waiter, bounding each wait at the cost of throughput.
 * Fair mode is in-process only (pshared + fair is CONC_ENOTSUP).
 */
typedef struct conc_mutex {
    _Alignas(8) unsigned char opaque_[48];
} conc_mutex;

#define CONC_MUTEX_INIT {{0}}

/* Options of both mutex kinds, conc_mutex and conc_rmutex. */
typedef struct conc_mutex_opts {
    bool pshared;     /* usable from several processes in shared memory */
    bool fair;        /* FIFO hand-off instead of barging */
    const char *name; /* the lock's class name for lock-order checking; copied */
    uint64_t reserved_[4];
} conc_mutex_opts;

/* Returns 0, CONC_EINVAL (NULL m) or CONC_ENOTSUP (pshared with fair). The
 * conc_mutex_init macro (below) passes its call site to conc_mutex_init_at:
 * the lock's class when opts gives no name. site may be NULL. */
CONC_API int conc_mutex_init(conc_mutex *m, const conc_mutex_opts *opts);
CONC_API int conc_mutex_init_at(conc_mutex *m, const conc_mutex_opts *opts, const char *site);
/* Returns 0, CONC_EBUSY if locked or waited on, CONC_EBADF if already destroyed. */
CONC_API int conc_mutex_destroy(conc_mutex *m);
/* Blocks until the mutex is ours. Returns 0, CONC_EDEADLK if the caller holds
 * it already, CONC_EBADF (destroyed), CONC_EINVAL (NULL). The timed form
 * gives up after timeout ns with CONC_ETIMEDOUT; with 0 it never blocks (a
 * try: CONC_ETIMEDOUT if another thread holds it). */
CONC_API int conc_mutex_lock(conc_mutex *m);
CONC_API int conc_mutex_lock_timed(conc_mutex *m, int64_t timeout);
/* Returns 0, CONC_EPERM if the caller does not hold it (unlocked, or held by
 * another thread), CONC_EBADF, CONC_EINVAL. Never blocks. */
CONC_API int conc_mutex_unlock(conc_mutex *m);
/* Whether anyone holds m right now (Python's Lock.locked()): 1 or 0, a
 * snapshot; CONC_EBADF, CONC_EINVAL. Never blocks. */
CONC_API int conc_mutex_locked(conc_mutex *m);

/* ========================================================= recursive mutex
 * As Python's RLock: the owner may lock it again; it is released when unlocked
 * as many times as locked. */
typedef struct conc_rmutex {
    _Alignas(8) unsigned char opaque_[64];
} conc_rmutex;

#define CONC_RMUTEX_INIT {{0}}

/* Options as conc_mutex's (conc_mutex_opts). */
CONC_API int conc_rmutex_init(conc_rmutex *m, const conc_mutex_opts *opts);
CONC_API int conc_rmutex_init_at(conc_rmutex *m, const conc_mutex_opts *opts, const char *site);
CONC_API int conc_rmutex_destroy(conc_rmutex *m);
/* Returns 0, CONC_EAGAIN if the depth would pass UINT32_MAX, CONC_EBADF,
 * CONC_EINVAL; the timed form also CONC_ETIMEDOUT (0: a try). */
CONC_API int conc_rmutex_lock(conc_rmutex *m);
CONC_API int conc_rmutex_lock_timed(conc_rmutex *m, int64_t timeout);
/* Returns 0, CONC_EPERM if the caller does not hold it, CONC_EBADF, CONC_EINVAL. */
CONC_API int conc_rmutex_unlock(conc_rmutex *m);
/* How many times the caller holds m (0 if it does not), or CONC_EBADF,
 * CONC_EINVAL. Never blocks. */
CONC_API int64_t conc_rmutex_depth(conc_rmutex *m);
/* Whether anyone holds m right now (Python 3.14's RLock.locked()): 1 or 0, a
 * snapshot; CONC_EBADF, CONC_EINVAL. Never blocks. */
CONC_API int conc_rmutex_locked(conc_rmutex *m);

/* ====================================================== condition variable
 * Waits release the mutex, sleep, and take it again before returning, also
 * after a timeout. As with every condition variable, a wake-up does not prove
 * the predicate: re-check it in a loop, or use conc_cond_wait_for. A notify
 * wakes only threads already waiting; one that times out at the moment it is
 * chosen passes the wake on to the next waiter. Notifying without holding the
 * mutex is allowed.
 */
typedef struct conc_cond {
    _Alignas(8) unsigned char opaque_[48];
} conc_cond;

#define CONC_COND_INIT {{0}}

typedef struct conc_cond_opts {
    bool pshared;
    uint64_t reserved_[4];
} conc_cond_opts;

/* A predicate for conc_cond_wait_for: 1 (true) ends the wait, 0 (false)
 * waits on, a negative value ends the wait with that code. */
typedef int (*conc_pred_fn)(void *arg);

CONC_API int conc_cond_init(conc_cond *c, const conc_cond_opts *opts);
/* Returns 0, CONC_EBUSY while threads wait, CONC_EBADF, CONC_EINVAL. */
CONC_API int conc_cond_destroy(conc_cond *c);
/* Called holding m. Returns 0 when notified (or spuriously), CONC_ETIMEDOUT
 * (timed form), CONC_EPERM if the caller does not hold m, CONC_EBADF,
 * CONC_EINVAL. */
CONC_API int conc_cond_wait(conc_cond *c, conc_mutex *m);
CONC_API int conc_cond_wait_timed(conc_cond *c, conc_mutex *m, int64_t timeout);
/* Called holding m, at any depth: every level is released while waiting and
 * restored before returning, as Python's Condition over an RLock. */
CONC_API int conc_cond_wait_rmutex(conc_cond *c, conc_rmutex *m);
CONC_API int conc_cond_wait_rmutex_timed(conc_cond *c, conc_rmutex *m, int64_t timeout);
/* Waits until pred(arg) is true, checking it first, with one deadline for the
 * whole wait. Returns 0 once pred holds, CONC_ETIMEDOUT if it still does not
 * at the deadline, pred's own negative answer, or an error of conc_cond_wait. */
CONC_API int conc_cond_wait_for(conc_cond *c, conc_mutex *m, conc_pred_fn pred, void *arg);
CONC_API int conc_cond_wait_for_timed(conc_cond *c, conc_mutex *m, conc_pred_fn pred, void *arg,
                                      int64_t timeout);
/* conc_cond_wait_for over a recursive mutex held at any depth (Python's
 * Condition() owns an RLock): every level released while waiting, restored
 * before pred is checked again and before returning. */
CONC_API int conc_cond_wait_for_rmutex(conc_cond *c, conc_rmutex *m, conc_pred_fn pred,
                                       void *arg);
CONC_API int conc_cond_wait_for_rmutex_timed(conc_cond *c, conc_rmutex *m, conc_pred_fn pred,
                                             void *arg, int64_t timeout);
/* Wake one, n (0 wakes none, as Python's notify(0)), or all of the waiting
 * threads. Return 0, CONC_EBADF, CONC_EINVAL. Never block. */
CONC_API int conc_cond_notify(conc_cond *c);
CONC_API int conc_cond_notify_n(conc_cond *c, size_t n);
CONC_API int conc_cond_notify_all(conc_cond *c);

/* ================================================================ semaphore
 * A counter that acquire lowers and release raises; acquire waits while it is
 * too low. A bounded semaphore (opts.bound > 0, Python's BoundedSemaphore)
 * refuses a release that would lift the value above the bound with
 * CONC_ESTATE, where Python raises ValueError.
 *
 * acquire_n and release_n are all-or-nothing: a release of n that would pass
 * the bound releases none; an acquire of n takes n at once or waits. Waiters
 * are woken oldest first among those the value can satisfy, and a thread
 * arriving while others wait may take a free unit first (barging). So a large
 * acquire can be overtaken by smaller ones and waits until the value covers it
 * whole; if that matters, acquire one unit at a time.
 *
 * The value is at most CONC_SEM_VALUE_MAX; a release past it is CONC_EOVERFLOW.
 */
typedef struct conc_sem {
    _Alignas(8) unsigned char opaque_[48];
} conc_sem;

#define CONC_SEM_INIT {{0}} /* value 0, unbounded */
#define CONC_SEM_VALUE_MAX INT32_MAX

typedef struct conc_sem_opts {
    bool pshared;
    size_t bound;     /* 0: unbounded; else the value may never exceed it */
    /* Used as a lock (acquired and released by the same thread or task, as a
     * binary semaphore guarding data): lock-order checking then treats it as
     * one. A counting semaphore has no owner, so it stays out otherwise. */
    bool lock_like;
    const char *name; /* class name for lock-order checking; copied */
    uint64_t reserved_[4];
} conc_sem_opts;

/* Returns 0, CONC_EINVAL (NULL s, value above the bound or above
 * CONC_SEM_VALUE_MAX). A value of 0 is valid, as in Python. */
CONC_API int conc_sem_init(conc_sem *s, size_t value, const conc_sem_opts *opts);
CONC_API int conc_sem_init_at(conc_sem *s, size_t value, const conc_sem_opts *opts,
                              const char *site);
CONC_API int conc_sem_destroy(conc_sem *s);
/* Takes 1. Returns 0, CONC_ETIMEDOUT (timed form), CONC_EBADF, CONC_EINVAL. */
CONC_API int conc_sem_acquire(conc_sem *s);
CONC_API int conc_sem_acquire_timed(conc_sem *s, int64_t timeout);
/* Takes n at once. n == 0, or n above the bound or CONC_SEM_VALUE_MAX, is
 * CONC_EINVAL. */
CONC_API int conc_sem_acquire_n(conc_sem *s, size_t n);
CONC_API int conc_sem_acquire_n_timed(conc_sem *s, size_t n, int64_t timeout);
/* Returns 0, CONC_ESTATE (above the bound: released more often than
 * acquired), CONC_EOVERFLOW (above CONC_SEM_VALUE_MAX), CONC_EBADF,
 * CONC_EINVAL (NULL; n == 0). Never blocks. */
CONC_API int conc_sem_release(conc_sem *s);
CONC_API int conc_sem_release_n(conc_sem *s, size_t n);
/* The current value, a snapshot; negative: a conc error. Never blocks. */
CONC_API int64_t conc_sem_value(conc_sem *s);

/* ==================================================================== event
 * A flag threads wait for (Python's Event). set() wakes every thread waiting
 * at that moment, even if clear() follows at once: a waiter woken by a set
 * returns 0 whatever the flag is by the time it runs. */
typedef struct conc_event {
    _Alignas(8) unsigned char opaque_[48];
} conc_event;

#define CONC_EVENT_INIT {{0}}

typedef struct conc_event_opts {
    bool pshared;
    bool initially_set;
    uint64_t reserved_[4];
} conc_event_opts;

CONC_API int conc_event_init(conc_event *e, const conc_event_opts *opts);
CONC_API int conc_event_destroy(conc_event *e);
CONC_API int conc_event_set(conc_event *e);
CONC_API int conc_event_clear(conc_event *e);
/* 1 if set, 0 if not, or a negative conc error. */
CONC_API int conc_event_is_set(conc_event *e);
/* Returns 0 once the flag is set (at once if it is), CONC_ETIMEDOUT (timed
 * form), CONC_EBADF, CONC_EINVAL. */
CONC_API int conc_event_wait(conc_event *e);
CONC_API int conc_event_wait_timed(conc_event *e, int64_t timeout);

/* ================================================================== barrier
 * n parties meet (Python's Barrier). When the last one arrives, the optional
 * action runs once, in that thread, before anyone is released. If the action
 * fails (returns non-zero), a wait times out, or conc_barrier_abort is called,
 * the barrier is broken: every thread waiting, and every later wait, returns
 * CONC_EBROKEN (the thread whose own timeout ran out returns CONC_ETIMEDOUT)
 * until conc_barrier_reset. A thread that arrives while the previous round is
 * still leaving waits for it first; timing out there returns CONC_ETIMEDOUT
 * without breaking anything, since it never joined a round. The action runs with the barrier's internal lock
 * held: it must not call the barrier. A barrier has a number of parties, so
 * it needs conc_barrier_init or CONC_BARRIER_INIT(parties): an all-zero one
 * has none and answers CONC_EINVAL to every call.
 */
typedef struct conc_barrier {
    _Alignas(8) uint32_t parties_;
    unsigned char opaque_[76];
} conc_barrier;

/* A statically initialised in-process barrier of n parties, no action. */
#define CONC_BARRIER_INIT(n) {(uint32_t)(n), {0}}

typedef struct conc_barrier_opts {
    bool pshared; /* with an action: only processes forked after init share it */
    int (*action)(void *arg);
    void *action_arg;
    uint64_t reserved_[4];
} conc_barrier_opts;

/* parties == 0 or above UINT32_MAX is CONC_EINVAL. */
CONC_API int conc_barrier_init(conc_barrier *b, size_t parties, const conc_barrier_opts *opts);
CONC_API int conc_barrier_destroy(conc_barrier *b);
/* Returns 0 and, if index is not NULL, this thread's arrival index in
 * [0, parties - 1], different for each thread of one round (the last to arrive,
 * which ran the action, gets parties - 1). Errors: CONC_EBROKEN,
 * CONC_ETIMEDOUT (timed form), CONC_EBADF, CONC_EINVAL. */
CONC_API int conc_barrier_wait(conc_barrier *b, size_t *index);
CONC_API int conc_barrier_wait_timed(conc_barrier *b, size_t *index, int64_t timeout);
/* Breaks the barrier: current and later waits return CONC_EBROKEN. */
CONC_API int conc_barrier_abort(conc_barrier *b);
/* Back to the empty, unbroken state; threads waiting get CONC_EBROKEN. Never
 * blocks: threads that arrive before the broken round has left wait for it. */
CONC_API int conc_barrier_reset(conc_barrier *b);
/* 1 if broken, 0 if not, or a negative conc error. */
CONC_API int conc_barrier_broken(conc_barrier *b);
/* Python's Barrier.parties and n_waiting: the number of threads a round
 * needs; the number waiting in the round now filling (0 while a round is
 * leaving or the barrier is broken), a snapshot. Or CONC_EBADF, CONC_EINVAL
 * (NULL, never initialised). Never block. */
CONC_API int64_t conc_barrier_parties(conc_barrier *b);
CONC_API int64_t conc_barrier_n_waiting(conc_barrier *b);

/* ===================================================================== once
 * Runs an initialiser exactly once successfully. Concurrent callers wait while
 * one runs it. If it fails (returns non-zero), the failure is not latched: that
 * caller gets its code, and the next caller (a waiting one included) runs it
 * again. Once it succeeded, every call returns 0 at once. An all-zero once
 * (CONC_ONCE_INIT) is ready to use; conc_once_init makes one in memory that
 * is not zero, conc_once_destroy marks it dead (later calls: CONC_EBADF). */
typedef struct conc_once {
    _Alignas(8) unsigned char opaque_[48];
} conc_once;

#define CONC_ONCE_INIT {{0}}

/* Return 0, CONC_EINVAL (NULL); destroy also CONC_EBUSY while the
 * initialiser runs, CONC_EBADF (destroyed already). Never block. */
CONC_API int conc_once_init(conc_once *o);
CONC_API int conc_once_destroy(conc_once *o);

/* Returns 0 once fn has succeeded (by this call or an earlier one), the
 * non-zero code fn returned on this call, CONC_EDEADLK when fn itself calls
 * the same once (it would wait for itself), CONC_EBADF, CONC_EINVAL. Blocks
 * while another caller runs fn; the timed form gives up then with
 * CONC_ETIMEDOUT. */
CONC_API int conc_once_call(conc_once *o, int (*fn)(void *arg), void *arg);
CONC_API int conc_once_call_timed(conc_once *o, int (*fn)(void *arg), void *arg, int64_t timeout);

/* =================================================================== rwlock
 * Many readers or one writer. Writer-preferring: once a writer waits, new
 * readers wait behind it, so writers never starve (readers may, under a
 * constant stream of writers). Read locks are not recursive: a thread that
 * read-locks twice while a writer waits deadlocks (the second read waits for
 * the writer, which waits for the first read); a write re-lock or a read lock
 * by the writer returns CONC_EDEADLK. Upgrading a read lock to a write lock
 * deadlocks the same way; release the read lock first.
 */
typedef struct conc_rwlock {
    _Alignas(8) unsigned char opaque_[64];
} conc_rwlock;

#define CONC_RWLOCK_INIT {{0}}

typedef struct conc_rwlock_opts {
    bool pshared;
    const char *name; /* class name for lock-order checking; copied */
    uint64_t reserved_[4];
} conc_rwlock_opts;

CONC_API int conc_rwlock_init(conc_rwlock *l, const conc_rwlock_opts *opts);
CONC_API int conc_rwlock_init_at(conc_rwlock *l, const conc_rwlock_opts *opts, const char *site);
/* Errors of the lock calls: CONC_ETIMEDOUT (timed forms; 0 is a try),
 * CONC_EDEADLK (the writer locks again), CONC_EAGAIN (2^30 - 1 readers hold
 * it already), CONC_EBADF, CONC_EINVAL. */
CONC_API int conc_rwlock_destroy(conc_rwlock *l);
CONC_API int conc_rwlock_rdlock(conc_rwlock *l);
CONC_API int conc_rwlock_rdlock_timed(conc_rwlock *l, int64_t timeout);
CONC_API int conc_rwlock_wrlock(conc_rwlock *l);
CONC_API int conc_rwlock_wrlock_timed(conc_rwlock *l, int64_t timeout);
/* Releases a read or the write lock. CONC_EPERM if unlocked, or write-locked
 * by another thread. Which reader unlocks is not tracked. */
CONC_API int conc_rwlock_unlock(conc_rwlock *l);

/* ====================================================== init-site classes
 * The init calls pass their call site (see the top of this file). Variadic,
 * so that options written as a compound literal with commas pass whole. */
#define CONC__STR_(x) #x
#define CONC__STR(x) CONC__STR_(x)
#define CONC__SITE __FILE__ ":" CONC__STR(__LINE__)
#define conc_mutex_init(m, ...) conc_mutex_init_at((m), (__VA_ARGS__), CONC__SITE)
#define conc_rmutex_init(m, ...) conc_rmutex_init_at((m), (__VA_ARGS__), CONC__SITE)
#define conc_rwlock_init(l, ...) conc_rwlock_init_at((l), (__VA_ARGS__), CONC__SITE)
#define conc_sem_init(s, value, ...) conc_sem_init_at((s), (value), (__VA_ARGS__), CONC__SITE)

#ifdef __cplusplus
}
#endif

#endif /* CONC_SYNC_H */
