/* conc/pool.h — the thread pool executor: Python's ThreadPoolExecutor for C,
 * with nested fork-join tasks by work stealing.
 *
 * Tasks submitted from outside the pool go through its submission queue;
 * tasks submitted by a running task go to the front of that worker's own
 * deque, which idle workers steal from. A task may wait on the futures of
 * the tasks it submitted: the waiting worker runs other tasks of its own
 * subtree meanwhile (help-while-waiting), so fork-join recursion never
 * deadlocks, even with one worker — the classic thread-pool deadlock the
 * Python docs warn about. Helping is isolated: a worker that waits runs only
 * tasks its waiting task (transitively) submitted, never an unrelated task
 * that could need a lock the waiting task holds, and while a task runs,
 * conc__self() (lock ownership) is that task, not the thread.
 *
 * Workers start on demand, as Python's since 3.8: a new pool has no thread,
 * and a submission starts a worker only when no worker is idle (every live
 * one runs a task) and fewer than max_workers live; an idle worker is
 * reused first. A task submitted by a running task starts one the same
 * way, so nested fork-join spreads over the pool. Workers then stay until
 * shutdown. Idle workers sleep on futexes: an idle pool uses no CPU.
 *
 * Every function is thread-safe. Blocking calls come in two forms (base.h):
 * conc_pool_submit(p, ...) waits as long as it takes, conc_pool_submit_timed
 * (p, ..., timeout) gives up.
 */
#ifndef CONC_POOL_H
#define CONC_POOL_H

#include <conc/base.h>
#include <conc/future.h>
#include <conc/thread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_pool conc_pool;

typedef struct conc_pool_opts {
    /* The most worker threads, started as work needs them (at most one
     * per task running at once). 0 (the default): conc_cpu_count(), the CPUs this
     * process may use (affinity mask and cgroup quota). Python's default is
     * min(32, cpus + 4), sized for threads that mostly wait on I/O; conc's
     * pool is sized for CPU-bound tasks — give I/O-bound work more workers.
     * Above CONC_POOL_MAX_WORKERS: CONC_EINVAL. */
    size_t max_workers;
    /* The most tasks submitted from outside that may wait to run; a submit
     * that finds no room waits (backpressure). 0: unbounded, as Python's. */
    size_t queue_capacity;
    /* Runs first on each worker, as it starts (so not at create); a non-zero
     * return breaks the pool (Python's BrokenThreadPool): queued tasks end
     * with CONC_EBROKEN, submits fail with CONC_EBROKEN, and no other worker
     * starts. */
    int (*initializer)(void *arg);
    void *initarg;
    /* Worker thread names are "<name>-N", N from 0; default "conc-pool". */
    const char *name;
    uint64_t reserved_[4]; /* zero (docs/api.md: growing options) */
} conc_pool_opts;

#define CONC_POOL_MAX_WORKERS 32768

/* Creates a pool, with no worker yet: the first submission starts one.
 * opts may be NULL. Returns 0, CONC_EINVAL (NULL p, max_workers above
 * CONC_POOL_MAX_WORKERS, non-zero reserved options), CONC_ENOMEM. Never
 * blocks. */
CONC_API int conc_pool_create(conc_pool **p, const conc_pool_opts *opts);

/* Submits fn(arg) and stores its future in *f (may be NULL: fire and
 * forget). With a bounded submission queue, waits for room (the timed form:
 * up to timeout; 0 for a try). Starts a worker if none is idle and fewer
 * than max_workers live (a thread's creation, only then). Returns 0,
 * CONC_EFULL (timed form: no room by the deadline), CONC_ESHUTDOWN (after
 * conc_pool_shutdown, or once the program is exiting), CONC_EBROKEN (an
 * initializer failed, or the pool was inherited across fork(): its workers
 * stayed in the parent), CONC_EAGAIN or CONC_ENOMEM (no worker lives and
 * none could be started; the task is not queued), CONC_ENOMEM, CONC_EINVAL
 * (NULL p or fn, bad timeout). From a task of this pool it never waits: the
 * task goes to the worker's own deque. */
CONC_API int conc_pool_submit(conc_pool *p, conc_task_fn fn, void *arg, conc_future **f);
CONC_API int conc_pool_submit_timed(conc_pool *p, conc_task_fn fn, void *arg, conc_future **f,
                                    int64_t timeout);

/* Stops accepting tasks (submit returns CONC_ESHUTDOWN) and waits for the
 * tasks still queued and running to finish, then joins every worker
 * (Python's shutdown(wait=True)). cancel_futures: cancels the tasks that
 * have not started first (Python's cancel_futures; a task that a worker is
 * moving between queues at that instant may still start). Tasks already
 * running may still submit subtasks, which run. The timed form gives up at
 * the deadline with CONC_ETIMEDOUT, the pool staying shut down (a later
 * call or conc_pool_destroy joins the rest); with 0 it only shuts down
 * and returns 0 (Python's shutdown(wait=False)). Returns 0, CONC_ETIMEDOUT,
 * CONC_EINVAL (NULL, bad timeout), CONC_EDEADLK (waiting from one of the
 * pool's own tasks: it would wait for itself; not with a timeout of 0),
 * CONC_EBROKEN (in a forked child, a pool inherited from the parent). A
 * second call is allowed. */
