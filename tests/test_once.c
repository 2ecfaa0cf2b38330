/* conc_once: misuse codes, the initialiser running exactly once with many
 * concurrent callers (and its effects visible to all of them), failures not
 * latched (the next caller, a waiting one included, runs it again; each caller
 * returns 0 or the error of its own run), conc_once_call_timed timing out
 * while another caller's initialiser runs, CONC_ONCE_INIT and all-zero
 * objects, and a stress over many onces with failing first runs. */
#include "test_impl.h"

#include <stdatomic.h>
#include <string.h>

enum { FAIL_CODE = 77 };

/* ---- helpers ---- */

/* An initialiser that can fail its first runs and can be held on a gate. */
struct init {
    atomic_int runs, successes;
    atomic_int fail_first; /* the first this many runs fail */
    atomic_int entered;    /* a run has started */
    conc_event *gate;      /* if set, each run waits for it */
    int value;             /* plain data the successful run publishes */
};

/* Per caller: which init it uses and what its own run did. */
struct caller {
    conc_once *o;
    struct init *in;
    int64_t timeout;
    int rc;
    int ran, ran_ok;
};

static int init_fn(void *p)
{
    struct caller *c = p;
    struct init *in = c->in;
    atomic_fetch_add(&in->runs, 1);
    atomic_store(&in->entered, 1);
    c->ran++;
    if (in->gate)
        assert_int_equal(conc_event_wait_timed(in->gate, CONC_SEC(30)), 0);
    if (atomic_fetch_sub(&in->fail_first, 1) > 0)
        return FAIL_CODE;
    in->value = 42;
    atomic_fetch_add(&in->successes, 1);
    c->ran_ok = 1;
    return 0;
}

static void *call_thread(void *p)
{
    struct caller *c = p;
    c->rc = conc_once_call_timed(c->o, init_fn, c, c->timeout);
    if (c->rc == 0)
        assert_int_equal(c->in->value, 42); /* published before we returned */
    return NULL;
}

static struct caller caller_of(conc_once *o, struct init *in, int64_t timeout)
{
    return (struct caller){.o = o, .in = in, .timeout = timeout, .rc = 1};
}

/* Each caller returned 0 or the error of its own failed run. */
static void check_callers(struct caller *c, int n)
{
    for (int i = 0; i < n; i++) {
        assert_true(c[i].ran <= 1);
        if (c[i].ran && !c[i].ran_ok)
            assert_int_equal(c[i].rc, FAIL_CODE);
        else
            assert_int_equal(c[i].rc, 0);
    }
}

/* ---- misuse ---- */

static int never_fn(void *p)
{
    (void)p;
    fail_msg("the initialiser must not run");
    return 0;
}

static void once_null_object_and_fn_are_einval(void **state)
{
    (void)state;
    conc_once o = CONC_ONCE_INIT;
    assert_int_equal(conc_once_call(NULL, never_fn, NULL), CONC_EINVAL);
    assert_int_equal(conc_once_call(&o, NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_once_call_timed(NULL, never_fn, NULL, 0), CONC_EINVAL);
    assert_int_equal(conc_once_call_timed(&o, NULL, NULL, CONC_FOREVER), CONC_EINVAL);
}

static void once_negative_timeout_is_einval(void **state)
{
    (void)state;
    conc_once o = CONC_ONCE_INIT;
    assert_int_equal(conc_once_call_timed(&o, never_fn, NULL, -2), CONC_EINVAL);
    assert_int_equal(conc_once_call_timed(&o, never_fn, NULL, INT64_MIN), CONC_EINVAL);
    assert_int_equal(conc_test_nwaiters(&o), 0);
}

/* "Negative timeouts other than CONC_FOREVER are CONC_EINVAL everywhere":
 * also once the initialiser has succeeded. */
static void once_negative_timeout_is_einval_even_when_done(void **state)
{
    (void)state;
    conc_once o = CONC_ONCE_INIT;
    struct init in = {0};
    struct caller c = caller_of(&o, &in, CONC_FOREVER);
    assert_int_equal(conc_once_call(&o, init_fn, &c), 0);
    assert_int_equal(conc_once_call_timed(&o, never_fn, NULL, -2), CONC_EINVAL);
    assert_int_equal(conc_once_call_timed(&o, never_fn, NULL, INT64_MIN), CONC_EINVAL);
}

/* ---- semantics ---- */

static void check_runs_once(conc_once *o)
{
    struct init in = {0};
    struct caller c = caller_of(o, &in, CONC_FOREVER);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(conc_once_call(o, init_fn, &c), 0);
        assert_int_equal(conc_once_call_timed(o, never_fn, NULL, 0), 0);
        assert_int_equal(conc_once_call_timed(o, never_fn, NULL, CONC_FOREVER), 0);
    }
    assert_int_equal(atomic_load(&in.runs), 1);
    assert_int_equal(c.ran, 1); /* fn got our arg */
    assert_int_equal(in.value, 42);
    assert_int_equal(conc_test_nwaiters(o), 0);
}

