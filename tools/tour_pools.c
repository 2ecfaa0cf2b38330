/* Chapter "pools": a thread pool and its futures, measured.
 *
 * Five demonstrations, each checked as well as measured:
 *   1. cost: NTINY tiny tasks run on a new thread each (start + join), on a
 *      pool one at a time (submit + result), and on a pool all at once
 *      (submit them all, then collect); every result is checked;
 *   2. CPU-bound: the same prime count (calibrated to about CPU_TARGET_MS on
 *      one thread, cut in NBLOCKS tasks) on pools of 1, 2, ... workers up to
 *      the CPU count, then twice that: the speed-up stops at the cores;
 *      every run must find the same number of primes;
 *   3. I/O-bound: NIO tasks that each sleep IO_MS (a blocking call) on 1,
 *      cpus, 8 and 32 workers: waiting needs no core, so workers beyond the
 *      cores still help; every task's result is checked;
 *   4. fork-join: fib(FIB_N) by tasks that submit a child and wait for it,
 *      on a pool of ONE worker. It must finish (the top-level wait has a
 *      generous deadline so that a broken pool cannot hang the tour), give
 *      fib(FIB_N), and every task must have run on that one worker thread;
 *      how many tasks were waiting at once on it is shown;
 *   5. as_completed: tasks of different lengths submitted in one order come
 *      back shortest first; every task must be yielded exactly once, and be
 *      done when yielded.
 * Speeds are printed and compared, never checked.
 */
#include "tour.h"

#include <conc/conc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>

#define NTINY 2000
#define NBLOCKS 64
#define CPU_TARGET_MS 120
#define NIO 32
#define IO_MS 4
#define FIB_N 25
#define FIB_CUTOFF 12 /* below it a task computes fib itself */
#define MAX_ROWS 12

static int64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * CONC_NSEC_PER_SEC +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * CONC_NSEC_PER_USEC;
}

/* Submits fn(arg(i)) for i in [0, n) into fs. On an error, releases the
 * futures already made and returns it. */
static int submit_all(conc_pool *pool, conc_task_fn fn, void *(*arg)(int i), int n,
                      conc_future **fs)
{
    for (int i = 0; i < n; i++) {
        int rc = conc_pool_submit(pool, fn, arg(i), &fs[i]);
        if (rc != 0) {
            while (i-- > 0)
                conc_future_release(fs[i]);
            return rc;
        }
    }
    return 0;
}

/* Collects every result into values (may be NULL) and releases every future.
 * Returns the first status that was not 0. */
static int collect_all(conc_future **fs, int n, int64_t *values)
{
    int first = 0;
    for (int i = 0; i < n; i++) {
        conc_result r = {0};
        int st = conc_future_result(fs[i], &r);
        first = first ? first : st;
        if (values)
            values[i] = r.value;
        conc_future_release(fs[i]);
    }
    return first;
}

static void *index_arg(int i)
{
    return (void *)(intptr_t)i;
}

/* ------------------------------------------------- 1. a thread per task? */

static int tiny_thread(void *arg)
{
    return 2 * (int)(intptr_t)arg + 1;
}

static int tiny_task(void *arg, conc_result *out)
{
    out->value = 2 * (intptr_t)arg + 1;
    return 0;
}

/* The results of tiny task i are 2i + 1: their sum over NTINY is NTINY^2. */
#define TINY_SUM ((int64_t)NTINY * NTINY)

static int tiny_threads(int64_t *ns, int64_t *sum)
{
    int64_t t0 = conc_now_ns();
    for (int i = 0; i < NTINY; i++) {
        conc_thread *t;
        int st = 0, rc = conc_thread_create(&t, tiny_thread, index_arg(i), NULL);
        if (rc != 0)
            return rc;
        rc = conc_thread_join(t, &st);
        conc_thread_destroy(t);
        if (rc != 0)
            return rc;
        *sum += st;
    }
    *ns = conc_now_ns() - t0;
    return 0;
}