CONC_API int conc_pool_shutdown(conc_pool *p, bool cancel_futures);
CONC_API int conc_pool_shutdown_timed(conc_pool *p, bool cancel_futures, int64_t timeout);

/* Shuts down (waiting, not cancelling) if not done yet, joins the workers and
 * frees the pool; while exit() waits for this pool (see "at exit"), waits
 * for that wait to end first. Returns 0, CONC_EINVAL (NULL), CONC_EDEADLK
 * (from one of the pool's own tasks; nothing is freed), CONC_EBROKEN (in a
 * forked child, a pool inherited from the parent: nothing is freed, its
 * workers owned parts of it). Futures still referenced stay valid. */
CONC_API int conc_pool_destroy(conc_pool *p);

/* The most worker threads the pool may run (max_workers, or the CPU count
 * it stood for), not how many are started now: conc_pool_enumerate_workers
 * says that. Returns the number, or CONC_EINVAL (NULL). Never blocks. */
CONC_API int64_t conc_pool_workers(conc_pool *p);

/* The live workers: started and not yet ended (shutdown ends them). Fills
 * out[0..min(n, cap)) with each one's id and name ("<name>-N") and returns
 * n, the number live (a snapshot; 0 for a new pool). Blocks only briefly
 * (against a worker's start or join). Returns CONC_EINVAL (NULL p, or NULL
 * out with cap > 0), CONC_EBROKEN (in a forked child, a pool inherited from
 * the parent). Thread-safe. */
CONC_API int64_t conc_pool_enumerate_workers(conc_pool *p, conc_thread_info *out, size_t cap);

/* ---- at exit ----
 *
 * When the program exits (exit(), or a return from main), every live pool is
 * shut down — submissions from then on fail with CONC_ESHUTDOWN, and a pool
 * created then is born shut down — and exit waits for the tasks the pools
 * hold, queued and running, as Python's interpreter does at its end. The
 * wait is bounded: by default 10 s for all pools together. A pool whose
 * tasks are not done by then is named in one line on stderr (with the tasks
 * still queued and running), and exit goes on: those tasks end with the
 * process. The pool whose task (or worker) called exit() is shut down but
 * not waited for — it would wait for itself — while the other pools are.
 * Pools inherited across fork() are left alone. _exit() and quick_exit()
 * skip all this. The environment variable CONC_POOL_EXIT_TIMEOUT_MS
 * (milliseconds, or "forever"), read once, at the first pool or the first
 * conc_pool_set_exit_timeout, sets the limit unless the program does. */

/* Sets the limit of exit's wait for the pools' tasks, read when exit
 * begins: a time in ns, 0 (do not wait: shut down only) or CONC_FOREVER
 * (wait without limit). Never blocks; thread-safe. Returns 0, or
 * CONC_EINVAL for a negative timeout. */
CONC_API int conc_pool_set_exit_timeout(int64_t timeout);

/* ---- map ---- */

/* Runs fn(arg, i, out) for every index i in [0, n) on the pool, chunksize
 * indices per task, and hands out the results in index order (or, with
 * opts.unordered, as they complete). Only a bounded window of chunks is in
 * flight at a time (Python 3.14's buffersize), so n may be huge: the input is
 * an index the caller maps to its data, never a materialised list. */
typedef int (*conc_map_fn)(void *arg, size_t index, conc_result *out);

typedef struct conc_map_opts {
    size_t chunksize;  /* indices per task; 0: 1 */
    size_t buffersize; /* chunks in flight at most; 0: 2 x max_workers */
    bool unordered;    /* results as they complete, not in index order */
    uint64_t reserved_[4]; /* zero (docs/api.md: growing options) */
} conc_map_opts;

typedef struct conc_map conc_map;

/* Starts a map. Returns 0, CONC_EINVAL (NULL m, p or fn), CONC_ENOMEM,
 * CONC_ESHUTDOWN, CONC_EBROKEN. n == 0 is a map that yields nothing. */
CONC_API int conc_map_create(conc_map **m, conc_pool *p, conc_map_fn fn, void *arg, size_t n,
                             const conc_map_opts *opts);

/* Waits for the next result. On 0, *index (may be NULL) is its index,
 * *status the task's status for it, and *out (may be NULL) its result,
 * valid until the next call or conc_map_destroy. An error status is where
 * Python's map raises: the map stops submitting, cancels the chunks not
 * started, and every later call returns CONC_ENOENT. If the pool refuses
 * more work midway (shut down: CONC_ESHUTDOWN; CONC_EBROKEN; CONC_ENOMEM),
 * the chunks already in flight are handed out first, then the first index
 * not submitted comes with that status. Returns 0, CONC_ENOENT (no more
 * results), CONC_ETIMEDOUT (timed form: none by the deadline; call again),
 * CONC_EINVAL (NULL m or status, bad timeout). */
