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
 * ex4's prime counts, serial, on the thread pool and on the process pool,
 * must all be the count the test finds itself with a sieve; both pools must
 * have one worker per usable CPU; its I/O runs must get every result back and take no
 * less than a pool of that many workers can (a one-worker pool runs its tasks
 * one at a time); its map must give every result in index order with the
 * right sum; its as_completed must yield every task exactly once, each with
 * its own sleep; its fork-join must compute the right fib on one worker; and
 * in its process pool the task that kills its worker must fail alone with
 * EWORKERDIED and signal 9, every other task's result be right, and the pool
 * serve the tasks after it with its workers all there.
 * ex6's fixed tellers must balance to the unit, its broken ones must pay out
 * at least the account; ThreadSanitizer must report the broken race (naming
 * the function and the variable) and find nothing in the fixed one — a
 * TSan-built ex6, ex6_race_tsan in the optimised build and ex6 itself in the
 * thread build; the address build skips this. The lock-order checker must
 * refuse ex6's inverted transfer with EDEADLK and report the cycle, and the
 * ordered transfers must run both ways at once with no report and no money
 * lost; the lock-step livelock must be caught at its bound with nothing done,
 * and random back-off must finish the work with the counts adding up; every
 * attempt of the starved thread must end, and the lock statistics, where on,
 * must count every acquisition; with no argument ex6 must run every demo but
 * the racy one.
 * How many updates the unlocked counter loses, how often ex3's producers
 * waited for room, ex4's speed-ups, the order as_completed yielded in and
 * ex6's waits are printed, never asserted.
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

/* Runs the shell command cmd; fills out with its standard output, returns
 * the wait status. */
