/* Lock cases: mutex.uncontended(.st), mutex.contended(.4t), rmutex.uncontended,
 * mutex.uncontended.lockdep.
 *
 * Each implementation's loops are instantiated from one macro with its own
 * lock and unlock calls inlined at the call site, so no row pays an indirect
 * call the others do not. pthread:errorcheck is the pthread mutex with the
 * guarantee conc's always has (unlock by a non-owner and re-lock by the owner
 * are errors, not undefined behaviour). The contended case is the anchors'
 * program: T
 * threads run {lock; counter++; unlock} for a fixed time on a plain counter
 * kept next to the lock; the run fails unless the counter equals the sum of
 * the per-thread counts, and fair = min/max of those counts.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <ck_spinlock.h>
#include <conc/conc.h>
#include <glib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#define UNCONTENDED_PAIRS 20000000L

static long bench_pairs(const struct bench_params *p)
{
    return p->quick ? UNCONTENDED_PAIRS / 4 : UNCONTENDED_PAIRS;
}

static void bench_sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

struct contender {
    uint64_t count;
    char pad[56];
};

static _Atomic int stop_flag;

static int bench_contended(const struct bench_params *p, struct bench_result *r, int threads,
                           void *(*fn)(void *), struct contender *c, uint64_t *counter);

/* Not every implementation takes part in every case. */
#define UNUSED __attribute__((unused))

#define LOCK_BENCH(NAME, TYPE, INIT, LOCK, UNLOCK)                                         \
    static _Alignas(64) struct {                                                           \
        TYPE lock;                                                                         \
        uint64_t counter;                                                                  \
    } NAME##_shared;                                                                       \
                                                                                           \
    UNUSED static int NAME##_pairs(const struct bench_params *p, struct bench_result *r)          \
    {                                                                                      \
        TYPE *l = &NAME##_shared.lock;                                                     \
        INIT(l);                                                                           \
        long n = bench_pairs(p);                                                           \
        for (long i = 0; i < n / 20; i++) { /* warm-up */                                  \
            LOCK(l);                                                                       \
            UNLOCK(l);                                                                     \
        }                                                                                  \
        struct bench_window w;                                                             \
        bench_window_start(&w);                                                            \
        for (long i = 0; i < n; i++) {                                                     \
            LOCK(l);                                                                       \
            UNLOCK(l);                                                                     \
        }                                                                                  \
        bench_window_stop(&w);                                                             \
        r->value = (double)w.wall_ns / (double)n;                                          \
        return 0;                                                                          \
    }                                                                                      \
                                                                                           \
    UNUSED static int NAME##_uncontended(const struct bench_params *p, struct bench_result *r)    \
    {                                                                                      \
        bench_start_idle_thread();                                                         \
        return NAME##_pairs(p, r);                                                         \
    }                                                                                      \
                                                                                           \
    UNUSED static void *NAME##_contender(void *arg)                                               \
    {                                                                                      \
        struct contender *c = arg;                                                         \
        TYPE *l = &NAME##_shared.lock;                                                     \
        uint64_t mine = 0;                                                                 \
        while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {                  \
            LOCK(l);                                                                       \
            NAME##_shared.counter++;                                                       \
            UNLOCK(l);                                                                     \
            mine++;                                                                        \
        }                                                                                  \
        c->count = mine;                                                                   \
        return NULL;                                                                       \
    }                                                                                      \
                                                                                           \
    UNUSED static int NAME##_contended_n(const struct bench_params *p, struct bench_result *r,    \
                                  int threads)                                             \
    {                                                                                      \
        INIT(&NAME##_shared.lock);                                                         \
        NAME##_shared.counter = 0;                                                         \
        struct contender c[8] = {0};                                                       \
        return bench_contended(p, r, threads, NAME##_contender, c, &NAME##_shared.counter);\
    }                                                                                      \
    UNUSED static int NAME##_contended(const struct bench_params *p, struct bench_result *r)      \
    {                                                                                      \
        return NAME##_contended_n(p, r, 2);                                                \
    }                                                                                      \
    UNUSED static int NAME##_contended4(const struct bench_params *p, struct bench_result *r)     \
    {                                                                                      \
        return NAME##_contended_n(p, r, 4);                                                \
    }

struct contended_run {
    void *(*fn)(void *);
    struct contender *c;
    int threads;
};

static void *contended_driver(void *arg)
{
    struct contended_run *run = arg;
    bench_run_threads(run->threads, run->fn, run->c, sizeof *run->c);
    return NULL;
}

/* Runs `threads` contenders for p->seconds; ops/s, fairness, CPU%. */
static int bench_contended(const struct bench_params *p, struct bench_result *r, int threads,
                           void *(*fn)(void *), struct contender *c, uint64_t *counter)
{
    struct contended_run run = {fn, c, threads};
    pthread_t driver;
    atomic_store(&stop_flag, 0);
    struct bench_window w;
    bench_window_start(&w);
    pthread_create(&driver, NULL, contended_driver, &run);
    bench_sleep_s(p->seconds);
    atomic_store(&stop_flag, 1);
    pthread_join(driver, NULL);
    bench_window_stop(&w);
    uint64_t sum = 0, counts[8];
    for (int i = 0; i < threads; i++)
        sum += counts[i] = c[i].count;
    if (sum != *counter) {
        fprintf(stderr, "lock failed: counter %llu != sum of counts %llu\n",
                (unsigned long long)*counter, (unsigned long long)sum);
        return 1;
    }
    r->value = (double)sum * 1e9 / (double)w.wall_ns;
    r->fair = bench_fairness(counts, threads);
    r->cpu_pct = bench_window_cpu_pct(&w);
    return 0;
}

/* ---- the implementations ---- */

static void conc_init(conc_mutex *m)
{
    conc_mutex_init(m, NULL);
}
static void conc_fair_init(conc_mutex *m)
{
    conc_mutex_init(m, &(conc_mutex_opts){.fair = true});
}
static void pthread_init(pthread_mutex_t *m)
{
    pthread_mutex_init(m, NULL);
}
static void pthread_check_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
}
static void pthread_rec_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
}
static void spin_init(pthread_spinlock_t *s)
{
    pthread_spin_init(s, PTHREAD_PROCESS_PRIVATE);
}
static void ticket_init(ck_spinlock_ticket_t *t)
{
    ck_spinlock_ticket_init(t);
}
static void fas_init(ck_spinlock_fas_t *f)
{
    ck_spinlock_fas_init(f);
}
static void gmutex_init(GMutex *m)
{
    g_mutex_init(m);
}
static void grec_init(GRecMutex *m)
{
    g_rec_mutex_init(m);
}
static void crec_init(conc_rmutex *m)
{
    conc_rmutex_init(m, NULL);
}

