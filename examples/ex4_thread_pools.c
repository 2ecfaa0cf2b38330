/* ex4_thread_pools — pools of worker threads and of worker processes,
 * futures, map, as_completed.
 *
 * ex1 started one thread per job. That costs a thread start per job, and a
 * thousand jobs would mean a thousand threads. A pool starts a few worker
 * threads once and feeds them tasks; each submit hands back a future, a
 * ticket for the task's result. This is Python's concurrent.futures:
 *
 *   Python                                   conc
 *   ex = ThreadPoolExecutor(max_workers=4)   conc_pool_create(&pool, &opts)
 *   f = ex.submit(fn, arg)                   conc_pool_submit(pool, fn, arg, &f)
 *   f.result()                               conc_future_result(f, &res)
 *   ex.map(fn, range(n), chunksize=k)        conc_map_create / conc_map_next
 *   as_completed(fs)                         conc_as_completed_create / _next
 *   ex.shutdown(wait=True)                   conc_pool_destroy(pool)
 *
 *   ex = ProcessPoolExecutor()               conc_procpool_create(&pp, &opts)
 *   f = ex.submit(fn, arg)                   conc_procpool_submit(pp, fn, &arg,
 *                                                                 sizeof arg, &f)
 *
 * The difference you feel first: a task is `int fn(void *arg, conc_result
 * *out)`. It returns a status (0: fine) where Python would raise, and leaves
 * its result in out->value (or a buffer in out->data). And a future is
 * reference counted: submit gives you one reference, which you release.
 * A process pool's task gets a copy of its argument bytes instead of a
 * pointer, `int fn(const void *arg, size_t size, conc_result *out)`, and
 * its future is the same conc_future.
 *
 * The program shows:
 *   1. CPU-bound work (counting primes) serially, on a thread pool and on a
 *      process pool: with no GIL, the threads compute at the same time, one
 *      per core, as the processes do — C needs no processes for speed;
 *   2. I/O-bound work (tasks that block 5 ms, standing in for a network call)
 *      on 1, 4 and 16 workers: a waiting thread uses no core, so more workers
 *      than cores still help — Python's rule for threads, without the GIL;
 *   3. conc_map with a chunksize: the results come back in index order;
 *   4. as_completed: results in the order the tasks finish;
 *   5. fork-join: tasks that submit tasks and wait for them, on ONE worker —
 *      the pattern that deadlocks a Python ThreadPoolExecutor;
 *   6. what processes buy: a task that kills its own worker process fails
 *      its future alone (CONC_EWORKERDIED, with the signal); the tasks
 *      around it complete and the pool, its worker replaced, goes on — where
 *      a crash in a thread takes the whole program down, and Python's
 *      ProcessPoolExecutor breaks for good (BrokenProcessPool).
 *
 * Build and run:  make && build/release/examples/ex4_thread_pools [SPAN]
 * SPAN (default 80000) is how many numbers each prime-counting job checks.
 * Every result is checked; the last line is "ok", and the exit status 0,
 * only if they were all right.
 */
#include <conc/conc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NJOBS 16         /* CPU-bound jobs */
#define PRIME_LO 1000000 /* the jobs cover [PRIME_LO, PRIME_LO + NJOBS * SPAN) */
#define NIO 32           /* I/O-bound tasks */
#define IO_MS 5          /* each blocks this long */
#define NMAP 1000        /* conc_map over 0 .. NMAP-1 */
#define FIB_N 27
#define FIB_CUTOFF 15 /* below it a task computes fib itself: a task must be worth its cost */

static long span = 80000; /* argv[1] */
static int failures;      /* every check that failed */

/* Counts a failure when rc is not 0 (every conc call returns a status). */
static int check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", what, conc_strerror(rc));
        failures++;
    }
    return rc;
}

static double ms_since(int64_t t0)
{
    return (double)(conc_now_ns() - t0) / 1e6;
}

/* ---------------------------------------------------------- 1. CPU-bound */

/* Trial division, in 32 bits: much faster than 64-bit division. */
static bool is_prime(uint32_t x)
{
    if (x < 2)
        return false;
    for (uint32_t d = 2; d * d <= x; d++)
        if (x % d == 0)
            return false;
    return true;
}

/* Job j's numbers: [lo, hi). */
struct range {
    uint32_t lo, hi;
};

static struct range job_range(intptr_t j)
{
    uint32_t lo = PRIME_LO + (uint32_t)j * (uint32_t)span;
    return (struct range){lo, lo + (uint32_t)span};
}

static int64_t count_range(struct range r)
{
    int64_t n = 0;
    for (uint32_t x = r.lo; x < r.hi; x++)
        n += is_prime(x);
    return n;
}

