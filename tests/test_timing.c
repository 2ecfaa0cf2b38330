/* Timeouts of every blocking call: with nobody to satisfy it, a call given a
 * timeout of 1, 10 or 50 ms returns CONC_ETIMEDOUT (conc_sleep: 0), never
 * before the timeout has elapsed (measured with conc_now_ns from just before
 * the call) and at most 1 s after it (which catches "never woke"). The slack
 * seen (elapsed - timeout) is printed, not asserted. A timeout of 0 never
 * blocks. Every test name contains "timing": they run serially. */
#include "test.h"

#include "conc/conc.h"

#include <stdatomic.h>
#include <string.h>

static const int64_t timeouts[] = {CONC_MSEC(1), CONC_MSEC(10), CONC_MSEC(50)};
enum { NT = sizeof timeouts / sizeof *timeouts, REPS = 3 };

/* A blocking call under test: ctx is its object(s), the result its code. */
typedef int (*timed_call)(void *ctx, int64_t timeout);

/* Runs call with each timeout REPS times: each must return `expect`, not
 * before the timeout and within timeout + 1 s. Then a timeout of 0 must also
 * return `expect_zero` within the ceiling (a blocked call would never return:
 * nothing will ever satisfy it). Prints the slack per timeout. */
static void check_timeouts(const char *what, timed_call call, void *ctx, int expect,
                           int expect_zero)
{
    for (int t = 0; t < NT; t++) {
        int64_t min = INT64_MAX, max = 0;
        for (int r = 0; r < REPS; r++) {
            int64_t t0 = conc_now_ns();
            int rc = call(ctx, timeouts[t]);
            int64_t elapsed = conc_now_ns() - t0;
            assert_int_equal(rc, expect);
            if (elapsed < timeouts[t])
                fail_msg("%s: returned after %lld ns, before its timeout of %lld ns", what,
                         (long long)elapsed, (long long)timeouts[t]);
            if (elapsed > timeouts[t] + CONC_SEC(1))
                fail_msg("%s: returned %lld ns after its timeout of %lld ns", what,
                         (long long)(elapsed - timeouts[t]), (long long)timeouts[t]);
            int64_t slack = elapsed - timeouts[t];
            min = slack < min ? slack : min;
            max = slack > max ? slack : max;
        }
        print_message("%-28s timeout %2lld ms: slack %4lld .. %4lld us\n", what,
                      (long long)(timeouts[t] / CONC_NSEC_PER_MSEC),
                      (long long)(min / CONC_NSEC_PER_USEC), (long long)(max / CONC_NSEC_PER_USEC));
    }
    int64_t t0 = conc_now_ns();
    int rc = call(ctx, 0);
    int64_t elapsed = conc_now_ns() - t0;
    assert_int_equal(rc, expect_zero);
    if (elapsed > CONC_SEC(1))
        fail_msg("%s: a timeout of 0 blocked for %lld ns", what, (long long)elapsed);
    print_message("%-28s timeout  0 ms: returned in %lld us\n", what,
                  (long long)(elapsed / CONC_NSEC_PER_USEC));
}

/* ---- a helper thread that holds something until told to let go ---- */

struct holder {
    int (*take)(void *obj);
    int (*drop)(void *obj);
    void *obj;
    conc_event taken, release;
    pthread_t th;
};

static void *holder_main(void *p)
{
    struct holder *h = p;
    assert_int_equal(h->take(h->obj), 0);
    assert_int_equal(conc_event_set(&h->taken), 0);
    assert_int_equal(conc_event_wait_timed(&h->release, CONC_SEC(60)), 0);
    assert_int_equal(h->drop(h->obj), 0);
    return NULL;
}

static void hold(struct holder *h, int (*take)(void *), int (*drop)(void *), void *obj)
{
    h->take = take;
    h->drop = drop;
    h->obj = obj;
    assert_int_equal(conc_event_init(&h->taken, NULL), 0);
    assert_int_equal(conc_event_init(&h->release, NULL), 0);
    assert_int_equal(pthread_create(&h->th, NULL, holder_main, h), 0);
    assert_int_equal(conc_event_wait_timed(&h->taken, CONC_SEC(10)), 0);
}

static void let_go(struct holder *h)
{
    assert_int_equal(conc_event_set(&h->release), 0);
    assert_int_equal(pthread_join(h->th, NULL), 0);
    assert_int_equal(conc_event_destroy(&h->taken), 0);
    assert_int_equal(conc_event_destroy(&h->release), 0);
}

/* ================================================================= mutexes */

static int mutex_take(void *m) { return conc_mutex_lock(m); }
static int mutex_drop(void *m) { return conc_mutex_unlock(m); }
static int mutex_timed(void *m, int64_t t) { return conc_mutex_lock_timed(m, t); }

