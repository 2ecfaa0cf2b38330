/* The example programs run and say what they claim.
 *
 * Each test runs one examples/exN binary (CONC_EXAMPLES_DIR, set by CMake) as
 * a child process, checks that it exits 0 — under the sanitizer builds a
 * report would make it exit otherwise — and parses its output: ex1 must show
 * its workers' statuses, a join that timed out on a running thread and then a
 * join that worked; ex2 must count exactly with the mutex and the atomics, and
 * its unlocked line must be consistent (lost = expected - got, never negative);
 * ex3 must deliver every item exactly once, its per-thread counts must add up
 * to the totals, and its consumers must all leave after the shutdown.
 * ex4's prime counts, serial and pooled, must both be the count the test finds
 * itself with a sieve; its I/O runs must get every result back and take no
 * less than a pool of that many workers can (a one-worker pool runs its tasks
 * one at a time); its map must give every result in index order with the
 * right sum; its as_completed must yield every task exactly once, each with
 * its own sleep; and its fork-join must compute the right fib on one worker.
 * How many updates the unlocked counter loses, how often ex3's producers
 * waited for room, ex4's speed-ups and the order as_completed yielded in are
 * printed, never asserted.
 */
#include "test.h"

#include <conc/thread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#ifndef CONC_EXAMPLES_DIR
#error "CONC_EXAMPLES_DIR must name the directory of the example binaries"
#endif

#define OUT_MAX 16384

/* Runs CONC_EXAMPLES_DIR/name with args; fills out, returns the wait status. */
static int run_example(const char *name, const char *args, char *out, size_t size)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/%s' %s", CONC_EXAMPLES_DIR, name, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t len = 0, n;
    char drain[512];
    while (len < size - 1 && (n = fread(out + len, 1, size - 1 - len, p)) > 0)
        len += n;
    while (fread(drain, 1, sizeof drain, p) > 0)
        ; /* read to the end: a child cut off by SIGPIPE would hide its real status */
    out[len] = '\0';
    int st = pclose(p);
    print_message("%s", out);
    return st;
}

/* The line of out that starts with prefix, or NULL. */
static const char *find_line(const char *out, const char *prefix)
{
    size_t plen = strlen(prefix);
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, prefix, plen))
            return l;
    return NULL;
}

static void assert_exited_zero(int st)
{
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void ex1_joins_show_status_and_timeout(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    assert_exited_zero(run_example("ex1_basic_threading", "", out, sizeof out));

    for (int i = 1; i <= 3; i++) {
        char want[64];
        snprintf(want, sizeof want, "joined worker-%d: OK, status %d\n", i, 100 + i);
        assert_non_null(strstr(out, want));
    }
    const char *timed = find_line(out, "join with a 50 ms timeout: ");
    assert_non_null(timed);
    double ms;
    int alive;
    assert_int_equal(sscanf(timed,
                            "join with a 50 ms timeout: ETIMEDOUT after %lf ms "
                            "(still running: %d)",
                            &ms, &alive),
                     2);
    assert_true(ms >= 50.0); /* a timed join never returns before its deadline */
    assert_int_equal(alive, 1);
    assert_non_null(find_line(out, "join after setting the event: OK, status 42\n"));

    const char *cost = find_line(out, "creation cost (");
    assert_non_null(cost);
    int n;
    double thread_us, process_us;
    assert_int_equal(sscanf(cost, "creation cost (%d each): thread %lf us, process %lf us", &n,
                            &thread_us, &process_us),
                     3);
    assert_true(n > 0 && thread_us > 0 && process_us > 0);
    assert_non_null(find_line(out, "ok\n"));
}

/* Parses "<what>: expected E got G"; returns G, checks E. */
static long parse_count(const char *out, const char *what, long expected)
{
    char prefix[32], fmt[64];
    snprintf(prefix, sizeof prefix, "%s: expected ", what);
    snprintf(fmt, sizeof fmt, "%s: expected %%ld got %%ld", what);
    const char *line = find_line(out, prefix);
    assert_non_null(line);
    long e, g;
    assert_int_equal(sscanf(line, fmt, &e, &g), 2);
    assert_int_equal(e, expected);
    return g;
}

static void ex2_locked_counts_exact_unlocked_consistent(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    long per_thread = conc_test_scaled(1000000, 10000);
    char args[32];
    snprintf(args, sizeof args, "%ld", per_thread);
    assert_exited_zero(run_example("ex2_shared_state", args, out, sizeof out));

    long expected = 4 * per_thread; /* the example's NTHREADS */
    assert_int_equal(parse_count(out, "mutex", expected), expected);
    assert_int_equal(parse_count(out, "atomic", expected), expected);

    long got = parse_count(out, "unlocked", expected), lost;
    const char *line = find_line(out, "unlocked: ");
    assert_non_null(strstr(line, "(lost "));
    assert_int_equal(sscanf(strstr(line, "(lost "), "(lost %ld)", &lost), 1);
    assert_true(got > 0 && got <= expected); /* updates can be lost, never invented */
    assert_int_equal(lost, expected - got);
    print_message("unlocked counter lost %ld of %ld updates\n", lost, expected);
}

/* The lines of out starting with prefix, read with fmt ("%d" for the thread's
 * index, then one or two "%ld" counts): checks that they are numbered 0, 1, ...
 * in order and that their first count equals each (when each >= 0); sums the
 * counts into sum1 and sum2; returns how many lines there were. */
static int sum_lines(const char *out, const char *prefix, const char *fmt, int ncounts, long each,
                     long *sum1, long *sum2)
{
    int lines = 0;
    *sum1 = *sum2 = 0;
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, prefix, strlen(prefix)) != 0)
            continue;
        int index;
        long a = 0, b = 0;
        assert_int_equal(sscanf(l, fmt, &index, &a, &b), 1 + ncounts);
        assert_int_equal(index, lines);
        if (each >= 0)
            assert_int_equal(a, each);
        assert_true(a >= 0 && b >= 0 && b <= a); /* ex3: at most one wait per put */
        *sum1 += a;
        *sum2 += b;
        lines++;
    }
    return lines;
}

