/* conc_parallel_for and conc_parallel_reduce (pool.h): TBB's parallel_for /
 * parallel_reduce and OpenMP's `for` on the pool's fork-join tasks.
 *
 * A range is split in halves recursively: the right half becomes a task on
 * the splitting worker's own deque (where an idle worker steals it, the
 * oldest and largest piece first), the left half is split on in place, and
 * a piece no larger than the grain is handed to the body whole. Then the
 * splitter waits for its right half, running other tasks of its own subtree
 * meanwhile (help-while-waiting), so a parallel for nested in a pool task
 * never deadlocks, on any number of workers. A task per split, never per
 * item: n / grain tasks in all.
 *
 * Every frame a task points at lives in its parent's stack: the parent
 * always waits for its right half before it returns, failure or not.
 *
 * The first failure (a body's non-zero status, or a task the pool refused)
 * is kept; pieces not yet started then skip their body. A reduction keeps
 * one accumulator per split: the right half's starts as a copy of the
 * identity and is joined into the left's when the right half is done, so
 * the join sees its operands in range order (an associative join needs no
 * commutativity).
 */
#include "conc/pool.h"
#include "core/misuse.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Automatic grain: about this many pieces per worker, enough to even out
 * uneven bodies and late starters without a task per few items. */
#define CONC__FOR_PIECES_PER_WORKER 8

/* A reduction's accumulator up to this size lives in the splitter's frame. */
#define CONC__FOR_INLINE_ACC 64

struct conc__for {
    conc_pool *pool;
    size_t grain;
    void *arg;
    conc_range_fn body;           /* parallel_for */
    conc_reduce_fn reduce;        /* parallel_reduce: body and join */
    conc_join_fn join;
    const void *identity;
    size_t value_size;
    _Atomic int status;           /* the first failure; 0 while none */
};

struct conc__for_piece {
    struct conc__for *job;
    size_t begin, end;
    void *acc;                    /* the reduction's accumulator; NULL for a for */
};

static void conc__for_fail(struct conc__for *job, int status)
{
    int none = 0;
    atomic_compare_exchange_strong(&job->status, &none, status);
}

static int conc__for_piece_task(void *arg, conc_result *out);

/* Runs [begin, end) of job: splits while larger than the grain. */
static void conc__for_run(struct conc__for *job, size_t begin, size_t end, void *acc)
{
    while (end - begin > job->grain) {
        if (atomic_load_explicit(&job->status, memory_order_relaxed) != 0)
            return;
        size_t mid = begin + (end - begin) / 2;
        unsigned char inline_acc[CONC__FOR_INLINE_ACC];
        struct conc__for_piece right = {job, mid, end, NULL};
        if (acc) {
            right.acc = job->value_size <= sizeof inline_acc ? inline_acc : malloc(job->value_size);
            if (!right.acc) {
                conc__for_fail(job, CONC_ENOMEM);
                return;
            }
            memcpy(right.acc, job->identity, job->value_size);
        }
        conc_future *f = NULL;
        int rc = conc_pool_submit(job->pool, conc__for_piece_task, &right, &f);
        if (rc != 0) {
            conc__for_fail(job, rc);
        } else {
            conc__for_run(job, begin, mid, acc);
            conc_future_wait(f); /* helps: runs our subtree meanwhile */
            conc_future_release(f);
            if (acc && atomic_load_explicit(&job->status, memory_order_relaxed) == 0)
                job->join(job->arg, acc, right.acc);
        }
        if (right.acc && right.acc != inline_acc)
            free(right.acc);
        return;
    }
    if (atomic_load_explicit(&job->status, memory_order_relaxed) != 0)
        return;
    int rc = acc ? job->reduce(job->arg, begin, end, acc) : job->body(job->arg, begin, end);
    if (rc != 0)
        conc__for_fail(job, rc);
}

static int conc__for_piece_task(void *arg, conc_result *out)
{
    (void)out;
    struct conc__for_piece *piece = arg;
    conc__for_run(piece->job, piece->begin, piece->end, piece->acc);
    return 0; /* failures travel in job->status */
}

/* Checks the common arguments (fn: the public call, for the detail) and
 * fills job's pool and grain. */
static int conc__for_setup(struct conc__for *job, const char *fn, conc_pool *p, size_t begin,
                           size_t end, const conc_for_opts *opts)
{
    if (!p)
        return conc__misuse_at(CONC_EINVAL, fn, "NULL pool");
    if (end < begin)
        return conc__misuse_at(CONC_EINVAL, fn, "end is below begin");
    if (opts && !conc__reserved_zero(opts->reserved_, 4))
        return conc__misuse_at(CONC_EINVAL, fn, "reserved option fields are not zero");
    int64_t workers = conc_pool_workers(p);
    if (workers < 1)
        workers = 1;
    size_t grain = opts ? opts->grain : 0;
    if (grain == 0) {
        size_t pieces = (size_t)workers * CONC__FOR_PIECES_PER_WORKER;
        grain = (end - begin + pieces - 1) / pieces;
        if (grain == 0)
            grain = 1;
    }
    job->pool = p;
    job->grain = grain;
    atomic_init(&job->status, 0);
    return 0;
}

/* Runs the whole range as one task of the pool (so that its splits land on
 * a worker's deque) and waits for it. */
static int conc__for_start(struct conc__for *job, size_t begin, size_t end, void *acc)
{
    if (end == begin)
        return 0;
    struct conc__for_piece root = {job, begin, end, acc};
    conc_future *f = NULL;
    int rc = conc_pool_submit(job->pool, conc__for_piece_task, &root, &f);
    if (rc != 0)
        return rc;
    rc = conc_future_wait(f);
    conc_future_release(f);
    if (rc != 0)
        return rc; /* CONC_EBROKEN: a pool inherited across fork() */
    return atomic_load(&job->status);
}

int conc_parallel_for(conc_pool *p, size_t begin, size_t end, conc_range_fn body, void *arg,
                      const conc_for_opts *opts)
{
    if (!body)
        return CONC__MISUSE(CONC_EINVAL, "NULL body");
    struct conc__for job = {.arg = arg, .body = body};
    int rc = conc__for_setup(&job, __func__, p, begin, end, opts);
    return rc ? rc : conc__for_start(&job, begin, end, NULL);
}

int conc_parallel_reduce(conc_pool *p, size_t begin, size_t end, const void *identity,
                         size_t value_size, conc_reduce_fn body, conc_join_fn join, void *arg,
                         const conc_for_opts *opts, void *result)
{
    if (!body || !join)
        return CONC__MISUSE(CONC_EINVAL, "NULL body or join");
    if (!identity || !result || value_size == 0)
        return CONC__MISUSE(CONC_EINVAL, "NULL identity or result, or value_size 0");
    struct conc__for job = {.arg = arg, .reduce = body, .join = join, .identity = identity,
                            .value_size = value_size};
    int rc = conc__for_setup(&job, __func__, p, begin, end, opts);
    if (rc)
        return rc;
    /* The caller's result is the leftmost accumulator: it starts as the
     * identity, and the whole range folds into it. */
    memmove(result, identity, value_size);
    return conc__for_start(&job, begin, end, result);
}