static int tiny_pool_one_by_one(conc_pool *pool, int64_t *ns, int64_t *sum)
{
    int64_t t0 = conc_now_ns();
    for (int i = 0; i < NTINY; i++) {
        conc_future *f;
        conc_result r = {0};
        int rc = conc_pool_submit(pool, tiny_task, index_arg(i), &f);
        if (rc != 0)
            return rc;
        rc = conc_future_result(f, &r);
        conc_future_release(f);
        if (rc != 0)
            return rc;
        *sum += r.value;
    }
    *ns = conc_now_ns() - t0;
    return 0;
}

static int tiny_pool_all(conc_pool *pool, int64_t *ns, int64_t *sum)
{
    static conc_future *fs[NTINY];
    static int64_t values[NTINY];
    int64_t t0 = conc_now_ns();
    int rc = submit_all(pool, tiny_task, index_arg, NTINY, fs);
    if (rc == 0)
        rc = collect_all(fs, NTINY, values);
    *ns = conc_now_ns() - t0;
    for (int i = 0; i < NTINY && rc == 0; i++)
        *sum += values[i];
    return rc;
}

static int show_cost(void)
{
    int64_t ns[3] = {0}, sum[3] = {0}, create_ns;
    tour_progress("a new thread for each of %d tiny tasks", NTINY);
    int rc = tiny_threads(&ns[0], &sum[0]);
    if (rc != 0)
        return rc;
    tour_progress("the same tasks on a pool");
    int64_t t0 = conc_now_ns();
    conc_pool *pool;
    if ((rc = conc_pool_create(&pool, NULL)) != 0)
        return rc;
    create_ns = conc_now_ns() - t0;
    rc = tiny_pool_one_by_one(pool, &ns[1], &sum[1]);
    if (rc == 0)
        rc = tiny_pool_all(pool, &ns[2], &sum[2]);
    int workers = conc_pool_workers(pool);
    t0 = conc_now_ns();
    int drc = conc_pool_destroy(pool);
    create_ns += conc_now_ns() - t0;
    if (rc != 0 || drc != 0)
        return rc ? rc : drc;
    tour_progress_done();

    static const char *const how[] = {"a new thread each (start + join)",
                                      "pool, one at a time (submit + result)",
                                      "pool, all submitted, then collected"};
    printf("  %d tiny tasks (each returns 2i + 1)       µs per task   speed-up\n", NTINY);
    for (int i = 0; i < 3; i++)
        printf("  %-40s %11.2f %9.1fx\n", how[i], (double)ns[i] / NTINY / 1e3,
               (double)ns[0] / (double)ns[i]);
    printf("  creating and destroying the pool of %d workers, once: %.0f µs\n", workers,
           (double)create_ns / 1e3);
    bool ok = sum[0] == TINY_SUM && sum[1] == TINY_SUM && sum[2] == TINY_SUM;
    printf("\n  every way got all %d results right: %s\n", NTINY, ok ? "yes" : "NO");
    printf("  A thread per task pays for a clone, a stack and a join each time; a pool\n"
           "  task is a small allocation and a queue push, run by a worker that is\n"
           "  already there. Submitting many before collecting lets the workers run\n"
           "  them back to back instead of waiting for the next submit.\n\n");
    return ok ? 0 : CONC_EIO;
}

/* ------------------------------------------------------- 2. CPU-bound */

static uint32_t cpu_lo, cpu_block;

static int prime_block(void *arg, conc_result *out)
{
    uint32_t lo = cpu_lo + (uint32_t)(intptr_t)arg * cpu_block;
    out->value = (int64_t)tour_count_primes(lo, lo + cpu_block);
    return 0;
}

struct run {
    int workers;
    int64_t wall_ns, cpu_ns;
    int64_t total; /* the sum of the results */
};

