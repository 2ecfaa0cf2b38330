/* conc/thread.h — threads: start with options, join with a timeout, names,
 * ids, sleep, yield, the usable CPU count, thread-local storage.
 *
 * A conc_thread is an opaque heap handle, made by conc_thread_create (which
 * starts the thread) and freed by conc_thread_destroy; destroying a handle
 * whose thread was never joined detaches the thread. conc_thread_join(t,
 * &status) returns whether the join worked (0; CONC_ETIMEDOUT from the timed
 * form — it may be retried —; CONC_ESTATE for a second join or a detached
 * thread; CONC_EDEADLK for joining yourself) and stores what the thread's
 * function returned in status: a wait's status is never the thread's result.
 *
 * Threads started by conc block asynchronous signals (they inherit a mask
 * with every signal blocked but the synchronous ones: SIGSEGV, SIGBUS, SIGFPE,
 * SIGILL, SIGTRAP, SIGSYS), so the program's handlers run on the threads it
 * expects. A thread that wants a signal unblocks it with pthread_sigmask.
 */
#ifndef CONC_THREAD_H
#define CONC_THREAD_H

#include <conc/base.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_thread conc_thread;

/* A thread's function. Its return value is the status conc_thread_join hands
 * back. */
typedef int (*conc_thread_fn)(void *arg);

/* The longest name the OS shows (/proc/<pid>/task/<tid>/comm, top, gdb):
 * Linux keeps 15 bytes. conc keeps the whole name for conc_thread_get_name and
 * gives the OS its first 15 bytes. */
#define CONC_THREAD_OS_NAME_MAX 15

typedef struct conc_thread_opts {
    const char *name;  /* NULL: "Thread-N", N counting such threads from 1 (Python's) */
    size_t stack_size; /* 0: the default; else at least PTHREAD_STACK_MIN */
    bool detached;     /* nobody joins: the thread frees its own handle */
    uint64_t reserved_[4]; /* zero (docs/api.md: growing options) */
} conc_thread_opts;

/* Starts fn(arg) on a new thread. *t receives the handle; with opts->detached,
 * t may be NULL and *t is set to NULL (a detached thread's handle is not the
 * caller's). Returns 0, CONC_EINVAL (fn NULL; t NULL without detached; a
 * stack size too small), CONC_EAGAIN (out of threads), CONC_ENOMEM. */
CONC_API int conc_thread_create(conc_thread **t, conc_thread_fn fn, void *arg,
                               const conc_thread_opts *opts);

/* Waits for t to finish and stores its function's return in *status (status
 * may be NULL). Returns 0, CONC_ETIMEDOUT (timed form: t still runs; join
 * again later), CONC_ESTATE (a second join, a detached or adopted thread),
 * CONC_EDEADLK (t is the caller), CONC_EINVAL (NULL t, a bad timeout). */
CONC_API int conc_thread_join(conc_thread *t, int *status);
CONC_API int conc_thread_join_timed(conc_thread *t, int *status, int64_t timeout);

/* Lets t run on unjoined; its resources go when it ends. The handle stays
 * valid until conc_thread_destroy. Returns 0, CONC_ESTATE (already joined or
 * detached, or adopted), CONC_EINVAL (NULL). Never blocks. */
CONC_API int conc_thread_detach(conc_thread *t);

/* Frees the handle (detaching the thread if it was neither joined nor
 * detached). Returns 0, CONC_EINVAL (NULL), CONC_ESTATE (the calling
 * thread's own handle from conc_thread_self, or the main thread's). Never
 * blocks. */
CONC_API int conc_thread_destroy(conc_thread *t);

/* The calling thread's handle. For a thread conc did not start, a handle is
 * made on first use (Python's dummy thread: it cannot be joined) and freed when
 * that thread exits. Never NULL except out of memory. */
CONC_API conc_thread *conc_thread_self(void);

/* The main thread's handle (Python's threading.main_thread()): the thread
 * whose id is the process's (in a forked child, the thread that forked).
 * The same handle from every thread, conc_thread_self()'s on the main
 * thread itself; it cannot be joined and lives as long as the process.
 * NULL only out of memory. Thread-safe, never blocks. */
CONC_API conc_thread *conc_thread_main(void);

/* A live thread, as conc_thread_enumerate describes it. */
typedef struct conc_thread_info {
    int64_t id;           /* the kernel thread id */
    char name[64];        /* its name, truncated */
    bool started_by_conc; /* false: adopted (conc_thread_self), or the main thread */
} conc_thread_info;

/* Python's threading.enumerate() and active_count(): the threads alive now
 * that conc started (until their function returns) or adopted, and the
 * main thread. Fills out[0..min(n, cap)) and returns n, the number alive (a
 * snapshot); CONC_EINVAL for a NULL out with cap > 0. Never blocks for
 * long; thread-safe. */
CONC_API int64_t conc_thread_enumerate(conc_thread_info *out, size_t cap);
CONC_API int64_t conc_thread_active_count(void);

