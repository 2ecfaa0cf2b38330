/* conc_sem: misuse codes (NULL, bad timeouts and counts, bounds, overflow,
 * destroyed and busy objects), counting semantics (value 0, timeouts,
 * all-or-nothing acquire_n / release_n, small acquires overtaking a large one,
 * release_n waking enough waiters, no waiter left asleep while the value
 * covers it), static and all-zero initialisation, and stress runs that check
 * the bound is never exceeded and the value is conserved. */
#include "test_impl.h"

#include <limits.h>
#include <stdatomic.h>
#include <string.h>

/* ---- helpers ---- */

/* One blocked acquirer: takes n with the given timeout, records the result. */
struct acq {
    conc_sem *s;
    int n;
    int64_t timeout;
    int rc;
    atomic_int done;
    _Atomic pid_t tid; /* the acquiring thread */
};

static void *acquirer(void *p)
{
    struct acq *a = p;
    atomic_store(&a->tid, conc_test_tid());
    a->rc = conc_sem_acquire_n_timed(a->s, a->n, a->timeout);
    atomic_store(&a->done, 1);
    return NULL;
}

static struct acq acq_of(conc_sem *s, int n, int64_t timeout)
{
    struct acq a = {.s = s, .n = n, .timeout = timeout, .rc = 1};
    return a;
}

/* ---- misuse ---- */

static void sem_null_object_is_einval(void **state)
{
    (void)state;
    assert_int_equal(conc_sem_init(NULL, 0, NULL), CONC_EINVAL);
    assert_int_equal(conc_sem_destroy(NULL), CONC_EINVAL);
    assert_int_equal(conc_sem_acquire_timed(NULL, 0), CONC_EINVAL);
    assert_int_equal(conc_sem_acquire(NULL), CONC_EINVAL);
    assert_int_equal(conc_sem_acquire_n_timed(NULL, 1, 0), CONC_EINVAL);
    assert_int_equal(conc_sem_release(NULL), CONC_EINVAL);
    assert_int_equal(conc_sem_release_n(NULL, 1), CONC_EINVAL);
    assert_int_equal(conc_sem_value(NULL), CONC_EINVAL);
}

static void sem_negative_timeout_is_einval(void **state)
{
    (void)state;
    conc_sem s;
    /* With units available too: a bad timeout must not take one. */
    assert_int_equal(conc_sem_init(&s, 2, NULL), 0);
    static const int64_t bad[] = {-2, -1000, INT64_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(conc_sem_acquire_timed(&s, bad[i]), CONC_EINVAL);
        assert_int_equal(conc_sem_acquire_n_timed(&s, 1, bad[i]), CONC_EINVAL);
        assert_int_equal(conc_sem_acquire_n_timed(&s, 3, bad[i]), CONC_EINVAL);
    }
    assert_int_equal(conc_sem_value(&s), 2);
    /* And on a value that cannot satisfy the call. */
    assert_int_equal(conc_sem_acquire_n(&s, 2), 0);
    assert_int_equal(conc_sem_acquire_timed(&s, -2), CONC_EINVAL);
    assert_int_equal(conc_sem_value(&s), 0);
    assert_int_equal(conc_sem_destroy(&s), 0);
}

static void sem_zero_and_oversized_counts_are_refused(void **state)
{
    (void)state;
    conc_sem s;
    assert_int_equal(conc_sem_init(&s, 3, NULL), 0);
    /* A count of 0 means nothing; one past CONC_SEM_VALUE_MAX could never
     * be taken, and never be released without overflowing. */
    static const size_t bad[] = {(size_t)CONC_SEM_VALUE_MAX + 1, SIZE_MAX};
    assert_int_equal(conc_sem_acquire_n_timed(&s, 0, 0), CONC_EINVAL);
    assert_int_equal(conc_sem_acquire_n(&s, 0), CONC_EINVAL);
    assert_int_equal(conc_sem_release_n(&s, 0), CONC_EINVAL);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(conc_sem_acquire_n_timed(&s, bad[i], 0), CONC_EINVAL);
        assert_int_equal(conc_sem_acquire_n(&s, bad[i]), CONC_EINVAL);
        assert_int_equal(conc_sem_release_n(&s, bad[i]), CONC_EOVERFLOW);
    }
    assert_int_equal(conc_sem_value(&s), 3);
    assert_int_equal(conc_sem_destroy(&s), 0);
}