static conc_once g_static_once = CONC_ONCE_INIT;

static void once_runs_once_static_and_zero_init(void **state)
{
    (void)state;
    check_runs_once(&g_static_once);
    conc_once local = CONC_ONCE_INIT;
    check_runs_once(&local);
    conc_once zero;
    memset(&zero, 0, sizeof zero);
    check_runs_once(&zero);
}

/* A failure is not latched: the caller gets the initialiser's own code, the
 * next call runs it again, and once it succeeds it never runs again. */
static void once_failure_is_not_latched(void **state)
{
    (void)state;
    conc_once o = CONC_ONCE_INIT;
    struct init in = {.fail_first = 2};
    struct caller c = caller_of(&o, &in, CONC_FOREVER);
    assert_int_equal(conc_once_call(&o, init_fn, &c), FAIL_CODE);
    assert_int_equal(conc_once_call_timed(&o, init_fn, &c, 0), FAIL_CODE);
    assert_int_equal(atomic_load(&in.runs), 2);
    assert_int_equal(conc_once_call(&o, init_fn, &c), 0);
    assert_int_equal(conc_once_call(&o, never_fn, NULL), 0);
    assert_int_equal(atomic_load(&in.runs), 3);
    assert_int_equal(atomic_load(&in.successes), 1);
}

enum { CALLERS = 8 };

/* Many callers at once, all held until the first run is under way and every
 * other caller waits for it: the initialiser runs once, all return 0 and see
 * what it published. */
static void once_concurrent_callers_run_it_once(void **state)
{
    (void)state;
    conc_once o = CONC_ONCE_INIT;
    conc_event gate;
    assert_int_equal(conc_event_init(&gate, NULL), 0);
    struct init in = {.gate = &gate};
    struct caller c[CALLERS];
    pthread_t t[CALLERS];
    for (int i = 0; i < CALLERS; i++) {
        c[i] = caller_of(&o, &in, CONC_FOREVER);
        t[i] = conc_test_start(call_thread, &c[i]);
    }
    conc_test_await_waiters(&o, CALLERS); /* the runner and the rest, waiting */
    assert_int_equal(atomic_load(&in.runs), 1);
    assert_int_equal(conc_event_set(&gate), 0);
    for (int i = 0; i < CALLERS; i++)
        conc_test_join(t[i]);
    check_callers(c, CALLERS);
    assert_int_equal(atomic_load(&in.runs), 1);
    assert_int_equal(atomic_load(&in.successes), 1);
    assert_int_equal(conc_once_call(&o, never_fn, NULL), 0);
    assert_int_equal(conc_event_destroy(&gate), 0);
}

/* The first run fails while the other callers wait: one of them runs it again
 * (it fails once more, then a third run succeeds). Exactly one success in
 * all; each caller returns 0 or the error of its own run. */
