/* The layout of conc_future and the small interface through which executors
 * plug into it (one future type for every executor).
 *
 * An executor creates a future with conc__future_new, holding one reference
 * for itself while the task is queued; it claims the task with
 * conc__future_claim (PENDING → RUNNING: loses to a cancel) and runs it with
 * conc__future_execute, or, for work that runs elsewhere (a process pool),
 * ends it with conc__future_finish. Its ops are told of the two events that
 * need its help: a pending future cancelled (a bounded queue frees a slot)
 * and a cancel requested while running (a process pool forwards it).
 *
 * Each executor keeps its own fields of a future in the future's
 * executor area (CONC__FUTURE_EXEC: 16 bytes, laid out by the executor).
 *
 * A thread that can do useful work while it waits (a pool worker) installs a
 * helper in its thread record (core/tls.h, conc__tls.helper): every untimed future wait on that thread calls
 * help_once until the future is done or help_once finds nothing to do, and
 * only then sleeps. That is help-while-waiting, kept out of future.c.
 *
 * Completion is a Dekker pair, as wait.h describes: the finisher stores the
 * final state (seq_cst), then reads the waiter count and the callback list;
 * a waiter announces itself (seq_cst) before its last look at the state, and
 * add_done_callback links its callback before it looks. Either the one who
 * looks sees the state, or the finisher sees them.
 */
#ifndef CONC_EXEC_FUTURE_IMPL_H
#define CONC_EXEC_FUTURE_IMPL_H

#include "conc/future.h"
#include "core/fork.h"
#include "core/tls.h"
#include "wait/wait.h"

enum conc__future_state {
    CONC__F_PENDING = 0,
    CONC__F_RUNNING = 1,
    CONC__F_FINISHED = 2, /* done from here on */
    CONC__F_CANCELLED = 3,
};

struct conc__future_ops {
    /* A pending future of this executor was cancelled (any thread). */
    void (*cancelled)(conc_future *f);
    /* Cancellation was requested while the task runs; the token is set
     * already. NULL: the token is all the executor needs. */
    void (*cancel_requested)(conc_future *f);
    /* A thread is about to sleep until f is done (a single-future wait
     * with a timeout other than 0): the executor may bring the end about
     * in this thread instead of waking it later — a process pool watches
     * the worker's slot for a short task's result and finishes the future
     * itself, saving two wake-ups. Returns by the deadline, done or not;
     * NULL: nothing to do. */
    void (*await)(conc_future *f, int64_t deadline);
};

/* A cancellation shared by many tasks: a task group's (task_group.c, whose
 * struct begins with one). A task whose scope is cancelled sees
 * conc_cancel_requested() true, and is cancelled instead of started. */
struct conc__cancel_scope {
    _Atomic bool requested;
};

struct conc__fcallback {
    conc_future_callback cb;
    void *arg;
    struct conc__fcallback *next;
};

/* An executor: what a future's hooks go through. An executor's own struct
 * begins with it (the pool's does). */
struct conc__executor {
    const struct conc__future_ops *ops;
    /* conc__fork_generation() when it was made (core/fork.h): in a forked
     * child, an executor whose threads stayed behind is lost. */
    uint32_t fork_gen;
};

static inline void conc__executor_init(struct conc__executor *e, const struct conc__future_ops *ops)
{
    e->ops = ops;
    e->fork_gen = conc__fork_generation();
}

/* Whether e was inherited across fork(): its workers did not come along. */
static inline bool conc__executor_lost(const struct conc__executor *e)
{
    return conc__unlikely(e->fork_gen != conc__fork_generation());
}

#define CONC__FUTURE_EXEC_AREA 16

/* conc_future.flags */
#define CONC__FF_COMPLETING 1u /* a made future: its one completion is claimed */
#define CONC__FF_RETRIEVED 2u  /* its status was read (conc_future_result, its group) */

/* 128 bytes, two cache lines: the first holds what a task's hand-off from
 * submitter to worker and back touches. */