static int run_command(const char *cmd, char *out, size_t size)
{
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

/* Runs CONC_EXAMPLES_DIR/name with args; fills out, returns the wait status. */
static int run_example(const char *name, const char *args, char *out, size_t size)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/%s' %s", CONC_EXAMPLES_DIR, name, args);
    return run_command(cmd, out, size);
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
    double serial_ms;
    line = find_line(out, "   serially: ");
    assert_non_null(line);
    assert_int_equal(sscanf(line, "   serially: %lf ms, %ld primes", &serial_ms, &serial), 2);
    long want = sieve_count(lo, hi);
    assert_int_equal(serial, want);
    static const char *const kinds[] = {"thread", "process"};
    for (int i = 0; i < 2; i++) {
        char prefix[32], fmt[96];
        snprintf(prefix, sizeof prefix, "   on a %s pool of ", kinds[i]);
        snprintf(fmt, sizeof fmt,
                 "   on a %s pool of %%d workers: %%lf ms, %%ld primes (speed-up %%lfx)", kinds[i]);
        line = find_line(out, prefix);
        assert_non_null(line);
        int workers;
        double ms, up;
        assert_int_equal(sscanf(line, fmt, &workers, &ms, &pooled, &up), 4);
        assert_int_equal(workers, conc_cpu_count()); /* max_workers 0: one per usable CPU */
        assert_int_equal(pooled, want);
        print_message("CPU-bound on a %s pool of %d workers: %.2fx\n", kinds[i], workers, up);
    }
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

/* The example's NCRASH 7, CRASH_AT 3, NAFTER 8 and CRASH_WORKERS 2. */
static void ex4_crash_part_fails_one_future(const char *out)
{
    const char *line = find_line(out, "6. a process pool of 2 workers runs 7 tasks");
    assert_non_null(line);
    assert_non_null(find_line(out, "   task 3: EWORKERDIED, its worker ended by signal 9 "));
    assert_non_null(find_line(out, "   the 6 other tasks: 6 right results\n"));
    assert_non_null(find_line(out, "   afterwards: 8 more tasks, 8 right results; 2 workers "));
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
    ex4_crash_part_fails_one_future(out);
    assert_non_null(find_line(out, "ok\n"));
}

/* ---- ex6: the classic bugs ---- */

/* Checks the race's lines: the account, what was paid out, the balance.
 * Returns the amount paid out; *final gets the final balance. */
static long ex6_parse_race(const char *out, long opening, long *final)
{
    char want[96];
    snprintf(want, sizeof want, "account of %ld, 2 tellers paying out 1 at a time", opening);
    assert_non_null(find_line(out, want));
    const char *line = find_line(out, "paid out ");
    assert_non_null(line);
    long paid, t1, t2;
    assert_int_equal(sscanf(line, "paid out %ld (teller-1 %ld, teller-2 %ld), final balance %ld",
                            &paid, &t1, &t2, final),
                     4);
    assert_int_equal(t1 + t2, paid);
    return paid;
}

/* ex8: the holder is killed holding the named mutex; the second program's
 * lock reports it, and it repairs the torn transfer: the total is whole
 * again, and the mutex usable. */
static void ex8_system_mutex_recovers_from_a_killed_holder(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    assert_exited_zero(run_example("ex8_system_mutex", "", out, sizeof out));
    assert_non_null(strstr(out, "holder:    took the lock"));
    assert_non_null(strstr(out, "the holder died with exit code -9"));
    assert_non_null(strstr(out, "recoverer: lock answered EOWNERDEAD"));
    assert_non_null(strstr(out, "(a=70, b=30, total 100)"));
    assert_non_null(strstr(out, "the next lock answers OK"));
    assert_non_null(strstr(out, "the recoverer exited with 0"));
}

static void ex6_race_fixed_balances_exactly(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    long opening = conc_test_scaled(1000000, 20000);
    char args[64];
    snprintf(args, sizeof args, "race-fixed %ld", opening);
    assert_exited_zero(run_example("ex6_race_conditions", args, out, sizeof out));
    long final;
    assert_int_equal(ex6_parse_race(out, opening, &final), opening);
    assert_int_equal(final, 0);
    assert_non_null(find_line(out, "the books balance\n"));
    assert_non_null(find_line(out, "ok\n"));
}

/* The broken tellers, run as they are (not under TSan: in the thread build
 * that is the next test). What goes wrong varies; what cannot happen is that
 * less is paid out than the account held, or that the balance stays
 * positive: a stale write can raise the balance (money out of thin air),
 * each payment lowers it by one at most, and a teller stops only when it
 * sees less than 1. */
static void ex6_race_broken_pays_out_at_least_the_account(void **state)
{
    (void)state;
#ifdef CONC_EX6_TSAN_IS_EX6
    skip(); /* ex6 is instrumented here: the TSan tests run it */
#else
    static char out[OUT_MAX];
    long opening = conc_test_scaled(20000000, 1000000);
    char args[64];
    snprintf(args, sizeof args, "race-broken %ld", opening);
    assert_exited_zero(run_example("ex6_race_conditions", args, out, sizeof out));
    long final, paid = ex6_parse_race(out, opening, &final);
    assert_true(paid >= opening);
    assert_true(final <= 0);
    if (paid == opening && final == 0) {
        assert_non_null(find_line(out, "lucky: nothing went wrong this time"));
    } else {
        long extra;
        const char *line = find_line(out, "the books do NOT balance: ");
        assert_non_null(line);
        assert_int_equal(sscanf(line, "the books do NOT balance: %ld paid out", &extra), 1);
        assert_int_equal(extra, paid - opening);
    }
    print_message("broken tellers paid out %ld of %ld, final balance %ld\n", paid, opening, final);
#endif
}

#ifdef CONC_EX6_TSAN
/* Runs the TSan-built ex6 (CONC_EX6_TSAN) with args, standard error into out. */
static int run_ex6_tsan(const char *args, char *out, size_t size)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "TSAN_OPTIONS='exitcode=66 halt_on_error=1' '%s' %s 2>&1",
             CONC_EX6_TSAN, args);
    return run_command(cmd, out, size);
}
#endif

/* ThreadSanitizer finds the race: it stops the broken tellers with a data
 * race report that names the function and the variable. */
static void ex6_tsan_reports_the_broken_race(void **state)
{
    (void)state;
#ifndef CONC_EX6_TSAN
    skip(); /* the address build: ASan and TSan cannot be mixed */
#else
    static char out[OUT_MAX];
    int st = run_ex6_tsan("race-broken", out, sizeof out);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 66);
    assert_non_null(strstr(out, "WARNING: ThreadSanitizer: data race"));
    assert_non_null(strstr(out, "teller_broken"));
    assert_non_null(strstr(out, "Location is global 'balance'"));
    assert_null(strstr(out, "\nok\n")); /* halted at the report */
#endif
}