static void once_concurrent_callers_rerun_after_failure(void **state)
{
    (void)state;
    conc_once o = CONC_ONCE_INIT;
    conc_event gate;
    assert_int_equal(conc_event_init(&gate, NULL), 0);
    struct init in = {.gate = &gate, .fail_first = 2};
    struct caller c[CALLERS];
    pthread_t t[CALLERS];
    for (int i = 0; i < CALLERS; i++) {
        c[i] = caller_of(&o, &in, i % 2 ? CONC_FOREVER : CONC_SEC(30));
        t[i] = conc_test_start(call_thread, &c[i]);
    }
    conc_test_await_waiters(&o, CALLERS);
    assert_int_equal(conc_event_set(&gate), 0); /* the first run may now fail */
    int failed = 0, succeeded = 0;
    for (int i = 0; i < CALLERS; i++) {
        conc_test_join(t[i]);
        failed += c[i].rc == FAIL_CODE;
        succeeded += c[i].ran_ok;
    }
    check_callers(c, CALLERS);
    assert_int_equal(failed, 2);
    assert_int_equal(succeeded, 1);
    assert_int_equal(atomic_load(&in.runs), 3);
    assert_int_equal(atomic_load(&in.successes), 1);
    assert_int_equal(conc_test_nwaiters(&o), 0);
    assert_int_equal(conc_event_destroy(&gate), 0);
}

/* A once whose initialiser runs in another caller, held on a gate we
 * control: started by held_start, which returns once that caller is inside
 * conc_once_call. */
struct held {
    conc_once o;
    conc_event gate;
    struct init in;
    struct caller runner;
    pthread_t t;
};

static void held_start(struct held *h)
{
    h->o = (conc_once)CONC_ONCE_INIT;
    assert_int_equal(conc_event_init(&h->gate, NULL), 0);
    h->in = (struct init){.gate = &h->gate};
    h->runner = caller_of(&h->o, &h->in, CONC_FOREVER);
    h->t = conc_test_start(call_thread, &h->runner);
    conc_test_await_waiters(&h->o, 1);
}

/* While another caller's initialiser runs (held on a gate we control), a timed
 * call returns ETIMEDOUT without running it; an untimed caller waits and gets
 * the runner's success. */