/* A task: counts the primes in job number (intptr_t)arg's range. The count
 * goes in out->value, the status is 0. Python: def count(job): ... return n */
static int count_primes_task(void *arg, conc_result *out)
{
    out->value = count_range(job_range((intptr_t)arg));
    return 0;
}

/* The same job as a process pool task. It runs in a worker process, a fresh
 * image of this program that never ran main: its `span` is still 80000
 * whatever argv said, so the job's range comes in the argument bytes, which
 * the pool copies into the worker (where Python would pickle the arguments). */
static int count_primes_proc_task(const void *arg, size_t size, conc_result *out)
{
    struct range r;
    if (size != sizeof r)
        return CONC_EINVAL;
    memcpy(&r, arg, sizeof r);
    out->value = count_range(r);
    return 0;
}

/* The same jobs on the calling thread, one after another. */
static long count_serially(void)
{
    long total = 0;
    for (intptr_t j = 0; j < NJOBS; j++) {
        conc_result r = {0};
        count_primes_task((void *)j, &r);
        total += (long)r.value;
    }
    return total;
}

/* Waits for each future, adds up the results and releases the futures:
 * Python's sum(f.result() for f in fs). */
static long sum_results(conc_future **fs, int n, const char *what)
{
    long total = 0;
    for (int j = 0; j < n; j++) {
        conc_result r;
        /* Waits until the task is done, then gives its status and result. */
        if (check(conc_future_result(fs[j], &r), what) == 0)
            total += (long)r.value;
        check(conc_future_release(fs[j]), "release"); /* our reference: done with it */
    }
    return total;
}

/* Submits every job, then collects every result: Python's
 *   fs = [ex.submit(count, j) for j in range(NJOBS)]
 *   total = sum(f.result() for f in fs)                                    */
static long count_on_pool(conc_pool *pool)
{
    conc_future *fs[NJOBS];
    int n = 0;
    while (n < NJOBS &&
           check(conc_pool_submit(pool, count_primes_task, (void *)(intptr_t)n, &fs[n]),
                 "submit") == 0)
        n++;
    return sum_results(fs, n, "count_primes_task");
}

/* The same on the process pool: each job's range is copied into its task. */
static long count_on_procpool(conc_procpool *pp)
{
    conc_future *fs[NJOBS];
    int n = 0;
    while (n < NJOBS) {
        struct range r = job_range(n);
        if (check(conc_procpool_submit(pp, count_primes_proc_task, &r, sizeof r, &fs[n]),
                  "procpool submit"))
            break;
        n++;
    }
    return sum_results(fs, n, "count_primes_proc_task");
}

static void cpu_bound(void)
{
    conc_pool *pool;
    conc_procpool *pp;
    /* max_workers 0: one worker per usable CPU, right for CPU-bound work. */
    conc_pool_opts opts = {.max_workers = 0};
    conc_procpool_opts pp_opts = {.max_workers = 0};
    if (check(conc_pool_create(&pool, &opts), "pool create"))
        return;
    /* A process pool starts its workers now: a process start each, paid
     * once (timed apart, as the thread pool's start is not timed either). */
    int64_t t0 = conc_now_ns();
    if (check(conc_procpool_create(&pp, &pp_opts), "procpool create")) {
        check(conc_pool_destroy(pool), "pool destroy");
        return;
    }
    double start_ms = ms_since(t0);
    t0 = conc_now_ns();
    long serial = count_serially();
    double serial_ms = ms_since(t0);
    t0 = conc_now_ns();
    long pooled = count_on_pool(pool);
    double pool_ms = ms_since(t0);
    t0 = conc_now_ns();
    long in_procs = count_on_procpool(pp);
    double procs_ms = ms_since(t0);
    printf("1. CPU-bound: %d jobs counting primes in [%ld, %ld), %d CPUs here\n", NJOBS,
           (long)PRIME_LO, PRIME_LO + NJOBS * span, (int)conc_cpu_count());
    printf("   serially:                         %7.1f ms, %ld primes\n", serial_ms, serial);
    printf("   on a thread pool of %2d workers:   %7.1f ms, %ld primes (speed-up %.2fx)\n",
           (int)conc_pool_workers(pool), pool_ms, pooled, serial_ms / pool_ms);
    printf("   on a process pool of %2d workers:  %7.1f ms, %ld primes (speed-up %.2fx)\n",
           (int)conc_procpool_workers(pp), procs_ms, in_procs, serial_ms / procs_ms);
    printf("   (starting the process pool's workers took %.1f ms, before the clock)\n", start_ms);
    failures += pooled != serial || in_procs != serial;
    check(conc_pool_destroy(pool), "pool destroy"); /* Python: ex.shutdown(wait=True) */
    check(conc_procpool_destroy(pp), "procpool destroy");
}

