/* conc_pool: the thread pool executor (pool_impl.h describes where tasks
 * wait, how workers sleep and how a waiting task's worker helps). */
#include "exec/pool/pool_impl.h"
#include "core/misuse.h"
#include "core/deadline.h"
#include "exec/pool/task_group_impl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the executor interface ---- */

static void conc__pool_space_signal(conc_pool *p, size_t n);

static void conc__pool_task_cancelled(conc_future *f)
{
    conc_pool *p = (conc_pool *)(void *)f->exec;
    if (conc__pool_task(f)->external && p->capacity)
        conc__pool_space_signal(p, 1);
    if (f->group)
        conc__task_group_ended(f);
}

const struct conc__future_ops conc__pool_ops = {
    .cancelled = conc__pool_task_cancelled,
    .cancel_requested = NULL, /* the token is enough: the task polls it */
};

/* ---- running a task ---- */

/* freed: the busy word of the worker running f as the task it took in its
 * loop, while the pool is not full, or NULL (a task helped in, a full
 * pool). The worker frees it (IDLE) after the task and before anyone sees
 * the task end, so a submit that follows a wait for it counts on the
 * worker instead of starting one (pool_impl.h, on demand). Only the worker
 * writes BUSY → IDLE; nobody else changes a BUSY word. */
_Static_assert(CONC__W_IDLE == 0, "conc__future_execute frees a word to 0");

static inline void conc__worker_free(_Atomic uint32_t *freed)
{
    if (freed)
        atomic_store_explicit(freed, CONC__W_IDLE, memory_order_relaxed);
}

/* Runs a task this thread claimed (PENDING → RUNNING). */
static void conc__pool_run_claimed(struct conc__worker *w, conc_future *f, _Atomic uint32_t *freed)
{
    conc_pool *p = (conc_pool *)(void *)f->exec;
    if (conc__pool_task(f)->external && p->capacity)
        conc__pool_space_signal(p, 1);
    if (conc__unlikely(atomic_load_explicit(&p->state, memory_order_relaxed) ==
                       CONC__POOL_BROKEN)) {
        conc__worker_free(freed);
        conc__future_fail_claimed(f, CONC_EBROKEN);
    } else if (f->group && atomic_load_explicit(&f->group->requested, memory_order_relaxed)) {
        conc__worker_free(freed);
        conc__future_finish(f, CONC_ECANCELED, NULL); /* its group was cancelled: never start */
    } else {
        int64_t outer_mark = w->mark;
        w->mark = conc__deque_mark(&w->dq);
        conc__future_execute(f, freed);
        w->mark = outer_mark;
    }
    if (f->group)
        conc__task_group_ended(f);
}

/* Runs a task taken from a queue, whose reference the queue gave us. */
static void conc__pool_run_queued(struct conc__worker *w, conc_future *f, _Atomic uint32_t *freed)
{
    if (conc__future_claim(f))
        conc__pool_run_claimed(w, f, freed);
    else
        conc__worker_free(freed); /* cancelled meanwhile; BUSY, so nobody relied on it */
    conc_future_release(f);
}

/* ---- waking and sleeping workers ----
 *
 * A worker that runs out of work becomes a searcher (counted in
 * p->searching) and looks for work for a short while before it sleeps. A
 * push wakes a sleeper only when nobody is searching — the searcher will
 * find the work — and the worker it wakes starts as a searcher, counted by
 * the waker. So a stream of submissions costs at most one wake-up per
 * searcher that gave up, not one per task (as Go's and Tokio's schedulers
 * do it). A searcher that finds work while being the last one wakes the
 * next sleeper if more work is left: parallelism ramps up one worker at a
 * time.
 *
 * The decision to sleep is the Dekker pair of pool_impl.h: a searcher
 * stops searching and counts itself asleep, then the heavy fence, then it
 * looks once more; a pusher's light fence comes before it reads both
 * counts. Either the sleeper sees the work, or the pusher sees it asleep
 * with nobody searching. */

static void conc__give_search_token(struct conc__waiter *w, void *arg)
{
    (void)arg;
    w->want = 1; /* this worker wakes as a counted searcher */
}