/* Runs n tasks fn(i) on a fresh pool of r->workers; fills r. */
static int run_on_pool(struct run *r, conc_task_fn fn, int n)
{
    static conc_future *fs[NBLOCKS > NIO ? NBLOCKS : NIO];
    static int64_t values[NBLOCKS > NIO ? NBLOCKS : NIO];
    conc_pool *pool;
    conc_pool_opts opts = {.max_workers = r->workers};
    int rc = conc_pool_create(&pool, &opts);
    if (rc != 0)
        return rc;
    int64_t c0 = cpu_ns(), t0 = conc_now_ns();
    rc = submit_all(pool, fn, index_arg, n, fs);
    if (rc == 0)
        rc = collect_all(fs, n, values);
    r->wall_ns = conc_now_ns() - t0;
    r->cpu_ns = cpu_ns() - c0;
    r->total = 0;
    for (int i = 0; i < n; i++)
        r->total += values[i];
    int drc = conc_pool_destroy(pool);
    return rc ? rc : drc;
}

/* 1, 2, 3, ... up to cpus (powers of two past 8), then 2 x cpus. */
static int cpu_worker_counts(int cpus, int *w)
{
    int n = 0;
    for (int k = 1; k <= cpus && n < MAX_ROWS - 1; k = k < 8 ? k + 1 : k * 2)
        w[n++] = k;
    if (w[n - 1] != cpus)
        w[n++] = cpus;
    w[n++] = 2 * cpus;
    return n;
}

static void print_runs(const struct run *r, int n, const char *extra_head)
{
    printf("  %8s %9s %9s %9s%s\n", "workers", "wall ms", "CPU ms", "speed-up", extra_head);
    for (int i = 0; i < n; i++)
        printf("  %8d %9.1f %9.1f %8.2fx\n", r[i].workers, tour_ms(r[i].wall_ns),
               tour_ms(r[i].cpu_ns), (double)r[0].wall_ns / (double)r[i].wall_ns);
}

static int show_cpu_bound(int cpus)
{
    tour_progress("calibrating the job size");
    cpu_lo = 1000000;
    uint32_t span = tour_prime_span(cpu_lo, CONC_MSEC(CPU_TARGET_MS), 100000000u);
    cpu_block = span / NBLOCKS ? span / NBLOCKS : 1;
    struct run r[MAX_ROWS];
    int w[MAX_ROWS], n = cpu_worker_counts(cpus, w);
    bool same = true;
    for (int i = 0; i < n; i++) {
        tour_progress("counting primes on %d worker%s", w[i], w[i] == 1 ? "" : "s");
        r[i].workers = w[i];
        int rc = run_on_pool(&r[i], prime_block, NBLOCKS);
        if (rc != 0)
            return rc;
        same = same && r[i].total == r[0].total;
    }
    tour_progress_done();
    printf("  CPU-bound: %d tasks counting the primes in [%u, %u)\n\n", NBLOCKS, cpu_lo,
           cpu_lo + NBLOCKS * cpu_block);
    print_runs(r, n, "");
    int best = 0;
    for (int i = 1; i < n; i++)
        best = r[i].wall_ns < r[best].wall_ns ? i : best;
    printf("\n  every run found the same %lld primes: %s\n", (long long)r[0].total,
           same ? "yes" : "NO");
    double up = (double)r[0].wall_ns / (double)r[best].wall_ns;
    if (cpus < 2)
        printf("  This process may use 1 CPU: more workers can only take turns on it, and\n"
               "  no pool size gives a speed-up here.\n\n");
    else if (up >= 1.3)
        printf("  The speed-up grows with the workers up to the %d cores, then stops: a\n"
               "  worker beyond the cores has none of its own and only takes turns (best\n"
               "  here: %.2fx on %d). The CPU time stays the same: the work does not grow,\n"
               "  it spreads.\n\n",
               cpus, up, r[best].workers);
    else
        printf("  Only %.2fx at best this time: other programs were using the cores while\n"
               "  we measured. On a quiet machine the speed-up grows up to the %d cores,\n"
               "  then stops.\n\n",
               up, cpus);
    return same ? 0 : CONC_EIO;
}

/* ------------------------------------------------------- 3. I/O-bound */