/* ---------------------------------------------------------- 2. I/O-bound */

/* Stands in for a blocking call (a download, a database query): the thread
 * waits and uses no CPU. Returns its argument doubled, to be checked. */
static int fake_io_task(void *arg, conc_result *out)
{
    int rc = conc_sleep(CONC_MSEC(IO_MS));
    out->value = 2 * (int64_t)(intptr_t)arg;
    return rc;
}

/* Runs NIO fake I/O tasks on a fresh pool of `workers`; returns the ms taken. */
static double io_on(int workers)
{
    conc_pool *pool;
    conc_pool_opts opts = {.max_workers = workers};
    if (check(conc_pool_create(&pool, &opts), "pool create"))
        return 0;
    int64_t t0 = conc_now_ns();
    conc_future *fs[NIO];
    int n = 0;
    while (n < NIO &&
           check(conc_pool_submit(pool, fake_io_task, (void *)(intptr_t)n, &fs[n]), "submit") == 0)
        n++;
    for (int i = 0; i < n; i++) {
        conc_result r;
        if (check(conc_future_result(fs[i], &r), "fake_io_task") == 0 && r.value != 2 * i)
            failures++; /* a wrong result */
        check(conc_future_release(fs[i]), "release");
    }
    double ms = ms_since(t0);
    failures += n != NIO;
    check(conc_pool_destroy(pool), "pool destroy");
    return ms;
}

static void io_bound(void)
{
    printf("\n2. I/O-bound: %d tasks that each block for %d ms (%d cores here)\n", NIO, IO_MS,
           (int)conc_cpu_count());
    static const int workers[] = {1, 4, 16};
    double one = 0;
    for (int i = 0; i < 3; i++) {
        double ms = io_on(workers[i]);
        one = i == 0 ? ms : one;
        printf("   %2d workers: %6.1f ms (speed-up %.2fx)\n", workers[i], ms, one / ms);
    }
    /* Blocked threads need no core: 16 workers wait at once even on 2 cores.
     * conc's default (one worker per CPU) is sized for computing; give
     * waiting work more workers, as Python's default min(32, cpus + 4) does. */
}

/* ----------------------------------------------------------- 3. map */

/* A map function gets the index, not an item: the caller maps index -> data.
 * Python: list(ex.map(square, range(NMAP), chunksize=50)) */
static int square(void *arg, size_t index, conc_result *out)
{
    (void)arg;
    out->value = (int64_t)index * (int64_t)index;
    return 0;
}

static void map_in_order(conc_pool *pool)
{
    conc_map *m;
    /* 50 indices per task: one tiny square is not worth a task of its own. */
    conc_map_opts opts = {.chunksize = 50};
    if (check(conc_map_create(&m, pool, square, NULL, NMAP, &opts), "map create"))
        return;
    size_t index, count = 0, in_order = 0;
    int status, rc;
    conc_result r;
    int64_t sum = 0;
    while ((rc = conc_map_next(m, &index, &status, &r)) == 0) {
        in_order += index == count; /* the results come back in index order */
        if (check(status, "square") == 0)
            sum += r.value;
        count++;
    }
    failures += rc != CONC_ENOENT; /* ENOENT: no more results, the normal end */
    check(conc_map_destroy(m), "map destroy");
    int64_t want = (int64_t)(NMAP - 1) * NMAP * (2 * NMAP - 1) / 6; /* sum of i^2, i < NMAP */
    printf("\n3. conc_map of i*i over %d indices, 50 per task:\n"
           "   %zu results, %zu in index order, sum %lld (expected %lld)\n",
           NMAP, count, in_order, (long long)sum, (long long)want);
    failures += count != NMAP || in_order != NMAP || sum != want;
}

/* ---------------------------------------------------------- 4. as_completed */

/* Task i sleeps sleep_ms[i]: submitted 0, 1, 2, ... they finish shortest first. */
static const int sleep_ms[] = {40, 10, 30, 0, 20};
#define NSLEEP (int)(sizeof sleep_ms / sizeof sleep_ms[0])

static int sleeper(void *arg, conc_result *out)
{
    int i = (int)(intptr_t)arg;
    out->value = i; /* which task this was */
    return conc_sleep(CONC_MSEC(sleep_ms[i]));
}

