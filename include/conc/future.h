/* conc/future.h — futures: Python's concurrent.futures.Future for C, the one
 * result type of every executor (the thread pool today; the process pool,
 * async tasks and the MPI executor plug in behind the same type).
 *
 * A task is `int fn(void *arg, conc_result *out)`: it returns its status (0
 * for success, or an error code of its choosing) and may leave a result in
 * *out. The future owns that result: it calls out->free_fn(out->data) when the
 * last reference goes.
 *
 * States: PENDING (queued) → RUNNING → FINISHED, or PENDING → CANCELLED. A
 * running task that stops because cancellation was requested and returns
 * CONC_ECANCELED ends CANCELLED too (not failed: it does not count for
 * CONC_FIRST_EXCEPTION).
 *
 * A wait's status is never the task's: conc_future_wait returns 0,
 * CONC_ETIMEDOUT (its timed form) or a misuse code; conc_future_result
 * returns the task's own status (CONC_ECANCELED for a cancelled future).
 *
 * References: conc_pool_submit hands the caller one reference;
 * conc_future_retain adds one, conc_future_release drops one. The future is
 * freed when the last is dropped — the executor holds its own while the task
 * is queued or running, so dropping yours early is fine (fire and forget).
 * Using a future after releasing your last reference is undefined.
 *
 * Every function is thread-safe. Blocking calls come in two forms (base.h):
 * conc_future_wait(f) waits as long as it takes, conc_future_wait_timed(f,
 * timeout) gives up with CONC_ETIMEDOUT. Predicates (done, running,
 * cancelled) answer 1 or 0, or a negative error.
 */
#ifndef CONC_FUTURE_H
#define CONC_FUTURE_H

#include <conc/base.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_future conc_future;

/* What a task leaves behind. All zero when the task sets nothing. value
 * carries a scalar result without any allocation; data/len a buffer, which
 * the future frees with free_fn (NULL: not owned, never freed). */
typedef struct conc_result {
    int64_t value;
    void *data;
    size_t len;
    void (*free_fn)(void *data);
} conc_result;

/* A task: returns its status; fills *out (zeroed before the call) if it has
 * a result. */
typedef int (*conc_task_fn)(void *arg, conc_result *out);

/* Waits for the future to finish or be cancelled. Returns 0, CONC_ETIMEDOUT
 * (timed form), CONC_EINVAL (NULL, bad timeout), CONC_EDEADLK (called from
 * the future's own task: it could never finish), CONC_EBROKEN (in a forked
 * child, a pending future of an executor inherited from the parent: nobody
 * there will run it). Called from a pool task, the untimed form runs other
 * tasks of the caller's own subtree while it waits (pool.h); the timed form
 * only waits, since a task run meanwhile could overshoot the deadline by
 * its whole length. */
CONC_API int conc_future_wait(conc_future *f);
CONC_API int conc_future_wait_timed(conc_future *f, int64_t timeout);

/* Waits for the future (conc_future_wait), then returns the task's status:
 * what the task returned, CONC_ECANCELED if it was cancelled, CONC_EBROKEN
 * if its executor broke before running it. *out (may be NULL) receives the
 * result, which stays valid while the caller holds a reference. The timed
 * form (Python's result(timeout)) returns CONC_ETIMEDOUT when the future is
 * not done by the deadline. Misuse: CONC_EINVAL (NULL f, bad timeout),
 * CONC_EDEADLK (from the future's own task) — with CONC_ETIMEDOUT, the only
 * statuses a task cannot be told apart from; a task that needs them should
 * not return them. */
CONC_API int conc_future_result(conc_future *f, conc_result *out);
CONC_API int conc_future_result_timed(conc_future *f, conc_result *out, int64_t timeout);

/* Cancels a future that has not started (Python's Future.cancel). Returns 0
 * if it is cancelled now or was already, CONC_EBUSY if it is running or
 * finished (then nothing changes), CONC_EINVAL (NULL). */
CONC_API int conc_future_cancel(conc_future *f);

/* Requests cancellation (asyncio's Task.cancel): a pending future is
 * cancelled at once; a running task sees conc_cancel_requested() turn true
 * and may stop early by returning CONC_ECANCELED. Returns 0, CONC_EBUSY (the
 * future already finished or was cancelled), CONC_EINVAL (NULL). */
CONC_API int conc_future_request_cancel(conc_future *f);

/* Snapshots of the state: 1 or 0, CONC_EINVAL for NULL. done: finished or
 * cancelled. Never block. */
CONC_API int conc_future_done(conc_future *f);
CONC_API int conc_future_running(conc_future *f);
CONC_API int conc_future_cancelled(conc_future *f);

/* Whether cancellation of the calling task was requested: 1 or 0 (outside
 * any task: 0). Cheap enough to call in an inner loop. Acts on the calling
 * context (thread.h): a coroutine task asks about itself. */
CONC_API int conc_cancel_requested(void);

/* A done-callback: called exactly once with the future when it is done. Its
 * return value is ignored (as Python logs and ignores a callback's
 * exception): a failing callback does not stop the ones after it. */