static void mutex_timedlock_timing(void **state)
{
    (void)state;
    conc_mutex m;
    assert_int_equal(conc_mutex_init(&m, NULL), 0);
    struct holder h;
    hold(&h, mutex_take, mutex_drop, &m);
    check_timeouts("mutex_timedlock", mutex_timed, &m, CONC_ETIMEDOUT, CONC_ETIMEDOUT);
    let_go(&h);
    assert_int_equal(conc_mutex_destroy(&m), 0);
}

static void mutex_fair_timedlock_timing(void **state)
{
    (void)state;
    conc_mutex m;
    conc_mutex_opts o = {.fair = true};
    assert_int_equal(conc_mutex_init(&m, &o), 0);
    struct holder h;
    hold(&h, mutex_take, mutex_drop, &m);
    check_timeouts("mutex_timedlock (fair)", mutex_timed, &m, CONC_ETIMEDOUT, CONC_ETIMEDOUT);
    let_go(&h);
    assert_int_equal(conc_mutex_destroy(&m), 0);
}

static int rmutex_take(void *m) { return conc_rmutex_lock(m); }
static int rmutex_drop(void *m) { return conc_rmutex_unlock(m); }
static int rmutex_timed(void *m, int64_t t) { return conc_rmutex_lock_timed(m, t); }

static void rmutex_timedlock_timing(void **state)
{
    (void)state;
    conc_rmutex m;
    assert_int_equal(conc_rmutex_init(&m, NULL), 0);
    struct holder h;
    hold(&h, rmutex_take, rmutex_drop, &m);
    check_timeouts("rmutex_timedlock", rmutex_timed, &m, CONC_ETIMEDOUT, CONC_ETIMEDOUT);
    assert_int_equal(conc_rmutex_depth(&m), 0);
    let_go(&h);
    assert_int_equal(conc_rmutex_destroy(&m), 0);
}

/* ================================================================= rwlock */

static int rw_take_write(void *l) { return conc_rwlock_wrlock(l); }
static int rw_take_read(void *l) { return conc_rwlock_rdlock(l); }
static int rw_drop(void *l) { return conc_rwlock_unlock(l); }
static int rw_timed_read(void *l, int64_t t) { return conc_rwlock_rdlock_timed(l, t); }
static int rw_timed_write(void *l, int64_t t) { return conc_rwlock_wrlock_timed(l, t); }

static void rwlock_timedrdlock_timing(void **state)
{
    (void)state;
    conc_rwlock l;
    assert_int_equal(conc_rwlock_init(&l, NULL), 0);
    struct holder h;
    hold(&h, rw_take_write, rw_drop, &l);
    check_timeouts("rwlock_timedrdlock", rw_timed_read, &l, CONC_ETIMEDOUT, CONC_ETIMEDOUT);
    let_go(&h);
    assert_int_equal(conc_rwlock_destroy(&l), 0);
}

/* A writer that gives up must not leave readers held back: afterwards a new
 * reader gets in at once beside the reader that holds the lock. */
static void rwlock_timedwrlock_timing(void **state)
{
    (void)state;
    conc_rwlock l;
    assert_int_equal(conc_rwlock_init(&l, NULL), 0);
    struct holder h;
    hold(&h, rw_take_read, rw_drop, &l);
    check_timeouts("rwlock_timedwrlock (reader)", rw_timed_write, &l, CONC_ETIMEDOUT,
                   CONC_ETIMEDOUT);
    assert_int_equal(conc_rwlock_rdlock_timed(&l, 0), 0);
    assert_int_equal(conc_rwlock_unlock(&l), 0);
    let_go(&h);
    hold(&h, rw_take_write, rw_drop, &l);
    check_timeouts("rwlock_timedwrlock (writer)", rw_timed_write, &l, CONC_ETIMEDOUT,
                   CONC_ETIMEDOUT);
    let_go(&h);
    assert_int_equal(conc_rwlock_destroy(&l), 0);
}

/* ============================================================== condition */

struct cond_ctx {
    conc_cond c;
    conc_mutex m;
};

static int cond_timed(void *p, int64_t t)
{
    struct cond_ctx *x = p;
    int rc = conc_cond_wait_timed(&x->c, &x->m, t);
    /* the wait returns holding the mutex, also after a timeout */
    assert_int_equal(conc_mutex_lock(&x->m), CONC_EDEADLK);
    return rc;
}