/* Python: for f in as_completed(fs): print(f.result()) */
static void print_as_completed(conc_pool *pool)
{
    printf("\n4. as_completed: tasks sleeping");
    conc_future *fs[NSLEEP];
    int n = 0;
    for (; n < NSLEEP; n++) {
        printf(" %d", sleep_ms[n]);
        if (check(conc_pool_submit(pool, sleeper, (void *)(intptr_t)n, &fs[n]), "submit"))
            break;
    }
    printf(" ms,\n   submitted in that order, come back as they finish:\n");
    conc_as_completed *it;
    if (check(conc_as_completed_create(&it, fs, (size_t)n), "as_completed") == 0) {
        conc_future *f;
        int rc, yielded = 0;
        while ((rc = conc_as_completed_next_timed(it, &f, CONC_SEC(10))) == 0) {
            conc_result r;
            if (check(conc_future_result(f, &r), "sleeper") == 0)
                printf("   task %lld (%2d ms) done\n", (long long)r.value, sleep_ms[r.value]);
            check(conc_future_release(f), "release"); /* the iterator's reference, now ours */
            yielded++;
        }
        failures += rc != CONC_ENOENT || yielded != n; /* ENOENT: every one was yielded */
        printf("   %d of %d futures yielded\n", yielded, NSLEEP);
        check(conc_as_completed_destroy(it), "as_completed destroy");
    }
    for (int i = 0; i < n; i++)
        check(conc_future_release(fs[i]), "release"); /* the references submit gave us */
}

/* ----------------------------------------------------------- 5. fork-join */

struct fib_arg {
    conc_pool *pool;
    int n;
};

static atomic_long fib_tasks; /* tasks submitted by tasks */