/* conc__pool_wake_worker past its first checks. */
static int conc__pool_wake_slow(conc_pool *p)
{
    if (atomic_load_explicit(&p->sleepers, memory_order_relaxed) == 0) {
        if (atomic_load_explicit(&p->full, memory_order_relaxed) ||
            atomic_load_explicit(&p->started, memory_order_relaxed) >= p->max_workers)
            return 0;
        return conc__pool_grow(p);
    }
    uint32_t none = 0;
    if (!atomic_compare_exchange_strong_explicit(&p->searching, &none, 1, memory_order_relaxed,
                                                 memory_order_relaxed))
        return 0; /* another one started searching meanwhile */
    conc__waitq_lock(&p->idle);
    bool woke = conc__waitq_handoff(&p->idle, conc__give_search_token, NULL);
    conc__waitq_unlock(&p->idle);
    if (!woke)
        atomic_fetch_sub_explicit(&p->searching, 1, memory_order_relaxed);
    return 0;
}

/* After queueing work: wakes one sleeping worker, if any sleeps and nobody
 * searches. With none asleep either, every live worker runs a task or is
 * between two: below max_workers, one starts unless an idle one will look
 * (conc__pool_grow). Inline up to there: a busy full pool, the common case
 * of a stream of submissions, pays three loads. Returns 0, or the error of
 * a worker that failed to start. */
static inline int conc__pool_wake_worker(conc_pool *p)
{
    conc__fence_light();
    if (conc__likely(atomic_load_explicit(&p->searching, memory_order_relaxed) != 0))
        return 0;
    if (atomic_load_explicit(&p->sleepers, memory_order_relaxed) == 0 &&
        conc__likely(atomic_load_explicit(&p->full, memory_order_relaxed)))
        return 0;
    return conc__pool_wake_slow(p);
}

/* A searcher found work: it stops searching; the last one wakes the next. */
static void conc__worker_found_work(conc_pool *p)
{
    if (atomic_fetch_sub_explicit(&p->searching, 1, memory_order_relaxed) == 1 &&
        conc__pool_has_work(p))
        conc__pool_wake_worker(p);
}

bool conc__pool_has_work(conc_pool *p)
{
    if (conc__inbox_nonempty(&p->inbox))
        return true;
    int n = atomic_load_explicit(&p->started, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (conc__deque_size(&p->workers[i].dq))
            return true;
    return false;
}

/* Looks for work within the spin budget of p->idle (the wait core's score:
 * a pool whose searches keep failing stops searching and sleeps at once).
 * It looks only every CONC__SEARCH_STRIDE pauses: each look reads the
 * submission queue's cache line, and a searcher reading it nonstop makes
 * every submitter's compare-and-swap there a cache miss (measured: most
 * of a submit's time, with two searching workers). */
#define CONC__SEARCH_STRIDE 32

static bool conc__worker_search(conc_pool *p)
{
    bool probe;
    unsigned budget = conc__spin_budget(&p->idle, &probe);
    for (unsigned i = 0; i < budget; i += CONC__SEARCH_STRIDE) {
        for (unsigned j = 0; j < CONC__SEARCH_STRIDE; j++)
            conc__cpu_relax();
        if (conc__pool_has_work(p)) {
            conc__spin_learn(&p->idle, true, probe);
            return true;
        }
    }
    if (budget)
        conc__spin_learn(&p->idle, false, probe);
    return false;
}

/* Called when w found no work: searches, then sleeps until there may be
 * work. Returns false when the worker should exit: the pool is shut down (or
 * broken) and no work is left. *searcher: whether w counts as a searcher
 * (on entry: woken as one; on return: still one). */
static bool conc__worker_idle(struct conc__worker *w, bool *searcher)
{
    conc_pool *p = w->pool;
    if (!*searcher) {
        atomic_fetch_add_explicit(&p->searching, 1, memory_order_relaxed);
        *searcher = true;
    }
    if (atomic_load_explicit(&p->state, memory_order_acquire) == CONC__POOL_RUNNING &&
        conc__worker_search(p))
        return true;
    bool more = true;
    conc__waitq_lock(&p->idle);
    atomic_fetch_sub_explicit(&p->searching, 1, memory_order_relaxed);
    *searcher = false;
    atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_relaxed);
    conc__fence_heavy();
    for (;;) {
        if (conc__pool_has_work(p)) {
            /* Searching again: a pusher may have skipped its wake because
             * we still counted as a searcher, so the wake chain must go on
             * from us (conc__worker_found_work), or queued tasks would wait
             * for a busy worker while the others sleep. */
            atomic_fetch_add_explicit(&p->searching, 1, memory_order_relaxed);
            *searcher = true;
            break;
        }
        if (atomic_load_explicit(&p->state, memory_order_acquire) != CONC__POOL_RUNNING) {
            more = false;
            break;
        }
        struct conc__waiter sw;
        conc__waiter_init(&sw, 0, conc__self());
        conc__waitq_sleep(&p->idle, &sw, CONC__NO_DEADLINE);
        if (sw.want) { /* woken by a push, as a searcher */
            *searcher = true;
            break;
        }
    }
    atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_relaxed);
    conc__waitq_unlock(&p->idle);
    return more;
}