static void sem_init_value_above_bound_is_einval(void **state)
{
    (void)state;
    conc_sem s;
    conc_sem_opts o = {.bound = 2};
    assert_int_equal(conc_sem_init(&s, 3, &o), CONC_EINVAL);
    assert_int_equal(conc_sem_init(&s, (unsigned)CONC_SEM_VALUE_MAX + 1u, NULL), CONC_EINVAL);
    assert_int_equal(conc_sem_init(&s, UINT_MAX, NULL), CONC_EINVAL);
    /* The limits themselves are fine. */
    assert_int_equal(conc_sem_init(&s, 2, &o), 0);
    assert_int_equal(conc_sem_value(&s), 2);
    assert_int_equal(conc_sem_destroy(&s), 0);
    assert_int_equal(conc_sem_init(&s, CONC_SEM_VALUE_MAX, NULL), 0);
    assert_int_equal(conc_sem_value(&s), CONC_SEM_VALUE_MAX);
    assert_int_equal(conc_sem_destroy(&s), 0);
}

/* Python's BoundedSemaphore raises ValueError; conc returns EINVAL and the
 * value stays where it was. */
static void sem_bounded_release_above_bound_is_estate(void **state)
{
    (void)state;
    conc_sem s;
    conc_sem_opts o = {.bound = 2};
    assert_int_equal(conc_sem_init(&s, 2, &o), 0);
    assert_int_equal(conc_sem_release(&s), CONC_ESTATE);
    assert_int_equal(conc_sem_value(&s), 2);
    assert_int_equal(conc_sem_acquire_timed(&s, 0), 0);
    assert_int_equal(conc_sem_release(&s), 0);
    assert_int_equal(conc_sem_release_n(&s, 1), CONC_ESTATE);
    assert_int_equal(conc_sem_value(&s), 2);
    assert_int_equal(conc_sem_destroy(&s), 0);
}

/* A release of n that would pass the bound releases none of them. */
static void sem_release_n_past_bound_releases_none(void **state)
{
    (void)state;
    conc_sem s;
    conc_sem_opts o = {.bound = 5};
    assert_int_equal(conc_sem_init(&s, 3, &o), 0);
    assert_int_equal(conc_sem_release_n(&s, 3), CONC_ESTATE);
    assert_int_equal(conc_sem_value(&s), 3);
    assert_int_equal(conc_sem_release_n(&s, INT_MAX), CONC_ESTATE);
    assert_int_equal(conc_sem_value(&s), 3);
    assert_int_equal(conc_sem_release_n(&s, 2), 0); /* exactly up to the bound */
    assert_int_equal(conc_sem_value(&s), 5);
    assert_int_equal(conc_sem_destroy(&s), 0);
}