static long fib_serial(int n)
{
    return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

/* fib(n) = fib(n-1) + fib(n-2): fork fib(n-1) as a child task, compute
 * fib(n-2) here, then join the child (wait for its future). */
static int fib_task(void *arg, conc_result *out)
{
    struct fib_arg *a = arg;
    if (a->n < FIB_CUTOFF) {
        out->value = fib_serial(a->n);
        return 0;
    }
    /* The child's argument lives on this stack: safe, because this task
     * does not return before the child is done. */
    struct fib_arg child = {a->pool, a->n - 1};
    conc_future *f;
    int rc = conc_pool_submit(a->pool, fib_task, &child, &f);
    if (rc != 0)
        return rc;
    atomic_fetch_add(&fib_tasks, 1);
    conc_result mine = {0}, theirs;
    struct fib_arg here = {a->pool, a->n - 2};
    int rc_here = fib_task(&here, &mine);
    /* Why this cannot deadlock even on one worker: this task holds the only
     * worker, and its child sits in the queue. In Python that is the end —
     * f.result() blocks the worker, nobody runs the child, the program hangs.
     * conc's wait, called from a pool task, does not just block: the worker
     * runs queued tasks of its own subtree (the child, its children...) until
     * the future is done. That is help-while-waiting. */
    rc = conc_future_result(f, &theirs);
    conc_future_release(f); /* cannot fail: f is a valid future */
    if (rc != 0 || rc_here != 0)
        return rc ? rc : rc_here;
    out->value = mine.value + theirs.value;
    return 0;
}

static void fork_join(void)
{
    conc_pool *pool;
    conc_pool_opts opts = {.max_workers = 1}; /* one worker: the hard case */
    if (check(conc_pool_create(&pool, &opts), "pool create"))
        return;
    struct fib_arg top = {pool, FIB_N};
    conc_future *f;
    conc_result r = {0};
    int64_t t0 = conc_now_ns();
    if (check(conc_pool_submit(pool, fib_task, &top, &f), "submit") == 0) {
        check(conc_future_result(f, &r), "fib_task");
        check(conc_future_release(f), "release");
    }
    double ms = ms_since(t0);
    printf("\n5. fork-join on a pool of %d worker: fib(%d) = %lld (serial: %ld) in %.1f ms;\n"
           "   %ld tasks submitted by tasks, each parent waiting for its child\n",
           (int)conc_pool_workers(pool), FIB_N, (long long)r.value, fib_serial(FIB_N), ms,
           atomic_load(&fib_tasks));
    failures += r.value != fib_serial(FIB_N);
    check(conc_pool_destroy(pool), "pool destroy");
}

/* ------------------------------------------- 6. a crash in a process pool */

#define NCRASH 7   /* tasks in the batch */
#define CRASH_AT 3 /* the one that kills its worker */
#define NAFTER 8   /* tasks submitted after the crash */
#define CRASH_WORKERS 2

/* Task i returns i * i; task CRASH_AT first kills the worker process it runs
 * in, as a stray pointer or an abort() would. SIGKILL runs no handler at all,
 * not even a sanitizer's, so the death is the same in every build. */
static int square_or_crash(const void *arg, size_t size, conc_result *out)
{
    int64_t i;
    if (size != sizeof i)
        return CONC_EINVAL;
    memcpy(&i, arg, sizeof i);
    if (i == CRASH_AT)
        raise(SIGKILL);
    out->value = i * i;
    return 0;
}

/* Submits tasks first, first + 1, ... (n of them) into fs; returns how many
 * were submitted. */
static int submit_squares(conc_procpool *pp, int64_t first, int n, conc_future **fs)
{
    for (int k = 0; k < n; k++) {
        int64_t i = first + k;
        if (check(conc_procpool_submit(pp, square_or_crash, &i, sizeof i, &fs[k]),
                  "procpool submit"))
            return k;
    }
    return n;
}

/* Collects tasks first .. first + n - 1 (but CRASH_AT) and releases them;
 * returns how many gave their right square. */
static int count_right_squares(conc_future **fs, int64_t first, int n)
{
    int right = 0;
    for (int k = 0; k < n; k++) {
        int64_t i = first + k;
        conc_result r;
        if (i != CRASH_AT && check(conc_future_result(fs[k], &r), "square_or_crash") == 0)
            right += r.value == i * i;
        check(conc_future_release(fs[k]), "release");
    }
    return right;
}

/* The pool starts a dead worker's replacement from its own thread, just
 * after it failed the future: waits (5 s at most) until the pool has all
 * its workers again, and returns how many it has. */
static int64_t live_workers(conc_procpool *pp)
{
    int64_t n, deadline = conc_now_ns() + CONC_SEC(5);
    while ((n = conc_procpool_worker_pids(pp, NULL, 0)) < CRASH_WORKERS && conc_now_ns() < deadline)
        conc_sleep(CONC_MSEC(1));
    return n;
}

static void crash_in_process_pool(void)
{
    conc_procpool *pp;
    conc_procpool_opts opts = {.max_workers = CRASH_WORKERS};
    if (check(conc_procpool_create(&pp, &opts), "procpool create"))
        return;
    conc_future *fs[NCRASH > NAFTER ? NCRASH : NAFTER];
    int n = submit_squares(pp, 0, NCRASH, fs);
    printf("\n6. a process pool of %d workers runs %d tasks (each returns i*i);\n"
           "   task %d kills its own worker process with SIGKILL:\n",
           CRASH_WORKERS, NCRASH, CRASH_AT);
    conc_result r = {0};
    int st = n > CRASH_AT ? conc_future_result(fs[CRASH_AT], &r) : CONC_EINVAL;
    /* The value of a dead worker's future is its exit code as Python gives
     * it: -signum for a signal. */
    printf("   task %d: %s, its worker ended by signal %lld%s\n", CRASH_AT, conc_err_name(st),
           (long long)-r.value, r.value == -SIGKILL ? " (SIGKILL)" : "");
    failures += st != CONC_EWORKERDIED || r.value != -SIGKILL;
    int right = count_right_squares(fs, 0, n);
    printf("   the %d other tasks: %d right results\n", NCRASH - 1, right);
    failures += n != NCRASH || right != NCRASH - 1;

    /* More tasks, numbered on from NCRASH (none of them crashes): the pool
     * serves them as before. */
    n = submit_squares(pp, NCRASH, NAFTER, fs);
    right = count_right_squares(fs, NCRASH, n);
    int64_t workers = live_workers(pp);
    printf("   afterwards: %d more tasks, %d right results; %lld workers (the dead one "
           "replaced)\n",
           NAFTER, right, (long long)workers);
    failures += n != NAFTER || right != NAFTER || workers != CRASH_WORKERS;
    check(conc_procpool_destroy(pp), "procpool destroy");
}

int main(int argc, char **argv)
{
    if (argc > 1)
        span = atol(argv[1]);
    if (span <= 0 || span > 10000000) {
        fprintf(stderr, "usage: %s [numbers per prime-counting job, at most 10000000]\n", argv[0]);
        return 2;
    }
    cpu_bound();
    io_bound();

    /* Parts 3 and 4 share one pool of 8 workers: enough for 5 sleepers at once. */
    conc_pool *pool;
    conc_pool_opts opts = {.max_workers = 8, .name = "ex4"};
    if (check(conc_pool_create(&pool, &opts), "pool create") == 0) {
        map_in_order(pool);
        print_as_completed(pool);
        check(conc_pool_destroy(pool), "pool destroy");
    }

    fork_join();
    crash_in_process_pool();
    printf("\n%s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