/* ---- finding work ---- */

/* Takes the oldest submission, to run now. One at a time: every worker
 * takes the next oldest from the one FIFO, so tasks submitted from outside
 * start in submission order whatever the number of workers (Python's
 * ThreadPoolExecutor's order). A batch moved into one worker's deque would
 * be started out of order by thieves, which take from the deque's other
 * end. Another worker taking its turn at the queue, or a push half done,
 * means: come back later. If more is queued, another worker is woken for
 * it. */
static conc_future *conc__worker_take_inbox(struct conc__worker *w)
{
    struct conc__inbox *q = &w->pool->inbox;
    if (!conc__inbox_nonempty(q) || !conc__inbox_trylock(q))
        return NULL;
    conc_future *f = conc__inbox_pop(q, NULL);
    conc__inbox_unlock(q);
    if (f && conc__inbox_nonempty(q))
        conc__pool_wake_worker(w->pool);
    return f;
}

static uint64_t conc__rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static conc_future *conc__worker_steal(struct conc__worker *w)
{
    conc_pool *p = w->pool;
    int n = atomic_load_explicit(&p->started, memory_order_acquire);
    if (n < 2)
        return NULL;
    unsigned start = (unsigned)(conc__rng_next(&w->rng) % (unsigned)n);
    for (int round = 0; round < 2; round++) {
        bool raced = false;
        for (int i = 0; i < n; i++) {
            struct conc__worker *v = &p->workers[(start + (unsigned)i) % (unsigned)n];
            if (v == w)
                continue;
            bool retry = false;
            conc_future *f = conc__deque_steal(&v->dq, &retry);
            if (f)
                return f;
            raced |= retry;
        }
        if (!raced)
            break;
    }
    return NULL;
}

static conc_future *conc__worker_find(struct conc__worker *w)
{
    conc_future *f = conc__deque_pop(&w->dq);
    if (!f)
        f = conc__worker_take_inbox(w);
    if (!f)
        f = conc__worker_steal(w);
    return f;
}

/* ---- help-while-waiting ---- */

static bool conc__awaited(conc_future *f, conc_future *const *awaited, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (awaited[i] == f)
            return true;
    return false;
}

/* The awaited task runs on another worker, and the waiting task's subtree
 * has nothing left in our deque: its remaining tasks were pushed by that
 * thief (leapfrogging, Wagner and Calder). Steal from the others and run a
 * task only if it descends from the waiting task; one that does not goes
 * to the submission queue, where any worker between tasks takes it (it
 * stays pending, and whoever awaits it can still run it). */
static bool conc__worker_leapfrog(struct conc__worker *w)
{
    conc_future *self = conc__current_task();
    conc_pool *p = w->pool;
    int n = atomic_load_explicit(&p->started, memory_order_acquire);
    if (!self || n < 2)
        return false;
    for (int i = 1; i < n; i++) {
        struct conc__worker *v = &p->workers[(w->index + (unsigned)i) % (unsigned)n];
        conc_future *f = conc__deque_steal(&v->dq, NULL);
        if (!f)
            continue;
        if (conc__pool_task_descends(f, self)) {
            w->help_depth++;
            conc__pool_run_queued(w, f, NULL);
            w->help_depth--;
            return true;
        }
        conc__inbox_push(&p->inbox, f);
        conc__pool_wake_worker(p);
    }
    return false;
}