/* ... and finds nothing in the fixed ones, which balance exactly. */
static void ex6_tsan_fixed_race_is_clean(void **state)
{
    (void)state;
#ifndef CONC_EX6_TSAN
    skip();
#else
    static char out[OUT_MAX];
    long opening = 50000;
    char args[64];
    snprintf(args, sizeof args, "race-fixed %ld", opening);
    assert_exited_zero(run_ex6_tsan(args, out, sizeof out));
    assert_null(strstr(out, "ThreadSanitizer"));
    long final;
    assert_int_equal(ex6_parse_race(out, opening, &final), opening);
    assert_int_equal(final, 0);
    assert_non_null(find_line(out, "ok\n"));
#endif
}

/* The checker refuses the inverted order (run after the first, so that it
 * could not have hung) with EDEADLK and a report of the cycle; the ordered
 * transfers then run both ways at once with no report, money conserved. */
static void ex6_deadlock_refused_then_fixed(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    assert_exited_zero(run_example("ex6_race_conditions", "deadlock", out, sizeof out));
    assert_non_null(find_line(out, "alice-to-bob: OK\n"));
    assert_non_null(find_line(out, "bob-to-alice: EDEADLK\n"));
    assert_non_null(find_line(out, "  | conc lockdep: possible deadlock: lock-order cycle\n"));
    const char *line = find_line(out, "  |   thread \"bob-to-alice\"");
    assert_non_null(line);
    assert_non_null(strstr(line, "acquires \"account alice\""));
    line = find_line(out, "  |   while holding \"account bob\"");
    assert_non_null(line);
    line = find_line(out, "  |   order \"account alice\"");
    assert_non_null(line);
    assert_non_null(strstr(line, "first seen in thread \"alice-to-bob\""));
    assert_non_null(
        find_line(out, "  |   cycle: \"account bob\" -> \"account alice\" -> \"account bob\"\n"));
    line = find_line(out, "20000 transfers each way at the same time: ");
    assert_non_null(line);
    assert_non_null(strstr(line, ": OK, OK; new reports: 0\n"));
    assert_non_null(find_line(out, "money before 2000, after 2000\n"));
    assert_non_null(find_line(out, "ok\n"));
}

struct ex6_polite {
    long steps, made[2], failed[2], sat_out[2];
};

static void ex6_parse_polite(const char *out, struct ex6_polite *p)
{
    const char *line = strstr(out, " steps in ");
    assert_non_null(line);
    while (line > out && line[-1] != '\n')
        line--;
    double ms;
    int want0, want1;
    assert_int_equal(sscanf(line,
                            "%ld steps in %lf ms: transfers made %ld + %ld of %d + %d; failed "
                            "attempts %ld + %ld; steps sat out %ld + %ld",
                            &p->steps, &ms, &p->made[0], &p->made[1], &want0, &want1, &p->failed[0],
                            &p->failed[1], &p->sat_out[0], &p->sat_out[1]),
                     10);
    assert_int_equal(want0, 1000); /* the example's WORK_EACH */
    assert_int_equal(want1, 1000);
}

/* Broken: in lock step, every attempt collides, so both threads fail every
 * step, never sit out, and make nothing; the bound calls it a livelock. */
static void ex6_livelock_caught_by_the_bound(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    assert_exited_zero(run_example("ex6_race_conditions", "livelock-broken", out, sizeof out));
    struct ex6_polite p;
    ex6_parse_polite(out, &p);
    assert_int_equal(p.steps, 10000); /* the example's LIVELOCK_BOUND */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(p.made[i], 0);
        assert_int_equal(p.failed[i], 10000);
        assert_int_equal(p.sat_out[i], 0);
    }
    assert_non_null(find_line(out, "livelock: 10000 steps in a row without progress, 20000 "
                                   "polite retries"));
    assert_null(find_line(out, "done: "));
    assert_non_null(find_line(out, "ok\n"));
}

/* Fixed: every transfer made. An attempt fails only when both threads try
 * in one step, so both count the same failures, and each step carries at
 * most one transfer: steps >= transfers + collisions. */
