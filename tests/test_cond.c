/* conc_cond: the misuse codes (NULL, bad timeouts, n <= 0, waiting without
 * the mutex, EBADF after destroy, EBUSY while waited on), static and all-zero
 * conditions, how many waiters notify / notify_n / notify_all wake (counted in
 * the internal queue, so exact), timed waits that return holding the mutex,
 * conc_cond_wait_for's predicate and single deadline, waiting over a
 * recursive mutex held several levels deep, a waiter timing out just as a
 * notify picks it (held there by the wait core's test hook), the
 * process-shared back-end in one process, a producer/consumer and a hand-off
 * stress. */
#include "test_impl.h"

#include <stdatomic.h>
#include <string.h>

/* ---- predicates ---- */

static int always_false(void *arg)
{
    (void)arg;
    return false;
}

static int flag_is_set(void *arg)
{
    return *(bool *)arg;
}

struct counted_flag {
    bool flag;
    int checks; /* how often the predicate was evaluated */
};

static int counted_flag_is_set(void *arg)
{
    struct counted_flag *f = arg;
    f->checks++;
    return f->flag;
}

/* ================================================================ misuse */

static void cond_null_is_einval(void **state)
{
    (void)state;
    conc_cond c = CONC_COND_INIT;
    conc_mutex m = CONC_MUTEX_INIT;
    conc_rmutex r = CONC_RMUTEX_INIT;
    bool flag = false;
    assert_int_equal(conc_cond_init(NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_cond_destroy(NULL), CONC_EINVAL);
    assert_int_equal(conc_mutex_lock(&m), 0);
    assert_int_equal(conc_cond_wait_timed(NULL, &m, 0), CONC_EINVAL);
    assert_int_equal(conc_cond_wait_timed(&c, NULL, 0), CONC_EINVAL);
    assert_int_equal(conc_cond_wait_for_timed(NULL, &m, flag_is_set, &flag, 0), CONC_EINVAL);
    assert_int_equal(conc_cond_wait_for_timed(&c, NULL, flag_is_set, &flag, 0), CONC_EINVAL);
    assert_int_equal(conc_cond_wait_for_timed(&c, &m, NULL, &flag, 0), CONC_EINVAL);
    assert_int_equal(conc_rmutex_lock(&r), 0);
    assert_int_equal(conc_cond_wait_rmutex_timed(NULL, &r, 0), CONC_EINVAL);
    assert_int_equal(conc_cond_wait_rmutex_timed(&c, NULL, 0), CONC_EINVAL);
    assert_int_equal(conc_cond_notify(NULL), CONC_EINVAL);
    assert_int_equal(conc_cond_notify_n(NULL, 1), CONC_EINVAL);
    assert_int_equal(conc_cond_notify_all(NULL), CONC_EINVAL);
    /* None of it released or added anything. */
    assert_int_equal(conc_rmutex_depth(&r), 1);
    assert_int_equal(conc_rmutex_unlock(&r), 0);
    assert_int_equal(conc_mutex_unlock(&m), 0);
    assert_int_equal(conc_cond_destroy(&c), 0);
    assert_int_equal(conc_mutex_destroy(&m), 0);
    assert_int_equal(conc_rmutex_destroy(&r), 0);
}

static void cond_negative_timeout_is_einval(void **state)
{
    (void)state;
    conc_cond c = CONC_COND_INIT;
    conc_mutex m = CONC_MUTEX_INIT;
    conc_rmutex r = CONC_RMUTEX_INIT;
    bool flag = false;
    assert_int_equal(conc_mutex_lock(&m), 0);
    assert_int_equal(conc_cond_wait_timed(&c, &m, -2), CONC_EINVAL);
    assert_int_equal(conc_cond_wait_timed(&c, &m, INT64_MIN), CONC_EINVAL);
    assert_int_equal(conc_cond_wait_for_timed(&c, &m, flag_is_set, &flag, -2), CONC_EINVAL);
    assert_int_equal(conc_mutex_unlock(&m), 0); /* still held: nothing waited */
    assert_int_equal(conc_rmutex_lock(&r), 0);
    assert_int_equal(conc_rmutex_lock(&r), 0);
    assert_int_equal(conc_cond_wait_rmutex_timed(&c, &r, -2), CONC_EINVAL);
    assert_int_equal(conc_rmutex_depth(&r), 2);
    assert_int_equal(conc_rmutex_unlock(&r), 0);
    assert_int_equal(conc_rmutex_unlock(&r), 0);
    assert_int_equal(conc_test_nwaiters(&c), 0);
    assert_int_equal(conc_cond_destroy(&c), 0);
}

/* Python's notify(0) wakes nobody and is no error; any count is valid. */
static void cond_notify_n_any_count_is_valid(void **state)
{
    (void)state;
    conc_cond c;
    assert_int_equal(conc_cond_init(&c, NULL), 0);
    assert_int_equal(conc_cond_notify_n(&c, 0), 0);
    assert_int_equal(conc_cond_notify_n(&c, 1), 0);
    assert_int_equal(conc_cond_notify_n(&c, SIZE_MAX), 0);
    assert_int_equal(conc_cond_notify_n(NULL, 1), CONC_EINVAL);
    assert_int_equal(conc_cond_destroy(&c), 0);
    assert_int_equal(conc_cond_notify_n(&c, 0), CONC_EBADF);
}

struct holder {
    conc_mutex *m;
    conc_rmutex *r;
    atomic_int holding, release;
};

/* Holds m (or r) until told to let go. */
static void *holder_main(void *arg)
{
    struct holder *h = arg;
    assert_int_equal(h->m ? conc_mutex_lock(h->m) : conc_rmutex_lock(h->r), 0);
    atomic_store(&h->holding, 1);
    CONC_TEST_POLL_UNTIL(atomic_load(&h->release));
    assert_int_equal(h->m ? conc_mutex_unlock(h->m) : conc_rmutex_unlock(h->r), 0);
    return NULL;
}

static void cond_wait_without_mutex_is_eperm(void **state)
{
    (void)state;
    conc_cond c = CONC_COND_INIT;
    conc_mutex m = CONC_MUTEX_INIT;
    conc_rmutex r = CONC_RMUTEX_INIT;
    /* Not locked at all. */
    assert_int_equal(conc_cond_wait(&c, &m), CONC_EPERM);
    assert_int_equal(conc_cond_wait_timed(&c, &m, 0), CONC_EPERM);
    assert_int_equal(conc_cond_wait_rmutex(&c, &r), CONC_EPERM);
    assert_int_equal(conc_cond_wait_for(&c, &m, always_false, NULL), CONC_EPERM);
    /* Locked by another thread. */
    struct holder hm = {.m = &m}, hr = {.r = &r};
    pthread_t tm = conc_test_start(holder_main, &hm), tr = conc_test_start(holder_main, &hr);
    CONC_TEST_POLL_UNTIL(atomic_load(&hm.holding) && atomic_load(&hr.holding));
    assert_int_equal(conc_cond_wait(&c, &m), CONC_EPERM);
    assert_int_equal(conc_cond_wait_rmutex(&c, &r), CONC_EPERM);
    assert_int_equal(conc_cond_wait_for(&c, &m, always_false, NULL), CONC_EPERM);
    assert_int_equal(conc_test_nwaiters(&c), 0);
    atomic_store(&hm.release, 1);
    atomic_store(&hr.release, 1);
    conc_test_join(tm);
    conc_test_join(tr);
    assert_int_equal(conc_cond_destroy(&c), 0);
    assert_int_equal(conc_mutex_destroy(&m), 0);
    assert_int_equal(conc_rmutex_destroy(&r), 0);
}

static void cond_destroyed_is_ebadf(void **state)
{
    (void)state;
    conc_cond c;
    conc_mutex m = CONC_MUTEX_INIT;
    bool flag = false;
    assert_int_equal(conc_cond_init(&c, NULL), 0);
    assert_int_equal(conc_cond_destroy(&c), 0);
    assert_int_equal(conc_mutex_lock(&m), 0);
    assert_int_equal(conc_cond_wait(&c, &m), CONC_EBADF);
    assert_int_equal(conc_cond_wait_timed(&c, &m, 0), CONC_EBADF);
    assert_int_equal(conc_cond_wait_for(&c, &m, flag_is_set, &flag), CONC_EBADF);
    assert_int_equal(conc_cond_notify(&c), CONC_EBADF);
    assert_int_equal(conc_cond_notify_n(&c, 3), CONC_EBADF);
    assert_int_equal(conc_cond_notify_all(&c), CONC_EBADF);
    assert_int_equal(conc_cond_destroy(&c), CONC_EBADF);
    assert_int_equal(conc_mutex_unlock(&m), 0); /* the failed waits kept it */
    /* Initialised again it works: a timed wait runs out normally. */
    assert_int_equal(conc_cond_init(&c, NULL), 0);
    assert_int_equal(conc_mutex_lock(&m), 0);
    assert_int_equal(conc_cond_wait_timed(&c, &m, CONC_MSEC(1)), CONC_ETIMEDOUT);
    assert_int_equal(conc_mutex_unlock(&m), 0);
    /* A destroyed mutex is EBADF too. */
    assert_int_equal(conc_mutex_destroy(&m), 0);
    assert_int_equal(conc_cond_wait(&c, &m), CONC_EBADF);
    assert_int_equal(conc_cond_destroy(&c), 0);
}

/* ---- a shared fixture: mutex, condition, a flag and counters under m ---- */

struct cv {
    conc_mutex m;
    conc_cond c;
    bool flag;    /* the predicate; under m */
    int returned; /* waits that returned; under m */
};

static void cv_init(struct cv *v, const conc_mutex_opts *mopts)
{
    memset(v, 0, sizeof *v);
    assert_int_equal(conc_mutex_init(&v->m, mopts), 0);
    assert_int_equal(conc_cond_init(&v->c, NULL), 0);
}

static void cv_destroy(struct cv *v)
{
    assert_int_equal(conc_test_nwaiters(&v->c), 0);
    assert_int_equal(conc_cond_destroy(&v->c), 0);
    assert_int_equal(conc_mutex_destroy(&v->m), 0);
}

static int cv_returned(struct cv *v)
{
    assert_int_equal(conc_mutex_lock(&v->m), 0);
    int n = v->returned;
    assert_int_equal(conc_mutex_unlock(&v->m), 0);
    return n;
}

struct cwaiter {
    struct cv *v;
    int64_t timeout;
    int rc;
};

/* One wait, no predicate loop: how many of these return shows how many
 * wake-ups were given (the in-process back-end has no spurious ones). */
static void *wait_once(void *arg)
{
    struct cwaiter *w = arg;
    assert_int_equal(conc_mutex_lock(&w->v->m), 0);
    w->rc = conc_cond_wait_timed(&w->v->c, &w->v->m, w->timeout);
    w->v->returned++;
    assert_int_equal(conc_mutex_unlock(&w->v->m), 0);
    return NULL;
}

/* Waits until the predicate holds, as real code does. */
static void *wait_for_flag(void *arg)
{
    struct cwaiter *w = arg;
    assert_int_equal(conc_mutex_lock(&w->v->m), 0);
    w->rc = conc_cond_wait_for_timed(&w->v->c, &w->v->m, flag_is_set, &w->v->flag, w->timeout);
    w->v->returned++;
    assert_int_equal(conc_mutex_unlock(&w->v->m), 0);
    return NULL;
}

static void set_flag_and_notify_all(struct cv *v)
{
    assert_int_equal(conc_mutex_lock(&v->m), 0);
    v->flag = true;
    assert_int_equal(conc_cond_notify_all(&v->c), 0);
    assert_int_equal(conc_mutex_unlock(&v->m), 0);
}

static void cond_destroy_with_waiter_is_ebusy(void **state)
{
    (void)state;
    struct cv v;
    cv_init(&v, NULL);
    struct cwaiter w = {.v = &v, .timeout = CONC_FOREVER, .rc = 1};
    pthread_t t = conc_test_start(wait_for_flag, &w);
    CONC_TEST_POLL_UNTIL(conc_test_nwaiters(&v.c) == 1);
    assert_int_equal(conc_cond_destroy(&v.c), CONC_EBUSY);
    /* Still a working condition: the waiter is woken normally. */
    set_flag_and_notify_all(&v);
    conc_test_join(t);
    assert_int_equal(w.rc, 0);
    assert_int_equal(v.returned, 1);
    cv_destroy(&v);
}

static conc_cond global_cond = CONC_COND_INIT;
static conc_mutex global_cond_mutex = CONC_MUTEX_INIT;

struct pair {
    conc_cond *c;
    conc_mutex *m;
    bool flag; /* under m */
    int rc;
};

static void *pair_waiter(void *arg)
{
    struct pair *p = arg;
    assert_int_equal(conc_mutex_lock(p->m), 0);
    p->rc = conc_cond_wait_for(p->c, p->m, flag_is_set, &p->flag);
    assert_int_equal(conc_mutex_unlock(p->m), 0);
    return NULL;
}

/* A default condition: timed waits run out, a waiter is woken. */
static void check_default_cond(conc_cond *c, conc_mutex *m)
{
    assert_int_equal(conc_cond_notify(c), 0);
    assert_int_equal(conc_mutex_lock(m), 0);
    assert_int_equal(conc_cond_wait_timed(c, m, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_cond_wait_timed(c, m, CONC_MSEC(1)), CONC_ETIMEDOUT);
    assert_int_equal(conc_mutex_unlock(m), 0);
    struct pair p = {.c = c, .m = m, .rc = 1};
    pthread_t t = conc_test_start(pair_waiter, &p);
    CONC_TEST_POLL_UNTIL(conc_test_nwaiters(c) == 1);
    assert_int_equal(conc_mutex_lock(m), 0);
    p.flag = true;
    assert_int_equal(conc_cond_notify(c), 0);
    assert_int_equal(conc_mutex_unlock(m), 0);
    conc_test_join(t);
    assert_int_equal(p.rc, 0);
    assert_int_equal(conc_test_nwaiters(c), 0);
    assert_int_equal(conc_cond_destroy(c), 0);
    assert_int_equal(conc_mutex_destroy(m), 0);
}

static void cond_static_and_zero_init(void **state)
{
    (void)state;
    check_default_cond(&global_cond, &global_cond_mutex);
    conc_cond zc;
    conc_mutex zm;
    memset(&zc, 0, sizeof zc);
    memset(&zm, 0, sizeof zm);
    check_default_cond(&zc, &zm);
}

/* ======================================================== who gets woken */

static void start_waiters(struct cv *v, struct cwaiter *w, pthread_t *t, int n)
{
    for (int i = 0; i < n; i++) {
        w[i] = (struct cwaiter){.v = v, .timeout = CONC_FOREVER, .rc = 1};
        t[i] = conc_test_start(wait_once, &w[i]);
    }
    CONC_TEST_POLL_UNTIL(conc_test_nwaiters(&v->c) == (uint32_t)n);
}

static void join_waiters(pthread_t *t, struct cwaiter *w, int n)
{
    for (int i = 0; i < n; i++) {
        conc_test_join(t[i]);
        assert_int_equal(w[i].rc, 0);
    }
}

static void cond_notify_wakes_exactly_one(void **state)
{
    (void)state;
    enum { K = 4 };
    struct cv v;
    cv_init(&v, NULL);
    struct cwaiter w[K];
    pthread_t t[K];
    start_waiters(&v, w, t, K);
    assert_int_equal(conc_test_queue_len(&v.c), K);
    assert_int_equal(conc_cond_notify(&v.c), 0);
    /* Exactly one record left the queue, and exactly one wait returns. */
    assert_int_equal(conc_test_queue_len(&v.c), K - 1);
    CONC_TEST_POLL_UNTIL(cv_returned(&v) == 1);
    assert_int_equal(conc_test_nwaiters(&v.c), K - 1);
    assert_int_equal(conc_cond_notify(&v.c), 0);
    assert_int_equal(conc_test_queue_len(&v.c), K - 2);
    CONC_TEST_POLL_UNTIL(cv_returned(&v) == 2);
    assert_int_equal(conc_cond_notify_all(&v.c), 0);
    assert_int_equal(conc_test_queue_len(&v.c), 0);
    join_waiters(t, w, K);
    assert_int_equal(v.returned, K);
    cv_destroy(&v);
}

static void cond_notify_n_wakes_n(void **state)
{
    (void)state;
    enum { K = 5 };
    struct cv v;
    cv_init(&v, NULL);
    struct cwaiter w[K];
    pthread_t t[K];
    start_waiters(&v, w, t, K);
    assert_int_equal(conc_cond_notify_n(&v.c, 2), 0);
    assert_int_equal(conc_test_queue_len(&v.c), K - 2);
    CONC_TEST_POLL_UNTIL(cv_returned(&v) == 2);
    assert_int_equal(conc_test_nwaiters(&v.c), K - 2);
    /* More than are waiting: all of them, and nothing is kept for later. */
    assert_int_equal(conc_cond_notify_n(&v.c, 10), 0);
    assert_int_equal(conc_test_queue_len(&v.c), 0);
    join_waiters(t, w, K);
    assert_int_equal(v.returned, K);
    assert_int_equal(conc_mutex_lock(&v.m), 0);
    assert_int_equal(conc_cond_wait_timed(&v.c, &v.m, CONC_MSEC(1)), CONC_ETIMEDOUT);
    assert_int_equal(conc_mutex_unlock(&v.m), 0);
    cv_destroy(&v);
}

static void cond_notify_without_waiters_is_not_kept(void **state)
{
    (void)state;
    struct cv v;
    cv_init(&v, NULL);
    assert_int_equal(conc_cond_notify(&v.c), 0);
    assert_int_equal(conc_cond_notify_n(&v.c, 5), 0);
    assert_int_equal(conc_cond_notify_all(&v.c), 0);
    /* Those notifies woke nobody and left nothing behind for a later wait. */
    assert_int_equal(conc_mutex_lock(&v.m), 0);
    assert_int_equal(conc_cond_wait_timed(&v.c, &v.m, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_cond_wait_timed(&v.c, &v.m, CONC_MSEC(5)), CONC_ETIMEDOUT);
    assert_int_equal(conc_mutex_unlock(&v.m), 0);
    cv_destroy(&v);
}

/* ============================================================ timeouts */

static void cond_timed_wait_timing(void **state)
{
    (void)state;
    const int64_t timeout = CONC_MSEC(30);
    const conc_mutex_opts mopts[] = {{.fair = false}, {.fair = true}};
    for (size_t i = 0; i < 2; i++) {
        struct cv v;
        cv_init(&v, &mopts[i]);
        assert_int_equal(conc_mutex_lock(&v.m), 0);
        int64_t t0 = conc_now_ns();
        assert_int_equal(conc_cond_wait_timed(&v.c, &v.m, timeout), CONC_ETIMEDOUT);
        int64_t took = conc_now_ns() - t0;
        print_message("%s mutex: wait(30 ms) returned after %.3f ms\n", i ? "fair" : "default",
                      (double)took / 1e6);
        assert_true(took >= timeout);
        assert_true(took < timeout + CONC_SEC(1));
        /* Returned holding the mutex again. */
        assert_int_equal(conc_mutex_lock(&v.m), CONC_EDEADLK);
        assert_int_equal(conc_cond_wait_timed(&v.c, &v.m, 0), CONC_ETIMEDOUT);
        assert_int_equal(conc_mutex_unlock(&v.m), 0);
        assert_int_equal(conc_mutex_unlock(&v.m), CONC_EPERM);
        cv_destroy(&v);
    }
    conc_cond c = CONC_COND_INIT;
    conc_rmutex r = CONC_RMUTEX_INIT;
    assert_int_equal(conc_rmutex_lock(&r), 0);
    assert_int_equal(conc_rmutex_lock(&r), 0);
    int64_t t0 = conc_now_ns();
    assert_int_equal(conc_cond_wait_rmutex_timed(&c, &r, timeout), CONC_ETIMEDOUT);
    int64_t took = conc_now_ns() - t0;
    print_message("rmutex: wait(30 ms) returned after %.3f ms\n", (double)took / 1e6);
    assert_true(took >= timeout && took < timeout + CONC_SEC(1));
    assert_int_equal(conc_rmutex_depth(&r), 2);
    assert_int_equal(conc_rmutex_unlock(&r), 0);
    assert_int_equal(conc_rmutex_unlock(&r), 0);
    assert_int_equal(conc_rmutex_unlock(&r), CONC_EPERM);
    assert_int_equal(conc_cond_destroy(&c), 0);
    assert_int_equal(conc_rmutex_destroy(&r), 0);
}

struct retake {
    struct cv *v;
    atomic_int returned;
    int rc, unlock_rc;
};

static void *timed_waiter(void *arg)
{
    struct retake *w = arg;
    assert_int_equal(conc_mutex_lock(&w->v->m), 0);
    w->rc = conc_cond_wait_timed(&w->v->c, &w->v->m, CONC_MSEC(20));
    atomic_store(&w->returned, 1);
    w->unlock_rc = conc_mutex_unlock(&w->v->m);
    return NULL;
}

static void cond_timed_out_wait_retakes_the_mutex(void **state)
{
    (void)state;
    struct cv v;
    cv_init(&v, NULL);
    conc_test_timeout_hold_install();
    struct retake w = {.v = &v, .rc = 1, .unlock_rc = 1};
    pthread_t t = conc_test_start(timed_waiter, &w);
    /* The hook keeps the waiter announced after its timeout, so this poll
     * cannot miss it however late it runs. */
    CONC_TEST_POLL_UNTIL(conc_test_nwaiters(&v.c) == 1);
    /* The waiter released the mutex to wait; we take it and keep it past the
     * waiter's deadline. */
    assert_int_equal(conc_mutex_lock(&v.m), 0);
    conc_test_timeout_hold_await();
    conc_test_timeout_hold_release();
    CONC_TEST_POLL_UNTIL(conc_test_nwaiters(&v.c) == 0);
    /* Timed out and off the queue, but it cannot return before it has the
     * mutex back. */
    assert_int_equal(atomic_load(&w.returned), 0);
    assert_int_equal(conc_mutex_unlock(&v.m), 0);
    conc_test_join(t);
    conc_test_timeout_hold_remove();
    assert_int_equal(w.rc, CONC_ETIMEDOUT);
    assert_int_equal(w.unlock_rc, 0);
    cv_destroy(&v);
}

/* ============================================================= wait_for */

struct pred_waiter {
    struct cv *v;
    struct counted_flag f; /* under v->m */
    int rc;
};

static void *wait_for_counted(void *arg)
{
    struct pred_waiter *w = arg;
    assert_int_equal(conc_mutex_lock(&w->v->m), 0);
    w->rc = conc_cond_wait_for(&w->v->c, &w->v->m, counted_flag_is_set, &w->f);
    w->v->returned++;
    assert_int_equal(conc_mutex_unlock(&w->v->m), 0);
    return NULL;
}

static int checks(struct pred_waiter *w)
{
    assert_int_equal(conc_mutex_lock(&w->v->m), 0);
    int n = w->f.checks;
    assert_int_equal(conc_mutex_unlock(&w->v->m), 0);
    return n;
}

static void cond_wait_for_predicate(void **state)
{
    (void)state;
    struct cv v;
    cv_init(&v, NULL);
    assert_int_equal(conc_mutex_lock(&v.m), 0);
    /* Never true: times out, holding the mutex. */
    assert_int_equal(conc_cond_wait_for_timed(&v.c, &v.m, flag_is_set, &v.flag, CONC_MSEC(10)),
                     CONC_ETIMEDOUT);
    assert_int_equal(conc_cond_wait_for_timed(&v.c, &v.m, always_false, NULL, 0), CONC_ETIMEDOUT);
    /* Already true: 0 at once, even with no time to wait. */
    v.flag = true;
    assert_int_equal(conc_cond_wait_for_timed(&v.c, &v.m, flag_is_set, &v.flag, 0), 0);
    assert_int_equal(conc_cond_wait_for(&v.c, &v.m, flag_is_set, &v.flag), 0);
    v.flag = false;
    assert_int_equal(conc_mutex_unlock(&v.m), 0);
    /* Made true by another thread: the waiter returns 0. */
    struct pred_waiter w = {.v = &v, .rc = 1};
    pthread_t t = conc_test_start(wait_for_counted, &w);
    CONC_TEST_POLL_UNTIL(conc_test_nwaiters(&v.c) == 1);
    assert_int_equal(checks(&w), 1);
    /* A notify without the predicate: it checks again, and goes back to
     * sleep (linked in the queue once more) without returning. */
    assert_int_equal(conc_cond_notify(&v.c), 0);
    CONC_TEST_POLL_UNTIL(checks(&w) == 2 && conc_test_queue_len(&v.c) == 1);
    assert_int_equal(cv_returned(&v), 0);
    assert_int_equal(conc_mutex_lock(&v.m), 0);
    w.f.flag = true;
    assert_int_equal(conc_cond_notify(&v.c), 0);
    assert_int_equal(conc_mutex_unlock(&v.m), 0);
    conc_test_join(t);
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.f.checks, 3);
    assert_int_equal(v.returned, 1);
    cv_destroy(&v);
}

struct nagger {
    conc_cond *c;
    atomic_int stop;
    long notifies;
};

/* Notifies over and over without ever making the predicate true. */
static void *nag(void *arg)
{
    struct nagger *n = arg;
    while (!atomic_load(&n->stop)) {
        assert_int_equal(conc_cond_notify_all(n->c), 0);
        n->notifies++;
        conc_sleep(CONC_USEC(500));
    }
    return NULL;
}

static void cond_wait_for_timing_one_deadline(void **state)
{
    (void)state;
    const int64_t timeout = CONC_MSEC(50);
    struct cv v;
    cv_init(&v, NULL);
    struct nagger n = {.c = &v.c};
    pthread_t t = conc_test_start(nag, &n);
    assert_int_equal(conc_mutex_lock(&v.m), 0);
    int64_t t0 = conc_now_ns();
    int rc = conc_cond_wait_for_timed(&v.c, &v.m, flag_is_set, &v.flag, timeout);
    int64_t took = conc_now_ns() - t0;
    assert_int_equal(conc_mutex_unlock(&v.m), 0);
    atomic_store(&n.stop, 1);
    conc_test_join(t);
    print_message("wait_for(50 ms) under %ld notifies returned after %.3f ms\n", n.notifies,
                  (double)took / 1e6);
    /* Every wake-up re-waited only for the time left: one deadline. */
    assert_int_equal(rc, CONC_ETIMEDOUT);
    assert_true(took >= timeout);
    assert_true(took < timeout + CONC_SEC(1));
    cv_destroy(&v);
}

/* ====================================================== recursive mutex */

struct rcv {
    conc_rmutex r;
    conc_cond c;
    int state; /* under r */
    unsigned helper_depth;
    int helper_rc;
};

/* Locks the recursive mutex while its owner waits at depth 3: only possible
 * if the wait released every level. */
static void *rmutex_helper(void *arg)
{
    struct rcv *v = arg;
    CONC_TEST_POLL_UNTIL(conc_test_nwaiters(&v->c) == 1);
    v->helper_rc = conc_rmutex_lock(&v->r);
    if (v->helper_rc != 0)
        return NULL;
    v->helper_depth = conc_rmutex_depth(&v->r);
    v->state = 1;
    assert_int_equal(conc_cond_notify(&v->c), 0);
    assert_int_equal(conc_rmutex_unlock(&v->r), 0);
    return NULL;
}

static void rcv_init(struct rcv *v, const conc_mutex_opts *opts)
{
    memset(v, 0, sizeof *v);
    assert_int_equal(conc_rmutex_init(&v->r, opts), 0);
    assert_int_equal(conc_cond_init(&v->c, NULL), 0);
}

/* The helper got the lock at depth 1 while we waited, and all three levels
 * are ours again; then unlocks them all and tears down. */
static void rcv_check_and_destroy(struct rcv *v, pthread_t helper)
{
    conc_test_join(helper);
    assert_int_equal(v->helper_rc, 0);
    assert_int_equal(v->helper_depth, 1);
    assert_int_equal(conc_rmutex_depth(&v->r), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(conc_rmutex_unlock(&v->r), 0);
    assert_int_equal(conc_rmutex_unlock(&v->r), CONC_EPERM);
    assert_int_equal(conc_cond_destroy(&v->c), 0);
    assert_int_equal(conc_rmutex_destroy(&v->r), 0);
}

static void wait_rmutex_at_depth_3(const conc_mutex_opts *opts)
{
    struct rcv v;
    rcv_init(&v, opts);
    for (int i = 0; i < 3; i++)
        assert_int_equal(conc_rmutex_lock(&v.r), 0);
    pthread_t t = conc_test_start(rmutex_helper, &v);
    while (v.state == 0)
        assert_int_equal(conc_cond_wait_rmutex(&v.c, &v.r), 0);
    rcv_check_and_destroy(&v, t);
}

static void cond_wait_rmutex_releases_every_level(void **state)
{
    (void)state;
    conc_mutex_opts plain = {.fair = false}, fair = {.fair = true};
    wait_rmutex_at_depth_3(&plain);
    wait_rmutex_at_depth_3(&fair);
}

/* wait_for over a recursive mutex held at depth 3: the predicate is checked
 * holding every level, every level is released while waiting (the helper
 * gets the lock), and all three are back when it returns. */
static int rcv_state_set(void *arg)
{
    struct rcv *v = arg;
    /* The predicate runs with the lock held at full depth. */
    assert_int_equal(conc_rmutex_depth(&v->r), 3);
    return v->state != 0;
}

static void cond_wait_for_rmutex_releases_every_level(void **state)
{
    (void)state;
    struct rcv v;
    rcv_init(&v, NULL);
    assert_int_equal(conc_cond_wait_for_rmutex_timed(NULL, &v.r, rcv_state_set, &v, 0), CONC_EINVAL);
    assert_int_equal(conc_cond_wait_for_rmutex_timed(&v.c, NULL, rcv_state_set, &v, 0), CONC_EINVAL);
    assert_int_equal(conc_cond_wait_for_rmutex_timed(&v.c, &v.r, NULL, &v, 0), CONC_EINVAL);
    assert_int_equal(conc_cond_wait_for_rmutex_timed(&v.c, &v.r, rcv_state_set, &v, -1), CONC_EINVAL);
    /* Not held: CONC_EPERM, before the predicate is looked at. */
    assert_int_equal(conc_cond_wait_for_rmutex_timed(&v.c, &v.r, rcv_state_set, &v, 0), CONC_EPERM);
    for (int i = 0; i < 3; i++)
        assert_int_equal(conc_rmutex_lock(&v.r), 0);
    assert_int_equal(conc_cond_wait_for_rmutex_timed(&v.c, &v.r, rcv_state_set, &v, CONC_MSEC(5)),
                     CONC_ETIMEDOUT);
    assert_int_equal(conc_rmutex_depth(&v.r), 3);
    pthread_t t = conc_test_start(rmutex_helper, &v);
    assert_int_equal(conc_cond_wait_for_rmutex(&v.c, &v.r, rcv_state_set, &v), 0);
    rcv_check_and_destroy(&v, t);
    assert_int_equal(conc_cond_wait_for_rmutex_timed(&v.c, &v.r, rcv_state_set, &v, 0), CONC_EBADF);
}

/* ================================================== wake versus timeout */

static void cond_timed_out_waiter_passes_wake_on(void **state)
{
    (void)state;
    struct cv v;
    cv_init(&v, NULL);
    conc_test_timeout_hold_install();
    struct cwaiter w[2] = {{.v = &v, .timeout = CONC_MSEC(20), .rc = 1},
                           {.v = &v, .timeout = CONC_FOREVER, .rc = 1}};
    pthread_t t0 = conc_test_start(wait_once, &w[0]);
    CONC_TEST_POLL_UNTIL(conc_test_nwaiters(&v.c) == 1);
    pthread_t t1 = conc_test_start(wait_once, &w[1]);
    CONC_TEST_POLL_UNTIL(conc_test_nwaiters(&v.c) == 2);
    /* Waiter 0 has timed out but is still first in the queue. */
    conc_test_timeout_hold_await();
    assert_int_equal(conc_test_queue_len(&v.c), 2);
    /* The single notify must not be swallowed by the leaving waiter. */
    assert_int_equal(conc_cond_notify(&v.c), 0);
    assert_int_equal(conc_test_queue_len(&v.c), 0);
    conc_test_join(t1);
    assert_int_equal(w[1].rc, 0);
    assert_int_equal(cv_returned(&v), 1);
    conc_test_timeout_hold_release();
    conc_test_join(t0);
    conc_test_timeout_hold_remove();
    assert_int_equal(w[0].rc, CONC_ETIMEDOUT);
    assert_int_equal(v.returned, 2);
    cv_destroy(&v);
}

/* ======================================================== process-shared */

static void cond_pshared_in_process(void **state)
{
    (void)state;
    struct cv v;
    memset(&v, 0, sizeof v);
    conc_mutex_opts mo = {.pshared = true};
    conc_cond_opts co = {.pshared = true};
    assert_int_equal(conc_mutex_init(&v.m, &mo), 0);
    assert_int_equal(conc_cond_init(&v.c, &co), 0);
    assert_int_equal(conc_mutex_lock(&v.m), 0);
    assert_int_equal(conc_cond_wait_timed(&v.c, &v.m, CONC_MSEC(5)), CONC_ETIMEDOUT);
    assert_int_equal(conc_mutex_unlock(&v.m), 0);
    assert_int_equal(conc_cond_wait_timed(&v.c, &v.m, 0), CONC_EPERM);
    enum { K = 3 };
    struct cwaiter w[K];
    pthread_t t[K];
    for (int i = 0; i < K; i++) {
        w[i] = (struct cwaiter){.v = &v, .timeout = CONC_FOREVER, .rc = 1};
        t[i] = conc_test_start(wait_for_flag, &w[i]);
    }
    CONC_TEST_POLL_UNTIL(conc_test_nwaiters(&v.c) == K);
    set_flag_and_notify_all(&v);
    for (int i = 0; i < K; i++) {
        conc_test_join(t[i]);
        assert_int_equal(w[i].rc, 0);
    }
    assert_int_equal(v.returned, K);
    cv_destroy(&v);
}

/* ================================================== producer / consumer */

#define PC_CAP 8

struct pc {
    conc_mutex m;
    conc_cond not_empty, not_full;
    long ring[PC_CAP];
    int head, count;   /* under m */
    long taken, total; /* under m */
    unsigned char *seen; /* seen[item]: times consumed; under m */
};

struct producer {
    struct pc *pc;
    long first, n;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    struct pc *pc = p->pc;
    for (long i = 0; i < p->n; i++) {
        assert_int_equal(conc_mutex_lock(&pc->m), 0);
        while (pc->count == PC_CAP)
            assert_int_equal(conc_cond_wait(&pc->not_full, &pc->m), 0);
        pc->ring[(pc->head + pc->count) % PC_CAP] = p->first + i;
        pc->count++;
        assert_int_equal(conc_cond_notify(&pc->not_empty), 0);
        assert_int_equal(conc_mutex_unlock(&pc->m), 0);
    }
    return NULL;
}

/* Takes items until all have been taken (by anyone). */
static void *consume(void *arg)
{
    struct pc *pc = arg;
    assert_int_equal(conc_mutex_lock(&pc->m), 0);
    for (;;) {
        while (pc->count == 0 && pc->taken < pc->total)
            assert_int_equal(conc_cond_wait(&pc->not_empty, &pc->m), 0);
        if (pc->taken == pc->total)
            break;
        long item = pc->ring[pc->head];
        pc->head = (pc->head + 1) % PC_CAP;
        pc->count--;
        pc->seen[item]++;
        if (++pc->taken == pc->total) /* wake the other consumers to leave */
            assert_int_equal(conc_cond_notify_all(&pc->not_empty), 0);
        assert_int_equal(conc_cond_notify(&pc->not_full), 0);
    }
    assert_int_equal(conc_mutex_unlock(&pc->m), 0);
    return NULL;
}

static void producer_consumer(const conc_mutex_opts *mopts, long per_producer)
{
    enum { P = 2, C = 3 };
    struct pc pc;
    memset(&pc, 0, sizeof pc);
    assert_int_equal(conc_mutex_init(&pc.m, mopts), 0);
    /* A process-shared mutex goes with process-shared conditions. */
    conc_cond_opts copts = {.pshared = mopts && mopts->pshared};
    assert_int_equal(conc_cond_init(&pc.not_empty, &copts), 0);
    assert_int_equal(conc_cond_init(&pc.not_full, &copts), 0);
    pc.total = P * per_producer;
    pc.seen = calloc((size_t)pc.total, 1);
    assert_non_null(pc.seen);
    struct producer prod[P];
    pthread_t tp[P], tc[C];
    for (int i = 0; i < C; i++)
        tc[i] = conc_test_start(consume, &pc);
    for (int i = 0; i < P; i++) {
        prod[i] = (struct producer){.pc = &pc, .first = i * per_producer, .n = per_producer};
        tp[i] = conc_test_start(produce, &prod[i]);
    }
    for (int i = 0; i < P; i++)
        conc_test_join(tp[i]);
    for (int i = 0; i < C; i++)
        conc_test_join(tc[i]);
    assert_int_equal(pc.taken, pc.total);
    assert_int_equal(pc.count, 0);
    for (long i = 0; i < pc.total; i++)
        if (pc.seen[i] != 1)
            fail_msg("item %ld consumed %d times", i, pc.seen[i]);
    free(pc.seen);
    assert_int_equal(conc_cond_destroy(&pc.not_empty), 0);
    assert_int_equal(conc_cond_destroy(&pc.not_full), 0);
    assert_int_equal(conc_mutex_destroy(&pc.m), 0);
}

static void cond_producer_consumer(void **state)
{
    (void)state;
    long n = conc_test_scaled(10000, 500);
    static const conc_mutex_opts mopts[] = {{.fair = false}, {.fair = true}, {.pshared = true}};
    static const char *const names[] = {"default", "fair", "pshared"};
    for (int i = 0; i < 3; i++) {
        int64_t t0 = conc_now_ns();
        producer_consumer(&mopts[i], n);
        print_message("%s: 2 producers x %ld items, 3 consumers: %.3f s\n", names[i], n,
                      (double)(conc_now_ns() - t0) / 1e9);
    }
}

/* ================================================== hand-off stress */

#define RING 3

struct ring {
    conc_mutex m;
    conc_cond turn_changed[RING];
    int turn;    /* whose turn; under m */
    long passes; /* under m */
    long rounds;
};

struct ring_member {
    struct ring *r;
    int id;
    long mine;
};

/* Waits for its turn, passes the token on, wakes exactly the next one. */
static void *pass_token(void *arg)
{
    struct ring_member *me = arg;
    struct ring *r = me->r;
    assert_int_equal(conc_mutex_lock(&r->m), 0);
    for (long i = 0; i < r->rounds; i++) {
        while (r->turn != me->id)
            if (conc_cond_wait(&r->turn_changed[me->id], &r->m) != 0)
                fail_msg("wait failed");
        r->passes++;
        me->mine++;
        r->turn = (me->id + 1) % RING;
        if (conc_cond_notify(&r->turn_changed[r->turn]) != 0)
            fail_msg("notify failed");
    }
    assert_int_equal(conc_mutex_unlock(&r->m), 0);
    return NULL;
}

static void cond_stress_handoff(void **state)
{
    (void)state;
    struct ring r;
    memset(&r, 0, sizeof r);
    r.rounds = conc_test_scaled(30000, 300);
    struct ring_member members[RING];
    for (int i = 0; i < RING; i++)
        members[i] = (struct ring_member){.r = &r, .id = i};
    int64_t t0 = conc_now_ns();
    conc_test_run_threads(RING, pass_token, members, sizeof *members);
    print_message("%d threads x %ld token passes: %.3f s\n", RING, r.rounds,
                  (double)(conc_now_ns() - t0) / 1e9);
    assert_int_equal(r.passes, RING * r.rounds);
    for (int i = 0; i < RING; i++) {
        assert_int_equal(members[i].mine, r.rounds);
        assert_int_equal(conc_test_nwaiters(&r.turn_changed[i]), 0);
        assert_int_equal(conc_cond_destroy(&r.turn_changed[i]), 0);
    }
    assert_int_equal(r.turn, 0);
    assert_int_equal(conc_mutex_destroy(&r.m), 0);
}

static void cond_stress_producer_consumer(void **state)
{
    (void)state;
    long n = conc_test_scaled(200000, 2000);
    int64_t t0 = conc_now_ns();
    producer_consumer(NULL, n);
    print_message("2 producers x %ld items, 3 consumers: %.3f s\n", n,
                  (double)(conc_now_ns() - t0) / 1e9);
}

CONC_TEST_MAIN(
    cmocka_unit_test(cond_null_is_einval),
    cmocka_unit_test(cond_negative_timeout_is_einval),
    cmocka_unit_test(cond_notify_n_any_count_is_valid),
    cmocka_unit_test(cond_wait_without_mutex_is_eperm),
    cmocka_unit_test(cond_destroyed_is_ebadf),
    cmocka_unit_test(cond_destroy_with_waiter_is_ebusy),
    cmocka_unit_test(cond_static_and_zero_init),
    cmocka_unit_test(cond_notify_wakes_exactly_one),
    cmocka_unit_test(cond_notify_n_wakes_n),
    cmocka_unit_test(cond_notify_without_waiters_is_not_kept),
    cmocka_unit_test(cond_timed_wait_timing),
    cmocka_unit_test(cond_timed_out_wait_retakes_the_mutex),
    cmocka_unit_test(cond_wait_for_predicate),
    cmocka_unit_test(cond_wait_for_timing_one_deadline),
    cmocka_unit_test(cond_wait_rmutex_releases_every_level),
    cmocka_unit_test(cond_wait_for_rmutex_releases_every_level),
    cmocka_unit_test(cond_timed_out_waiter_passes_wake_on),
    cmocka_unit_test(cond_pshared_in_process),
    cmocka_unit_test(cond_producer_consumer),
    cmocka_unit_test(cond_stress_handoff),
    cmocka_unit_test(cond_stress_producer_consumer))