typedef int (*conc_future_callback)(conc_future *f, void *arg);

/* Adds a callback. Callbacks run in the order added, on the thread that
 * finishes (or cancels) the future; one added to a future already done runs
 * at once, in the caller. Returns 0, CONC_ENOMEM, CONC_EINVAL (NULL f or cb). */
CONC_API int conc_future_add_done_callback(conc_future *f, conc_future_callback cb, void *arg);

/* References (see above). Both return 0 or CONC_EINVAL (NULL). */
CONC_API int conc_future_retain(conc_future *f);
CONC_API int conc_future_release(conc_future *f);

/* ---- futures made by the program ----
 * Python's Future() used directly, as custom executors and asyncio's
 * loop.create_future() do: a future no executor runs, completed by whoever
 * holds it (an I/O completion, another library's thread). Waits, results,
 * callbacks, cancel, conc_wait and as-completed work on it as on any other.
 * A made future is completed once: completing it again, or completing one
 * that was cancelled, is CONC_ESTATE (Python's InvalidStateError). */

/* A new pending future, one reference the caller's. Returns 0, CONC_ENOMEM,
 * CONC_EINVAL (NULL out). */
CONC_API int conc_future_create(conc_future **f);

/* Python's set_running_or_notify_cancel: moves a pending future to running,
 * after which conc_future_cancel fails. Returns 0 (running now),
 * CONC_ECANCELED (it was cancelled: its waiters and callbacks have been
 * told; do not do the work), CONC_ESTATE (running or done already),
 * CONC_EINVAL (NULL, or a future an executor runs). Never blocks. */
CONC_API int conc_future_set_running_or_notify_cancel(conc_future *f);

/* Completes a pending or running future with a result (copied; the future
 * frees result->data with result->free_fn when the last reference goes;
 * NULL: no result) or with an error status (a negative code, as a task
 * returns it; CONC_ECANCELED after conc_future_request_cancel ends it
 * cancelled). Wakes the waiters and runs the done-callbacks, in this thread.
 * Returns 0, CONC_ESTATE (done or cancelled already: nothing changes, and
 * result->data stays the caller's), CONC_EINVAL (NULL, status 0 or
 * positive, a future an executor runs). Never blocks. */
CONC_API int conc_future_set_result(conc_future *f, const conc_result *result);
CONC_API int conc_future_set_error(conc_future *f, int status);

/* ---- waiting on several futures ---- */

typedef enum conc_wait_mode {
    CONC_FIRST_COMPLETED = 1, /* any one done */
    CONC_FIRST_EXCEPTION = 2, /* any one failed (not cancelled), or all done */
    CONC_ALL_COMPLETED = 3,   /* all done */
} conc_wait_mode;

/* Python's concurrent.futures.wait: waits until the mode's condition holds
 * (the timed form: or the deadline passes). done (may be NULL) is an array
 * of n flags that receives, at return, whether each future was done —
 * Python's done and not-done sets, by index (a future listed twice gets the
 * same flag twice). Returns 0 when the condition holds (n == 0 included),
 * CONC_ETIMEDOUT when it did not by the deadline (the flags are filled
 * either way), CONC_EINVAL (NULL fs with n > 0, a NULL entry, an unknown
 * mode, bad timeout), CONC_EDEADLK (one of the futures is the caller's own
 * task's). Acts on the calling context (thread.h). */
CONC_API int conc_wait(conc_future *const *fs, size_t n, conc_wait_mode mode, bool *done);
CONC_API int conc_wait_timed(conc_future *const *fs, size_t n, conc_wait_mode mode, bool *done,
                             int64_t timeout);

/* Python's as_completed: yields the futures as they finish. A future listed
 * twice is yielded once. Python's as_completed(fs, timeout) has one deadline
 * for the whole iteration; here each next_timed call has its own timeout —
 * pass what is left of an overall deadline (deadline - conc_now_ns()) for
 * Python's behaviour. */
typedef struct conc_as_completed conc_as_completed;

/* Starts an iteration over fs[0..n). The iterator holds a reference on each
 * future until it yields it. Returns 0, CONC_EINVAL, CONC_ENOMEM. Never
 * blocks. */
CONC_API int conc_as_completed_create(conc_as_completed **it, conc_future *const *fs, size_t n);
/* Waits for the next future to be done and stores it in *f (the caller's
 * reference: release it). Returns 0, CONC_ENOENT when every future has been
 * yielded, CONC_ETIMEDOUT (timed form: none done by the deadline; the rest
 * can still be taken by a later call), CONC_EINVAL, CONC_EDEADLK (the
 * caller's own task's future is among those left). */
CONC_API int conc_as_completed_next(conc_as_completed *it, conc_future **f);
CONC_API int conc_as_completed_next_timed(conc_as_completed *it, conc_future **f,
                                          int64_t timeout);
/* Releases the references of the futures not yielded and frees the
 * iterator. Returns 0 or CONC_EINVAL. Never blocks. */
CONC_API int conc_as_completed_destroy(conc_as_completed *it);

#ifdef __cplusplus
}
#endif

#endif /* CONC_FUTURE_H */
