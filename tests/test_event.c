/* conc_event: misuse codes (NULL, bad timeouts, destroyed and busy objects),
 * set / clear / is_set, waits that return at once or time out, the
 * initially_set option, static and all-zero initialisation, set waking every
 * waiter, Python's pulse guarantee (set then clear at once still releases
 * every thread that was waiting), and a ping-pong stress that hands data
 * across threads through events alone. */
#include "test_impl.h"

#include <stdatomic.h>
#include <string.h>

/* ---- helpers ---- */

/* One wait in its own thread. Once conc_test_await_waiters counts it, it has
 * announced its wait and noted the pulse generation (both under the queue
 * lock). */
struct waiter {
    conc_event *e;
    int64_t timeout;
    int rc;
};

static void *wait_thread(void *p)
{
    struct waiter *w = p;
    w->rc = conc_event_wait_timed(w->e, w->timeout);
    return NULL;
}

/* ---- misuse ---- */

static void event_null_object_is_einval(void **state)
{
    (void)state;
    conc_event_opts o = {.initially_set = true};
    assert_int_equal(conc_event_init(NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_event_init(NULL, &o), CONC_EINVAL);
    assert_int_equal(conc_event_destroy(NULL), CONC_EINVAL);
    assert_int_equal(conc_event_set(NULL), CONC_EINVAL);
    assert_int_equal(conc_event_clear(NULL), CONC_EINVAL);
    assert_int_equal(conc_event_is_set(NULL), CONC_EINVAL);
    assert_int_equal(conc_event_wait_timed(NULL, 0), CONC_EINVAL);
    assert_int_equal(conc_event_wait(NULL), CONC_EINVAL);
}

static void event_negative_timeout_is_einval(void **state)
{
    (void)state;
    conc_event e;
    assert_int_equal(conc_event_init(&e, NULL), 0);
    assert_int_equal(conc_event_wait_timed(&e, -2), CONC_EINVAL);
    assert_int_equal(conc_event_wait_timed(&e, -1000), CONC_EINVAL);
    assert_int_equal(conc_event_wait_timed(&e, INT64_MIN), CONC_EINVAL);
    assert_int_equal(conc_test_nwaiters(&e), 0);
    assert_int_equal(conc_event_destroy(&e), 0);
}

/* "Negative timeouts other than CONC_FOREVER are CONC_EINVAL everywhere":
 * also when the flag is set and the wait would not block. */
static void event_negative_timeout_is_einval_even_when_set(void **state)
{
    (void)state;
    conc_event e;
    conc_event_opts o = {.initially_set = true};
    assert_int_equal(conc_event_init(&e, &o), 0);
    assert_int_equal(conc_event_wait_timed(&e, -2), CONC_EINVAL);
    assert_int_equal(conc_event_wait_timed(&e, INT64_MIN), CONC_EINVAL);
    assert_int_equal(conc_event_destroy(&e), 0);
}

static void expect_dead(conc_event *e)
{
    assert_int_equal(conc_event_set(e), CONC_EBADF);
    assert_int_equal(conc_event_clear(e), CONC_EBADF);
    assert_int_equal(conc_event_is_set(e), CONC_EBADF);
    assert_int_equal(conc_event_wait_timed(e, 0), CONC_EBADF);
    assert_int_equal(conc_event_wait(e), CONC_EBADF);
    assert_int_equal(conc_event_destroy(e), CONC_EBADF);
}

static void event_destroyed_is_ebadf_until_reinit(void **state)
{
    (void)state;
    conc_event e;
    assert_int_equal(conc_event_init(&e, NULL), 0);
    assert_int_equal(conc_event_destroy(&e), 0);
    expect_dead(&e);
    /* A set event's destroy leaves the same dead marker. */
    conc_event_opts o = {.initially_set = true};
    assert_int_equal(conc_event_init(&e, &o), 0);
    assert_int_equal(conc_event_is_set(&e), 1);
    assert_int_equal(conc_event_wait_timed(&e, 0), 0);
    assert_int_equal(conc_event_destroy(&e), 0);
    expect_dead(&e);
    /* Re-initialised, it is fully usable. */
    assert_int_equal(conc_event_init(&e, NULL), 0);
    assert_int_equal(conc_event_is_set(&e), 0);
    assert_int_equal(conc_event_wait_timed(&e, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_event_set(&e), 0);
    assert_int_equal(conc_event_wait_timed(&e, 0), 0);
    assert_int_equal(conc_event_destroy(&e), 0);
}

/* Destroying an event a thread waits on is EBUSY and changes nothing. */
static void event_destroy_while_waited_is_ebusy(void **state)
{
    (void)state;
    conc_event e;
    assert_int_equal(conc_event_init(&e, NULL), 0);
    struct waiter w = {.e = &e, .timeout = CONC_FOREVER, .rc = 1};
    pthread_t t = conc_test_start(wait_thread, &w);
    conc_test_await_waiters(&e, 1);
    assert_int_equal(conc_event_destroy(&e), CONC_EBUSY);
    assert_int_equal(conc_event_is_set(&e), 0);
    assert_int_equal(conc_event_set(&e), 0);
    conc_test_join(t);
    assert_int_equal(w.rc, 0);
    assert_int_equal(conc_event_destroy(&e), 0);
}

/* ---- semantics ---- */

static void event_set_clear_is_set(void **state)
{
    (void)state;
    conc_event e;
    assert_int_equal(conc_event_init(&e, NULL), 0);
    assert_int_equal(conc_event_is_set(&e), 0);
    assert_int_equal(conc_event_clear(&e), 0); /* clearing an unset event is fine */
    assert_int_equal(conc_event_is_set(&e), 0);
    assert_int_equal(conc_event_set(&e), 0);
    assert_int_equal(conc_event_is_set(&e), 1);
    assert_int_equal(conc_event_set(&e), 0); /* idempotent */
    assert_int_equal(conc_event_is_set(&e), 1);
    assert_int_equal(conc_event_clear(&e), 0);
    assert_int_equal(conc_event_is_set(&e), 0);
    assert_int_equal(conc_event_destroy(&e), 0);
}

/* A wait on a set event returns at once, with any timeout, and does not
 * consume the flag. */
static void event_wait_returns_at_once_when_set(void **state)
{
    (void)state;
    conc_event e;
    assert_int_equal(conc_event_init(&e, NULL), 0);
    assert_int_equal(conc_event_set(&e), 0);
    assert_int_equal(conc_event_wait_timed(&e, 0), 0);
    assert_int_equal(conc_event_wait(&e), 0);
    assert_int_equal(conc_event_wait_timed(&e, CONC_SEC(5)), 0);
    assert_int_equal(conc_event_is_set(&e), 1);
    assert_int_equal(conc_event_destroy(&e), 0);
}

static void event_wait_zero_on_unset_times_out(void **state)
{
    (void)state;
    conc_event e;
    assert_int_equal(conc_event_init(&e, NULL), 0);
    assert_int_equal(conc_event_wait_timed(&e, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_event_wait_timed(&e, CONC_USEC(100)), CONC_ETIMEDOUT);
    assert_int_equal(conc_event_set(&e), 0);
    assert_int_equal(conc_event_clear(&e), 0);
    assert_int_equal(conc_event_wait_timed(&e, 0), CONC_ETIMEDOUT); /* cleared means unset */
    assert_int_equal(conc_test_nwaiters(&e), 0);
    assert_int_equal(conc_event_destroy(&e), 0);
}

static void event_initially_set_option(void **state)
{
    (void)state;
    conc_event e;
    conc_event_opts set = {.initially_set = true}, unset = {.initially_set = false};
    assert_int_equal(conc_event_init(&e, &set), 0);
    assert_int_equal(conc_event_is_set(&e), 1);
    assert_int_equal(conc_event_wait_timed(&e, 0), 0);
    assert_int_equal(conc_event_clear(&e), 0);
    assert_int_equal(conc_event_wait_timed(&e, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_event_destroy(&e), 0);
    assert_int_equal(conc_event_init(&e, &unset), 0);
    assert_int_equal(conc_event_is_set(&e), 0);
    assert_int_equal(conc_event_destroy(&e), 0);
    assert_int_equal(conc_event_init(&e, NULL), 0);
    assert_int_equal(conc_event_is_set(&e), 0);
    assert_int_equal(conc_event_destroy(&e), 0);
}

static conc_event g_static_event = CONC_EVENT_INIT;

static void check_default_event(conc_event *e)
{
    assert_int_equal(conc_event_is_set(e), 0);
    assert_int_equal(conc_event_wait_timed(e, 0), CONC_ETIMEDOUT);
    struct waiter w = {.e = e, .timeout = CONC_FOREVER, .rc = 1};
    pthread_t t = conc_test_start(wait_thread, &w);
    conc_test_await_waiters(e, 1);
    assert_int_equal(conc_event_set(e), 0);
    conc_test_join(t);
    assert_int_equal(w.rc, 0);
    assert_int_equal(conc_event_is_set(e), 1);
    assert_int_equal(conc_event_destroy(e), 0);
    assert_int_equal(conc_event_is_set(e), CONC_EBADF);
}

static void event_static_and_zero_init_are_unset(void **state)
{
    (void)state;
    check_default_event(&g_static_event);
    conc_event local = CONC_EVENT_INIT;
    check_default_event(&local);
    conc_event zero;
    memset(&zero, 0, sizeof zero);
    check_default_event(&zero);
}

enum { WAITERS = 6 };

static void start_waiters(conc_event *e, struct waiter *w, pthread_t *t, int n, int64_t timeout)
{
    for (int i = 0; i < n; i++) {
        w[i] = (struct waiter){.e = e, .timeout = timeout, .rc = 1};
        t[i] = conc_test_start(wait_thread, &w[i]);
    }
    conc_test_await_waiters(e, (uint32_t)n);
}

static void join_waiters(struct waiter *w, pthread_t *t, int n, int expect)
{
    for (int i = 0; i < n; i++) {
        conc_test_join(t[i]);
        assert_int_equal(w[i].rc, expect);
    }
}

static void event_set_wakes_every_waiter(void **state)
{
    (void)state;
    conc_event e;
    struct waiter w[WAITERS];
    pthread_t t[WAITERS];
    assert_int_equal(conc_event_init(&e, NULL), 0);
    start_waiters(&e, w, t, WAITERS, CONC_FOREVER);
    assert_int_equal(conc_event_set(&e), 0);
    join_waiters(w, t, WAITERS, 0);
    assert_int_equal(conc_test_nwaiters(&e), 0);
    assert_int_equal(conc_event_destroy(&e), 0);
}

/* Python's guarantee: set() followed at once by clear() still releases every
 * thread waiting at the set. The waiters are known to be inside wait (polled),
 * and their timeout is long: a waiter that misses the pulse returns
 * CONC_ETIMEDOUT after 10 s instead of hanging. Several rounds, since a
 * waiter's wake-up may well find the flag already cleared. */
static void event_pulse_set_then_clear_releases_every_waiter(void **state)
{
    (void)state;
    conc_event e;
    struct waiter w[WAITERS];
    pthread_t t[WAITERS];
    assert_int_equal(conc_event_init(&e, NULL), 0);
    for (int round = 0; round < 20; round++) {
        start_waiters(&e, w, t, WAITERS, CONC_SEC(10));
        assert_int_equal(conc_event_set(&e), 0);
        assert_int_equal(conc_event_clear(&e), 0);
        join_waiters(w, t, WAITERS, 0);
        /* The pulse leaves the event unset for later waits. */
        assert_int_equal(conc_event_is_set(&e), 0);
        assert_int_equal(conc_event_wait_timed(&e, 0), CONC_ETIMEDOUT);
    }
    assert_int_equal(conc_event_destroy(&e), 0);
}

/* A waiter with a timeout on an event never set returns ETIMEDOUT, not
 * before its deadline. */
static void event_timed_wait_timing(void **state)
{
    (void)state;
    conc_event e;
    assert_int_equal(conc_event_init(&e, NULL), 0);
    static const int64_t timeouts[] = {CONC_MSEC(30), CONC_USEC(300)};
    for (size_t i = 0; i < sizeof timeouts / sizeof *timeouts; i++) {
        int64_t t0 = conc_now_ns();
        assert_int_equal(conc_event_wait_timed(&e, timeouts[i]), CONC_ETIMEDOUT);
        int64_t took = conc_now_ns() - t0;
        assert_true(took >= timeouts[i]);
        assert_true(took < timeouts[i] + CONC_SEC(1));
        print_message("wait(%lld ns): late by %lld us\n", (long long)timeouts[i],
                      (long long)((took - timeouts[i]) / 1000));
    }
    /* The same from several threads at once; all leave the queue. */
    struct waiter w[WAITERS];
    pthread_t t[WAITERS];
    for (int i = 0; i < WAITERS; i++) {
        w[i] = (struct waiter){.e = &e, .timeout = CONC_MSEC(20), .rc = 1};
        t[i] = conc_test_start(wait_thread, &w[i]);
    }
    join_waiters(w, t, WAITERS, CONC_ETIMEDOUT);
    assert_int_equal(conc_test_nwaiters(&e), 0);
    assert_int_equal(conc_event_is_set(&e), 0);
    assert_int_equal(conc_event_destroy(&e), 0);
}

/* ---- stress ---- */

/* Two threads take turns through two events: the pinger writes `ball` (a
 * plain int) and sets ping; the ponger waits for ping, clears it, checks and
 * bumps the ball, and sets pong. Every round must see the ball its turn left
 * (no missed or doubled set), and the plain data crossing threads checks
 * that wait orders memory after set (TSan sees it too). */
struct pingpong {
    conc_event ping, pong;
    long rounds;
    long ball;
};

static void *ponger(void *p)
{
    struct pingpong *g = p;
    for (long i = 0; i < g->rounds; i++) {
        assert_int_equal(conc_event_wait(&g->ping), 0);
        assert_int_equal(conc_event_clear(&g->ping), 0);
        assert_int_equal(g->ball, 2 * i + 1);
        g->ball++;
        assert_int_equal(conc_event_set(&g->pong), 0);
    }
    return NULL;
}

static void event_ping_pong_stress(void **state)
{
    (void)state;
    static struct pingpong g;
    g.rounds = conc_test_scaled(50000, 1000);
    assert_int_equal(conc_event_init(&g.ping, NULL), 0);
    assert_int_equal(conc_event_init(&g.pong, NULL), 0);
    int64_t t0 = conc_now_ns();
    pthread_t t = conc_test_start(ponger, &g);
    for (long i = 0; i < g.rounds; i++) {
        assert_int_equal(g.ball, 2 * i);
        g.ball++;
        assert_int_equal(conc_event_set(&g.ping), 0);
        /* Alternate blocking and timed waits: both paths must see the set. */
        int64_t timeout = i % 2 ? CONC_FOREVER : CONC_SEC(10);
        assert_int_equal(conc_event_wait_timed(&g.pong, timeout), 0);
        assert_int_equal(conc_event_clear(&g.pong), 0);
    }
    conc_test_join(t);
    int64_t took = conc_now_ns() - t0;
    assert_int_equal(g.ball, 2 * g.rounds);
    assert_int_equal(conc_event_is_set(&g.ping), 0);
    assert_int_equal(conc_event_is_set(&g.pong), 0);
    assert_int_equal(conc_event_destroy(&g.ping), 0);
    assert_int_equal(conc_event_destroy(&g.pong), 0);
    print_message("%ld round trips, %.1f ms\n", g.rounds, (double)took / 1e6);
}

/* Many waiters, repeated pulses: each round's waiters are released only by a
 * set followed at once by a clear. Two semaphores keep the rounds apart: a
 * waiter reports back on `back` and enters the next round's wait only after
 * `next`, which the pulser gives once the flag is cleared, so a fast waiter
 * cannot slip through a flag still set. */
struct pulse_ctx {
    conc_event go;
    conc_sem back, next;
    long rounds;
};

static void *pulse_waiter(void *p)
{
    struct pulse_ctx *c = *(struct pulse_ctx **)p;
    for (long r = 0; r < c->rounds; r++) {
        assert_int_equal(conc_event_wait_timed(&c->go, CONC_SEC(10)), 0);
        assert_int_equal(conc_sem_release(&c->back), 0);
        assert_int_equal(conc_sem_acquire(&c->next), 0);
    }
    return NULL;
}

static void *pulser(void *p)
{
    struct pulse_ctx *c = p;
    for (long r = 0; r < c->rounds; r++) {
        conc_test_await_waiters(&c->go, WAITERS);
        assert_int_equal(conc_event_set(&c->go), 0);
        assert_int_equal(conc_event_clear(&c->go), 0);
        assert_int_equal(conc_sem_acquire_n_timed(&c->back, WAITERS, CONC_SEC(10)), 0);
        assert_int_equal(conc_sem_value(&c->back), 0); /* nobody passed twice */
        assert_int_equal(conc_sem_release_n(&c->next, WAITERS), 0);
    }
    return NULL;
}

static void event_pulse_stress(void **state)
{
    (void)state;
    static struct pulse_ctx c;
    c.rounds = conc_test_scaled(1000, 50);
    assert_int_equal(conc_event_init(&c.go, NULL), 0);
    assert_int_equal(conc_sem_init(&c.back, 0, NULL), 0);
    assert_int_equal(conc_sem_init(&c.next, 0, NULL), 0);
    int64_t t0 = conc_now_ns();
    pthread_t p = conc_test_start(pulser, &c);
    struct pulse_ctx *args[WAITERS];
    for (int i = 0; i < WAITERS; i++)
        args[i] = &c;
    conc_test_run_threads(WAITERS, pulse_waiter, args, sizeof *args);
    conc_test_join(p);
    assert_int_equal(conc_event_is_set(&c.go), 0);
    assert_int_equal(conc_sem_value(&c.next), 0);
    assert_int_equal(conc_event_destroy(&c.go), 0);
    assert_int_equal(conc_sem_destroy(&c.back), 0);
    assert_int_equal(conc_sem_destroy(&c.next), 0);
    print_message("%ld pulses to %d waiters, %.1f ms\n", c.rounds, WAITERS,
                  (double)(conc_now_ns() - t0) / 1e6);
}

CONC_TEST_MAIN(cmocka_unit_test(event_null_object_is_einval),
               cmocka_unit_test(event_negative_timeout_is_einval),
               cmocka_unit_test(event_negative_timeout_is_einval_even_when_set),
               cmocka_unit_test(event_destroyed_is_ebadf_until_reinit),
               cmocka_unit_test(event_destroy_while_waited_is_ebusy),
               cmocka_unit_test(event_set_clear_is_set),
               cmocka_unit_test(event_wait_returns_at_once_when_set),
               cmocka_unit_test(event_wait_zero_on_unset_times_out),
               cmocka_unit_test(event_initially_set_option),
               cmocka_unit_test(event_static_and_zero_init_are_unset),
               cmocka_unit_test(event_set_wakes_every_waiter),
               cmocka_unit_test(event_pulse_set_then_clear_releases_every_waiter),
               cmocka_unit_test(event_timed_wait_timing),
               cmocka_unit_test(event_ping_pong_stress),
               cmocka_unit_test(event_pulse_stress))
