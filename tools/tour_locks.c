/* Chapter "locks": the lost update, and two ways to fix it.
 *
 * T threads each add 1 to one shared counter N times. Unprotected, the
 * increment is three steps (load, add, store) and two threads that load the
 * same value both store value + 1: one update is lost. The racy version uses
 * relaxed atomic loads and stores, not a plain int: it loses updates in exactly
 * the same way, but each load and store stays whole, so the program has no
 * undefined behaviour (and the compiler cannot fold the loop into one add).
 * Then the same work under a conc_mutex, and with atomic_fetch_add; both must
 * come out exact, which the chapter checks.
 */
#include "tour.h"

#include <conc/conc.h>
#include <stdatomic.h>
#include <stdio.h>

#define MAX_T 4
#define PER_THREAD 1000000L
#define RACY_FACTOR 20 /* the racy loop is fast: longer, so that threads overlap */

enum variant { RACY, MUTEX, ATOMIC, NVARIANTS };

struct shared {
    enum variant how;
    long n; /* increments per thread */
    _Atomic long counter;
    conc_mutex lock;
    conc_barrier start; /* all threads begin together */
};

static void add_racy(struct shared *s)
{
    for (long i = 0; i < s->n; i++) {
        long v = atomic_load_explicit(&s->counter, memory_order_relaxed);
        atomic_store_explicit(&s->counter, v + 1, memory_order_relaxed);
    }
}

static void add_locked(struct shared *s)
{
    for (long i = 0; i < s->n; i++) {
        conc_mutex_lock(&s->lock);
        long v = atomic_load_explicit(&s->counter, memory_order_relaxed);
        atomic_store_explicit(&s->counter, v + 1, memory_order_relaxed);
        conc_mutex_unlock(&s->lock);
    }
}

static void add_atomic(struct shared *s)
{
    for (long i = 0; i < s->n; i++)
        atomic_fetch_add_explicit(&s->counter, 1, memory_order_relaxed);
}

static int adder(void *arg)
{
    struct shared *s = arg;
    conc_barrier_wait(&s->start, NULL);
    if (s->how == RACY)
        add_racy(s);
    else if (s->how == MUTEX)
        add_locked(s);
    else
        add_atomic(s);
    return 0;
}

/* Runs one variant on nt threads; returns the final counter and its time. */
static int run_variant(struct shared *s, enum variant how, int nt, long *got, int64_t *ns)
{
    conc_thread *t[MAX_T];
    s->how = how;
    atomic_store(&s->counter, 0);
    int rc = conc_barrier_init(&s->start, nt + 1, NULL);
    if (rc != 0)
        return rc;
    int started = 0;
    for (; started < nt && rc == 0; started++)
        rc = conc_thread_create(&t[started], adder, s, NULL);
    if (rc != 0) {
        started--;
        conc_barrier_abort(&s->start);
    }
    int64_t t0 = conc_now_ns();
    if (rc == 0)
        conc_barrier_wait(&s->start, NULL);
    for (int i = 0; i < started; i++) {
        conc_thread_join(t[i], NULL);
        conc_thread_destroy(t[i]);
    }
    *ns = conc_now_ns() - t0;
    *got = atomic_load(&s->counter);
    conc_barrier_destroy(&s->start);
    return rc;
}

static void report(const long *got, const int64_t *ns, const long *expected)
{
    static const char *const names[] = {"no lock (racy)", "conc_mutex", "atomic_fetch_add"};
    printf("  %-18s %10s %10s %10s %8s %9s\n", "counter", "expected", "got", "lost", "ms",
           "ns/incr");
    for (int v = 0; v < NVARIANTS; v++)
        printf("  %-18s %10ld %10ld %10ld %8.1f %9.1f\n", names[v], expected[v], got[v],
               expected[v] - got[v], tour_ms(ns[v]), (double)ns[v] / (double)expected[v]);
    long lost = expected[RACY] - got[RACY];
    printf("\n");
    if (lost > 0)
        printf("  Without a lock, %ld of %ld increments were lost (%.1f%%):\n"
               "  two threads read the same value and both wrote back that value + 1.\n",
               lost, expected[RACY], 100.0 * (double)lost / (double)expected[RACY]);
    else
        printf("  Without a lock nothing was lost this time (lucky: the threads did not\n"
               "  overlap). The race is still there; run the chapter again.\n");
    double mutex_ns = (double)ns[MUTEX] / (double)expected[MUTEX];
    double atomic_ns = (double)ns[ATOMIC] / (double)expected[ATOMIC];
    printf("  The mutex made it exact at %.1f ns an increment, the atomic add at %.1f ns:\n",
           mutex_ns, atomic_ns);
    if (atomic_ns < mutex_ns)
        printf("  %.1fx cheaper — one locked instruction instead of a lock and an unlock.\n",
               mutex_ns / atomic_ns);
    else
        printf("  no cheaper this time, though it is one instruction instead of two calls.\n");
}

static int locks_run(void)
{
    tour_paragraph("counter += 1 looks like one step but is three: load the value, add one, "
                   "store it back. When two threads do it at the same time, both may load the "
                   "same value and both store value + 1 — one increment is lost, silently. "
                   "A mutex makes the three steps a critical section only one thread enters at "
                   "a time; an atomic read-modify-write (atomic_fetch_add, a single locked "
                   "instruction on x86) does the same in hardware. Below, several threads add "
                   "to one counter all at once, each way, and we count what arrives.");
    int cpus = conc_cpu_count();
    int nt = cpus < 2 ? 2 : cpus > MAX_T ? MAX_T : cpus;
    static struct shared s;
    int rc = conc_mutex_init(&s.lock, NULL);
    if (rc != 0)
        return rc;
    long got[NVARIANTS], expected[NVARIANTS];
    int64_t ns[NVARIANTS];
    static const char *const what[] = {"without a lock", "with conc_mutex", "with atomics"};
    for (int v = 0; v < NVARIANTS && rc == 0; v++) {
        s.n = PER_THREAD * (v == RACY ? RACY_FACTOR : 1);
        expected[v] = nt * s.n;
        tour_progress("%d threads x %ld increments %s", nt, s.n, what[v]);
        rc = run_variant(&s, (enum variant)v, nt, &got[v], &ns[v]);
    }
    conc_mutex_destroy(&s.lock);
    if (rc != 0)
        return rc;
    tour_progress_done();
    printf("  %d threads, all adding to one counter at once\n\n", nt);
    report(got, ns, expected);
    /* The racy counter can lose updates but never gain any. */
    bool ok = got[MUTEX] == expected[MUTEX] && got[ATOMIC] == expected[ATOMIC] &&
              got[RACY] <= expected[RACY] && got[RACY] > 0;
    return ok ? 0 : CONC_EIO;
}

const struct tour_chapter tour_locks = {
    .name = "locks",
    .title = "Locks: the lost update",
    .run = locks_run,
};
