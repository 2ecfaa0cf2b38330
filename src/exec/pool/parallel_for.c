/* conc_parallel_for and conc_parallel_reduce (pool.h): TBB's parallel_for /
 * parallel_reduce and OpenMP's `for` on the pool's fork-join tasks.
 *
 * A range is split in halves recursively: the right half becomes a task on
 * the splitting worker's own deque (where an idle worker steals it, the
 * oldest and largest piece first), the left half is split on in place, and
 * a piece no larger than the grain is handed to the body whole. A task per
 * split, never per item: n / grain tasks in all.
 *
 * A for splits lazily (lazy binary splitting, as TBB's auto partitioner
 * adapts): whoever runs a range — the caller first, as OpenMP's and TBB's
 * callers work in their loops — takes it a grain at a time from the left,
 * and before each grain, if a worker of the pool is idle and no half it
 * split off earlier is still waiting to be taken, splits off the right half
 * of what it has left as a task for that worker. So a range is cut only
 * as often as there are idle workers to take the pieces (a few dozen tasks
 * for a million indices, not one per grain), and every participant walks
 * its own part in order. The halves are spawned into one task group and
 * forgotten (each frees its own descriptor): a splitter that waited for its
 * half would idle whenever a thief runs it, since a waiting worker helps
 * only with its own deque. Only the caller waits, for the group; from a
 * pool task that wait helps run the group's tasks, so a nested for never
 * deadlocks.
 *
 * A reduction must join its accumulators in range order, so there a
 * splitter does wait for its right half (help-while-waiting), and every
 * frame a task points at lives in its parent's stack.
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
#include "exec/pool/pool_impl.h"

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
    _Atomic uint32_t unclaimed;   /* for: halves (or helpers) spawned and not yet taken */
    /* CONC_FOR_DYNAMIC: grains [0, ngrains) drawn one at a time */
    conc_task_group *group;
    size_t base, end, ngrains;
    _Atomic size_t next_grain;
};

struct conc__for_piece {
    struct conc__for *job;
    size_t begin, end;
    void *acc;                    /* the accumulator this piece folds into */
};

static void conc__for_fail(struct conc__for *job, int status)
{
    int none = 0;
    atomic_compare_exchange_strong(&job->status, &none, status);
}

static int conc__for_piece_task(void *arg, conc_result *out);

/* ---- for: lazy halves, spawned into a group and forgotten ---- */

struct conc__for_half {
    struct conc__for *job;
    conc_task_group *group;
    size_t begin, end;
};

static int conc__for_half_task(void *arg, conc_result *out);

/* Whether a worker of p would take a task now: one searches or sleeps, or
 * one more may start. A hint, read without a lock. */
static bool conc__for_hungry(conc_pool *p)
{
    return atomic_load_explicit(&p->searching, memory_order_relaxed) != 0 ||
           atomic_load_explicit(&p->sleepers, memory_order_relaxed) != 0 ||
           (!atomic_load_explicit(&p->full, memory_order_relaxed) &&
            atomic_load_explicit(&p->started, memory_order_relaxed) < p->max_workers);
}

/* Offers the right half of [begin, end) to an idle worker; returns the
 * new end, or end when nobody needs work or the pool refused it. */
static size_t conc__for_split(struct conc__for *job, conc_task_group *g, size_t begin, size_t end)
{
    if (end - begin <= job->grain ||
        atomic_load_explicit(&job->unclaimed, memory_order_relaxed) != 0 ||
        !conc__for_hungry(job->pool))
        return end;
    size_t mid = begin + (end - begin) / 2;
    struct conc__for_half *h = malloc(sizeof *h);
    if (!h)
        return end;
    *h = (struct conc__for_half){job, g, mid, end};
    atomic_fetch_add_explicit(&job->unclaimed, 1, memory_order_relaxed);
    if (conc_task_group_spawn(g, conc__for_half_task, h) != 0) {
        atomic_fetch_sub_explicit(&job->unclaimed, 1, memory_order_relaxed);
        free(h);
        return end; /* refused: this thread runs it all */
    }
    return mid;
}

/* Runs [begin, end) a grain at a time from the left, splitting off halves
 * for idle workers on the way. */
static void conc__for_walk(struct conc__for *job, conc_task_group *g, size_t begin, size_t end)
{
    while (begin < end) {
        if (atomic_load_explicit(&job->status, memory_order_relaxed) != 0)
            return;
        end = conc__for_split(job, g, begin, end);
        size_t stop = end - begin > job->grain ? begin + job->grain : end;
        int rc = job->body(job->arg, begin, stop);
        if (rc != 0) {
            conc__for_fail(job, rc);
            return;
        }
        begin = stop;
    }
}

static int conc__for_half_task(void *arg, conc_result *out)
{
    (void)out;
    struct conc__for_half h = *(struct conc__for_half *)arg;
    free(arg);
    atomic_fetch_sub_explicit(&h.job->unclaimed, 1, memory_order_relaxed);
    conc__for_walk(h.job, h.group, h.begin, h.end);
    return 0; /* a failure travels in job->status: the group never cancels a half */
}

/* ---- for, CONC_FOR_DYNAMIC: grains drawn from one cursor ----
 *
 * OpenMP's schedule(dynamic, grain): every participant — the caller, and a
 * helper task spawned whenever a worker is idle and no helper waits to be
 * taken — draws the next grain with a fetch-and-add until none is left.
 * A late helper takes whatever is left, the caller takes back what nobody
 * started, and consecutive grains land on alternating cores. */

static int conc__for_draw_task(void *arg, conc_result *out);