static void cond_wait_timing(void **state)
{
    (void)state;
    struct cond_ctx x;
    assert_int_equal(conc_cond_init(&x.c, NULL), 0);
    assert_int_equal(conc_mutex_init(&x.m, NULL), 0);
    assert_int_equal(conc_mutex_lock(&x.m), 0);
    check_timeouts("cond_wait", cond_timed, &x, CONC_ETIMEDOUT, CONC_ETIMEDOUT);
    assert_int_equal(conc_mutex_unlock(&x.m), 0);
    assert_int_equal(conc_cond_destroy(&x.c), 0);
    assert_int_equal(conc_mutex_destroy(&x.m), 0);
}

static int never(void *arg)
{
    (void)arg;
    return false;
}

static int cond_for_timed(void *p, int64_t t)
{
    struct cond_ctx *x = p;
    return conc_cond_wait_for_timed(&x->c, &x->m, never, NULL, t);
}

static void cond_wait_for_timing(void **state)
{
    (void)state;
    struct cond_ctx x;
    assert_int_equal(conc_cond_init(&x.c, NULL), 0);
    assert_int_equal(conc_mutex_init(&x.m, NULL), 0);
    assert_int_equal(conc_mutex_lock(&x.m), 0);
    check_timeouts("cond_wait_for", cond_for_timed, &x, CONC_ETIMEDOUT, CONC_ETIMEDOUT);
    assert_int_equal(conc_mutex_unlock(&x.m), 0);
    assert_int_equal(conc_cond_destroy(&x.c), 0);
    assert_int_equal(conc_mutex_destroy(&x.m), 0);
}

/* ====================================================== semaphore, event */

static int sem_timed(void *s, int64_t t) { return conc_sem_acquire_timed(s, t); }
static int sem_timed_3(void *s, int64_t t) { return conc_sem_acquire_n_timed(s, 3, t); }

static void sem_acquire_timing(void **state)
{
    (void)state;
    conc_sem s;
    assert_int_equal(conc_sem_init(&s, 0, NULL), 0);
    check_timeouts("sem_acquire", sem_timed, &s, CONC_ETIMEDOUT, CONC_ETIMEDOUT);
    assert_int_equal(conc_sem_release_n(&s, 2), 0);
    check_timeouts("sem_acquire_n(3) at value 2", sem_timed_3, &s, CONC_ETIMEDOUT,
                   CONC_ETIMEDOUT);
    assert_int_equal(conc_sem_value(&s), 2);
    assert_int_equal(conc_sem_destroy(&s), 0);
}

static int event_timed(void *e, int64_t t) { return conc_event_wait_timed(e, t); }

static void event_wait_timing(void **state)
{
    (void)state;
    conc_event e;
    assert_int_equal(conc_event_init(&e, NULL), 0);
    check_timeouts("event_wait", event_timed, &e, CONC_ETIMEDOUT, CONC_ETIMEDOUT);
    assert_int_equal(conc_event_destroy(&e), 0);
}

/* ================================================================ barrier */

/* Alone at a barrier of 2: the wait times out, which breaks the barrier;
 * reset makes it usable for the next try. */
static int barrier_timed(void *b, int64_t t)
{
    int rc = conc_barrier_wait_timed(b, NULL, t);
    assert_int_equal(conc_barrier_broken(b), 1);
    assert_int_equal(conc_barrier_reset(b), 0);
    return rc;
}

static void barrier_wait_timing(void **state)
{
    (void)state;
    conc_barrier b;
    assert_int_equal(conc_barrier_init(&b, 2, NULL), 0);
    check_timeouts("barrier_wait", barrier_timed, &b, CONC_ETIMEDOUT, CONC_ETIMEDOUT);
    assert_int_equal(conc_barrier_broken(&b), 0);
    assert_int_equal(conc_barrier_destroy(&b), 0);
}

/* =================================================================== once */

struct once_ctx {
    conc_once o;
    conc_event running, finish;
    atomic_int runs;
};

static int slow_init(void *p)
{
    struct once_ctx *x = p;
    atomic_fetch_add(&x->runs, 1);
    assert_int_equal(conc_event_set(&x->running), 0);
    assert_int_equal(conc_event_wait_timed(&x->finish, CONC_SEC(60)), 0);
    return 0;
}

static int count_init(void *p)
{
    atomic_fetch_add(&((struct once_ctx *)p)->runs, 1);
    return 0;
}

static void *once_runner(void *p)
{
    struct once_ctx *x = p;
    assert_int_equal(conc_once_call(&x->o, slow_init, x), 0);
    return NULL;
}

static int once_timed(void *p, int64_t t)
{
    struct once_ctx *x = p;
    return conc_once_call_timed(&x->o, count_init, x, t);
}

