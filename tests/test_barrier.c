/* conc_barrier: misuse codes (NULL, bad parties and timeouts, destroyed and
 * busy objects), rounds (all parties pass together, each round's indices are a
 * permutation of 0..n-1, the action runs exactly once per round before anyone
 * is released, in the thread that gets n-1), breaking (failed action, timeout,
 * abort: every waiter gets CONC_EBROKEN, the timed-out one CONC_ETIMEDOUT, and
 * so does every later wait), reset (blocked threads get EBROKEN, full rounds
 * work again), and a many-round stress with no lost wake-up. */
#include "test_impl.h"

#include <limits.h>
#include <stdatomic.h>
#include <string.h>

/* ---- helpers ---- */

/* One wait in its own thread. */
struct waiter {
    conc_barrier *b;
    int64_t timeout;
    int rc;
    size_t idx;
};

static void *wait_thread(void *p)
{
    struct waiter *w = p;
    w->idx = UINT_MAX;
    w->rc = conc_barrier_wait_timed(w->b, &w->idx, w->timeout);
    return NULL;
}

static struct waiter waiter_of(conc_barrier *b, int64_t timeout)
{
    return (struct waiter){.b = b, .timeout = timeout, .rc = 1};
}

/* Starts n waiters and returns once all of them are inside wait. */
static void start_blocked(conc_barrier *b, struct waiter *w, pthread_t *t, int n)
{
    for (int i = 0; i < n; i++) {
        w[i] = waiter_of(b, CONC_FOREVER);
        t[i] = conc_test_start(wait_thread, &w[i]);
    }
    conc_test_await_waiters(b, (uint32_t)n);
}

static void join_all(struct waiter *w, pthread_t *t, int n, int expect)
{
    for (int i = 0; i < n; i++) {
        conc_test_join(t[i]);
        assert_int_equal(w[i].rc, expect);
    }
}

/* ---- rounds, with checks: the shared context of the round tests ---- */

static _Thread_local int tl_id;

enum { MAX_PARTIES = 8 }; /* a round's indices fit the bits of a byte */

struct rounds {
    conc_barrier b;
    unsigned char parties;
    long nrounds;
    long actions;          /* written by the action only: under the barrier's lock */
    int runner;            /* tl_id of the thread that ran the last action */
    atomic_uchar *seen;    /* per round: bit i set by the thread that got index i */
    atomic_int *left;      /* per round: threads that returned from wait */
    atomic_int fail_first; /* the action fails this many times first */
};

struct rounds_arg {
    struct rounds *r;
    int id;
};

/* Runs in the last thread to arrive, before anyone of its round leaves. */
static int rounds_action(void *p)
{
    struct rounds *r = p;
    if (atomic_load(&r->fail_first) > 0) {
        atomic_fetch_sub(&r->fail_first, 1);
        return 7;
    }
    assert_true(r->actions < r->nrounds);
    assert_int_equal(atomic_load(&r->left[r->actions]), 0);
    r->actions++;
    r->runner = tl_id;
    return 0;
}

static void check_round(struct rounds *r, long round, size_t idx)
{
    assert_true(idx < (size_t)r->parties);
    /* Exactly one action per round, done before this thread got out. */
    assert_int_equal(r->actions, round + 1);
    if (idx == (size_t)r->parties - 1)
        assert_int_equal(r->runner, tl_id);
    unsigned bit = 1u << idx;
    assert_int_equal(atomic_fetch_or(&r->seen[round], (unsigned char)bit) & bit, 0);
    atomic_fetch_add(&r->left[round], 1);
}

static void *rounds_worker(void *p)
{
    struct rounds_arg *a = p;
    struct rounds *r = a->r;
    tl_id = a->id;
    for (long round = 0; round < r->nrounds; round++) {
        size_t idx = SIZE_MAX;
        assert_int_equal(conc_barrier_wait(&r->b, &idx), 0);
        check_round(r, round, idx);
    }
    return NULL;
}