static void ex6_livelock_fixed_by_random_backoff(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    assert_exited_zero(run_example("ex6_race_conditions", "livelock-fixed", out, sizeof out));
    struct ex6_polite p;
    ex6_parse_polite(out, &p);
    assert_int_equal(p.made[0], 1000);
    assert_int_equal(p.made[1], 1000);
    assert_int_equal(p.failed[0], p.failed[1]);
    assert_true(p.steps >= 2000 + p.failed[0]);
    assert_true(p.sat_out[0] + p.sat_out[1] > 0); /* it backed off */
    assert_non_null(find_line(out, "done: every transfer made\n"));
    assert_null(find_line(out, "livelock: "));
    assert_non_null(find_line(out, "ok\n"));
    print_message("random back-off: %ld steps, %ld collisions\n", p.steps, p.failed[0]);
}

/* Both mutexes: every one of the occasional thread's 40 attempts ends (got
 * it or gave up); where the lock statistics are on, they count exactly the
 * acquisitions made. The waits are printed, never compared. */
static void ex6_starvation_waits_measured(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    assert_exited_zero(run_example("ex6_race_conditions", "starvation", out, sizeof out));
    static const char *const modes[] = {"default: ", "fair:    "};
    for (int m = 0; m < 2; m++) {
        const char *line = find_line(out, modes[m]);
        assert_non_null(line);
        double worst, mean, rate, longest;
        int got, needs, gave_up;
        long long cap;
        long hammered;
        assert_int_equal(sscanf(line + 9,
                                " worst wait %lf ms, mean %lf ms; %d of %d got it, %d gave up "
                                "after %lld ms; the hammer locked it %ld times (%lf a ms)",
                                &worst, &mean, &got, &needs, &gave_up, &cap, &hammered, &rate),
                         8);
        assert_int_equal(needs, 40);
        assert_int_equal(got + gave_up, needs);
        assert_true(worst >= mean && mean >= 0);
        assert_true(hammered > 0);
        const char *stats = find_line(next_line(line), "          lock statistics: ");
        if (stats && stats == next_line(line)) {
            unsigned long long contended, acquired;
            assert_int_equal(sscanf(stats,
                                    "          lock statistics: %llu of %llu acquisitions "
                                    "waited, the longest %lf ms",
                                    &contended, &acquired, &longest),
                             3);
            assert_int_equal(acquired, (unsigned long long)(hammered + got));
            assert_true(contended <= acquired);
        }
        print_message("%sworst wait %.3f ms, %d gave up\n", modes[m], worst, gave_up);
    }
    assert_non_null(find_line(out, "ok\n"));
}

/* No argument: every safe demonstration, and never the racy one. */
static void ex6_no_argument_runs_the_safe_demos(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    char args[32];
    snprintf(args, sizeof args, "all %ld", conc_test_scaled(1000000, 20000));
    assert_exited_zero(run_example("ex6_race_conditions", args, out, sizeof out));
    static const char *const shown[] = {"== race-fixed: ", "== deadlock: ", "== livelock-broken: ",
                                        "== livelock-fixed: ", "== starvation: "};
    for (int i = 0; i < 5; i++)
        assert_non_null(find_line(out, shown[i]));
    assert_null(find_line(out, "== race-broken"));
    assert_non_null(find_line(out, "ok\n"));
    int st = run_example("ex6_race_conditions", "no-such-bug 2>/dev/null", out, sizeof out);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);
}

CONC_TEST_MAIN(cmocka_unit_test(ex1_joins_show_status_and_timeout),
               cmocka_unit_test(ex2_locked_counts_exact_unlocked_consistent),
               cmocka_unit_test(ex3_every_item_delivered_exactly_once),
               cmocka_unit_test(ex4_pool_results_right),
               cmocka_unit_test(ex6_race_fixed_balances_exactly),
               cmocka_unit_test(ex6_race_broken_pays_out_at_least_the_account),
               cmocka_unit_test(ex6_tsan_reports_the_broken_race),
               cmocka_unit_test(ex6_tsan_fixed_race_is_clean),
               cmocka_unit_test(ex6_deadlock_refused_then_fixed),
               cmocka_unit_test(ex6_livelock_caught_by_the_bound),
               cmocka_unit_test(ex6_livelock_fixed_by_random_backoff),
               cmocka_unit_test(ex6_starvation_waits_measured),
               cmocka_unit_test(ex6_no_argument_runs_the_safe_demos),
               cmocka_unit_test(ex8_system_mutex_recovers_from_a_killed_holder), )