static void once_timed_call_times_out_while_running(void **state)
{
    (void)state;
    struct held h;
    held_start(&h);
    CONC_TEST_POLL_UNTIL(atomic_load(&h.in.entered)); /* announced first, then runs fn */
    struct caller me = caller_of(&h.o, &h.in, 0);
    assert_int_equal(conc_once_call_timed(&h.o, init_fn, &me, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_once_call_timed(&h.o, init_fn, &me, CONC_MSEC(10)), CONC_ETIMEDOUT);
    assert_int_equal(me.ran, 0);
    struct caller waiter = caller_of(&h.o, &h.in, CONC_FOREVER);
    pthread_t tw = conc_test_start(call_thread, &waiter);
    conc_test_await_waiters(&h.o, 2);
    assert_int_equal(conc_event_set(&h.gate), 0);
    conc_test_join(h.t);
    conc_test_join(tw);
    assert_int_equal(h.runner.rc, 0);
    assert_int_equal(waiter.rc, 0);
    assert_int_equal(waiter.ran, 0);
    assert_int_equal(atomic_load(&h.in.runs), 1);
    assert_int_equal(conc_once_call_timed(&h.o, never_fn, NULL, 0), 0);
    assert_int_equal(conc_event_destroy(&h.gate), 0);
}

/* ---- timing ---- */

static void once_timed_call_timing(void **state)
{
    (void)state;
    struct held h;
    held_start(&h);
    static const int64_t timeouts[] = {CONC_MSEC(30), CONC_USEC(300)};
    for (size_t i = 0; i < sizeof timeouts / sizeof *timeouts; i++) {
        int64_t t0 = conc_now_ns();
        assert_int_equal(conc_once_call_timed(&h.o, never_fn, NULL, timeouts[i]),
                         CONC_ETIMEDOUT);
        int64_t took = conc_now_ns() - t0;
        assert_true(took >= timeouts[i]);
        assert_true(took < timeouts[i] + CONC_SEC(1));
        print_message("call_timed(%lld ns): late by %lld us\n", (long long)timeouts[i],
                      (long long)((took - timeouts[i]) / 1000));
    }
    assert_int_equal(conc_event_set(&h.gate), 0);
    conc_test_join(h.t);
    assert_int_equal(h.runner.rc, 0);
    assert_int_equal(atomic_load(&h.in.runs), 1);
    assert_int_equal(conc_event_destroy(&h.gate), 0);
}

/* ---- stress ---- */

/* Threads sweep together over many onces, each once's initialiser failing
 * its first (k % 3) runs. Per once: exactly k % 3 + 1 runs, one success; in
 * all, as many callers got the error as there were failed runs. */
enum { SWEEPERS = 4 };

struct sweep {
    long n;
    conc_once *onces;
    struct init *inits;
    conc_event go;
    atomic_long errors;
};

struct sweep_arg {
    struct sweep *s;
};

static void *sweeper(void *p)
{
    struct sweep *s = ((struct sweep_arg *)p)->s;
    assert_int_equal(conc_event_wait(&s->go), 0);
    for (long k = 0; k < s->n; k++) {
        struct caller c = caller_of(&s->onces[k], &s->inits[k], CONC_FOREVER);
        int rc;
        while ((rc = conc_once_call(c.o, init_fn, &c)) == FAIL_CODE) {
            assert_int_equal(c.ran, 1);
            assert_int_equal(c.ran_ok, 0);
            atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
            c.ran = 0;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(s->inits[k].value, 42);
    }
    return NULL;
}

static void *open_gate(void *gate)
{
    assert_int_equal(conc_event_set(gate), 0);
    return NULL;
}

static void once_stress_many_onces(void **state)
{
    (void)state;
    static struct sweep s;
    s.n = conc_test_scaled(100000, 1000);
    s.onces = calloc((size_t)s.n, sizeof *s.onces); /* all-zero: valid onces */
    s.inits = calloc((size_t)s.n, sizeof *s.inits);
    assert_non_null(s.onces);
    assert_non_null(s.inits);
    long expect_errors = 0;
    for (long k = 0; k < s.n; k++) {
        atomic_store(&s.inits[k].fail_first, (int)(k % 3));
        expect_errors += k % 3;
    }
    assert_int_equal(conc_event_init(&s.go, NULL), 0);
    struct sweep_arg args[SWEEPERS];
    for (int i = 0; i < SWEEPERS; i++)
        args[i].s = &s;
    /* The gate lets all sweepers start together. */
    pthread_t opener = conc_test_start(open_gate, &s.go);
    int64_t t0 = conc_now_ns();
    conc_test_run_threads(SWEEPERS, sweeper, args, sizeof *args);
    conc_test_join(opener);
    for (long k = 0; k < s.n; k++) {
        assert_int_equal(atomic_load(&s.inits[k].runs), k % 3 + 1);
        assert_int_equal(atomic_load(&s.inits[k].successes), 1);
    }
    assert_int_equal(atomic_load(&s.errors), expect_errors);
    print_message("%d threads x %ld onces, %ld failed runs, %.1f ms\n", SWEEPERS, s.n,
                  expect_errors, (double)(conc_now_ns() - t0) / 1e6);
    assert_int_equal(conc_event_destroy(&s.go), 0);
    free(s.onces);
    free(s.inits);
}

static conc_once recursive_once = CONC_ONCE_INIT;
static int recursive_inner_rc;

static int calls_its_own_once(void *arg)
{
    (void)arg;
    recursive_inner_rc = conc_once_call(&recursive_once, calls_its_own_once, NULL);
    return 0;
}

/* An initialiser that calls its own once would wait for itself: the inner
 * call returns CONC_EDEADLK, and the outer run completes normally. */
static void once_recursive_call_is_edeadlk(void **state)
{
    (void)state;
    assert_int_equal(conc_once_call(&recursive_once, calls_its_own_once, NULL), 0);
    assert_int_equal(recursive_inner_rc, CONC_EDEADLK);
    assert_int_equal(conc_once_call(&recursive_once, calls_its_own_once, NULL), 0);
}

CONC_TEST_MAIN(cmocka_unit_test(once_null_object_and_fn_are_einval),
               cmocka_unit_test(once_recursive_call_is_edeadlk),
               cmocka_unit_test(once_negative_timeout_is_einval),
               cmocka_unit_test(once_negative_timeout_is_einval_even_when_done),
               cmocka_unit_test(once_runs_once_static_and_zero_init),
               cmocka_unit_test(once_failure_is_not_latched),
               cmocka_unit_test(once_concurrent_callers_run_it_once),
               cmocka_unit_test(once_concurrent_callers_rerun_after_failure),
               cmocka_unit_test(once_timed_call_times_out_while_running),
               cmocka_unit_test(once_timed_call_timing),
               cmocka_unit_test(once_stress_many_onces))