static void rounds_init(struct rounds *r, int parties, long nrounds)
{
    assert_true(parties > 0 && parties <= MAX_PARTIES);
    memset(r, 0, sizeof *r);
    r->parties = parties;
    r->nrounds = nrounds;
    r->seen = calloc((size_t)nrounds, sizeof *r->seen);
    r->left = calloc((size_t)nrounds, sizeof *r->left);
    assert_non_null(r->seen);
    assert_non_null(r->left);
    conc_barrier_opts o = {.action = rounds_action, .action_arg = r};
    assert_int_equal(conc_barrier_init(&r->b, parties, &o), 0);
}

/* Runs parties threads through all the rounds, then checks every round was
 * whole: all indices seen once, all parties out, one action each. */
static void rounds_run(struct rounds *r)
{
    struct rounds_arg args[MAX_PARTIES];
    int n = r->parties;
    for (int i = 0; i < n; i++)
        args[i] = (struct rounds_arg){.r = r, .id = i + 1};
    conc_test_run_threads(n, rounds_worker, args, sizeof *args);
    unsigned all = (1u << r->parties) - 1;
    for (long i = 0; i < r->nrounds; i++) {
        assert_int_equal(atomic_load(&r->seen[i]), all);
        assert_int_equal(atomic_load(&r->left[i]), r->parties);
    }
    assert_int_equal(r->actions, r->nrounds);
    assert_int_equal(conc_barrier_broken(&r->b), 0);
    assert_int_equal(conc_test_nwaiters(&r->b), 0);
}

/* Clears the per-round records for another run on the same barrier. */
static void rounds_restart(struct rounds *r)
{
    for (long i = 0; i < r->nrounds; i++) {
        atomic_store(&r->seen[i], 0);
        atomic_store(&r->left[i], 0);
    }
    r->actions = 0;
}

static void rounds_fini(struct rounds *r)
{
    assert_int_equal(conc_barrier_destroy(&r->b), 0);
    free(r->seen);
    free(r->left);
}

/* ---- misuse ---- */