CONC_API int conc_map_next(conc_map *m, size_t *index, int *status, conc_result *out);
CONC_API int conc_map_next_timed(conc_map *m, size_t *index, int *status, conc_result *out,
                                 int64_t timeout);

/* Cancels the chunks not started, waits for the running ones and frees the
 * map and its results. Returns 0 or CONC_EINVAL. */
CONC_API int conc_map_destroy(conc_map *m);

/* ---- parallel for and reduce (TBB's parallel_for/parallel_reduce, OpenMP's for) ----
 *
 * The range [begin, end) is split in halves recursively on the pool, by work
 * stealing, down to pieces of at most `grain` indices, and the body is called
 * on each piece in place: a task per split, never per index. The grain is
 * automatic by default (about 8 pieces per worker). Callable from inside a
 * pool task: the waiting worker runs pieces itself, so nesting never
 * deadlocks. Both block until every piece has run, and return 0, the first
 * non-zero status a body returned (pieces not started by then are skipped),
 * CONC_ESHUTDOWN, CONC_EBROKEN, CONC_ENOMEM (the pool refused a piece: the
 * range ran in part), or CONC_EINVAL (NULL pool or function, end below
 * begin, non-zero reserved options). An empty range runs nothing. */
typedef int (*conc_range_fn)(void *arg, size_t begin, size_t end);

/* How a parallel for hands out its range. SPLIT (the default, TBB's auto
 * partitioner): halves split off recursively, lazily, whenever a worker is
 * idle, each participant running a contiguous part. DYNAMIC (OpenMP's
 * schedule(dynamic, grain)): every participant draws the next grain from
 * one shared cursor, so a late worker never holds up the end, and a pass
 * over the results afterwards finds them spread over the cores' caches. A
 * reduction always splits. */
typedef enum conc_for_schedule {
    CONC_FOR_SPLIT = 0,
    CONC_FOR_DYNAMIC = 1,
} conc_for_schedule;

typedef struct conc_for_opts {
    size_t grain;               /* the largest piece handed to the body; 0: automatic */
    conc_for_schedule schedule; /* parallel for only; default CONC_FOR_SPLIT */
    uint64_t reserved_[4];
} conc_for_opts;

CONC_API int conc_parallel_for(conc_pool *p, size_t begin, size_t end, conc_range_fn body,
                               void *arg, const conc_for_opts *opts);

/* A reduction: body(arg, begin, end, acc) folds a piece into the
 * accumulator acc (value_size bytes); join(arg, acc, other) folds the
 * accumulator of the piece that follows acc's into acc. Each accumulator
 * starts as a copy of identity; joins see their operands in range order, so
 * an associative join (a sum, a max, a concatenation) gives the serial
 * answer. *result receives the whole range's accumulator. */
typedef int (*conc_reduce_fn)(void *arg, size_t begin, size_t end, void *acc);
typedef void (*conc_join_fn)(void *arg, void *acc, const void *other);

CONC_API int conc_parallel_reduce(conc_pool *p, size_t begin, size_t end, const void *identity,
                                  size_t value_size, conc_reduce_fn body, conc_join_fn join,
                                  void *arg, const conc_for_opts *opts, void *result);

/* ---- task groups (structured concurrency over the pool) ---- */

/* Tasks spawned into a group all end before the group does: the first task
 * that fails (returns an error other than CONC_ECANCELED) requests
 * cancellation of every other task of the group, and its status is what
 * the group reports. */
typedef struct conc_task_group conc_task_group;

/* Returns 0, CONC_EINVAL (NULL g or p), CONC_ENOMEM. */
CONC_API int conc_task_group_create(conc_task_group **g, conc_pool *p);

/* Spawns fn(arg) into the group (its result is discarded). After a failure
 * in the group, a spawned task is cancelled before it starts. Returns 0,
 * CONC_ESHUTDOWN, CONC_EBROKEN, CONC_ENOMEM, CONC_EINVAL. */
CONC_API int conc_task_group_spawn(conc_task_group *g, conc_task_fn fn, void *arg);

/* Waits until every task spawned so far has ended; *first_error (may be
 * NULL) receives the status of the first task that failed, or 0. From a
 * pool task the untimed form helps run the group's tasks. Returns 0,
 * CONC_ETIMEDOUT (timed form), CONC_EINVAL, CONC_EDEADLK (from a task of
 * the group). */
CONC_API int conc_task_group_wait(conc_task_group *g, int *first_error);
CONC_API int conc_task_group_wait_timed(conc_task_group *g, int *first_error, int64_t timeout);

/* Requests cancellation of every task of the group. Returns 0 or CONC_EINVAL. */
CONC_API int conc_task_group_cancel(conc_task_group *g);

/* Waits for every task without a time limit, then frees the group: nothing
 * outlives it. Returns 0, CONC_EINVAL, CONC_EDEADLK (from a task of the
 * group; nothing is freed). */
CONC_API int conc_task_group_destroy(conc_task_group *g);

#ifdef __cplusplus
}
#endif

#endif /* CONC_POOL_H */