static void sem_unbounded_release_past_max_is_eoverflow(void **state)
{
    (void)state;
    conc_sem s;
    assert_int_equal(conc_sem_init(&s, CONC_SEM_VALUE_MAX, NULL), 0);
    assert_int_equal(conc_sem_release(&s), CONC_EOVERFLOW);
    assert_int_equal(conc_sem_value(&s), CONC_SEM_VALUE_MAX);
    assert_int_equal(conc_sem_destroy(&s), 0);

    assert_int_equal(conc_sem_init(&s, CONC_SEM_VALUE_MAX - 1, NULL), 0);
    assert_int_equal(conc_sem_release_n(&s, 2), CONC_EOVERFLOW); /* all or nothing */
    assert_int_equal(conc_sem_value(&s), CONC_SEM_VALUE_MAX - 1);
    assert_int_equal(conc_sem_release_n(&s, 1), 0);
    assert_int_equal(conc_sem_value(&s), CONC_SEM_VALUE_MAX);
    assert_int_equal(conc_sem_destroy(&s), 0);

    assert_int_equal(conc_sem_init(&s, 1, NULL), 0);
    assert_int_equal(conc_sem_release_n(&s, INT_MAX), CONC_EOVERFLOW);
    assert_int_equal(conc_sem_value(&s), 1);
    assert_int_equal(conc_sem_release_n(&s, INT_MAX - 1), 0);
    assert_int_equal(conc_sem_value(&s), CONC_SEM_VALUE_MAX);
    assert_int_equal(conc_sem_destroy(&s), 0);
}

/* An acquire of more than the bound could never succeed: EINVAL at once, with
 * any timeout (a hang or ETIMEDOUT here would be the bug). */
static void sem_acquire_n_above_bound_is_einval(void **state)
{
    (void)state;
    conc_sem s;
    conc_sem_opts o = {.bound = 3};
    assert_int_equal(conc_sem_init(&s, 3, &o), 0);
    assert_int_equal(conc_sem_acquire_n_timed(&s, 4, 0), CONC_EINVAL);
    assert_int_equal(conc_sem_acquire_n_timed(&s, 4, CONC_SEC(2)), CONC_EINVAL);
    assert_int_equal(conc_sem_acquire_n(&s, INT_MAX), CONC_EINVAL);
    assert_int_equal(conc_sem_value(&s), 3);
    assert_int_equal(conc_sem_acquire_n_timed(&s, 3, 0), 0); /* the bound itself is fine */
    assert_int_equal(conc_sem_value(&s), 0);
    assert_int_equal(conc_sem_destroy(&s), 0);
}

static void expect_dead(conc_sem *s)
{
    assert_int_equal(conc_sem_acquire_timed(s, 0), CONC_EBADF);
    assert_int_equal(conc_sem_acquire(s), CONC_EBADF);
    assert_int_equal(conc_sem_acquire_n_timed(s, 2, CONC_MSEC(1)), CONC_EBADF);
    assert_int_equal(conc_sem_release(s), CONC_EBADF);
    assert_int_equal(conc_sem_release_n(s, 2), CONC_EBADF);
    assert_int_equal(conc_sem_value(s), CONC_EBADF);
    assert_int_equal(conc_sem_destroy(s), CONC_EBADF);
}

static void sem_destroyed_is_ebadf_until_reinit(void **state)
{
    (void)state;
    conc_sem s;
    assert_int_equal(conc_sem_init(&s, 1, NULL), 0);
    assert_int_equal(conc_sem_destroy(&s), 0);
    expect_dead(&s);
    /* Re-initialised, it works again, bounded this time. */
    conc_sem_opts o = {.bound = 2};
    assert_int_equal(conc_sem_init(&s, 1, &o), 0);
    assert_int_equal(conc_sem_value(&s), 1);
    assert_int_equal(conc_sem_release(&s), 0);
    assert_int_equal(conc_sem_release(&s), CONC_ESTATE);
    assert_int_equal(conc_sem_acquire_n_timed(&s, 2, 0), 0);
    assert_int_equal(conc_sem_destroy(&s), 0);
    expect_dead(&s);
}

/* Destroying a semaphore a thread waits on is EBUSY and changes nothing: the
 * waiter is still served afterwards. */