LOCK_BENCH(conc, conc_mutex, conc_init, conc_mutex_lock, conc_mutex_unlock)
LOCK_BENCH(conc_fair, conc_mutex, conc_fair_init, conc_mutex_lock, conc_mutex_unlock)
LOCK_BENCH(pthread, pthread_mutex_t, pthread_init, pthread_mutex_lock, pthread_mutex_unlock)
LOCK_BENCH(pcheck, pthread_mutex_t, pthread_check_init, pthread_mutex_lock, pthread_mutex_unlock)
LOCK_BENCH(spin, pthread_spinlock_t, spin_init, pthread_spin_lock, pthread_spin_unlock)
LOCK_BENCH(ticket, ck_spinlock_ticket_t, ticket_init, ck_spinlock_ticket_lock,
           ck_spinlock_ticket_unlock)
LOCK_BENCH(fas, ck_spinlock_fas_t, fas_init, ck_spinlock_fas_lock, ck_spinlock_fas_unlock)
LOCK_BENCH(glib, GMutex, gmutex_init, g_mutex_lock, g_mutex_unlock)
LOCK_BENCH(crec, conc_rmutex, crec_init, conc_rmutex_lock, conc_rmutex_unlock)
LOCK_BENCH(prec, pthread_mutex_t, pthread_rec_init, pthread_mutex_lock, pthread_mutex_unlock)
LOCK_BENCH(grec, GRecMutex, grec_init, g_rec_mutex_lock, g_rec_mutex_unlock)

/* ---- lock-order checking: two locks nested, checker off and on ----
 *
 * One round is lock a, lock b, unlock b, unlock a: with the checker on, the
 * second lock looks up the order a -> b (known after the first round) on
 * every round, so the row measures the checker's steady state, not just its
 * held-lock stack. "conc" is the same build with the checker off: the cost
 * of having it compiled in is counted in instructions with callgrind (see
 * docs), which this wall-clock row cannot resolve. */

static _Alignas(64) struct {
    conc_mutex a, b;
} nested_shared;

