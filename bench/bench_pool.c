/* Thread-pool cases: pool.submit_wait, pool.fib, pool.fib_fine, pool.map and
 * pool.idle_cpu. Every row has BENCH_POOL_THREADS (2) threads doing work:
 * conc's pool and GLib's GThreadPool with 2 workers (the caller only submits
 * and waits), TBB's arena and OpenMP's team of 2 counting the caller, which
 * works in them (the TBB rows are in bench_pool_tbb.cpp). Pools are created
 * and have run a task before any window opens.
 *
 * submit_wait: 1M empty tasks submitted from the main thread, then all waited
 *   for: conc keeps every future and waits for and releases each in order;
 *   GLib counts the tasks down (below); TBB runs them into one task_group and
 *   waits once. One batch; tasks/s.
 * fib, fib_fine: fib(32) with a task for every call with n > 16 (n > 8),
 *   plain recursion below (bench_fib_seq, one copy for every row); fork-join:
 *   spawn fib(n-1), compute fib(n-2) inline, wait for the child. Runs repeated
 *   for about p->seconds; ms per fib(32); every result checked.
 * map: 1M items (bench_map_item: a few multiply-adds), chunks of 1024; the
 *   caller takes the results in index order and sums them; the order (conc)
 *   and every run's sum are checked. OpenMP and TBB (context rows) fill a
 *   results array in parallel, then the caller sums it in order. Runs
 *   repeated for about p->seconds; items/s.
 * idle_cpu: a pool of 2 runs one task, then sits idle; the process's CPU
 *   time (getrusage) over the idle window: ms per 2 s.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <conc/future.h>
#include <conc/pool.h>
#include <glib.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

/* ---- shared by every row (declared in bench.h) ---- */

long bench_pool_tasks(const struct bench_params *p)
{
    return p->quick ? 300000 : 1000000;
}

/* Aligned: every fib row spends 90% of its time here, and where an edit
 * elsewhere in this file happened to move it changed every row's time by
 * 20% alike (measured: 0xcd40 against 0xd260 on an AMD EPYC). */
__attribute__((noinline, aligned(64))) int64_t bench_fib_seq(int n)
{
    return n < 2 ? n : bench_fib_seq(n - 1) + bench_fib_seq(n - 2);
}

int bench_fib_timed(const struct bench_params *p, struct bench_result *r, int cutoff,
                    int64_t (*fib)(void *ctx, int n, int cutoff), void *ctx)
{
    int64_t got = fib(ctx, BENCH_FIB_N, cutoff); /* warm-up: threads started, memory touched */
    int runs = 0;
    struct bench_window w;
    bench_window_start(&w);
    while (got == BENCH_FIB_RESULT &&
           (runs < 3 || bench_now_ns() - w.wall0 < (int64_t)(p->seconds * 1e9))) {
        got = fib(ctx, BENCH_FIB_N, cutoff);
        runs++;
    }
    bench_window_stop(&w);
    if (got != BENCH_FIB_RESULT) {
        fprintf(stderr, "fib(%d) gave %lld, not %d\n", BENCH_FIB_N, (long long)got,
                BENCH_FIB_RESULT);
        return 1;
    }
    r->value = (double)w.wall_ns / 1e6 / runs;
    r->cpu_pct = bench_window_cpu_pct(&w);
    return 0;
}

int bench_map_timed(const struct bench_params *p, struct bench_result *r,
                    int (*map)(void *ctx, long n, uint64_t *sum), void *ctx)
{
    long n = bench_pool_tasks(p), runs = 0;
    uint64_t expected = 0, sum = 0;
    for (long i = 0; i < n; i++)
        expected += bench_map_item((uint64_t)i);
    int bad = map(ctx, n, &sum) != 0 || sum != expected; /* warm-up */
    struct bench_window w;
    bench_window_start(&w);
    while (!bad && (runs < 1 || bench_now_ns() - w.wall0 < (int64_t)(p->seconds * 1e9))) {
        bad = map(ctx, n, &sum) != 0 || sum != expected;
        runs++;
    }
    bench_window_stop(&w);
    if (bad) {
        fprintf(stderr, "map: a run failed or summed to %llu, not %llu\n",
                (unsigned long long)sum, (unsigned long long)expected);
        return 1;
    }
    r->value = (double)n * (double)runs * 1e9 / (double)w.wall_ns;
    r->cpu_pct = bench_window_cpu_pct(&w);
    return 0;
}