/* While another thread runs the initialiser, a timed caller gives up. */
static void once_call_timed_timing(void **state)
{
    (void)state;
    struct once_ctx x = {.o = CONC_ONCE_INIT};
    atomic_init(&x.runs, 0);
    assert_int_equal(conc_event_init(&x.running, NULL), 0);
    assert_int_equal(conc_event_init(&x.finish, NULL), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, once_runner, &x), 0);
    assert_int_equal(conc_event_wait_timed(&x.running, CONC_SEC(10)), 0);
    check_timeouts("once_call_timed", once_timed, &x, CONC_ETIMEDOUT, CONC_ETIMEDOUT);
    assert_int_equal(conc_event_set(&x.finish), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(once_timed(&x, 0), 0); /* done now: at once */
    assert_int_equal(atomic_load(&x.runs), 1);
    assert_int_equal(conc_event_destroy(&x.running), 0);
    assert_int_equal(conc_event_destroy(&x.finish), 0);
}

/* ================================================================ threads */

static int wait_for_event(void *e)
{
    return conc_event_wait_timed(e, CONC_SEC(60)) == 0 ? 42 : -1;
}

static int join_timed(void *t, int64_t timeout)
{
    return conc_thread_join_timed(t, NULL, timeout);
}

static void thread_join_timing(void **state)
{
    (void)state;
    conc_event e;
    assert_int_equal(conc_event_init(&e, NULL), 0);
    conc_thread *t = NULL;
    assert_int_equal(conc_thread_create(&t, wait_for_event, &e, NULL), 0);
    check_timeouts("thread_join", join_timed, t, CONC_ETIMEDOUT, CONC_ETIMEDOUT);
    assert_int_equal(conc_thread_is_alive(t), 1);
    assert_int_equal(conc_event_set(&e), 0);
    int status = 0;
    assert_int_equal(conc_thread_join_timed(t, &status, CONC_SEC(10)), 0);
    assert_int_equal(status, 42);
    assert_int_equal(conc_thread_destroy(t), 0);
    assert_int_equal(conc_event_destroy(&e), 0);
}

static int sleep_call(void *ctx, int64_t ns)
{
    (void)ctx;
    return conc_sleep(ns);
}

static void sleep_timing(void **state)
{
    (void)state;
    check_timeouts("sleep", sleep_call, NULL, 0, 0);
}

/* Bad timeouts are refused before any waiting. */
static void negative_timeouts_rejected_timing(void **state)
{
    (void)state;
    conc_mutex m = CONC_MUTEX_INIT;
    conc_sem s = CONC_SEM_INIT;
    conc_event e = CONC_EVENT_INIT;
    assert_int_equal(conc_mutex_lock_timed(&m, -2), CONC_EINVAL);
    assert_int_equal(conc_sem_acquire_timed(&s, -5), CONC_EINVAL);
    assert_int_equal(conc_event_wait_timed(&e, INT64_MIN), CONC_EINVAL);
    assert_int_equal(conc_sleep(-2), CONC_EINVAL);
}

static int succeed(void *arg)
{
    (void)arg;
    return 0;
}

/* The contract (sync.h: "negative timeouts other than CONC_FOREVER are
 * CONC_EINVAL everywhere") holds also when the call could return at once. */
static void negative_timeout_rejected_when_ready_timing(void **state)
{
    (void)state;
    conc_event e;
    conc_event_opts eo = {.initially_set = true};
    assert_int_equal(conc_event_init(&e, &eo), 0);
    assert_int_equal(conc_event_wait_timed(&e, -2), CONC_EINVAL);
    assert_int_equal(conc_event_destroy(&e), 0);
    conc_once o = CONC_ONCE_INIT;
    assert_int_equal(conc_once_call(&o, succeed, NULL), 0);
    assert_int_equal(conc_once_call_timed(&o, succeed, NULL, -2), CONC_EINVAL);
    conc_sem s;
    assert_int_equal(conc_sem_init(&s, 1, NULL), 0);
    assert_int_equal(conc_sem_acquire_timed(&s, -2), CONC_EINVAL);
    assert_int_equal(conc_sem_destroy(&s), 0);
}

CONC_TEST_MAIN(cmocka_unit_test(mutex_timedlock_timing),
               cmocka_unit_test(mutex_fair_timedlock_timing),
               cmocka_unit_test(rmutex_timedlock_timing),
               cmocka_unit_test(rwlock_timedrdlock_timing),
               cmocka_unit_test(rwlock_timedwrlock_timing),
               cmocka_unit_test(cond_wait_timing),
               cmocka_unit_test(cond_wait_for_timing),
               cmocka_unit_test(sem_acquire_timing),
               cmocka_unit_test(event_wait_timing),
               cmocka_unit_test(barrier_wait_timing),
               cmocka_unit_test(once_call_timed_timing),
               cmocka_unit_test(thread_join_timing),
               cmocka_unit_test(sleep_timing),
               cmocka_unit_test(negative_timeouts_rejected_timing),
               cmocka_unit_test(negative_timeout_rejected_when_ready_timing))