struct conc_future {
    _Atomic uint32_t state;
    _Atomic uint32_t refs;
    int status;                 /* the task's; written before the final state */
    _Atomic bool cancel_requested;
    bool from_slab;             /* its memory (future_mem.c) */
    bool ran;                   /* the task ran: value, free_fn, u.buf are its result */
    _Atomic uint8_t flags;      /* CONC__FF_*, set with fetch_or */
    int64_t value;              /* the result's scalar */
    void (*free_fn)(void *data); /* the result buffer's, or NULL */
    union {
        struct {
            conc_task_fn fn;
            void *arg;
        } task;                 /* until the task runs */
        struct {
            void *data;
            size_t len;
        } buf;                  /* once it ran: the result's buffer */
    } u;
    struct conc__executor *exec;
    struct conc__cancel_scope *group; /* its task group, or NULL */
    /* The task that submitted this one, on which we hold a reference, if
     * its executor links them (the pool does): every ancestor of a live
     * future is alive, so a helper can walk up the chain to test "is it in
     * my subtree". NULL otherwise. */
    conc_future *parent;
    /* The executor's own fields (CONC__FUTURE_EXEC). */
    _Alignas(8) unsigned char exec_area[CONC__FUTURE_EXEC_AREA];
    /* Done-callbacks, under wq's lock; cb_head is also read without the
     * lock by the finisher (the Dekker pair above). */
    _Atomic(struct conc__fcallback *) cb_head;
    struct conc__waitq wq;      /* threads waiting for the future */
};

_Static_assert(sizeof(struct conc_future) == 128, "a future is two cache lines");

/* The executor's fields of f, as its struct `type`, which must fit:
 * CONC__FUTURE_EXEC_CHECK(type) in the executor's file proves it. */
#define CONC__FUTURE_EXEC(f, type) ((type *)(void *)(f)->exec_area)
#define CONC__FUTURE_EXEC_CHECK(type)                                        \
    _Static_assert(sizeof(type) <= CONC__FUTURE_EXEC_AREA &&                 \
                       _Alignof(type) <= 8,                                  \
                   #type " must fit a future's executor area")

struct conc__helper {
    /* Runs one task that helps towards awaited[0..n) (one of them, if still
     * pending, or one of the waiting task's subtree). Returns false when
     * there is none: the caller may then sleep. */
    bool (*help_once)(struct conc__helper *h, conc_future *const *awaited, size_t n);
};

/* Memory for futures: per-thread slabs (future_mem.c). */
conc_future *conc__future_alloc_mem(void);
void conc__future_free_mem(conc_future *f);

/* A new PENDING future holding refs references; NULL when out of memory. */
conc_future *conc__future_new(conc_task_fn fn, void *arg, struct conc__executor *exec,
                              uint32_t refs);

/* PENDING → RUNNING; false if it was cancelled (or claimed) first. */
static inline bool conc__future_claim(conc_future *f)
{
    uint32_t pending = CONC__F_PENDING;
    return atomic_compare_exchange_strong_explicit(&f->state, &pending, CONC__F_RUNNING,
                                                   memory_order_acquire, memory_order_relaxed);
}

/* Runs a claimed future's task on this thread, in a context of its own
 * (core/tls.h: conc__self() is the future, the current task is f), and
 * finishes it. freed, unless NULL, is set to 0 after the task returns and
 * before its end is published, so that whoever sees the end sees it too:
 * the executor's note that its thread is free again (the pool's idle
 * workers). */
void conc__future_execute(conc_future *f, _Atomic uint32_t *freed);

/* Ends a claimed future with status and result (NULL: none): FINISHED, or
 * CANCELLED when status is CONC_ECANCELED and a cancel was requested. Wakes
 * the waiters and runs the callbacks. */
void conc__future_finish(conc_future *f, int status, const conc_result *result);

/* Cancels a pending future (PENDING → CANCELLED), or ends one claimed but
 * never run with status (CONC_EBROKEN: its executor broke). Returns whether
 * this call ended it. */
bool conc__future_cancel_pending(conc_future *f);
void conc__future_fail_claimed(conc_future *f, int status);

/* Whether cancellation of f was requested, by itself or through its group. */
static inline bool conc__future_cancel_wanted(conc_future *f)
{
    return atomic_load_explicit(&f->cancel_requested, memory_order_relaxed) ||
           (f->group && atomic_load_explicit(&f->group->requested, memory_order_relaxed));
}

static inline void conc__future_mark_retrieved(conc_future *f)
{
    atomic_fetch_or_explicit(&f->flags, CONC__FF_RETRIEVED, memory_order_relaxed);
}

static inline bool conc__future_is_done(conc_future *f)
{
    return atomic_load_explicit(&f->state, memory_order_acquire) >= CONC__F_FINISHED;
}

#endif