/* The helper of a waiting task's worker (pool_impl.h, isolation). The
 * newest task of its own subtree first: usually the very child awaited,
 * popped so that its queue reference is dropped at once (a fork-join task
 * leaves no stale entries behind to keep futures alive). Else an awaited
 * future still pending elsewhere runs here. Past the depth bound only
 * awaited futures run: anything else popped goes back. */
static bool conc__worker_help_once(struct conc__helper *h, conc_future *const *awaited, size_t n)
{
    struct conc__worker *w = (struct conc__worker *)((char *)h - offsetof(struct conc__worker, helper));
    conc_future *f = conc__deque_pop_above(&w->dq, w->mark);
    if (f) {
        if (w->help_depth < CONC__HELP_DEPTH_MAX || conc__awaited(f, awaited, n)) {
            w->help_depth++;
            conc__pool_run_queued(w, f, NULL);
            w->help_depth--;
            return true;
        }
        if (conc__deque_push(&w->dq, f) != 0) /* cannot fail: the slot was just freed */
            conc__pool_run_queued(w, f, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        f = awaited[i];
        if (conc__is_pool_task(f) && conc__future_claim(f)) {
            conc__pool_run_claimed(w, f, NULL);
            return true;
        }
    }
    return w->help_depth < CONC__HELP_DEPTH_MAX && conc__worker_leapfrog(w);
}

/* ---- workers ---- */

/* After a change of state: every sleeping worker and submitter re-checks.
 * Idle workers exit once no work is left; submitters waiting for room fail. */
static void conc__pool_wake_everyone(conc_pool *p)
{
    conc__waitq_lock(&p->idle);
    conc__waitq_wake_all(&p->idle);
    conc__waitq_unlock(&p->idle);
    conc__waitq_lock(&p->space);
    conc__waitq_wake_all(&p->space);
    conc__waitq_unlock(&p->space);
}

static void conc__pool_break(conc_pool *p)
{
    uint32_t s = atomic_load_explicit(&p->state, memory_order_relaxed);
    while (s != CONC__POOL_BROKEN &&
           !atomic_compare_exchange_weak_explicit(&p->state, &s, CONC__POOL_BROKEN,
                                                  memory_order_acq_rel, memory_order_relaxed))
        ;
    conc__pool_wake_everyone(p);
}

/* w took a task in its loop: BUSY, while the pool is not full. A pusher
 * that counted on w (RELIED) meant w to look for its task, which may still
 * be queued if w took another: *relied tells w to pass the wake on, so the
 * push still has a worker that will look (pool_impl.h, on demand). The
 * exchange pairs with the pusher's compare-and-swap, after its push.
 * Returns the word to free when the task ends, or NULL. */
static _Atomic uint32_t *conc__worker_take_busy(struct conc__worker *w, bool *relied)
{
    if (atomic_load_explicit(&w->pool->full, memory_order_relaxed))
        return NULL;
    *relied = atomic_exchange_explicit(&w->busy, CONC__W_BUSY, memory_order_seq_cst) ==
              CONC__W_RELIED;
    return &w->busy;
}

int conc__worker_main(void *arg)
{
    struct conc__worker *w = arg;
    conc_pool *p = w->pool;
    conc__tls.worker = w;
    conc__tls.helper = &w->helper;
    if (p->initializer && p->initializer(p->initarg) != 0)
        conc__pool_break(p);
    bool searcher = false;
    for (;;) {
        conc_future *f = conc__worker_find(w);
        if (f) {
            bool relied = false;
            _Atomic uint32_t *freed = conc__worker_take_busy(w, &relied);
            if (searcher) {
                searcher = false;
                conc__worker_found_work(p);
            } else if (conc__unlikely(relied) && conc__pool_has_work(p)) {
                conc__pool_wake_worker(p);
            }
            conc__pool_run_queued(w, f, freed);
            continue;
        }
        if (!conc__worker_idle(w, &searcher))
            break;
    }
    if (searcher)
        atomic_fetch_sub_explicit(&p->searching, 1, memory_order_relaxed);
    conc__tls.helper = NULL;
    conc__tls.worker = NULL;
    return 0;
}

/* ---- dumps ---- */

/* The submission queue's length, taking the consumer's turn briefly (a
 * worker holds it only while it pops one); -1 if it stays taken. */
static long conc__pool_inbox_length(conc_pool *p)
{
    for (int i = 0; i < 1000; i++) {
        if (conc__inbox_trylock(&p->inbox)) {
            size_t n = conc__inbox_count(&p->inbox);
            conc__inbox_unlock(&p->inbox);
            return (long)n;
        }
        conc__cpu_relax();
    }
    return -1;
}

/* The pool's dump source (core/hooks.h): one line, its name, workers,
 * state and the tasks waiting to run. */
static void conc__pool_describe(struct conc__dump_source *src,
                                void (*line)(void *ctx, const char *text), void *ctx)
{
    conc_pool *p = (conc_pool *)(void *)((char *)src - offsetof(conc_pool, dump));
    size_t deqs = 0;
    int started = atomic_load_explicit(&p->started, memory_order_acquire);
    for (int i = 0; i < started; i++)
        deqs += conc__deque_size(&p->workers[i].dq);
    long inbox = conc__pool_inbox_length(p);
    uint32_t s = atomic_load_explicit(&p->state, memory_order_relaxed);
    uint32_t asleep = atomic_load_explicit(&p->sleepers, memory_order_relaxed);
    char text[256], queued[48];
    if (inbox < 0)
        snprintf(queued, sizeof queued, "(busy)");
    else
        snprintf(queued, sizeof queued, "%ld", inbox);
    snprintf(text, sizeof text,
             "pool \"%s\": %d of %d worker%s started, %s; waiting to run: %s submitted, "
             "%zu in the workers' deques; %u worker%s asleep\n",
             p->name, started, p->max_workers, p->max_workers == 1 ? "" : "s",
             s == CONC__POOL_RUNNING ? "running"
             : s == CONC__POOL_BROKEN ? "broken"
                                      : "shut down",
             queued, deqs, asleep, asleep == 1 ? "" : "s");
    line(ctx, text);
}

void conc__pool_backlog(conc_pool *p, size_t *queued, int *running)
{
    long inbox = conc__pool_inbox_length(p);
    size_t n = inbox > 0 ? (size_t)inbox : 0;
    int started = atomic_load_explicit(&p->started, memory_order_acquire);
    for (int i = 0; i < started; i++)
        n += conc__deque_size(&p->workers[i].dq);
    /* A live worker neither asleep nor searching runs a task (or is
     * between two, for an instant). */
    int live = conc__pool_live_workers(p);
    int idle = (int)(atomic_load_explicit(&p->sleepers, memory_order_relaxed) +
                     atomic_load_explicit(&p->searching, memory_order_relaxed));
    *queued = n;
    *running = live > idle ? live - idle : 0;
}

/* ---- create and destroy ---- */

/* Cancels what the submission queue holds and drops its references. Takes
 * the consumer's turn, waiting for it (a worker holds it only while it
 * pops one), and waits out a push half done. */
static void conc__pool_drain_inbox(conc_pool *p)
{
    struct conc__inbox *q = &p->inbox;
    while (!conc__inbox_trylock(q))
        conc__cpu_relax();
    for (;;) {
        bool busy = false;
        conc_future *f = conc__inbox_pop(q, &busy);
        if (f) {
            conc__future_cancel_pending(f);
            conc_future_release(f);
        } else if (busy) {
            conc__cpu_relax();
        } else {
            break;
        }
    }
    conc__inbox_unlock(q);
}

static void conc__pool_free(conc_pool *p)
{
    /* Tasks a submit took back after a shutdown (conc__pool_submit) may
     * still be queued, cancelled: drop the queue's references. */
    conc__pool_drain_inbox(p);
    /* Every slot ever started has a deque, a failed start's too; the
     * others are all zero, which conc__deque_free takes. */
    for (int i = 0; i < p->max_workers; i++)
        conc__deque_free(&p->workers[i].dq);
    conc_mutex_destroy(&p->start_lock);
    conc_mutex_destroy(&p->join_lock);
    free(p->workers);
    free(p);
}

int conc_pool_create(conc_pool **out, const conc_pool_opts *opts)
{
    if (!out)
        return CONC__MISUSE(CONC_EINVAL, "NULL pool pointer");
    *out = NULL;
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL;
    conc_pool_opts o = opts ? *opts : (conc_pool_opts){0};
    if (o.max_workers > CONC_POOL_MAX_WORKERS)
        return CONC__MISUSE(CONC_EINVAL, "max_workers above CONC_POOL_MAX_WORKERS");
    int n = o.max_workers ? (int)o.max_workers : (int)conc_cpu_count();
    if (n < 1)
        n = 1;
    conc_pool *p = aligned_alloc(64, (sizeof *p + 63) & ~(size_t)63);
    if (!p)
        return CONC_ENOMEM;
    memset(p, 0, sizeof *p);
    /* The slots of every worker it may start (a few hundred bytes each);
     * their deques and threads come with each worker's start. */
    size_t wsize = (sizeof(struct conc__worker) + 63) & ~(size_t)63;
    p->workers = aligned_alloc(64, wsize * (size_t)n);
    if (!p->workers) {
        free(p);
        return CONC_ENOMEM;
    }
    memset(p->workers, 0, wsize * (size_t)n);
    conc__executor_init(&p->exec, &conc__pool_ops);
    p->capacity = o.queue_capacity;
    p->max_workers = n;
    p->initializer = o.initializer;
    p->initarg = o.initarg;
    conc__inbox_init(&p->inbox);
    conc__waitq_init(&p->idle, 0);
    conc__waitq_init(&p->space, 0);
    conc_mutex_init(&p->join_lock, NULL);
    conc_mutex_init(&p->start_lock, NULL);
    for (int i = 0; i < n; i++) {
        struct conc__worker *w = &p->workers[i];
        w->pool = p;
        w->index = (unsigned)i;
        w->rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
        w->helper.help_once = conc__worker_help_once;
    }
    snprintf(p->name, sizeof p->name, "%s", o.name ? o.name : "conc-pool");
    /* No worker starts here, not even one: a pool sized for waiting work
     * (32 workers, say) costs no thread until it is used, as Python's since
     * 3.8, and a first worker started here would only move the cost of one
     * start from the first submit to create. */
    p->dump.describe = conc__pool_describe;
    conc__dump_source_add(&p->dump);
    conc__pool_exit_add(p);
    *out = p;
    return 0;
}

int64_t conc_pool_workers(conc_pool *p)
{
    return p ? p->max_workers : CONC__MISUSE(CONC_EINVAL, "NULL pool");
}

/* ---- submitting ---- */

/* Called when an external task leaves the queue (started or cancelled) in a
 * bounded pool: frees its slot and wakes a submitter waiting for room. */
static void conc__pool_space_signal(conc_pool *p, size_t n)
{
    atomic_fetch_sub_explicit(&p->queued, n, memory_order_relaxed);
    conc__fence_light();
    if (conc__likely(atomic_load_explicit(&p->space_sleepers, memory_order_relaxed) == 0))
        return;
    conc__waitq_lock(&p->space);
    conc__waitq_wake(&p->space, (unsigned)n);
    conc__waitq_unlock(&p->space);
}

static bool conc__pool_try_reserve(conc_pool *p)
{
    size_t q = atomic_load_explicit(&p->queued, memory_order_relaxed);
    while (q < p->capacity)
        if (atomic_compare_exchange_weak_explicit(&p->queued, &q, q + 1, memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    return false;
}

/* A pool inherited across fork() is broken: its workers stayed behind. */
int conc__pool_state_error(conc_pool *p)
{
    if (conc__executor_lost(&p->exec))
        return CONC_EBROKEN;
    uint32_t s = atomic_load_explicit(&p->state, memory_order_acquire);
    return s == CONC__POOL_RUNNING ? 0 : s == CONC__POOL_BROKEN ? CONC_EBROKEN : CONC_ESHUTDOWN;
}

/* Takes a slot of a bounded pool's submission queue, waiting for one until
 * the deadline. */
static int conc__pool_reserve(conc_pool *p, int64_t deadline)
{
    if (conc__pool_try_reserve(p))
        return 0;
    int rc = 0;
    conc__waitq_lock(&p->space);
    atomic_fetch_add_explicit(&p->space_sleepers, 1, memory_order_relaxed);
    conc__fence_heavy();
    for (;;) {
        if ((rc = conc__pool_state_error(p)) != 0)
            break;
        if (conc__pool_try_reserve(p))
            break;
        if (conc__expired(deadline)) {
            rc = CONC_EFULL;
            break;
        }
        struct conc__waiter sw;
        conc__waiter_init(&sw, 0, conc__self());
        conc__waitq_sleep(&p->space, &sw, deadline);
    }
    atomic_fetch_sub_explicit(&p->space_sleepers, 1, memory_order_relaxed);
    conc__waitq_unlock(&p->space);
    return rc;
}


int conc__pool_submit(conc_pool *p, conc_task_fn fn, void *arg, int64_t timeout,
                      struct conc__cancel_scope *group, conc_future **out)
{
    int64_t deadline;
    if (out)
        *out = NULL;
    if (!p)
        return conc__misuse_at(CONC_EINVAL, NULL, "NULL pool");
    if (!fn)
        return conc__misuse_at(CONC_EINVAL, NULL, "NULL task function");
    int rc = conc__deadline(timeout, &deadline);
    if (rc)
        return rc;
    struct conc__worker *w = conc__worker_self();
    bool inside = w && w->pool == p;
    /* A running task's subtasks are part of work already accepted: they are
     * taken while the pool shuts down, and never wait for room. */
    rc = conc__pool_state_error(p);
    if (rc == CONC_EBROKEN || (rc && !inside))
        return rc;
    if (!inside && p->capacity && (rc = conc__pool_reserve(p, deadline)) != 0)
        return rc;
    conc_future *f = conc__future_new(fn, arg, &p->exec, out ? 2 : 1);
    if (!f) {
        if (!inside && p->capacity)
            conc__pool_space_signal(p, 1);
        return CONC_ENOMEM;
    }
    /* Linked to the task submitting it (a reference it holds), so a helper
     * can tell the waiting task's subtree (pool_impl.h, isolation). */
    if ((f->parent = conc__current_task()) != NULL)
        conc_future_retain(f->parent);
    struct conc__pool_task *pt = conc__pool_task(f);
    pt->external = !inside;
    pt->depth = f->parent && conc__is_pool_task(f->parent) ? conc__pool_task(f->parent)->depth + 1 : 0;
    f->group = group;
    if (group)
        conc__task_group_added(f); /* before anyone can run it */
    if (inside) {
        if (conc__deque_push(&w->dq, f) != 0) {
            conc__future_cancel_pending(f); /* tells the group */
            conc__future_free_mem(f);
            return CONC_ENOMEM;
        }
        /* A failed start is no loss here: this worker runs the task after
         * its own if nobody else does, or when it waits for it. */
        conc__pool_wake_worker(p);
    } else {
        conc__inbox_push(&p->inbox, f);
        /* Before the state check below: a worker starts only while the
         * pool runs, so a start that a shutdown stopped is followed by a
         * failed check here, and the task is taken back. */
        int start_rc = conc__pool_wake_worker(p);
        /* A shutdown between our state check and the push may have let
         * every worker exit: take the task back by cancelling it, unless a
         * worker got to it first (the seq_cst push and this load pair with
         * the shutdown's store and the workers' last look at the inbox).
         * The inbox keeps its reference until conc_pool_destroy. */
        if (conc__unlikely(atomic_load_explicit(&p->state, memory_order_seq_cst) !=
                           CONC__POOL_RUNNING) &&
            conc__future_cancel_pending(f)) {
            if (out)
                conc_future_release(f);
            return conc__pool_state_error(p);
        }
        /* No worker could start and none lives: nobody would run it. */
        if (conc__unlikely(start_rc != 0) &&
            atomic_load_explicit(&p->started, memory_order_acquire) == 0 &&
            conc__future_cancel_pending(f)) {
            if (out)
                conc_future_release(f);
            return start_rc;
        }
    }
    if (out)
        *out = f;
    return 0;
}

int conc_pool_submit_timed(conc_pool *p, conc_task_fn fn, void *arg, conc_future **f, int64_t timeout)
{
    return conc__pool_submit(p, fn, arg, timeout, NULL, f);
}

int conc_pool_submit(conc_pool *p, conc_task_fn fn, void *arg, conc_future **f)
{
    return conc__pool_submit(p, fn, arg, CONC_FOREVER, NULL, f);
}

/* ---- shutdown ---- */

/* Cancels every task not started: the submission queue, then whatever the
 * deques hold (stolen out of them, as a thief would). */
static void conc__pool_cancel_pending(conc_pool *p)
{
    conc__pool_drain_inbox(p);
    int started = atomic_load_explicit(&p->started, memory_order_acquire);
    for (int i = 0; i < started; i++) {
        for (;;) {
            bool retry = false;
            conc_future *f = conc__deque_steal(&p->workers[i].dq, &retry);
            if (f) {
                conc__future_cancel_pending(f);
                conc_future_release(f);
            } else if (!retry) {
                break;
            }
        }
    }
}

static bool conc__pool_called_from_inside(conc_pool *p)
{
    struct conc__worker *w = conc__worker_self();
    return w && w->pool == p;
}

/* Stops the pool and, unless timeout is 0, joins the workers by the
 * deadline (CONC__NO_DEADLINE: none). */
static int conc__pool_stop(conc_pool *p, bool cancel_futures, int64_t timeout)
{
    int64_t deadline;
    if (!p)
        return conc__misuse_at(CONC_EINVAL, NULL, "NULL pool");
    int rc = conc__deadline(timeout, &deadline);
    if (rc)
        return rc;
    if (conc__executor_lost(&p->exec))
        return CONC_EBROKEN; /* no workers here to stop or join */
    if (timeout != 0 && conc__pool_called_from_inside(p))
        return conc__misuse_at(CONC_EDEADLK, NULL,
                               "waiting for the pool from one of its own tasks");
    uint32_t running = CONC__POOL_RUNNING;
    atomic_compare_exchange_strong_explicit(&p->state, &running, CONC__POOL_SHUTDOWN,
                                            memory_order_acq_rel, memory_order_relaxed);
    if (cancel_futures)
        conc__pool_cancel_pending(p);
    conc__pool_wake_everyone(p);
    if (timeout == 0)
        return 0;
    rc = 0;
    if (deadline == CONC__NO_DEADLINE)
        conc_mutex_lock(&p->join_lock);
    else if ((rc = conc_mutex_lock_timed(&p->join_lock, timeout)) != 0)
        return CONC_ETIMEDOUT; /* another thread is joining them */
    if (!atomic_load_explicit(&p->joined, memory_order_relaxed)) {
        rc = conc__pool_join(p, deadline);
        if (rc == 0)
            atomic_store_explicit(&p->joined, true, memory_order_relaxed);
    }
    conc_mutex_unlock(&p->join_lock);
    return rc;
}

int conc_pool_shutdown(conc_pool *p, bool cancel_futures)
{
    return conc__pool_stop(p, cancel_futures, CONC_FOREVER);
}

int conc_pool_shutdown_timed(conc_pool *p, bool cancel_futures, int64_t timeout)
{
    return conc__pool_stop(p, cancel_futures, timeout);
}

/* An inherited pool (a forked child's) is not freed: its workers, which
 * own parts of it, did not come along; the child's exit reclaims it. */
int conc_pool_destroy(conc_pool *p)
{
    if (!p)
        return CONC__MISUSE(CONC_EINVAL, "NULL pool");
    if (conc__executor_lost(&p->exec))
        return CONC_EBROKEN;
    int rc = conc_pool_shutdown(p, false);
    if (rc)
        return rc;
    conc__pool_exit_remove(p);
    conc__dump_source_remove(&p->dump);
    conc__pool_free(p);
    return 0;
}