static void sem_destroy_while_waited_is_ebusy(void **state)
{
    (void)state;
    conc_sem s;
    assert_int_equal(conc_sem_init(&s, 0, NULL), 0);
    struct acq a = acq_of(&s, 1, CONC_FOREVER);
    pthread_t t = conc_test_start(acquirer, &a);
    conc_test_await_waiters(&s, 1);
    assert_int_equal(conc_sem_destroy(&s), CONC_EBUSY);
    assert_int_equal(conc_sem_value(&s), 0);
    assert_int_equal(conc_sem_release(&s), 0);
    conc_test_join(t);
    assert_int_equal(a.rc, 0);
    assert_int_equal(conc_sem_value(&s), 0);
    assert_int_equal(conc_sem_destroy(&s), 0);
}

/* ---- semantics ---- */

static void sem_value_zero_is_valid_and_try_times_out(void **state)
{
    (void)state;
    conc_sem s;
    assert_int_equal(conc_sem_init(&s, 0, NULL), 0);
    assert_int_equal(conc_sem_value(&s), 0);
    assert_int_equal(conc_sem_acquire_timed(&s, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_sem_acquire_n_timed(&s, 2, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_sem_acquire_timed(&s, CONC_MSEC(1)), CONC_ETIMEDOUT);
    assert_int_equal(conc_sem_release_n(&s, 3), 0);
    assert_int_equal(conc_sem_value(&s), 3);
    assert_int_equal(conc_sem_acquire_timed(&s, 0), 0);
    assert_int_equal(conc_sem_acquire_n_timed(&s, 2, 0), 0);
    assert_int_equal(conc_sem_value(&s), 0);
    assert_int_equal(conc_sem_acquire_timed(&s, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_sem_destroy(&s), 0);
}

/* A failed acquire_n takes nothing: the units it could not get whole stay. */
static void sem_acquire_n_is_all_or_nothing_without_waiting(void **state)
{
    (void)state;
    conc_sem s;
    assert_int_equal(conc_sem_init(&s, 2, NULL), 0);
    assert_int_equal(conc_sem_acquire_n_timed(&s, 3, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_sem_value(&s), 2);
    assert_int_equal(conc_sem_acquire_n_timed(&s, 3, CONC_MSEC(5)), CONC_ETIMEDOUT);
    assert_int_equal(conc_sem_value(&s), 2);
    assert_int_equal(conc_sem_destroy(&s), 0);
}

/* A waiter for 3 with a value of 2 takes nothing while it waits, and gets all
 * three once the third arrives. */
static void sem_acquire_n_waiter_takes_all_at_once(void **state)
{
    (void)state;
    conc_sem s;
    assert_int_equal(conc_sem_init(&s, 2, NULL), 0);
    struct acq a = acq_of(&s, 3, CONC_FOREVER);
    pthread_t t = conc_test_start(acquirer, &a);
    conc_test_await_waiters(&s, 1);
    /* It waits: it tried to take 3 (a partial take would show by now),
     * failed, parked, and sleeps on its record's futex with no timeout,
     * which only our release ends. */
    CONC_TEST_POLL_UNTIL(conc_test_queue_parked(&s) == 1 &&
                         conc_test_thread_in_untimed_futex_wait(atomic_load(&a.tid),
                                                                conc_test_queue_head_word(&s)));
    assert_int_equal(conc_sem_value(&s), 2);
    assert_int_equal(atomic_load(&a.done), 0);
    assert_int_equal(conc_sem_release(&s), 0);
    conc_test_join(t);
    assert_int_equal(a.rc, 0);
    assert_int_equal(conc_sem_value(&s), 0);
    assert_int_equal(conc_sem_destroy(&s), 0);
}

/* Documented: a large acquire can be overtaken by a smaller one that the value
 * covers. A (3) waits first, B (1) second; one release serves B, A waits on. */
static void sem_small_acquire_overtakes_large(void **state)
{
    (void)state;
    conc_sem s;
    assert_int_equal(conc_sem_init(&s, 0, NULL), 0);
    struct acq a = acq_of(&s, 3, CONC_FOREVER), b = acq_of(&s, 1, CONC_FOREVER);
    pthread_t ta = conc_test_start(acquirer, &a);
    conc_test_await_waiters(&s, 1);
    pthread_t tb = conc_test_start(acquirer, &b);
    conc_test_await_waiters(&s, 2);
    assert_int_equal(conc_sem_release(&s), 0);
    conc_test_join(tb);
    assert_int_equal(b.rc, 0);
    assert_int_equal(atomic_load(&a.done), 0); /* the value is 0: A cannot be done */
    assert_int_equal(conc_test_nwaiters(&s), 1);
    assert_int_equal(conc_sem_value(&s), 0);
    assert_int_equal(conc_sem_release_n(&s, 3), 0);
    conc_test_join(ta);
    assert_int_equal(a.rc, 0);
    assert_int_equal(conc_sem_value(&s), 0);
    assert_int_equal(conc_sem_destroy(&s), 0);
}

/* release_n(k) wakes k waiters that each want one: none is left asleep. */
static void sem_release_n_wakes_enough_waiters(void **state)
{
    (void)state;
    enum { K = 5 };
    conc_sem s;
    assert_int_equal(conc_sem_init(&s, 0, NULL), 0);
    struct acq a[K];
    pthread_t t[K];
    for (int i = 0; i < K; i++) {
        a[i] = acq_of(&s, 1, CONC_FOREVER);
        t[i] = conc_test_start(acquirer, &a[i]);
    }
    conc_test_await_waiters(&s, K);
    assert_int_equal(conc_sem_release_n(&s, K), 0);
    for (int i = 0; i < K; i++) {
        conc_test_join(t[i]);
        assert_int_equal(a[i].rc, 0);
    }
    assert_int_equal(conc_sem_value(&s), 0);
    assert_int_equal(conc_sem_destroy(&s), 0);
}

/* A release that covers waiters of mixed sizes serves every one it covers. */
static void sem_release_n_serves_mixed_sizes(void **state)
{
    (void)state;
    static const int want[] = {2, 1, 3, 1};
    enum { K = 4 };
    conc_sem s;
    assert_int_equal(conc_sem_init(&s, 0, NULL), 0);
    struct acq a[K];
    pthread_t t[K];
    for (int i = 0; i < K; i++) {
        a[i] = acq_of(&s, want[i], CONC_FOREVER);
        t[i] = conc_test_start(acquirer, &a[i]);
        conc_test_await_waiters(&s, (uint32_t)i + 1);
    }
    assert_int_equal(conc_sem_release_n(&s, 2 + 1 + 3 + 1 + 2), 0);
    for (int i = 0; i < K; i++) {
        conc_test_join(t[i]);
        assert_int_equal(a[i].rc, 0);
    }
    assert_int_equal(conc_sem_value(&s), 2);
    assert_int_equal(conc_sem_destroy(&s), 0);
}

/* A (2) waits first, B (1) second. release_n(2) chooses A; the releasing
 * thread at once takes one unit back (barging, which is allowed), so A cannot
 * have its 2 and sleeps again. The value is now 1 and B wants 1: B must get it
 * ("waits until the value covers it") with no further release. A waker that
 * spent its whole budget on A, with nobody passing the wake on, leaves B
 * asleep for good while the value covers it. Repeated, since the barge must
 * win the race against A's re-check to exercise the case. */
static bool done_within(atomic_int *done, int64_t timeout)
{
    int64_t deadline = conc_now_ns() + timeout;
    while (!atomic_load(done) && conc_now_ns() < deadline)
        conc_sleep(CONC_USEC(200));
    return atomic_load(done) != 0;
}

static int woken_waiter_round(void)
{
    conc_sem s;
    assert_int_equal(conc_sem_init(&s, 0, NULL), 0);
    struct acq a = acq_of(&s, 2, CONC_FOREVER), b = acq_of(&s, 1, CONC_FOREVER);
    pthread_t ta = conc_test_start(acquirer, &a);
    conc_test_await_waiters(&s, 1);
    pthread_t tb = conc_test_start(acquirer, &b);
    conc_test_await_waiters(&s, 2);
    assert_int_equal(conc_sem_release_n(&s, 2), 0);
    int barged = conc_sem_acquire_timed(&s, 0) == 0;
    if (barged) {
        /* 2 s only catches "never woken": B needs no further release. */
        if (!done_within(&b.done, CONC_SEC(2)))
            fail_msg("B (1) still asleep with the value at %lld", (long long)conc_sem_value(&s));
        conc_test_join(tb);
        assert_int_equal(b.rc, 0);
        assert_int_equal(conc_sem_release_n(&s, 2), 0); /* our unit + B's: A's two */
    } else {
        assert_int_equal(conc_sem_release(&s), 0); /* A won the race: B's unit */
        conc_test_join(tb);
        assert_int_equal(b.rc, 0);
    }
    conc_test_join(ta);
    assert_int_equal(a.rc, 0);
    assert_int_equal(conc_sem_value(&s), 0);
    assert_int_equal(conc_sem_destroy(&s), 0);
    return barged;
}

static void sem_waiter_not_stranded_when_woken_waiter_is_barged(void **state)
{
    (void)state;
    int barged = 0, rounds = 0;
    while (rounds < 50 && barged < 5) {
        barged += woken_waiter_round();
        rounds++;
    }
    print_message("barge won %d of %d rounds\n", barged, rounds);
}

static conc_sem g_static_sem = CONC_SEM_INIT;

static void check_default_sem(conc_sem *s)
{
    assert_int_equal(conc_sem_value(s), 0);
    assert_int_equal(conc_sem_acquire_timed(s, 0), CONC_ETIMEDOUT);
    /* The slow path works on the default queue too. */
    struct acq a = acq_of(s, 1, CONC_FOREVER);
    pthread_t t = conc_test_start(acquirer, &a);
    conc_test_await_waiters(s, 1);
    assert_int_equal(conc_sem_release_n(s, 2), 0);
    conc_test_join(t);
    assert_int_equal(a.rc, 0);
    assert_int_equal(conc_sem_value(s), 1);
    /* Unbounded by default. */
    assert_int_equal(conc_sem_release_n(s, 1000), 0);
    assert_int_equal(conc_sem_value(s), 1001);
    assert_int_equal(conc_sem_acquire_n_timed(s, 1001, 0), 0);
    assert_int_equal(conc_sem_destroy(s), 0);
    assert_int_equal(conc_sem_value(s), CONC_EBADF);
}

static void sem_static_and_zero_init_are_value_zero(void **state)
{
    (void)state;
    check_default_sem(&g_static_sem);
    conc_sem local = CONC_SEM_INIT;
    check_default_sem(&local);
    conc_sem zero;
    memset(&zero, 0, sizeof zero);
    check_default_sem(&zero);
}

/* ---- timing ---- */

static void expect_timeout_after(conc_sem *s, int n, int64_t timeout)
{
    int64_t t0 = conc_now_ns();
    assert_int_equal(conc_sem_acquire_n_timed(s, n, timeout), CONC_ETIMEDOUT);
    int64_t took = conc_now_ns() - t0;
    assert_true(took >= timeout);             /* never before the deadline */
    assert_true(took < timeout + CONC_SEC(1)); /* catches "never woke" */
    print_message("acquire_n(%d, %lld ns): late by %lld us\n", n, (long long)timeout,
                  (long long)((took - timeout) / 1000));
}

static void sem_timed_acquire_timing(void **state)
{
    (void)state;
    conc_sem s;
    assert_int_equal(conc_sem_init(&s, 2, NULL), 0);
    expect_timeout_after(&s, 3, CONC_MSEC(30));
    assert_int_equal(conc_sem_value(&s), 2);
    assert_int_equal(conc_sem_acquire_n_timed(&s, 2, 0), 0);
    expect_timeout_after(&s, 1, CONC_MSEC(30));
    expect_timeout_after(&s, 1, CONC_USEC(200));
    assert_int_equal(conc_sem_value(&s), 0);
    assert_int_equal(conc_sem_destroy(&s), 0);
}

/* ---- stress ---- */

enum { BOUND_THREADS = 8, BOUND_UNITS = 3 };

struct bound_ctx {
    conc_sem s;
    atomic_int inside, high;
    atomic_long total;
    long iters;
};

static void raise_high_water(atomic_int *high, int v)
{
    int h = atomic_load(high);
    while (v > h && !atomic_compare_exchange_weak(high, &h, v))
        ;
}

static void *bound_worker(void *p)
{
    struct bound_ctx *c = *(struct bound_ctx **)p;
    for (long i = 0; i < c->iters; i++) {
        /* Mostly blocking acquires; every 16th a try first, to mix the paths. */
        if (i % 16 != 0 || conc_sem_acquire_timed(&c->s, 0) != 0)
            assert_int_equal(conc_sem_acquire(&c->s), 0);
        int in = atomic_fetch_add(&c->inside, 1) + 1;
        assert_true(in <= BOUND_UNITS);
        raise_high_water(&c->high, in);
        atomic_fetch_sub(&c->inside, 1);
        atomic_fetch_add_explicit(&c->total, 1, memory_order_relaxed);
        assert_int_equal(conc_sem_release(&c->s), 0);
    }
    return NULL;
}

/* A semaphore of 3 never admits a 4th holder, and every acquire is matched. */
static void sem_stress_never_admits_more_than_bound(void **state)
{
    (void)state;
    static struct bound_ctx c;
    c.iters = conc_test_scaled(200000, 2000);
    conc_sem_opts o = {.bound = BOUND_UNITS};
    assert_int_equal(conc_sem_init(&c.s, BOUND_UNITS, &o), 0);
    struct bound_ctx *args[BOUND_THREADS];
    for (int i = 0; i < BOUND_THREADS; i++)
        args[i] = &c;
    int64_t t0 = conc_now_ns();
    conc_test_run_threads(BOUND_THREADS, bound_worker, args, sizeof *args);
    int64_t took = conc_now_ns() - t0;
    assert_int_equal(atomic_load(&c.total), (long)BOUND_THREADS * c.iters);
    assert_true(atomic_load(&c.high) <= BOUND_UNITS);
    assert_int_equal(atomic_load(&c.inside), 0);
    assert_int_equal(conc_sem_value(&c.s), BOUND_UNITS);
    assert_int_equal(conc_test_nwaiters(&c.s), 0);
    assert_int_equal(conc_sem_destroy(&c.s), 0);
    print_message("%d threads x %ld: high-water %d of %d, %.1f ms\n", BOUND_THREADS, c.iters,
                  atomic_load(&c.high), BOUND_UNITS, (double)took / 1e6);
}

enum { N_THREADS = 6, N_UNITS = 6, N_MAX_WANT = 4 };

struct n_ctx {
    conc_sem s;
    atomic_int inside;
    atomic_long acquired, timed_out;
    long iters;
};

struct n_arg {
    struct n_ctx *c;
    uint32_t seed;
};

/* Takes n with a blocking, a timed or a non-blocking acquire; returns whether
 * it got them (only the timed and the try forms may fail). */
static bool take_n(conc_sem *s, int n, uint32_t r)
{
    int64_t timeout = r % 8 == 0 ? 0 : r % 8 == 1 ? CONC_USEC(50) : CONC_FOREVER;
    int rc = conc_sem_acquire_n_timed(s, n, timeout);
    if (rc == CONC_ETIMEDOUT && timeout != CONC_FOREVER)
        return false;
    assert_int_equal(rc, 0);
    return true;
}

static void *n_worker(void *p)
{
    struct n_arg *a = p;
    struct n_ctx *c = a->c;
    for (long i = 0; i < c->iters; i++) {
        uint32_t r = conc_test_xorshift32(&a->seed);
        int n = 1 + (int)(r % N_MAX_WANT);
        if (!take_n(&c->s, n, r >> 8)) {
            atomic_fetch_add_explicit(&c->timed_out, 1, memory_order_relaxed);
            continue;
        }
        int in = atomic_fetch_add(&c->inside, n) + n;
        assert_true(in <= N_UNITS);
        atomic_fetch_sub(&c->inside, n);
        atomic_fetch_add_explicit(&c->acquired, 1, memory_order_relaxed);
        assert_int_equal(conc_sem_release_n(&c->s, n), 0);
    }
    return NULL;
}

/* Mixed acquire_n / release_n sizes from many threads: never more than the
 * units out at once, and every unit back at the end. */
static void sem_n_stress_value_conserved(void **state)
{
    (void)state;
    static struct n_ctx c;
    c.iters = conc_test_scaled(100000, 1000);
    conc_sem_opts o = {.bound = N_UNITS};
    assert_int_equal(conc_sem_init(&c.s, N_UNITS, &o), 0);
    struct n_arg args[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        args[i] = (struct n_arg){.c = &c, .seed = 2463534242u + 7919u * (uint32_t)i};
    int64_t t0 = conc_now_ns();
    conc_test_run_threads(N_THREADS, n_worker, args, sizeof *args);
    int64_t took = conc_now_ns() - t0;
    assert_int_equal(atomic_load(&c.acquired) + atomic_load(&c.timed_out),
                     (long)N_THREADS * c.iters);
    assert_int_equal(atomic_load(&c.inside), 0);
    assert_int_equal(conc_sem_value(&c.s), N_UNITS);
    assert_int_equal(conc_test_nwaiters(&c.s), 0);
    assert_int_equal(conc_sem_destroy(&c.s), 0);
    print_message("%d threads x %ld: %ld acquired, %ld timed out, %.1f ms\n", N_THREADS,
                  c.iters, atomic_load(&c.acquired), atomic_load(&c.timed_out),
                  (double)took / 1e6);
}

CONC_TEST_MAIN(cmocka_unit_test(sem_null_object_is_einval),
               cmocka_unit_test(sem_negative_timeout_is_einval),
               cmocka_unit_test(sem_zero_and_oversized_counts_are_refused),
               cmocka_unit_test(sem_init_value_above_bound_is_einval),
               cmocka_unit_test(sem_bounded_release_above_bound_is_estate),
               cmocka_unit_test(sem_release_n_past_bound_releases_none),
               cmocka_unit_test(sem_unbounded_release_past_max_is_eoverflow),
               cmocka_unit_test(sem_acquire_n_above_bound_is_einval),
               cmocka_unit_test(sem_destroyed_is_ebadf_until_reinit),
               cmocka_unit_test(sem_destroy_while_waited_is_ebusy),
               cmocka_unit_test(sem_value_zero_is_valid_and_try_times_out),
               cmocka_unit_test(sem_acquire_n_is_all_or_nothing_without_waiting),
               cmocka_unit_test(sem_acquire_n_waiter_takes_all_at_once),
               cmocka_unit_test(sem_small_acquire_overtakes_large),
               cmocka_unit_test(sem_release_n_wakes_enough_waiters),
               cmocka_unit_test(sem_release_n_serves_mixed_sizes),
               cmocka_unit_test(sem_waiter_not_stranded_when_woken_waiter_is_barged),
               cmocka_unit_test(sem_static_and_zero_init_are_value_zero),
               cmocka_unit_test(sem_timed_acquire_timing),
               cmocka_unit_test(sem_stress_never_admits_more_than_bound),
               cmocka_unit_test(sem_n_stress_value_conserved))