static void barrier_null_and_bad_parties_are_einval(void **state)
{
    (void)state;
    conc_barrier b;
    size_t idx = 0;
    assert_int_equal(conc_barrier_init(NULL, 2, NULL), CONC_EINVAL);
    assert_int_equal(conc_barrier_init(&b, 0, NULL), CONC_EINVAL);
    assert_int_equal(conc_barrier_init(&b, -1, NULL), CONC_EINVAL);
    assert_int_equal(conc_barrier_init(&b, INT_MIN, NULL), CONC_EINVAL);
    assert_int_equal(conc_barrier_destroy(NULL), CONC_EINVAL);
    assert_int_equal(conc_barrier_wait_timed(NULL, &idx, 0), CONC_EINVAL);
    assert_int_equal(conc_barrier_wait(NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_barrier_abort(NULL), CONC_EINVAL);
    assert_int_equal(conc_barrier_reset(NULL), CONC_EINVAL);
    assert_int_equal(conc_barrier_broken(NULL), CONC_EINVAL);
}

/* A bad timeout is refused and does not count as an arrival: a full round
 * afterwards still needs both parties and gives indices 0 and 1. */
static void barrier_negative_timeout_is_einval(void **state)
{
    (void)state;
    conc_barrier b;
    assert_int_equal(conc_barrier_init(&b, 2, NULL), 0);
    size_t idx = 99;
    assert_int_equal(conc_barrier_wait_timed(&b, &idx, -2), CONC_EINVAL);
    assert_int_equal(conc_barrier_wait_timed(&b, NULL, INT64_MIN), CONC_EINVAL);
    assert_int_equal(idx, 99);
    assert_int_equal(conc_barrier_broken(&b), 0);
    assert_int_equal(conc_test_nwaiters(&b), 0);
    struct waiter w = waiter_of(&b, CONC_FOREVER);
    pthread_t t = conc_test_start(wait_thread, &w);
    conc_test_await_waiters(&b, 1);
    assert_int_equal(conc_barrier_wait(&b, &idx), 0);
    conc_test_join(t);
    assert_int_equal(w.rc, 0);
    assert_int_equal(idx, 1); /* the last to arrive */
    assert_int_equal(w.idx, 0);
    assert_int_equal(conc_barrier_destroy(&b), 0);
}

static void expect_dead(conc_barrier *b)
{
    size_t idx = 99;
    assert_int_equal(conc_barrier_wait_timed(b, &idx, 0), CONC_EBADF);
    assert_int_equal(conc_barrier_wait(b, NULL), CONC_EBADF);
    assert_int_equal(idx, 99);
    assert_int_equal(conc_barrier_abort(b), CONC_EBADF);
    assert_int_equal(conc_barrier_reset(b), CONC_EBADF);
    assert_int_equal(conc_barrier_broken(b), CONC_EBADF);
    assert_int_equal(conc_barrier_destroy(b), CONC_EBADF);
}

static void barrier_destroyed_is_ebadf_until_reinit(void **state)
{
    (void)state;
    conc_barrier b;
    assert_int_equal(conc_barrier_init(&b, 1, NULL), 0);
    assert_int_equal(conc_barrier_destroy(&b), 0);
    expect_dead(&b);
    /* A broken barrier's destroy leaves the same marker. */
    assert_int_equal(conc_barrier_init(&b, 3, NULL), 0);
    assert_int_equal(conc_barrier_abort(&b), 0);
    assert_int_equal(conc_barrier_destroy(&b), 0);
    expect_dead(&b);
    /* Re-initialised, it works. */
    assert_int_equal(conc_barrier_init(&b, 1, NULL), 0);
    size_t idx = 99;
    assert_int_equal(conc_barrier_wait_timed(&b, &idx, 0), 0);
    assert_int_equal(idx, 0);
    assert_int_equal(conc_barrier_broken(&b), 0);
    assert_int_equal(conc_barrier_destroy(&b), 0);
}

/* Destroying a barrier a thread waits at is EBUSY and changes nothing. */
static void barrier_destroy_while_waited_is_ebusy(void **state)
{
    (void)state;
    conc_barrier b;
    assert_int_equal(conc_barrier_init(&b, 2, NULL), 0);
    struct waiter w = waiter_of(&b, CONC_FOREVER);
    pthread_t t = conc_test_start(wait_thread, &w);
    conc_test_await_waiters(&b, 1);
    assert_int_equal(conc_barrier_destroy(&b), CONC_EBUSY);
    assert_int_equal(conc_barrier_broken(&b), 0);
    size_t idx = 99;
    assert_int_equal(conc_barrier_wait(&b, &idx), 0);
    conc_test_join(t);
    assert_int_equal(w.rc, 0);
    assert_int_equal(idx + w.idx, 1); /* 0 and 1 */
    assert_int_equal(conc_barrier_destroy(&b), 0);
}

/* ---- rounds ---- */

static int count_action(void *p)
{
    (*(int *)p)++;
    return 0;
}

static void barrier_single_party_never_blocks(void **state)
{
    (void)state;
    conc_barrier b;
    int runs = 0;
    conc_barrier_opts o = {.action = count_action, .action_arg = &runs};
    assert_int_equal(conc_barrier_init(&b, 1, &o), 0);
    for (int i = 0; i < 10; i++) {
        size_t idx = 99;
        assert_int_equal(conc_barrier_wait_timed(&b, &idx, i % 2 ? 0 : CONC_FOREVER), 0);
        assert_int_equal(idx, 0);
        assert_int_equal(runs, i + 1);
    }
    assert_int_equal(conc_barrier_wait_timed(&b, NULL, 0), 0); /* index may be NULL */
    assert_int_equal(runs, 11);
    assert_int_equal(conc_barrier_destroy(&b), 0);
}

/* n parties over many rounds: each round's indices are a permutation of
 * 0..n-1, the action runs once per round, before anyone leaves, in the thread
 * that gets n-1, and every thread sees its round's action done. */
static void barrier_rounds_permutation_and_action_once(void **state)
{
    (void)state;
    static struct rounds r;
    rounds_init(&r, 4, 300);
    rounds_run(&r);
    rounds_fini(&r);
}

/* A failing action breaks its round: every waiter of it, the action's runner
 * included, gets EBROKEN, and so does every later wait, until reset. */
static void barrier_action_failure_breaks_round(void **state)
{
    (void)state;
    enum { N = 3 };
    static struct rounds r;
    rounds_init(&r, N, 4);
    atomic_store(&r.fail_first, 1);
    struct waiter w[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        w[i] = waiter_of(&r.b, CONC_FOREVER);
        t[i] = conc_test_start(wait_thread, &w[i]);
    }
    join_all(w, t, N, CONC_EBROKEN);
    assert_int_equal(atomic_load(&r.fail_first), 0); /* the action ran once */
    assert_int_equal(r.actions, 0);
    assert_int_equal(conc_barrier_broken(&r.b), 1);
    assert_int_equal(conc_barrier_wait_timed(&r.b, NULL, 0), CONC_EBROKEN);
    assert_int_equal(conc_barrier_wait(&r.b, NULL), CONC_EBROKEN);
    assert_int_equal(conc_barrier_broken(&r.b), 1);
    /* Reset: full rounds, the action succeeding now. */
    assert_int_equal(conc_barrier_reset(&r.b), 0);
    assert_int_equal(conc_barrier_broken(&r.b), 0);
    rounds_run(&r);
    rounds_fini(&r);
}

/* A wait that times out breaks the barrier: that thread gets ETIMEDOUT, the
 * one waiting with it EBROKEN, later waits EBROKEN; reset repairs it. */
static void barrier_timeout_breaks_barrier(void **state)
{
    (void)state;
    static struct rounds r;
    rounds_init(&r, 3, 3);
    struct waiter w = waiter_of(&r.b, CONC_FOREVER);
    pthread_t t = conc_test_start(wait_thread, &w);
    conc_test_await_waiters(&r.b, 1);
    size_t idx = 99;
    assert_int_equal(conc_barrier_wait_timed(&r.b, &idx, CONC_MSEC(20)), CONC_ETIMEDOUT);
    assert_int_equal(idx, 99);
    conc_test_join(t);
    assert_int_equal(w.rc, CONC_EBROKEN);
    assert_int_equal(conc_barrier_broken(&r.b), 1);
    assert_int_equal(conc_barrier_wait_timed(&r.b, NULL, CONC_SEC(5)), CONC_EBROKEN);
    assert_int_equal(r.actions, 0);
    assert_int_equal(conc_barrier_reset(&r.b), 0);
    rounds_run(&r);
    rounds_fini(&r);
}

/* Abort: the blocked waiters and every later wait get EBROKEN. */
static void barrier_abort_breaks_waiters_and_later_waits(void **state)
{
    (void)state;
    enum { N = 4, BLOCKED = 2 };
    static struct rounds r;
    rounds_init(&r, N, 3);
    struct waiter w[BLOCKED];
    pthread_t t[BLOCKED];
    start_blocked(&r.b, w, t, BLOCKED);
    assert_int_equal(conc_barrier_abort(&r.b), 0);
    join_all(w, t, BLOCKED, CONC_EBROKEN);
    assert_int_equal(conc_barrier_broken(&r.b), 1);
    assert_int_equal(conc_barrier_wait_timed(&r.b, NULL, 0), CONC_EBROKEN);
    assert_int_equal(conc_barrier_wait(&r.b, NULL), CONC_EBROKEN);
    assert_int_equal(conc_barrier_abort(&r.b), 0); /* again: still broken */
    assert_int_equal(conc_barrier_broken(&r.b), 1);
    assert_int_equal(r.actions, 0);
    assert_int_equal(conc_barrier_reset(&r.b), 0);
    assert_int_equal(conc_barrier_broken(&r.b), 0);
    rounds_run(&r);
    rounds_fini(&r);
}

/* Reset with threads blocked: they get EBROKEN, the barrier is not broken
 * afterwards, and full rounds work (arrivals that come while the reset round
 * drains wait for it). A reset of an idle barrier changes nothing. */
static void barrier_reset_releases_blocked_and_is_reusable(void **state)
{
    (void)state;
    enum { N = 3, BLOCKED = 2 };
    static struct rounds r;
    rounds_init(&r, N, 20);
    assert_int_equal(conc_barrier_reset(&r.b), 0); /* idle */
    assert_int_equal(conc_barrier_broken(&r.b), 0);
    struct waiter w[BLOCKED];
    pthread_t t[BLOCKED];
    start_blocked(&r.b, w, t, BLOCKED);
    assert_int_equal(conc_barrier_reset(&r.b), 0);
    assert_int_equal(conc_barrier_broken(&r.b), 0);
    rounds_run(&r); /* may start while the blocked two still leave */
    join_all(w, t, BLOCKED, CONC_EBROKEN);
    assert_int_equal(r.actions, r.nrounds); /* the broken round ran no action */
    /* Once more, after a full run: reset, then run again. */
    assert_int_equal(conc_barrier_reset(&r.b), 0);
    rounds_restart(&r);
    rounds_run(&r);
    rounds_fini(&r);
}

/* ---- timing ---- */

static void barrier_timed_wait_timing(void **state)
{
    (void)state;
    static const int64_t timeouts[] = {CONC_MSEC(30), CONC_USEC(300)};
    for (size_t i = 0; i < sizeof timeouts / sizeof *timeouts; i++) {
        conc_barrier b;
        assert_int_equal(conc_barrier_init(&b, 2, NULL), 0);
        int64_t t0 = conc_now_ns();
        assert_int_equal(conc_barrier_wait_timed(&b, NULL, timeouts[i]), CONC_ETIMEDOUT);
        int64_t took = conc_now_ns() - t0;
        assert_true(took >= timeouts[i]);
        assert_true(took < timeouts[i] + CONC_SEC(1));
        print_message("wait(%lld ns): late by %lld us\n", (long long)timeouts[i],
                      (long long)((took - timeouts[i]) / 1000));
        assert_int_equal(conc_barrier_broken(&b), 1);
        assert_int_equal(conc_barrier_destroy(&b), 0);
    }
}

/* ---- stress ---- */

/* 8 parties through many rounds: every round completes (no lost wake-up
 * would hang here), and each is counted by its action exactly once, with a
 * full permutation of indices. */
static void barrier_stress_many_rounds(void **state)
{
    (void)state;
    static struct rounds r;
    rounds_init(&r, 8, conc_test_scaled(10000, 200));
    int64_t t0 = conc_now_ns();
    rounds_run(&r);
    print_message("8 parties x %ld rounds, %.1f ms\n", r.nrounds,
                  (double)(conc_now_ns() - t0) / 1e6);
    rounds_fini(&r);
}

/* Rounds with timeouts that never run out: the timed path of wait must pass
 * rounds as the untimed one does. */
static void *timed_rounds_worker(void *p)
{
    struct rounds_arg *a = p;
    struct rounds *r = a->r;
    tl_id = a->id;
    for (long round = 0; round < r->nrounds; round++) {
        size_t idx = SIZE_MAX;
        assert_int_equal(conc_barrier_wait_timed(&r->b, &idx, CONC_SEC(30)), 0);
        check_round(r, round, idx);
    }
    return NULL;
}

static void barrier_stress_timed_rounds(void **state)
{
    (void)state;
    enum { N = 5 };
    static struct rounds r;
    rounds_init(&r, N, conc_test_scaled(10000, 200));
    struct rounds_arg args[N];
    for (int i = 0; i < N; i++)
        args[i] = (struct rounds_arg){.r = &r, .id = i + 1};
    conc_test_run_threads(N, timed_rounds_worker, args, sizeof *args);
    for (long i = 0; i < r.nrounds; i++)
        assert_int_equal(atomic_load(&r.seen[i]), (1u << N) - 1);
    assert_int_equal(r.actions, r.nrounds);
    assert_int_equal(conc_barrier_broken(&r.b), 0);
    rounds_fini(&r);
}

/* Workers pass rounds until a wait returns EBROKEN; main aborts the barrier
 * in the middle of the run. No thread may be left behind, and since a round
 * passes whole, every thread passed either all the rounds whose action ran or
 * all but the last (a released thread that the abort catches before it gets
 * out also gets EBROKEN, as in Python). */
struct abort_arg {
    struct rounds *r;
    int id;
    long passed;
};

static void *until_broken_worker(void *p)
{
    struct abort_arg *a = p;
    struct rounds *r = a->r;
    tl_id = a->id;
    for (long round = 0; round < r->nrounds; round++) {
        size_t idx = SIZE_MAX;
        int rc = conc_barrier_wait(&r->b, &idx);
        if (rc == CONC_EBROKEN)
            return NULL;
        assert_int_equal(rc, 0);
        check_round(r, round, idx);
        a->passed++;
    }
    fail_msg("the run ended before the abort");
    return NULL;
}

/* Aborts once `leavers` threads have left round `round`: mid-run for sure,
 * at a point that varies with the arguments (and with the scheduler). */
static void abort_mid_run_cycle(struct rounds *r, long round, int leavers)
{
    enum { N = 6 };
    struct abort_arg args[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        args[i] = (struct abort_arg){.r = r, .id = i + 1};
        t[i] = conc_test_start(until_broken_worker, &args[i]);
    }
    CONC_TEST_POLL_UNTIL(atomic_load(&r->left[round]) >= leavers);
    assert_int_equal(conc_barrier_abort(&r->b), 0);
    for (int i = 0; i < N; i++) {
        conc_test_join(t[i]);
        assert_true(args[i].passed == r->actions || args[i].passed + 1 == r->actions);
    }
    assert_int_equal(conc_barrier_broken(&r->b), 1);
    assert_int_equal(conc_test_nwaiters(&r->b), 0);
}

static void barrier_stress_abort_mid_run(void **state)
{
    (void)state;
    static struct rounds r;
    rounds_init(&r, 6, 1000000); /* more rounds than any cycle gets through */
    long cycles = conc_test_scaled(50, 5);
    for (long c = 0; c < cycles; c++) {
        abort_mid_run_cycle(&r, c % 20, 1 + (int)(c % 6));
        assert_int_equal(conc_barrier_reset(&r.b), 0);
        for (long i = 0; i <= r.actions && i < r.nrounds; i++) {
            atomic_store(&r.seen[i], 0);
            atomic_store(&r.left[i], 0);
        }
        r.actions = 0;
    }
    /* Repaired by the last reset: a full, short run. */
    r.nrounds = 100;
    rounds_run(&r);
    rounds_fini(&r);
}

/* Repeated resets with threads blocked, while the next full rounds arrive
 * during the drain of the reset round: the blocked threads always get EBROKEN,
 * the full rounds always pass. */
static void barrier_stress_reset_cycles(void **state)
{
    (void)state;
    enum { N = 4, BLOCKED = 3 };
    static struct rounds r;
    rounds_init(&r, N, 3);
    long cycles = conc_test_scaled(200, 20);
    for (long c = 0; c < cycles; c++) {
        struct waiter w[BLOCKED];
        pthread_t t[BLOCKED];
        start_blocked(&r.b, w, t, BLOCKED);
        assert_int_equal(conc_barrier_reset(&r.b), 0);
        rounds_run(&r);
        join_all(w, t, BLOCKED, CONC_EBROKEN);
        rounds_restart(&r);
    }
    rounds_fini(&r);
}

/* An all-zero barrier was never initialised: it has no parties, and a wait
 * on it could never be released. Every call answers CONC_EINVAL at once,
 * the untimed wait included (it used to wait for ever). */
static void barrier_all_zero_is_einval(void **state)
{
    (void)state;
    conc_barrier b;
    memset(&b, 0, sizeof b);
    size_t idx = 77;
    assert_int_equal(conc_barrier_wait_timed(&b, &idx, 0), CONC_EINVAL);
    assert_int_equal(conc_barrier_wait_timed(&b, &idx, CONC_MSEC(10)), CONC_EINVAL);
    assert_int_equal(conc_barrier_wait(&b, &idx), CONC_EINVAL);
    assert_int_equal(idx, 77);
    assert_int_equal(conc_barrier_abort(&b), CONC_EINVAL);
    assert_int_equal(conc_barrier_reset(&b), CONC_EINVAL);
    assert_int_equal(conc_barrier_broken(&b), CONC_EINVAL);
    assert_int_equal(conc_barrier_parties(&b), CONC_EINVAL);
    assert_int_equal(conc_barrier_n_waiting(&b), CONC_EINVAL);
    /* init makes it a barrier like any other. */
    assert_int_equal(conc_barrier_init(&b, 1, NULL), 0);
    assert_int_equal(conc_barrier_wait(&b, &idx), 0);
    assert_int_equal(idx, 0);
    assert_int_equal(conc_barrier_destroy(&b), 0);
}

/* Python's parties and n_waiting: n_waiting counts the threads in the
 * round now filling, 0 once it is released or broken. */
static void barrier_parties_and_n_waiting(void **state)
{
    (void)state;
    conc_barrier b;
    assert_int_equal(conc_barrier_parties(NULL), CONC_EINVAL);
    assert_int_equal(conc_barrier_n_waiting(NULL), CONC_EINVAL);
    assert_int_equal(conc_barrier_init(&b, 3, NULL), 0);
    assert_int_equal(conc_barrier_parties(&b), 3);
    assert_int_equal(conc_barrier_n_waiting(&b), 0);
    struct waiter w[3];
    pthread_t t[3];
    start_blocked(&b, w, t, 2);
    assert_int_equal(conc_barrier_n_waiting(&b), 2);
    w[2] = waiter_of(&b, CONC_FOREVER);
    t[2] = conc_test_start(wait_thread, &w[2]);
    join_all(w, t, 3, 0);
    assert_int_equal(conc_barrier_n_waiting(&b), 0);
    start_blocked(&b, w, t, 1);
    assert_int_equal(conc_barrier_n_waiting(&b), 1);
    assert_int_equal(conc_barrier_abort(&b), 0);
    join_all(w, t, 1, CONC_EBROKEN);
    assert_int_equal(conc_barrier_n_waiting(&b), 0);
    assert_int_equal(conc_barrier_parties(&b), 3);
    assert_int_equal(conc_barrier_destroy(&b), 0);
    assert_int_equal(conc_barrier_parties(&b), CONC_EBADF);
    assert_int_equal(conc_barrier_n_waiting(&b), CONC_EBADF);
}

CONC_TEST_MAIN(cmocka_unit_test(barrier_parties_and_n_waiting),
               cmocka_unit_test(barrier_all_zero_is_einval),
               cmocka_unit_test(barrier_null_and_bad_parties_are_einval),
               cmocka_unit_test(barrier_negative_timeout_is_einval),
               cmocka_unit_test(barrier_destroyed_is_ebadf_until_reinit),
               cmocka_unit_test(barrier_destroy_while_waited_is_ebusy),
               cmocka_unit_test(barrier_single_party_never_blocks),
               cmocka_unit_test(barrier_rounds_permutation_and_action_once),
               cmocka_unit_test(barrier_action_failure_breaks_round),
               cmocka_unit_test(barrier_timeout_breaks_barrier),
               cmocka_unit_test(barrier_abort_breaks_waiters_and_later_waits),
               cmocka_unit_test(barrier_reset_releases_blocked_and_is_reusable),
               cmocka_unit_test(barrier_timed_wait_timing),
               cmocka_unit_test(barrier_stress_many_rounds),
               cmocka_unit_test(barrier_stress_timed_rounds),
               cmocka_unit_test(barrier_stress_abort_mid_run),
               cmocka_unit_test(barrier_stress_reset_cycles))