static void conc__for_draw(struct conc__for *job)
{
    for (;;) {
        if (atomic_load_explicit(&job->status, memory_order_relaxed) != 0)
            return;
        if (atomic_load_explicit(&job->unclaimed, memory_order_relaxed) == 0 &&
            atomic_load_explicit(&job->next_grain, memory_order_relaxed) + 1 < job->ngrains &&
            conc__for_hungry(job->pool)) {
            atomic_fetch_add_explicit(&job->unclaimed, 1, memory_order_relaxed);
            if (conc_task_group_spawn(job->group, conc__for_draw_task, job) != 0)
                atomic_fetch_sub_explicit(&job->unclaimed, 1, memory_order_relaxed);
        }
        size_t g = atomic_fetch_add_explicit(&job->next_grain, 1, memory_order_relaxed);
        if (g >= job->ngrains)
            return;
        size_t b = job->base + g * job->grain;
        size_t e = job->end - b > job->grain ? b + job->grain : job->end;
        int rc = job->body(job->arg, b, e);
        if (rc != 0) {
            conc__for_fail(job, rc);
            return;
        }
    }
}

static int conc__for_draw_task(void *arg, conc_result *out)
{
    (void)out;
    struct conc__for *job = arg;
    atomic_fetch_sub_explicit(&job->unclaimed, 1, memory_order_relaxed);
    conc__for_draw(job);
    return 0;
}

/* ---- reduce: eager contiguous halves, joined in order ---- */

/* Folds [begin, end) of job into acc: splits while larger than the grain. */
static void conc__reduce_run(struct conc__for *job, size_t begin, size_t end, void *acc)
{
    while (end - begin > job->grain) {
        if (atomic_load_explicit(&job->status, memory_order_relaxed) != 0)
            return;
        size_t mid = begin + (end - begin) / 2;
        unsigned char inline_acc[CONC__FOR_INLINE_ACC];
        struct conc__for_piece right = {job, mid, end, NULL};
        right.acc = job->value_size <= sizeof inline_acc ? inline_acc : malloc(job->value_size);
        if (!right.acc) {
            conc__for_fail(job, CONC_ENOMEM);
            return;
        }
        memcpy(right.acc, job->identity, job->value_size);
        conc_future *f = NULL;
        int rc = conc_pool_submit(job->pool, conc__for_piece_task, &right, &f);
        if (rc != 0) {
            conc__for_fail(job, rc);
        } else {
            conc__reduce_run(job, begin, mid, acc);
            conc_future_wait(f); /* helps: runs our subtree meanwhile */
            conc_future_release(f);
            if (atomic_load_explicit(&job->status, memory_order_relaxed) == 0)
                job->join(job->arg, acc, right.acc);
        }
        if (right.acc != inline_acc)
            free(right.acc);
        return;
    }
    if (atomic_load_explicit(&job->status, memory_order_relaxed) != 0)
        return;
    int rc = job->reduce(job->arg, begin, end, acc);
    if (rc != 0)
        conc__for_fail(job, rc);
}

static int conc__for_piece_task(void *arg, conc_result *out)
{
    (void)out;
    struct conc__for_piece *piece = arg;
    conc__reduce_run(piece->job, piece->begin, piece->end, piece->acc);
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
    if (opts && !conc__reserved_zero(opts->reserved_,
                                     sizeof opts->reserved_ / sizeof opts->reserved_[0]))
        return conc__misuse_at(CONC_EINVAL, fn, "reserved option fields are not zero");
    if (opts && opts->schedule != CONC_FOR_SPLIT && opts->schedule != CONC_FOR_DYNAMIC)
        return conc__misuse_at(CONC_EINVAL, fn, "unknown schedule");
    int64_t workers = conc_pool_workers(p);
    if (workers < 1)
        workers = 1;
    size_t grain = opts ? opts->grain : 0;
    if (grain == 0) {
        size_t pieces = (size_t)workers * CONC__FOR_PIECES_PER_WORKER;
        grain = (end - begin) / pieces + ((end - begin) % pieces != 0); /* no overflow */
        if (grain == 0)
            grain = 1;
    }
    job->pool = p;
    job->grain = grain;
    atomic_init(&job->status, 0);
    return 0;
}

/* Runs a reduction's whole range as one task of the pool (so that its
 * splits land on a worker's deque) and waits for it. */
static int conc__reduce_start(struct conc__for *job, size_t begin, size_t end, void *acc)
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
    if (rc || end == begin)
        return rc;
    /* A pool that takes no work would leave the whole range to the caller:
     * refuse instead, as a submission would. */
    rc = conc__pool_state_error(p);
    struct conc__worker *w = conc__worker_self();
    if (rc == CONC_EBROKEN || (rc && !(w && w->pool == p))) /* a task's own work is accepted */
        return rc;
    conc_task_group *g;
    if ((rc = conc_task_group_create(&g, p)) != 0)
        return rc;
    atomic_init(&job.unclaimed, 0);
    if (opts && opts->schedule == CONC_FOR_DYNAMIC) {
        job.group = g;
        job.base = begin;
        job.end = end;
        job.ngrains = (end - begin) / job.grain + ((end - begin) % job.grain != 0);
        atomic_init(&job.next_grain, 0);
        conc__for_draw(&job); /* the caller works too */
    } else {
        conc__for_walk(&job, g, begin, end); /* the caller works too */
    }
    int wrc = conc_task_group_destroy(g); /* waits for every half */
    return wrc ? wrc : atomic_load(&job.status);
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
    return conc__reduce_start(&job, begin, end, result);
}