/* 1 while t's function runs, 0 once it has returned, or CONC_EINVAL. */
CONC_API int conc_thread_is_alive(conc_thread *t);

/* t's kernel thread id (gettid: what /proc, top and gdb show), or
 * CONC_EINVAL. Never blocks. */
CONC_API int64_t conc_thread_id(conc_thread *t);

/* Sets t's name (a copy is kept; the OS gets the first
 * CONC_THREAD_OS_NAME_MAX bytes). Returns 0, CONC_EINVAL, CONC_ENOMEM. */
CONC_API int conc_thread_set_name(conc_thread *t, const char *name);

/* Copies t's name into buf (truncated to size - 1 bytes, always terminated).
 * Returns 0 or CONC_EINVAL (NULL arguments, size 0). A thread without a name
 * gives "". */
CONC_API int conc_thread_get_name(conc_thread *t, char *buf, size_t size);

/* ---- timers (Python's threading.Timer) ----
 * A thread that runs fn(arg) once after a delay, unless cancelled before. */
typedef struct conc_timer conc_timer;

typedef struct conc_timer_opts {
    const char *name; /* the timer thread's; NULL: "Timer-N" */
    uint64_t reserved_[4];
} conc_timer_opts;

/* Starts the timer's thread; fn runs on it after delay nanoseconds (0: at
 * once). opts may be NULL. Returns 0, CONC_EINVAL (NULL t or fn, a negative
 * delay), CONC_EAGAIN, CONC_ENOMEM. Never blocks. */
CONC_API int conc_timer_create(conc_timer **t, int64_t delay, conc_thread_fn fn, void *arg,
                               const conc_timer_opts *opts);
/* Stops the timer if fn has not started (Python's cancel()). Returns 0 when
 * fn will never run (cancelled now or before), CONC_EBUSY when it has
 * started or finished already, CONC_EINVAL for NULL. Never blocks. */
CONC_API int conc_timer_cancel(conc_timer *t);
/* Waits for the timer's thread to end. *status (may be NULL) receives fn's
 * return, or CONC_ECANCELED if it never ran. Returns 0, CONC_ETIMEDOUT
 * (timed form), CONC_ESTATE (a second join), CONC_EDEADLK (from fn itself),
 * CONC_EINVAL (NULL, bad timeout). */
CONC_API int conc_timer_join(conc_timer *t, int *status);
CONC_API int conc_timer_join_timed(conc_timer *t, int *status, int64_t timeout);
/* Cancels the timer if fn has not started, waits for its thread, and frees
 * it. Returns 0, CONC_EINVAL (NULL), CONC_EDEADLK (from fn itself: nothing
 * is freed). */
CONC_API int conc_timer_destroy(conc_timer *t);

/* ---- the calling context ----
 * Calls without a module in their name (conc_sleep, conc_yield, and
 * future.h's conc_wait and conc_cancel_requested) act on whatever runs
 * them: a thread, a pool task, and, with conc/aio.h, a coroutine, which
 * they suspend instead of its thread. */

/* Sleeps ns nanoseconds on the monotonic clock, the full time even across
 * signals. CONC_FOREVER sleeps for good. Returns 0 or CONC_EINVAL. */
CONC_API int conc_sleep(int64_t ns);

/* Offers the CPU to another runnable thread. Returns 0. Never blocks. */
CONC_API int conc_yield(void);

/* The number of CPUs this process may really use: the CPUs of its affinity
 * mask, lowered by a cgroup CPU quota (cpu.max, rounded up), at least 1. A
 * container limited to 2 CPUs on a 64-core host answers 2, where
 * sysconf(_SC_NPROCESSORS_ONLN) answers 64. Thread-safe, never blocks. */
CONC_API int64_t conc_cpu_count(void);

/* ---- thread-local storage: a key whose value is per thread ----
 * A key lives in caller memory: conc_tls_init makes it, conc_tls_destroy
 * retires it (the values are not freed: their dtor does not run), after
 * which set is CONC_EBADF and get NULL. */

typedef struct conc_tls {
    unsigned key_;
    uint32_t state_;
} conc_tls;

/* Makes a key; every thread's value starts NULL. dtor (may be NULL) runs with
 * a thread's non-NULL value when that thread exits. Returns 0, CONC_EINVAL,
 * CONC_EAGAIN (no keys left). */
CONC_API int conc_tls_init(conc_tls *k, void (*dtor)(void *value));
/* Returns 0, CONC_EBADF (destroyed already), CONC_EINVAL (NULL, never
 * initialised). */
CONC_API int conc_tls_destroy(conc_tls *k);
/* The calling thread's value, NULL if none or if k is not a live key. */
CONC_API void *conc_tls_get(const conc_tls *k);
/* Returns 0, CONC_EBADF (destroyed), CONC_EINVAL (NULL, never
 * initialised), CONC_ENOMEM. */
CONC_API int conc_tls_set(const conc_tls *k, void *value);

#ifdef __cplusplus
}
#endif

#endif /* CONC_THREAD_H */