static int io_task(void *arg, conc_result *out)
{
    out->value = (intptr_t)arg; /* checked: task i returns i */
    return conc_sleep(CONC_MSEC(IO_MS));
}

static int show_io_bound(int cpus)
{
    int want[] = {1, cpus, 8, NIO}, w[4], n = 0;
    for (int i = 0; i < 4; i++) /* ascending, no repeats */
        if (n == 0 || want[i] > w[n - 1])
            w[n++] = want[i];
    struct run r[4];
    for (int i = 0; i < n; i++) {
        tour_progress("%d blocking tasks on %d worker%s", NIO, w[i], w[i] == 1 ? "" : "s");
        r[i].workers = w[i];
        int rc = run_on_pool(&r[i], io_task, NIO);
        if (rc != 0)
            return rc;
    }
    tour_progress_done();
    printf("  I/O-bound: %d tasks that each block %d ms (a sleep standing in for a network\n"
           "  call)\n\n",
           NIO, IO_MS);
    print_runs(r, n, "");
    bool ok = true;
    for (int i = 0; i < n; i++)
        ok = ok && r[i].total == (int64_t)NIO * (NIO - 1) / 2;
    int best = 0;
    for (int i = 1; i < n; i++)
        best = r[i].wall_ns < r[best].wall_ns ? i : best;
    printf("\n  every task returned its own result: %s\n", ok ? "yes" : "NO");
    printf("  A blocked worker uses no core, so %d workers wait at once on %d core%s:\n"
           "  %.1fx faster than 1, for about the same CPU time. conc sizes a pool for\n"
           "  computing (one worker per CPU) — give waiting work more workers, as Python's\n"
           "  ThreadPoolExecutor does by default (min(32, cpus + 4)).\n\n",
           r[best].workers, cpus, cpus == 1 ? "" : "s",
           (double)r[0].wall_ns / (double)r[best].wall_ns);
    return ok ? 0 : CONC_EIO;
}

/* ------------------------------------------------------- 4. fork-join */

struct fib {
    conc_pool *pool;
    int n;
};

static atomic_long fib_tasks;      /* tasks submitted */
static atomic_int fib_waiting;     /* tasks now waiting for a child */
static atomic_int fib_waiting_max; /* the most at once */
static atomic_long fib_elsewhere;  /* tasks that ran on another thread than the first */
static _Atomic int64_t fib_tid;    /* the thread the first task ran on */