static void ex3_every_item_delivered_exactly_once(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    long per_producer = conc_test_scaled(10000, 500);
    char args[32];
    snprintf(args, sizeof args, "%ld", per_producer);
    assert_exited_zero(run_example("ex3_producer_consumer", args, out, sizeof out));

    long total = 3 * per_producer; /* the example's NPRODUCERS */
    long put, waited, got, unused;
    int producers =
        sum_lines(out, "producer ", "producer %d: put %ld items, waited for room %ld times", 2,
                  per_producer, &put, &waited);
    int consumers = sum_lines(out, "consumer ", "consumer %d: got %ld items", 1, -1, &got, &unused);
    assert_int_equal(producers, 3);
    assert_int_equal(consumers, 4); /* the example's NCONSUMERS */
    assert_int_equal(put, total);
    assert_int_equal(got, total);

    const char *line = find_line(out, "put ");
    assert_non_null(line);
    long put2, got2, waited2;
    assert_int_equal(sscanf(line, "put %ld, got %ld; producers waited for room on %ld puts", &put2,
                            &got2, &waited2),
                     3);
    assert_int_equal(put2, total);
    assert_int_equal(got2, total);
    assert_int_equal(waited2, waited);

    line = find_line(out, "delivered ");
    assert_non_null(line);
    long once, of;
    assert_int_equal(sscanf(line, "delivered %ld of %ld items exactly once", &once, &of), 2);
    assert_int_equal(of, total);
    assert_int_equal(once, total);
    assert_null(find_line(out, "missing "));

    assert_non_null(find_line(out, "conc_queue_join: OK "));
    assert_non_null(find_line(out, "after shutdown all 4 consumers left\n"));
    assert_non_null(find_line(out, "ok\n"));
    print_message("producers waited for room on %ld of %ld puts\n", waited, put);
}

/* The line after line (which must have one). */
static const char *next_line(const char *line)
{
    const char *nl = strchr(line, '\n');
    assert_non_null(nl);
    return nl + 1;
}

/* The primes in [lo, hi), by a sieve: a different method from the example's
 * trial division, so an agreement means something. */
static long sieve_count(long lo, long hi)
{
    char *composite = calloc((size_t)hi, 1);
    assert_non_null(composite);
    long n = 0;
    for (long x = 2; x < hi; x++) {
        if (composite[x])
            continue;
        n += x >= lo;
        for (long m = x * x; m < hi; m += x)
            composite[m] = 1;
    }
    free(composite);
    return n;
}

static void ex4_cpu_part_counts_right(const char *out, long span)
{
    const char *line = find_line(out, "1. CPU-bound: ");
    assert_non_null(line);
    int jobs;
    long lo, hi, serial, pooled;
    assert_int_equal(
        sscanf(line, "1. CPU-bound: %d jobs counting primes in [%ld, %ld)", &jobs, &lo, &hi), 3);
    assert_int_equal(hi - lo, jobs * span);
    double serial_ms, pool_ms, up;
    line = find_line(out, "   serially: ");
    assert_non_null(line);
    assert_int_equal(sscanf(line, "   serially: %lf ms, %ld primes", &serial_ms, &serial), 2);
    line = find_line(out, "   on a pool of ");
    assert_non_null(line);
    int workers;
    assert_int_equal(sscanf(line, "   on a pool of %d workers: %lf ms, %ld primes (speed-up %lfx)",
                            &workers, &pool_ms, &pooled, &up),
                     4);
    assert_int_equal(workers, conc_cpu_count()); /* max_workers 0: one per usable CPU */
    long want = sieve_count(lo, hi);
    assert_int_equal(serial, want);
    assert_int_equal(pooled, want);
    print_message("CPU-bound on %d workers: %.2fx\n", workers, up);
}

