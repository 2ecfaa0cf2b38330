/* The layout of conc_pool, for pool.c, pool_map.c, task_group.c and tests.
 *
 * Where a task waits to run:
 *   - submitted from outside: the submission queue `inbox` (inbox.h: a
 *     lock-free FIFO, one exchange to push); an idle worker takes the
 *     oldest, one at a time, so external tasks start in submission order
 *     whatever the number of workers;
 *   - submitted by a running task: its worker's deque (deque.h), at the
 *     bottom, which the owner pops (LIFO: depth first, cache-warm) and idle
 *     workers steal from the top (the oldest, largest pieces of work).
 * Every queued task holds one reference of its future for the queue; a
 * future that is cancelled or claimed by a helping waiter stays where it is
 * and is dropped when reached.
 *
 * Sleeping: an idle worker searches briefly (counted in `searching`), then
 * counts itself in `sleepers`, issues the heavy fence, looks for work once
 * more and sleeps on `idle`. A push issues the light fence and wakes one
 * sleeper only if one sleeps and none searches (wait.h's asymmetric Dekker
 * pair; pool.c has the details): no syscall while all work.
 *
 * Workers start on demand (pool_workers.c): none at create, and a push
 * that finds nobody searching or asleep starts one when every live worker
 * is busy and fewer than max_workers live. A worker's `busy` word says
 * whether it runs a task, so that an idle worker between tasks is reused
 * instead: a pusher that counts on it marks it RELIED, and the worker, when
 * it next takes a task (an exchange), sees the mark and passes the wake on
 * if work is left, so every push still has a worker that will look for it.
 * Once all max_workers run (`full`), nobody reads the words and the workers
 * stop writing them: a full pool's hot paths are as before.
 *
 * Isolation (help-while-waiting): a worker running task T records the
 * bottom of its deque when T starts (`mark`). When T waits, the worker runs
 * the awaited future itself if it is still pending, else pops only tasks
 * above the mark — tasks T or its helped descendants pushed, i.e. T's own
 * subtree — or steals from the other deques the tasks that descend from T
 * (leapfrogging: a task stolen from T's subtree pushes its own children on
 * the thief's deque), and naps on the future when there are none. Past
 * CONC__HELP_DEPTH_MAX nested helps it runs only awaited futures inline.
 */
#ifndef CONC_EXEC_POOL_IMPL_H
#define CONC_EXEC_POOL_IMPL_H

#include "conc/pool.h"
#include "conc/sync.h"
#include "conc/thread.h"
#include "core/hooks.h"
#include "exec/pool/deque.h"
#include "exec/pool/inbox.h"
#include "exec/pool/pool_task.h"

#define CONC__HELP_DEPTH_MAX 64

enum conc__pool_state {
    CONC__POOL_RUNNING = 0,
    CONC__POOL_SHUTDOWN = 1, /* no more submissions from outside */
    CONC__POOL_BROKEN = 2,   /* an initializer failed */
};

/* conc__worker.busy (pool_impl.h, on demand). */
enum conc__worker_busy {
    CONC__W_IDLE = 0,   /* between tasks, searching or asleep: will look for work */
    CONC__W_BUSY = 1,   /* runs a task (from taking it until just before its end) */
    CONC__W_RELIED = 2, /* idle, and a pusher counts on it to look for work */
    CONC__W_FRESH = 3,  /* its thread is being started: nobody may count on it yet */
};

struct conc__worker {
    _Alignas(64) struct conc__deque dq; /* initialised when the worker first starts */
    struct conc__helper helper; /* installed in its thread record (conc__tls.helper) */
    struct conc_pool *pool;
    conc_thread *thread;
    unsigned index;
    uint64_t rng;               /* victim choice */
    int64_t mark;               /* dq's bottom when the running task began */
    int help_depth;             /* nested helps on this worker's stack */
    _Atomic uint32_t busy;      /* enum conc__worker_busy; unused once the pool is full */
};