static int64_t rusage_cpu_ns(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return ((int64_t)u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1000;
}

double bench_idle_cpu_ms(const struct bench_params *p)
{
    double seconds = p->quick ? 0.5 : 2.0;
    struct timespec ts = {.tv_sec = (time_t)seconds,
                          .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
    int64_t cpu0 = rusage_cpu_ns(), wall0 = bench_now_ns();
    while (nanosleep(&ts, &ts) != 0)
        ;
    int64_t cpu = rusage_cpu_ns() - cpu0, wall = bench_now_ns() - wall0;
    return (double)cpu / 1e6 * 2e9 / (double)wall; /* ms per 2 s */
}

/* ---- conc ---- */

static int empty_task(void *arg, conc_result *out)
{
    (void)arg;
    (void)out;
    return 0;
}

/* A pool of 2 workers that has run one task: its threads are up. */
static conc_pool *conc_pool_of(int workers)
{
    conc_pool *pool;
    conc_future *f;
    if (conc_pool_create(&pool, &(conc_pool_opts){.max_workers = (size_t)workers}) != 0)
        return NULL;
    int bad = conc_pool_workers(pool) != workers ||
              conc_pool_submit(pool, empty_task, NULL, &f) != 0;
    if (!bad) {
        bad = conc_future_result(f, NULL) != 0;
        conc_future_release(f);
    }
    if (bad) {
        conc_pool_destroy(pool);
        return NULL;
    }
    return pool;
}

static conc_pool *conc_pool_started(void)
{
    return conc_pool_of(BENCH_POOL_THREADS);
}

static int conc_submit_wait(const struct bench_params *p, struct bench_result *r)
{
    long n = bench_pool_tasks(p), submitted;
    conc_future **fs = malloc((size_t)n * sizeof *fs);
    conc_pool *pool = fs ? conc_pool_started() : NULL;
    if (!pool) {
        free(fs);
        return 1;
    }
    int bad = 0;
    struct bench_window w;
    bench_window_start(&w);
    for (submitted = 0; submitted < n && !bad; submitted++)
        bad = conc_pool_submit(pool, empty_task, NULL, &fs[submitted]) != 0;
    submitted -= bad; /* the failed submit left no future */
    for (long i = 0; i < submitted; i++) {
        bad |= conc_future_wait(fs[i]) != 0;
        conc_future_release(fs[i]);
    }
    bench_window_stop(&w);
    bad |= conc_pool_destroy(pool) != 0;
    free(fs);
    if (bad)
        return 1;
    r->value = (double)n * 1e9 / (double)w.wall_ns;
    r->cpu_pct = bench_window_cpu_pct(&w);
    return 0;
}

/* fork-join: fib(n-1) is a task, fib(n-2) runs inline; -1 on a failure. */
static int64_t conc_fib(conc_pool *pool, int n, int cutoff);

struct fib_arg {
    conc_pool *pool;
    int n, cutoff;
};

static int fib_task(void *arg, conc_result *out)
{
    struct fib_arg *a = arg;
    out->value = conc_fib(a->pool, a->n, a->cutoff);
    return out->value < 0;
}

static int64_t conc_fib(conc_pool *pool, int n, int cutoff)
{
    if (n <= cutoff)
        return bench_fib_seq(n);
    struct fib_arg child = {pool, n - 1, cutoff}; /* lives until the child is waited for */
    conc_future *f;
    if (conc_pool_submit(pool, fib_task, &child, &f) != 0)
        return -1;
    int64_t b = conc_fib(pool, n - 2, cutoff);
    conc_result a;
    int bad = conc_future_wait(f) != 0 || conc_future_result(f, &a) != 0;
    conc_future_release(f);
    return bad || a.value < 0 || b < 0 ? -1 : a.value + b;
}

/* The whole of fib(n) is one task submitted from outside; the caller waits. */
static int64_t conc_fib_root(void *ctx, int n, int cutoff)
{
    struct fib_arg root = {ctx, n, cutoff};
    conc_future *f;
    conc_result res = {0};
    if (conc_pool_submit(ctx, fib_task, &root, &f) != 0)
        return -1;
    int bad = conc_future_result(f, &res) != 0;
    conc_future_release(f);
    return bad ? -1 : res.value;
}

static int conc_fib_case(const struct bench_params *p, struct bench_result *r, int cutoff)
{
    conc_pool *pool = conc_pool_started();
    if (!pool)
        return 1;
    int rc = bench_fib_timed(p, r, cutoff, conc_fib_root, pool);
    return conc_pool_destroy(pool) != 0 ? 1 : rc;
}

static int conc_fib_coarse(const struct bench_params *p, struct bench_result *r)
{
    return conc_fib_case(p, r, BENCH_FIB_CUTOFF);
}

static int conc_fib_fine(const struct bench_params *p, struct bench_result *r)
{
    return conc_fib_case(p, r, BENCH_FIB_FINE_CUTOFF);
}

static int map_item_fn(void *arg, size_t index, conc_result *out)
{
    (void)arg;
    out->value = (int64_t)bench_map_item(index);
    return 0;
}

/* One map over [0, n): results taken in index order, each checked. */
static int conc_map_run(void *ctx, long n, uint64_t *sum)
{
    conc_map *m;
    size_t taken = 0;
    *sum = 0;
    if (conc_map_create(&m, ctx, map_item_fn, NULL, (size_t)n,
                        &(conc_map_opts){.chunksize = BENCH_MAP_CHUNK}) != 0)
        return 1;
    int bad = 0;
    for (;;) {
        size_t index;
        int status;
        conc_result out;
        int rc = conc_map_next(m, &index, &status, &out);
        if (rc == CONC_ENOENT)
            break;
        if (rc != 0 || status != 0 || index != taken) {
            bad = 1;
            break;
        }
        *sum += (uint64_t)out.value;
        taken++;
    }
    return conc_map_destroy(m) != 0 || bad || taken != (size_t)n;
}

static int conc_map_case(const struct bench_params *p, struct bench_result *r)
{
    conc_pool *pool = conc_pool_started();
    if (!pool)
        return 1;
    int rc = bench_map_timed(p, r, conc_map_run, pool);
    return conc_pool_destroy(pool) != 0 ? 1 : rc;
}

/* conc:parallel_for, what the openmp and tbb rows do: one parallel for
 * fills the results array in pieces of at most BENCH_MAP_CHUNK, then the
 * caller sums it in index order. The caller works in its parallel for, as
 * OpenMP's and TBB's do, so its pool has one worker fewer: two threads in
 * all, as their team and arena of 2. */
struct conc_pfor_ctx {
    conc_pool *pool;
    uint64_t *results; /* touched by the warm-up run */
};

static int conc_pfor_fill(void *arg, size_t begin, size_t end)
{
    uint64_t *results = arg;
    for (size_t i = begin; i < end; i++)
        results[i] = bench_map_item((uint64_t)i);
    return 0;
}

static int conc_pfor_run(void *ctx, long n, uint64_t *sum)
{
    struct conc_pfor_ctx *c = ctx;
    int rc = conc_parallel_for(c->pool, 0, (size_t)n, conc_pfor_fill, c->results,
                               &(conc_for_opts){.grain = BENCH_MAP_CHUNK,
                                                .schedule = CONC_FOR_DYNAMIC});
    uint64_t s = 0;
    for (long i = 0; i < n; i++)
        s += c->results[i];
    *sum = s;
    return rc;
}

static int conc_pfor_case(const struct bench_params *p, struct bench_result *r)
{
    struct conc_pfor_ctx c = {conc_pool_of(BENCH_POOL_THREADS - 1),
                              malloc((size_t)bench_pool_tasks(p) * sizeof(uint64_t))};
    if (!c.pool || !c.results)
        return 1;
    int rc = bench_map_timed(p, r, conc_pfor_run, &c);
    free(c.results);
    return conc_pool_destroy(c.pool) != 0 ? 1 : rc;
}

static int conc_idle_cpu(const struct bench_params *p, struct bench_result *r)
{
    conc_pool *pool = conc_pool_started();
    if (!pool)
        return 1;
    r->value = bench_idle_cpu_ms(p);
    return conc_pool_destroy(pool) != 0;
}

/* ---- GLib: GThreadPool, 2 threads, not exclusive ----
 *
 * GThreadPool has no futures: a GLib user who must know when a batch is done
 * counts the tasks down — the last one (g_atomic_int_dec_and_test) sets a
 * flag under a GMutex and signals a GCond the submitter waits on. The pool
 * stays usable (g_thread_pool_free(pool, FALSE, TRUE) would also wait, but
 * only by destroying the pool). */

struct glib_batch {
    gint left;
    gboolean done;
    GMutex m;
    GCond c;
};

static void glib_task(gpointer data, gpointer user)
{
    struct glib_batch *b = user;
    (void)data;
    if (g_atomic_int_dec_and_test(&b->left)) {
        g_mutex_lock(&b->m);
        b->done = TRUE;
        g_cond_signal(&b->c);
        g_mutex_unlock(&b->m);
    }
}

/* Pushes n tasks (GThreadPool's data cannot be NULL) and waits for all. */
static int glib_batch_run(GThreadPool *pool, struct glib_batch *b, long n)
{
    g_atomic_int_set(&b->left, (gint)n);
    b->done = FALSE;
    for (long i = 0; i < n; i++)
        if (!g_thread_pool_push(pool, GSIZE_TO_POINTER(1), NULL))
            return 1;
    g_mutex_lock(&b->m);
    while (!b->done)
        g_cond_wait(&b->c, &b->m);
    g_mutex_unlock(&b->m);
    return 0;
}

static GThreadPool *glib_pool_started(struct glib_batch *b)
{
    g_mutex_init(&b->m);
    g_cond_init(&b->c);
    GThreadPool *pool = g_thread_pool_new(glib_task, b, BENCH_POOL_THREADS, FALSE, NULL);
    if (pool && glib_batch_run(pool, b, BENCH_POOL_THREADS) != 0) {
        g_thread_pool_free(pool, FALSE, TRUE);
        return NULL;
    }
    return pool;
}

static int glib_submit_wait(const struct bench_params *p, struct bench_result *r)
{
    long n = bench_pool_tasks(p);
    struct glib_batch b;
    GThreadPool *pool = glib_pool_started(&b);
    if (!pool)
        return 1;
    struct bench_window w;
    bench_window_start(&w);
    int bad = glib_batch_run(pool, &b, n);
    bench_window_stop(&w);
    g_thread_pool_free(pool, FALSE, TRUE);
    if (bad)
        return 1;
    r->value = (double)n * 1e9 / (double)w.wall_ns;
    r->cpu_pct = bench_window_cpu_pct(&w);
    return 0;
}

static int glib_idle_cpu(const struct bench_params *p, struct bench_result *r)
{
    struct glib_batch b;
    GThreadPool *pool = glib_pool_started(&b);
    if (!pool)
        return 1;
    r->value = bench_idle_cpu_ms(p);
    g_thread_pool_free(pool, FALSE, TRUE);
    return 0;
}

/* ---- OpenMP: tasks in a parallel region of 2 (the caller is one) ---- */

static int64_t omp_fib(int n, int cutoff)
{
    if (n <= cutoff)
        return bench_fib_seq(n);
    int64_t a, b;
#pragma omp task shared(a) firstprivate(n, cutoff)
    a = omp_fib(n - 1, cutoff);
    b = omp_fib(n - 2, cutoff);
#pragma omp taskwait
    return a + b;
}

static int64_t omp_fib_root(void *ctx, int n, int cutoff)
{
    int64_t result = -1;
    (void)ctx;
#pragma omp parallel num_threads(BENCH_POOL_THREADS)
#pragma omp single
    result = omp_get_num_threads() == BENCH_POOL_THREADS ? omp_fib(n, cutoff) : -1;
    return result;
}

static int omp_fib_coarse(const struct bench_params *p, struct bench_result *r)
{
    return bench_fib_timed(p, r, BENCH_FIB_CUTOFF, omp_fib_root, NULL);
}

static int omp_fib_fine(const struct bench_params *p, struct bench_result *r)
{
    return bench_fib_timed(p, r, BENCH_FIB_FINE_CUTOFF, omp_fib_root, NULL);
}

/* One parallel for into the results array (ctx, touched by the warm-up run),
 * then the caller sums it in index order. */
static int omp_map_run(void *ctx, long n, uint64_t *sum)
{
    uint64_t *results = ctx, s = 0;
    int team = 0;
#pragma omp parallel num_threads(BENCH_POOL_THREADS)
    {
#pragma omp single nowait
        team = omp_get_num_threads();
#pragma omp for schedule(dynamic, BENCH_MAP_CHUNK)
        for (long i = 0; i < n; i++)
            results[i] = bench_map_item((uint64_t)i);
    }
    for (long i = 0; i < n; i++)
        s += results[i];
    *sum = s;
    return team != BENCH_POOL_THREADS;
}

static int omp_map(const struct bench_params *p, struct bench_result *r)
{
    uint64_t *results = malloc((size_t)bench_pool_tasks(p) * sizeof *results);
    if (!results)
        return 1;
    int rc = bench_map_timed(p, r, omp_map_run, results);
    free(results);
    return rc;
}

/* ---- the cases ---- */

/* clang-format off */
#define PYTHON {"python", NULL}
#define END {0}

static const struct bench_impl submit_wait_impls[] = {
    {"conc", conc_submit_wait}, {"glib", glib_submit_wait}, {"tbb", bench_tbb_submit_wait},
    PYTHON, END};
static const struct bench_impl fib_impls[] = {
    {"conc", conc_fib_coarse}, {"openmp", omp_fib_coarse}, {"tbb", bench_tbb_fib}, END};
static const struct bench_impl fib_fine_impls[] = {
    {"conc", conc_fib_fine}, {"openmp", omp_fib_fine}, {"tbb", bench_tbb_fib_fine}, END};
static const struct bench_impl map_impls[] = {
    {"conc", conc_map_case}, {"conc:parallel_for", conc_pfor_case}, {"openmp", omp_map}, {"tbb", bench_tbb_map}, PYTHON, END};
static const struct bench_impl idle_cpu_impls[] = {
    {"conc", conc_idle_cpu}, {"glib", glib_idle_cpu}, {"tbb", bench_tbb_idle_cpu}, END};
/* clang-format on */

const struct bench_case bench_pool_submit_wait = {
    "pool.submit_wait", "tasks/s",
    "1M empty tasks submitted from the main thread, then all waited for; 2 workers (TBB: the "
    "caller and 1). conc waits for each future; glib counts down to a GCond; tbb waits its "
    "task_group once; python: 100k, ThreadPoolExecutor",
    BENCH_POOL_THREADS, submit_wait_impls};
const struct bench_case bench_pool_fib = {
    "pool.fib", "ms",
    "fib(32), a task for every call with n > 16 (fork fib(n-1), fib(n-2) inline, join); 2 "
    "threads (OpenMP, TBB: counting the caller); result checked",
    BENCH_POOL_THREADS, fib_impls};
const struct bench_case bench_pool_fib_fine = {
    "pool.fib_fine", "ms",
    "fib(32), a task for every call with n > 8 (fork fib(n-1), fib(n-2) inline, join); 2 "
    "threads (OpenMP, TBB: counting the caller); result checked",
    BENCH_POOL_THREADS, fib_fine_impls};
const struct bench_case bench_pool_map = {
    "pool.map", "items/s",
    "1M tiny items (4 multiply-adds), chunks of 1024, results taken in index order and summed; "
    "2 workers. openmp/tbb fill an array then sum it; python: 100k, executor.map (ignores "
    "chunksize)",
    BENCH_POOL_THREADS, map_impls};
const struct bench_case bench_pool_idle_cpu = {
    "pool.idle_cpu", "ms",
    "CPU time of the process while a pool of 2 that has run one task sits idle for 2 s "
    "(getrusage); conc's ceiling: 20 ms (1% of a core)",
    BENCH_POOL_THREADS, idle_cpu_impls};