static long fib_serial(int n)
{
    return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

static void note_thread(void)
{
    int64_t me = conc_thread_id(conc_thread_self()), none = 0;
    if (!atomic_compare_exchange_strong(&fib_tid, &none, me) && none != me)
        atomic_fetch_add(&fib_elsewhere, 1);
}

/* fib(n): fork fib(n-1) as a child task, compute fib(n-2) here, join. */
static int fib_task(void *arg, conc_result *out)
{
    struct fib *a = arg;
    note_thread();
    if (a->n < FIB_CUTOFF) {
        out->value = fib_serial(a->n);
        return 0;
    }
    struct fib child = {a->pool, a->n - 1}, here = {a->pool, a->n - 2};
    conc_future *f;
    int rc = conc_pool_submit(a->pool, fib_task, &child, &f);
    if (rc != 0)
        return rc;
    atomic_fetch_add(&fib_tasks, 1);
    conc_result mine = {0}, theirs = {0};
    int rc_here = fib_task(&here, &mine);
    int now = atomic_fetch_add(&fib_waiting, 1) + 1;
    int max = atomic_load(&fib_waiting_max);
    while (now > max && !atomic_compare_exchange_weak(&fib_waiting_max, &max, now))
        ;
    rc = conc_future_result(f, &theirs); /* the worker helps while it waits */
    atomic_fetch_sub(&fib_waiting, 1);
    conc_future_release(f);
    out->value = mine.value + theirs.value;
    return rc ? rc : rc_here;
}

static int show_fork_join(void)
{
    tour_progress("fib(%d) by fork-join on one worker", FIB_N);
    conc_pool *pool;
    conc_pool_opts opts = {.max_workers = 1};
    int rc = conc_pool_create(&pool, &opts);
    if (rc != 0)
        return rc;
    struct fib top = {pool, FIB_N};
    conc_future *f;
    if ((rc = conc_pool_submit(pool, fib_task, &top, &f)) != 0) {
        conc_pool_destroy(pool);
        return rc;
    }
    atomic_fetch_add(&fib_tasks, 1);
    int64_t t0 = conc_now_ns();
    rc = conc_future_wait_timed(f, CONC_SEC(20)); /* far more than it needs */
    int64_t took = conc_now_ns() - t0;
    tour_progress_done();
    if (rc == CONC_ETIMEDOUT) {
        /* The pool cannot be destroyed while its task is stuck: leave it. */
        printf("  BROKEN: fib(%d) on one worker did not finish in 20 s (deadlock?)\n", FIB_N);
        return CONC_EIO;
    }
    conc_result r = {0};
    int st = conc_future_result(f, &r);
    conc_future_release(f);
    int drc = conc_pool_destroy(pool);
    if (rc != 0 || st != 0 || drc != 0)
        return rc ? rc : st ? st : drc;
    long want = fib_serial(FIB_N);
    long tasks = atomic_load(&fib_tasks), elsewhere = atomic_load(&fib_elsewhere);
    printf("  fib(%d) by tasks that each submit a child and wait for it, on a pool of ONE\n"
           "  worker: %lld (right: %ld) in %.1f ms. %ld tasks, all run on that one\n"
           "  worker thread: %s; up to %d of them waited for a child at the same time.\n\n",
           FIB_N, (long long)r.value, want, tour_ms(took), tasks, elsewhere == 0 ? "yes" : "NO",
           atomic_load(&fib_waiting_max));
    printf("  In Python the same code on ThreadPoolExecutor(max_workers=1) hangs for good:\n"
           "  the only worker blocks in f.result() on a child queued behind it. Here a\n"
           "  task that waits on a future lends its worker to the tasks it submitted —\n"
           "  help-while-waiting — so the child runs on the waiting worker; and it runs\n"
           "  only its own subtree, never an unrelated task that might need a lock it holds.\n\n");
    return r.value == want && elsewhere == 0 ? 0 : CONC_EIO;
}

/* ---------------------------------------------------- 5. as_completed */

static const int nap_ms[] = {60, 10, 40, 20, 50, 30};
#define NNAP (int)(sizeof nap_ms / sizeof nap_ms[0])

static int nap_task(void *arg, conc_result *out)
{
    out->value = (intptr_t)arg;
    return conc_sleep(CONC_MSEC(nap_ms[(intptr_t)arg]));
}

/* Yields every future; records the order and when each came. */
static int drain_as_completed(conc_future **fs, int64_t t0, int *order, int64_t *at)
{
    conc_as_completed *it;
    int rc = conc_as_completed_create(&it, fs, NNAP);
    if (rc != 0)
        return rc;
    int k = 0;
    conc_future *f;
    while ((rc = conc_as_completed_next_timed(it, &f, CONC_SEC(10))) == 0) {
        conc_result r = {0};
        bool done = conc_future_done(f) == 1; /* yielded: it must be done */
        int st = conc_future_result(f, &r);
        conc_future_release(f);
        if (st != 0 || !done || k == NNAP || r.value < 0 || r.value >= NNAP) {
            rc = st ? st : CONC_EIO;
            break;
        }
        at[k] = conc_now_ns() - t0;
        order[k++] = (int)r.value;
    }
    int drc = conc_as_completed_destroy(it);
    if (rc == CONC_ENOENT)
        rc = k == NNAP ? 0 : CONC_EIO;
    return rc ? rc : drc;
}

static int show_as_completed(void)
{
    tour_progress("as_completed");
    conc_pool *pool;
    conc_pool_opts opts = {.max_workers = NNAP};
    int rc = conc_pool_create(&pool, &opts);
    if (rc != 0)
        return rc;
    conc_future *fs[NNAP];
    int order[NNAP];
    int64_t at[NNAP], t0 = conc_now_ns();
    rc = submit_all(pool, nap_task, index_arg, NNAP, fs);
    if (rc == 0) {
        rc = drain_as_completed(fs, t0, order, at);
        for (int i = 0; i < NNAP; i++)
            conc_future_release(fs[i]);
    }
    int drc = conc_pool_destroy(pool);
    tour_progress_done();
    if (rc != 0 || drc != 0)
        return rc ? rc : drc;
    int seen[NNAP] = {0};
    for (int k = 0; k < NNAP; k++)
        seen[order[k]]++;
    bool once = true;
    for (int i = 0; i < NNAP; i++)
        once = once && seen[i] == 1;

    printf("  %d tasks submitted in this order, sleeping:", NNAP);
    for (int i = 0; i < NNAP; i++)
        printf(" %d", nap_ms[i]);
    printf(" ms\n\n  %-22s", "as_completed yields");
    for (int k = 0; k < NNAP; k++)
        printf(" %4d ms", nap_ms[order[k]]);
    printf("\n  %-22s", "  at (ms)");
    for (int k = 0; k < NNAP; k++)
        printf(" %7.0f", tour_ms(at[k]));
    /* Waiting on each future in submission order, result i is in hand only
     * once every task before it is done too. */
    int64_t done_at[NNAP], ready = 0;
    for (int k = 0; k < NNAP; k++)
        done_at[order[k]] = at[k];
    printf("\n  %-22s", "in submission order");
    for (int i = 0; i < NNAP; i++)
        printf(" %4d ms", nap_ms[i]);
    printf("\n  %-22s", "  at (ms)");
    for (int i = 0; i < NNAP; i++) {
        ready = done_at[i] > ready ? done_at[i] : ready;
        printf(" %7.0f", tour_ms(ready));
    }
    printf("\n\n  each task yielded exactly once: %s\n", once ? "yes" : "NO");
    printf("  as_completed hands over each result as soon as its task ends: the first\n"
           "  after %.0f ms. Waiting on the futures in submission order (or conc_map, which\n"
           "  keeps index order) holds everything up behind the slowest early task: the\n"
           "  first result there came only after %.0f ms.\n",
           tour_ms(at[0]), tour_ms(done_at[0]));
    return once ? 0 : CONC_EIO;
}

static int pools_run(void)
{
    tour_paragraph("Starting a thread per task pays for a thread per task. A pool starts a few "
                   "worker threads once and feeds them tasks from a queue; each submit hands "
                   "back a future, the task's result-to-be (Python's concurrent.futures: "
                   "ThreadPoolExecutor, submit, Future.result, map, as_completed). First, what "
                   "a task costs each way.");
    int rc = show_cost();
    if (rc != 0)
        return rc;
    int cpus = conc_cpu_count();
    tour_paragraph("How many workers? For computing, one per core: a task that computes keeps "
                   "a core busy, so more workers than cores only take turns. Below, the same "
                   "prime count on pools of growing size.");
    if ((rc = show_cpu_bound(cpus)) != 0)
        return rc;
    tour_paragraph("For waiting it is different: a worker blocked in a read, a query or a "
                   "sleep uses no core at all, so many workers can wait at once on a few "
                   "cores. That is why Python's thread pools help with I/O despite the GIL.");
    if ((rc = show_io_bound(cpus)) != 0)
        return rc;
    tour_paragraph("Fork-join: a task splits its work, submits the pieces to the same pool and "
                   "waits for them. In a plain thread pool that can deadlock — every worker "
                   "waiting on pieces that no free worker is left to run.");
    if ((rc = show_fork_join()) != 0)
        return rc;
    tour_paragraph("Results come in two orders: submission order (collect the futures in a "
                   "loop, or use map) and completion order (as_completed).");
    return show_as_completed();
}

const struct tour_chapter tour_pools = {
    .name = "pools",
    .title = "Pools: reuse threads, get futures back",
    .run = pools_run,
};