struct conc_pool {
    struct conc__executor exec;                /* first: futures point here */
    struct conc__inbox inbox;                  /* submitted from outside */
    _Alignas(64) _Atomic uint32_t sleepers;    /* workers announced to sleep */
    _Atomic uint32_t searching;                /* workers looking for work */
    _Atomic uint32_t state;
    /* Bounded submission: external tasks queued and not yet started, and
     * submitters sleeping for room (queue_capacity > 0 only). */
    _Alignas(64) _Atomic size_t queued;
    _Atomic uint32_t space_sleepers;
    size_t capacity;
    int max_workers;
    /* Workers started: slots [0, started) have a deque, and a thread unless
     * its start is failing (then started goes back). Written under
     * start_lock, read anywhere (acquire: the deques are initialised). */
    _Atomic int started;
    _Atomic bool full;          /* started reached max_workers for good */
    struct conc__worker *workers; /* max_workers slots */
    int (*initializer)(void *arg);
    void *initarg;
    struct conc__waitq idle;    /* sleeping workers */
    struct conc__waitq space;   /* submitters waiting for room; shutdown joins */
    _Atomic bool joined;
    conc_mutex join_lock;       /* one joiner of the workers at a time */
    /* Starts one worker at a time, against shutdown (a stop reads `started`
     * under it, after its state change, so no start is missed by the join)
     * and against conc_pool_enumerate_workers (thread handles). */
    conc_mutex start_lock;
    char name[64];              /* for dumps and worker names */
    struct conc__dump_source dump; /* registered while the pool lives (core/hooks.h) */
    /* The live pools (pool_exit.c), under its lock: the links, whether
     * the pool is listed, whether exit has taken its turn with it, and
     * whether exit is waiting for it now (a destroy waits for that). */
    struct conc_pool *next, *prev;
    bool exit_listed, exit_seen, exit_busy;
};

/* The worker the calling thread is, or NULL. */
static inline struct conc__worker *conc__worker_self(void)
{
    return conc__tls.worker;
}

/* Whether a task waits to run: in the submission queue (or being pushed
 * there) or in a started worker's deque. A hint, for wakes and starts. */
/* 0 while p takes work; CONC_ESHUTDOWN after shutdown, CONC_EBROKEN when
 * an initializer failed or p was inherited across fork(). */
int conc__pool_state_error(conc_pool *p);
bool conc__pool_has_work(conc_pool *p);

/* The worker loop (pool.c), for the start of a worker (pool_workers.c). */
int conc__worker_main(void *arg);

/* After a push found nobody searching or asleep and the pool below
 * max_workers (pool_workers.c): counts on an idle worker, or starts one if
 * every live worker is busy and nobody searches or sleeps. Returns 0, or
 * the error of a failed start (CONC_EAGAIN, CONC_ENOMEM). */
int conc__pool_grow(conc_pool *p);

/* Joins the workers still unjoined by the deadline (CONC__NO_DEADLINE:
 * none); the pool is no longer running, so none starts meanwhile. Returns
 * 0, or CONC_ETIMEDOUT with the rest left for a later join. */
int conc__pool_join(conc_pool *p, int64_t deadline);

/* The workers started and alive (not yet returned from their loop). */
int conc__pool_live_workers(conc_pool *p);

/* The live pools, for what exit() does to them (pool_exit.c). Add, at the
 * end of create: a pool created once exit has begun is born shut down.
 * Remove, in destroy before the pool is freed: waits while exit waits for
 * the pool. */
void conc__pool_exit_add(conc_pool *p);
void conc__pool_exit_remove(conc_pool *p);

/* What p still has to do, for exit's report: tasks waiting to run (the
 * submission queue and the deques) and workers running a task. A
 * snapshot. */
void conc__pool_backlog(conc_pool *p, size_t *queued, int *running);

/* Creates a queued task of p from inside or outside (as conc_pool_submit).
 * group: the task group the future belongs to, or NULL. */
int conc__pool_submit(conc_pool *p, conc_task_fn fn, void *arg, int64_t timeout,
                      struct conc__cancel_scope *group, conc_future **out);

#endif
