/* ex2_shared_state — threads that share a counter.
 *
 * NTHREADS threads each add 1 to the same counter N times:
 *   1. with no lock: updates get lost (how many varies from run to run);
 *   2. under a conc_mutex: exact;
 *   3. with atomic_fetch_add: exact, and cheaper than the lock.
 *
 * Build and run:  make && build/release/examples/ex2_shared_state [N]
 * It prints one line per way, e.g. "mutex: expected 4000000 got 4000000",
 * and exits 0 when the locked and atomic counts are exact.
 *
 * About the racy version. `counter++` on a plain int from several threads is
 * a data race, which in C is undefined behaviour: the compiler may assume it
 * never happens (and, e.g., turn the loop into one `counter += N`). To show
 * the lost update honestly, the racy counter here is an _Atomic long read and
 * written with *relaxed* atomic loads and stores: each load and each store is
 * whole, so there is no undefined behaviour (and ThreadSanitizer reports no
 * race), but load-then-store is still two steps that another thread can slip
 * between — exactly how `counter++` loses updates.
 */
#include <conc/conc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define NTHREADS 4

static long per_thread = 1000000; /* N: argv[1] can change it */

static _Atomic long counter;
static conc_mutex lock = CONC_MUTEX_INIT; /* a global mutex needs no init call */
static conc_event go = CONC_EVENT_INIT;   /* the starting gun: all threads start at once */

/* 1. load, add, store: another thread may store in between, and one of the
 *    two increments is overwritten. */
static int add_unlocked(void *arg)
{
    (void)arg;
    conc_event_wait(&go);
    for (long i = 0; i < per_thread; i++) {
        long v = atomic_load_explicit(&counter, memory_order_relaxed);
        atomic_store_explicit(&counter, v + 1, memory_order_relaxed);
    }
    return 0;
}

/* 2. the same two steps, but only one thread at a time runs them. */
static int add_with_mutex(void *arg)
{
    (void)arg;
    conc_event_wait(&go);
    for (long i = 0; i < per_thread; i++) {
        conc_mutex_lock(&lock);
        long v = atomic_load_explicit(&counter, memory_order_relaxed);
        atomic_store_explicit(&counter, v + 1, memory_order_relaxed);
        conc_mutex_unlock(&lock);
    }
    return 0;
}

/* 3. one indivisible read-modify-write instruction (lock xadd on x86). */
static int add_atomic(void *arg)
{
    (void)arg;
    conc_event_wait(&go);
    for (long i = 0; i < per_thread; i++)
        atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
    return 0;
}

/* Runs fn on NTHREADS threads from counter = 0; returns the final counter, or
 * -1 if a thread could not start. */
static long run(conc_thread_fn fn, double *ms)
{
    conc_thread *t[NTHREADS];
    atomic_store(&counter, 0);
    conc_event_clear(&go);
    int started = 0;
    while (started < NTHREADS && conc_thread_create(&t[started], fn, NULL, NULL) == 0)
        started++;
    /* Starting a thread takes longer than a short counting loop: without the
     * gate the first thread could finish before the last one starts. */
    int64_t t0 = conc_now_ns();
    conc_event_set(&go);
    for (int i = 0; i < started; i++) {
        conc_thread_join(t[i], NULL);
        conc_thread_destroy(t[i]);
    }
    *ms = (double)(conc_now_ns() - t0) / 1e6;
    return started == NTHREADS ? atomic_load(&counter) : -1;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        per_thread = atol(argv[1]);
    if (per_thread <= 0) {
        fprintf(stderr, "usage: %s [increments per thread]\n", argv[0]);
        return 2;
    }
    long expected = NTHREADS * per_thread;
    double ms;
    printf("%d threads, %ld increments each\n\n", NTHREADS, per_thread);

    long got = run(add_unlocked, &ms);
    printf("unlocked: expected %ld got %ld (lost %ld)  [%.1f ms]\n", expected, got, expected - got,
           ms);
    if (got == expected)
        printf("  lucky: none lost this time — the race is still there\n");

    long got_mutex = run(add_with_mutex, &ms);
    printf("mutex: expected %ld got %ld  [%.1f ms]\n", expected, got_mutex, ms);

    long got_atomic = run(add_atomic, &ms);
    printf("atomic: expected %ld got %ld  [%.1f ms]\n", expected, got_atomic, ms);

    int ok = got_mutex == expected && got_atomic == expected && conc_mutex_destroy(&lock) == 0 &&
             conc_event_destroy(&go) == 0;
    printf("\n%s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
