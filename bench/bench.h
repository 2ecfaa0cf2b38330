/* The benchmark harness shared by every case file.
 *
 * A case (mutex.contended, sem.pingpong, ...) has one unit and a list of
 * implementations: conc and the peers that have the same thing. Each
 * measurement runs in a fresh process (the runner re-executes itself with
 * `--measure CASE IMPL`), so that no measurement inherits another's threads,
 * caches or glibc's single-thread shortcut, and Python peers plug in the same
 * way (a python3 process printing the same one-line JSON). The runner takes
 * turns round by round — conc, peer A, peer B, conc, ... — so a drift of this
 * shared machine hits every implementation alike.
 */
#ifndef CONC_BENCH_H
#define CONC_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* bench_pool_tbb.cpp */
#endif

struct bench_params {
    bool quick;      /* QUICK=1: shorter runs */
    double seconds;  /* target length of a timed phase */
};

struct bench_result {
    double value;    /* in the case's unit */
    double cpu_pct;  /* CPU time of the process / wall time x 100; < 0: not reported */
    double fair;     /* min/max of the threads' shares; < 0: not reported */
};

struct bench_impl {
    const char *impl; /* bench/README.md's names: conc, conc:fair, pthread, ck:ticket, glib, python, ... */
    /* Measures once, in this process. NULL for python (runs bench/py/peers.py). */
    int (*measure)(const struct bench_params *p, struct bench_result *r);
};

struct bench_case {
    const char *name;
    const char *unit;    /* ns/op, us/op, ops/s, ... (bench/README.md's list) */
    const char *what;    /* one line for the report */
    int threads;         /* the same in every row */
    const struct bench_impl *impls; /* terminated by {0} */
};

/* Every case, from the case files; NULL-terminated. */
extern const struct bench_case *const bench_cases[];

/* ---- helpers for the case files ---- */

int64_t bench_now_ns(void);
/* CPU time (user + system) of the whole process, ns. */
int64_t bench_cpu_ns(void);

/* A timed window: start it, stop it, and it fills cpu_pct. */
struct bench_window {
    int64_t wall0, cpu0, wall_ns, cpu_ns;
};
void bench_window_start(struct bench_window *w);
void bench_window_stop(struct bench_window *w);
double bench_window_cpu_pct(const struct bench_window *w);

/* An idle thread kept alive (blocked) for the life of the measurement: real
 * programs have several threads, and glibc skips atomics while a process has
 * only one. */
void bench_start_idle_thread(void);

/* min/max of n counts (1 = even shares). */
double bench_fairness(const uint64_t *counts, int n);

/* Runs fn(arg + i * size) on n pthreads started together (a start barrier),
 * and joins them. */
void bench_run_threads(int n, void *(*fn)(void *), void *arg, unsigned long size);

/* Keeps the compiler from optimising a value away. */
#define bench_keep(x) __asm__ __volatile__("" : : "r"(x) : "memory")

/* ---- the thread-pool cases (bench_pool.c, bench_pool_tbb.cpp) ---- */

/* Every row of a pool case has this many threads doing work: conc's and
 * GLib's workers, TBB's arena and OpenMP's team (both counting the caller). */
#define BENCH_POOL_THREADS 2
#define BENCH_FIB_N 32
#define BENCH_FIB_RESULT 2178309
#define BENCH_FIB_CUTOFF 16      /* pool.fib: a task for every call with n > 16 */
#define BENCH_FIB_FINE_CUTOFF 8  /* pool.fib_fine: n > 8 */
#define BENCH_MAP_CHUNK 1024

/* Tasks in pool.submit_wait, items in pool.map. */
long bench_pool_tasks(const struct bench_params *p);
/* fib(n) by plain recursion, below the cutoff; one out-of-line copy for
 * every row, so that no row gets a differently compiled leaf. */
int64_t bench_fib_seq(int n);
/* Times fib(BENCH_FIB_N) run by fib(ctx, n, cutoff): one warm-up run, then
 * runs for about p->seconds (3 at least), each checked against
 * BENCH_FIB_RESULT; ms per run, cpu%. */
int bench_fib_timed(const struct bench_params *p, struct bench_result *r, int cutoff,
                    int64_t (*fib)(void *ctx, int n, int cutoff), void *ctx);
/* pool.map's item i: a few multiply-adds (64-bit LCG steps), 31 bits kept. */
static inline uint64_t bench_map_item(uint64_t i)
{
    for (int k = 0; k < 4; k++)
        i = i * 6364136223846793005u + 1442695040888963407u;
    return i >> 33;
}
/* Times map(ctx, n, &sum), which maps bench_map_item over [0, n) and sums
 * the results as the caller takes them (0 on success): one warm-up run, then
 * runs for about p->seconds (1 at least), each sum checked; items/s, cpu%. */
int bench_map_timed(const struct bench_params *p, struct bench_result *r,
                    int (*map)(void *ctx, long n, uint64_t *sum), void *ctx);
/* Sleeps through the idle window (2 s; 0.5 s with --quick) and returns the
 * process's CPU time during it (getrusage RUSAGE_SELF), in ms per 2 s. */
double bench_idle_cpu_ms(const struct bench_params *p);

/* The TBB rows (C++). */
int bench_tbb_submit_wait(const struct bench_params *p, struct bench_result *r);
int bench_tbb_fib(const struct bench_params *p, struct bench_result *r);
int bench_tbb_fib_fine(const struct bench_params *p, struct bench_result *r);
int bench_tbb_map(const struct bench_params *p, struct bench_result *r);
int bench_tbb_idle_cpu(const struct bench_params *p, struct bench_result *r);

#ifdef __cplusplus
}
#endif

/* Defines NAME(p, r): runs BODY (which may `return 1` on a failure) COUNT
 * times in a timed window; r gets microseconds per round and cpu%. */
#define BENCH_ROUNDS(NAME, COUNT, BODY)                                                  \
    static int NAME(const struct bench_params *p, struct bench_result *r)               \
    {                                                                                  \
        long n = (COUNT);                                                              \
        struct bench_window w;                                                         \
        bench_window_start(&w);                                                        \
        for (long i = 0; i < n; i++) {                                                 \
            BODY                                                                       \
        }                                                                              \
        bench_window_stop(&w);                                                         \
        r->value = (double)w.wall_ns / 1e3 / (double)n;                                \
        r->cpu_pct = bench_window_cpu_pct(&w);                                         \
        return 0;                                                                      \
    }

#endif