/* Each run of 32 tasks of 5 ms on w workers (the example's NIO and IO_MS)
 * takes at least ceil(32 / w) sleeps: a worker runs one task at a time. */
static void ex4_io_part_never_faster_than_possible(const char *out)
{
    static const int workers[] = {1, 4, 16};
    assert_non_null(find_line(out, "2. I/O-bound: 32 tasks that each block for 5 ms"));
    for (int i = 0; i < 3; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "   %2d workers: ", workers[i]);
        const char *line = find_line(out, prefix);
        assert_non_null(line);
        int w;
        double ms, up;
        assert_int_equal(sscanf(line, " %d workers: %lf ms (speed-up %lfx)", &w, &ms, &up), 3);
        double floor_ms = (double)((32 + workers[i] - 1) / workers[i]) * 5;
        assert_true(ms >= floor_ms);
        print_message("I/O-bound on %2d workers: %.1f ms (at least %.0f), %.2fx\n", w, ms, floor_ms,
                      up);
    }
}

static void ex4_map_part_in_order(const char *out)
{
    const char *line = find_line(out, "3. conc_map of i*i over 1000 indices");
    assert_non_null(line);
    line = next_line(line);
    long count, in_order;
    long long sum, expected;
    assert_int_equal(sscanf(line, "   %ld results, %ld in index order, sum %lld (expected %lld)",
                            &count, &in_order, &sum, &expected),
                     4);
    assert_int_equal(count, 1000);
    assert_int_equal(in_order, 1000);
    long long want = 0;
    for (long long i = 0; i < 1000; i++)
        want += i * i;
    assert_true(sum == want && expected == want);
}

/* Every task yielded once, each with its own sleep (the example's table). */
static void ex4_as_completed_part_yields_each_once(const char *out)
{
    static const int sleep_ms[] = {40, 10, 30, 0, 20};
    int seen[5] = {0}, yielded = 0;
    char order[64] = "";
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        int task, ms;
        if (sscanf(l, "   task %d (%d ms) done", &task, &ms) != 2)
            continue;
        assert_true(task >= 0 && task < 5);
        assert_int_equal(ms, sleep_ms[task]);
        seen[task]++;
        yielded++;
        snprintf(order + strlen(order), sizeof order - strlen(order), " %d", task);
    }
    assert_int_equal(yielded, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(seen[i], 1);
    assert_non_null(find_line(out, "   5 of 5 futures yielded\n"));
    print_message("as_completed yielded tasks%s\n", order);
}

static void ex4_fork_join_part_right_on_one_worker(const char *out)
{
    const char *line = find_line(out, "5. fork-join on a pool of ");
    assert_non_null(line);
    int workers, n;
    long long got, serial;
    double ms;
    assert_int_equal(sscanf(line,
                            "5. fork-join on a pool of %d worker: fib(%d) = %lld (serial: %lld) "
                            "in %lf ms",
                            &workers, &n, &got, &serial, &ms),
                     5);
    assert_int_equal(workers, 1);
    long long a = 0, b = 1; /* fib(n), iteratively */
    for (int i = 0; i < n; i++) {
        long long next = a + b;
        a = b;
        b = next;
    }
    assert_true(got == a && serial == a);
    long tasks;
    line = next_line(line);
    assert_int_equal(sscanf(line, "   %ld tasks submitted by tasks", &tasks), 1);
    assert_true(tasks > 0); /* it really was fork-join, not one task */
}

static void ex4_pool_results_right(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    long span = conc_test_scaled(80000, 8000);
    char args[32];
    snprintf(args, sizeof args, "%ld", span);
    assert_exited_zero(run_example("ex4_thread_pools", args, out, sizeof out));
    ex4_cpu_part_counts_right(out, span);
    ex4_io_part_never_faster_than_possible(out);
    ex4_map_part_in_order(out);
    ex4_as_completed_part_yields_each_once(out);
    ex4_fork_join_part_right_on_one_worker(out);
    assert_non_null(find_line(out, "ok\n"));
}

CONC_TEST_MAIN(cmocka_unit_test(ex1_joins_show_status_and_timeout),
               cmocka_unit_test(ex2_locked_counts_exact_unlocked_consistent),
               cmocka_unit_test(ex3_every_item_delivered_exactly_once),
               cmocka_unit_test(ex4_pool_results_right), )