static int nested_rounds(const struct bench_params *p, struct bench_result *r, bool lockdep)
{
    bench_start_idle_thread();
    if (lockdep && conc_lockdep_set_mode(CONC_LOCKDEP_LOG) != 0)
        return 1;
    conc_mutex *a = &nested_shared.a, *b = &nested_shared.b;
    conc_mutex_init(a, NULL); /* two init sites: two classes */
    conc_mutex_init(b, NULL);
    long n = bench_pairs(p) / 2;
    for (long i = 0; i < n / 20; i++) { /* warm-up */
        conc_mutex_lock(a);
        conc_mutex_lock(b);
        conc_mutex_unlock(b);
        conc_mutex_unlock(a);
    }
    struct bench_window w;
    bench_window_start(&w);
    for (long i = 0; i < n; i++) {
        conc_mutex_lock(a);
        conc_mutex_lock(b);
        conc_mutex_unlock(b);
        conc_mutex_unlock(a);
    }
    bench_window_stop(&w);
    r->value = (double)w.wall_ns / (double)n;
    /* The checker really ran (and found nothing to report). */
    if (lockdep && (conc_lockdep_get_mode() != CONC_LOCKDEP_LOG || conc_lockdep_reports() != 0))
        return 1;
    return 0;
}

static int nested_off(const struct bench_params *p, struct bench_result *r)
{
    return nested_rounds(p, r, false);
}

static int nested_lockdep(const struct bench_params *p, struct bench_result *r)
{
    return nested_rounds(p, r, true);
}

/* ---- the cases ---- */

#define PYTHON {"python", NULL}
#define END {0}

static const struct bench_impl uncontended_impls[] = {
    {"conc", conc_uncontended},       {"pthread", pthread_uncontended},
    {"pthread:errorcheck", pcheck_uncontended},
    {"pthread:spin", spin_uncontended}, {"ck:ticket", ticket_uncontended},
    {"ck:fas", fas_uncontended},      {"glib", glib_uncontended},
    PYTHON,                           END};

static const struct bench_impl uncontended_st_impls[] = {
    {"conc", conc_pairs},   {"pthread", pthread_pairs}, {"pthread:spin", spin_pairs},
    {"ck:ticket", ticket_pairs}, {"ck:fas", fas_pairs}, {"glib", glib_pairs},
    END};

static const struct bench_impl contended_impls[] = {
    {"conc", conc_contended},   {"conc:fair", conc_fair_contended},
    {"pthread", pthread_contended}, {"pthread:errorcheck", pcheck_contended},
    {"pthread:spin", spin_contended},
    {"ck:ticket", ticket_contended}, {"ck:fas", fas_contended},
    {"glib", glib_contended},   PYTHON,
    END};

static const struct bench_impl contended4_impls[] = {
    {"conc", conc_contended4},   {"conc:fair", conc_fair_contended4},
    {"pthread", pthread_contended4}, {"pthread:spin", spin_contended4},
    {"ck:ticket", ticket_contended4}, {"ck:fas", fas_contended4},
    {"glib", glib_contended4},   PYTHON,
    END};

static const struct bench_impl lockdep_impls[] = {
    {"conc", nested_off}, {"conc:lockdep", nested_lockdep}, END};

static const struct bench_impl rmutex_impls[] = {
    {"conc", crec_uncontended}, {"pthread", prec_uncontended}, {"glib", grec_uncontended},
    PYTHON, END};

const struct bench_case bench_mutex_uncontended = {
    "mutex.uncontended", "ns/op",
    "lock+unlock pair, one thread, with a second (idle) thread alive in the process", 1,
    uncontended_impls};
const struct bench_case bench_mutex_uncontended_st = {
    "mutex.uncontended.st", "ns/op",
    "lock+unlock pair in a single-threaded process (glibc's no-atomics shortcut applies)", 1,
    uncontended_st_impls};
const struct bench_case bench_mutex_uncontended_lockdep = {
    "mutex.uncontended.lockdep", "ns/op",
    "lock a, lock b, unlock b, unlock a (ns a round), idle second thread alive; conc:lockdep "
    "with lock-order checking on", 1, lockdep_impls};
const struct bench_case bench_mutex_contended = {
    "mutex.contended", "ops/s",
    "2 threads {lock; counter++; unlock} on one lock for a fixed time; counter checked exact", 2,
    contended_impls};
const struct bench_case bench_mutex_contended4 = {
    "mutex.contended.4t", "ops/s", "as mutex.contended with 4 threads on this machine's cores",
    4, contended4_impls};
const struct bench_case bench_rmutex_uncontended = {
    "rmutex.uncontended", "ns/op", "recursive mutex lock+unlock pair, idle second thread alive",
    1, rmutex_impls};
