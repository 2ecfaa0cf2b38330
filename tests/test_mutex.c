/* conc_mutex and conc_rmutex: the misuse codes (NULL, bad timeouts, EPERM,
 * EDEADLK, EBADF after destroy, EBUSY, ENOTSUP), static and all-zero objects,
 * try/timed locking against another holder, fair mode's FIFO hand-off (made
 * deterministic by queueing one waiter at a time and watching the internal
 * waiter count), fair waiters that time out while queued (also exactly when
 * the hand-off picks them, held there by the wait core's test hook), a
 * destroy refused with EBUSY that must leave a concurrent locker working,
 * the recursive mutex's depth, and counter stresses in both modes. */
#include "test_impl.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/types.h>

/* Stress threads start together, so that they really contend rather than
 * run one after another while the next one is still being created. */
struct gate {
    atomic_int arrived;
    int parties;
};

static void gate_pass(struct gate *g)
{
    atomic_fetch_add(&g->arrived, 1);
    while (atomic_load(&g->arrived) < g->parties)
        conc_yield();
}

/* ---- internals (sync_impl.h) ---- */

static struct conc__mutex *impl(conc_mutex *m)
{
    return (struct conc__mutex *)(void *)m;
}

static struct conc__mutex *rimpl(conc_rmutex *m)
{
    return &((struct conc__rmutex *)(void *)m)->m;
}

static uint32_t word(conc_mutex *m)
{
    return atomic_load(&impl(m)->word);
}

/* Whether some thread sleeps (default mode) or queues (fair mode) on m. */
static bool has_sleeper(struct conc__mutex *m)
{
    if (conc__waitq_flags(&m->q) & CONC__WQ_FAIR)
        return atomic_load(&m->q.nwaiters) > 0;
    return atomic_load(&m->word) == CONC__M_CONTENDED;
}

static const conc_mutex_opts modes[] = {{.fair = false}, {.fair = true}, {.pshared = true}};
static const char *const mode_names[] = {"default", "fair", "pshared"};
#define NMODES (sizeof modes / sizeof *modes)

/* ---- one call made on another thread ---- */

enum { OP_LOCK, OP_TIMEDLOCK, OP_TRYLOCK, OP_UNLOCK, OP_DESTROY };

struct call {
    conc_mutex *m;
    int op;
    int64_t timeout;
    int rc;
};

static int do_op(conc_mutex *m, int op, int64_t timeout)
{
    switch (op) {
    case OP_LOCK:
        return conc_mutex_lock(m);
    case OP_TIMEDLOCK:
        return conc_mutex_lock_timed(m, timeout);
    case OP_TRYLOCK:
        return conc_mutex_lock_timed(m, 0);
    case OP_UNLOCK:
        return conc_mutex_unlock(m);
    default:
        return conc_mutex_destroy(m);
    }
}

static void *call_main(void *arg)
{
    struct call *c = arg;
    c->rc = do_op(c->m, c->op, c->timeout);
    return NULL;
}

/* The result of one operation made by a fresh thread (which must not end up
 * holding m: callers only use failing locks there). */
static int elsewhere(conc_mutex *m, int op, int64_t timeout)
{
    struct call c = {.m = m, .op = op, .timeout = timeout, .rc = 1};
    conc_test_join(conc_test_start(call_main, &c));
    return c.rc;
}

/* ===================================================== misuse: conc_mutex */

static void mutex_null_is_einval(void **state)
{
    (void)state;
    conc_mutex_opts fair = {.fair = true};
    assert_int_equal(conc_mutex_init(NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_mutex_init(NULL, &fair), CONC_EINVAL);
    assert_int_equal(conc_mutex_destroy(NULL), CONC_EINVAL);
    assert_int_equal(conc_mutex_lock(NULL), CONC_EINVAL);
    assert_int_equal(conc_mutex_lock_timed(NULL, 0), CONC_EINVAL);
    assert_int_equal(conc_mutex_lock_timed(NULL, CONC_FOREVER), CONC_EINVAL);
    assert_int_equal(conc_mutex_lock_timed(NULL, 0), CONC_EINVAL);
    assert_int_equal(conc_mutex_unlock(NULL), CONC_EINVAL);
}

static void mutex_negative_timeout_is_einval(void **state)
{
    (void)state;
    for (size_t i = 0; i < NMODES; i++) {
        conc_mutex m;
        assert_int_equal(conc_mutex_init(&m, &modes[i]), 0);
        assert_int_equal(conc_mutex_lock_timed(&m, -2), CONC_EINVAL);
        assert_int_equal(conc_mutex_lock_timed(&m, INT64_MIN), CONC_EINVAL);
        /* The refusal took nothing: the mutex is still free. */
        assert_int_equal(conc_mutex_unlock(&m), CONC_EPERM);
        assert_int_equal(conc_mutex_lock_timed(&m, CONC_FOREVER), 0);
        /* Held: a bad timeout is still EINVAL, not EDEADLK. */
        assert_int_equal(conc_mutex_lock_timed(&m, -2), CONC_EINVAL);
        assert_int_equal(conc_mutex_unlock(&m), 0);
        assert_int_equal(conc_mutex_destroy(&m), 0);
    }
}

static void mutex_unlock_unlocked_is_eperm(void **state)
{
    (void)state;
    for (size_t i = 0; i < NMODES; i++) {
        conc_mutex m;
        assert_int_equal(conc_mutex_init(&m, &modes[i]), 0);
        assert_int_equal(conc_mutex_unlock(&m), CONC_EPERM);
        assert_int_equal(conc_mutex_lock(&m), 0);
        assert_int_equal(conc_mutex_unlock(&m), 0);
        assert_int_equal(conc_mutex_unlock(&m), CONC_EPERM);
        assert_int_equal(conc_mutex_destroy(&m), 0);
    }
}

static void mutex_unlock_by_non_owner_is_eperm(void **state)
{
    (void)state;
    for (size_t i = 0; i < NMODES; i++) {
        print_message("mode %s\n", mode_names[i]);
        conc_mutex m;
        assert_int_equal(conc_mutex_init(&m, &modes[i]), 0);
        assert_int_equal(conc_mutex_lock(&m), 0);
        assert_int_equal(elsewhere(&m, OP_UNLOCK, 0), CONC_EPERM);
        /* The failed unlock released nothing. */
        assert_int_equal(elsewhere(&m, OP_TRYLOCK, 0), CONC_ETIMEDOUT);
        assert_int_equal(conc_mutex_unlock(&m), 0);
        assert_int_equal(conc_mutex_destroy(&m), 0);
    }
}

static void mutex_relock_by_owner_is_edeadlk(void **state)
{
    (void)state;
    for (size_t i = 0; i < NMODES; i++) {
        print_message("mode %s\n", mode_names[i]);
        conc_mutex m;
        assert_int_equal(conc_mutex_init(&m, &modes[i]), 0);
        assert_int_equal(conc_mutex_lock(&m), 0);
        assert_int_equal(conc_mutex_lock(&m), CONC_EDEADLK);
        assert_int_equal(conc_mutex_lock_timed(&m, 0), CONC_EDEADLK);
        assert_int_equal(conc_mutex_lock_timed(&m, CONC_MSEC(10)), CONC_EDEADLK);
        assert_int_equal(conc_mutex_lock_timed(&m, CONC_FOREVER), CONC_EDEADLK);
        /* Still held exactly once. */
        assert_int_equal(conc_mutex_unlock(&m), 0);
        assert_int_equal(conc_mutex_unlock(&m), CONC_EPERM);
        assert_int_equal(conc_mutex_destroy(&m), 0);
    }
}

static void mutex_destroyed_is_ebadf(void **state)
{
    (void)state;
    for (size_t i = 0; i < NMODES; i++) {
        conc_mutex m;
        assert_int_equal(conc_mutex_init(&m, &modes[i]), 0);
        assert_int_equal(conc_mutex_destroy(&m), 0);
        assert_int_equal(conc_mutex_lock(&m), CONC_EBADF);
        assert_int_equal(conc_mutex_lock_timed(&m, 0), CONC_EBADF);
        assert_int_equal(conc_mutex_lock_timed(&m, CONC_MSEC(1)), CONC_EBADF);
        assert_int_equal(conc_mutex_unlock(&m), CONC_EBADF);
        assert_int_equal(conc_mutex_destroy(&m), CONC_EBADF);
        /* Another thread sees the dead marker too. */
        assert_int_equal(elsewhere(&m, OP_LOCK, 0), CONC_EBADF);
        assert_int_equal(elsewhere(&m, OP_DESTROY, 0), CONC_EBADF);
        /* Initialised again, it is an ordinary mutex. */
        assert_int_equal(conc_mutex_init(&m, &modes[i]), 0);
        assert_int_equal(conc_mutex_lock(&m), 0);
        assert_int_equal(conc_mutex_lock_timed(&m, 0), CONC_EDEADLK);
        assert_int_equal(conc_mutex_unlock(&m), 0);
        assert_int_equal(conc_mutex_destroy(&m), 0);
    }
}

static void mutex_destroy_locked_is_ebusy(void **state)
{
    (void)state;
    for (size_t i = 0; i < NMODES; i++) {
        conc_mutex m;
        assert_int_equal(conc_mutex_init(&m, &modes[i]), 0);
        assert_int_equal(conc_mutex_lock(&m), 0);
        assert_int_equal(conc_mutex_destroy(&m), CONC_EBUSY);
        /* Nothing changed: still ours, still locked for others. */
        assert_int_equal(conc_mutex_lock(&m), CONC_EDEADLK);
        assert_int_equal(elsewhere(&m, OP_TRYLOCK, 0), CONC_ETIMEDOUT);
        /* Another thread cannot destroy it either. */
        assert_int_equal(elsewhere(&m, OP_DESTROY, 0), CONC_EBUSY);
        assert_int_equal(conc_mutex_unlock(&m), 0);
        assert_int_equal(conc_mutex_lock(&m), 0);
        assert_int_equal(conc_mutex_unlock(&m), 0);
        assert_int_equal(conc_mutex_destroy(&m), 0);
    }
}

static void mutex_pshared_fair_is_enotsup(void **state)
{
    (void)state;
    conc_mutex m;
    conc_mutex_opts both = {.pshared = true, .fair = true};
    assert_int_equal(conc_mutex_init(&m, &both), CONC_ENOTSUP);
    conc_rmutex r;
    conc_mutex_opts rboth = {.pshared = true, .fair = true};
    assert_int_equal(conc_rmutex_init(&r, &rboth), CONC_ENOTSUP);
    /* Each option alone is fine. */
    conc_mutex_opts ps = {.pshared = true}, fair = {.fair = true};
    assert_int_equal(conc_mutex_init(&m, &ps), 0);
    assert_int_equal(conc_mutex_destroy(&m), 0);
    assert_int_equal(conc_mutex_init(&m, &fair), 0);
    assert_int_equal(conc_mutex_destroy(&m), 0);
}

/* ========================================= static and all-zero mutexes */

static conc_mutex global_mutex = CONC_MUTEX_INIT;

static void check_default_mutex(conc_mutex *m)
{
    assert_int_equal(conc_mutex_unlock(m), CONC_EPERM);
    assert_int_equal(conc_mutex_lock(m), 0);
    assert_int_equal(conc_mutex_lock_timed(m, 0), CONC_EDEADLK);
    assert_int_equal(elsewhere(m, OP_TRYLOCK, 0), CONC_ETIMEDOUT);
    assert_int_equal(elsewhere(m, OP_UNLOCK, 0), CONC_EPERM);
    assert_int_equal(conc_mutex_unlock(m), 0);
    assert_int_equal(conc_mutex_lock_timed(m, 0), 0);
    assert_int_equal(conc_mutex_unlock(m), 0);
    assert_int_equal(conc_mutex_destroy(m), 0);
    assert_int_equal(conc_mutex_lock(m), CONC_EBADF);
}

static void mutex_static_and_zero_init(void **state)
{
    (void)state;
    check_default_mutex(&global_mutex);
    conc_mutex local = CONC_MUTEX_INIT;
    check_default_mutex(&local);
    conc_mutex zero;
    memset(&zero, 0, sizeof zero);
    check_default_mutex(&zero);
}

/* ================================================ against another holder */

struct holder {
    conc_mutex *m;
    atomic_int holding, release;
};

/* Locks m, says so, and keeps it until told to let go. */
static void *holder_main(void *arg)
{
    struct holder *h = arg;
    assert_int_equal(conc_mutex_lock(h->m), 0);
    atomic_store(&h->holding, 1);
    CONC_TEST_POLL_UNTIL(atomic_load(&h->release));
    assert_int_equal(conc_mutex_unlock(h->m), 0);
    return NULL;
}

static void mutex_trylock_when_held_elsewhere(void **state)
{
    (void)state;
    for (size_t i = 0; i < NMODES; i++) {
        conc_mutex m;
        assert_int_equal(conc_mutex_init(&m, &modes[i]), 0);
        struct holder h = {.m = &m};
        pthread_t t = conc_test_start(holder_main, &h);
        CONC_TEST_POLL_UNTIL(atomic_load(&h.holding));
        assert_int_equal(conc_mutex_lock_timed(&m, 0), CONC_ETIMEDOUT);
        assert_int_equal(conc_mutex_unlock(&m), CONC_EPERM);
        assert_int_equal(conc_mutex_destroy(&m), CONC_EBUSY);
        atomic_store(&h.release, 1);
        conc_test_join(t);
        /* Free again: ours at the first try. */
        assert_int_equal(conc_mutex_lock_timed(&m, 0), 0);
        assert_int_equal(conc_mutex_unlock(&m), 0);
        assert_int_equal(conc_mutex_destroy(&m), 0);
    }
}

static void mutex_timedlock_timing(void **state)
{
    (void)state;
    const int64_t timeout = CONC_MSEC(30);
    for (size_t i = 0; i < NMODES; i++) {
        conc_mutex m;
        assert_int_equal(conc_mutex_init(&m, &modes[i]), 0);
        struct holder h = {.m = &m};
        pthread_t t = conc_test_start(holder_main, &h);
        CONC_TEST_POLL_UNTIL(atomic_load(&h.holding));
        int64_t t0 = conc_now_ns();
        assert_int_equal(conc_mutex_lock_timed(&m, timeout), CONC_ETIMEDOUT);
        int64_t took = conc_now_ns() - t0;
        print_message("%s: timedlock(30 ms) returned after %.3f ms\n", mode_names[i],
                      (double)took / 1e6);
        assert_true(took >= timeout);
        assert_true(took < timeout + CONC_SEC(1));
        /* The timed-out waiter left no trace: no queued waiter remains. */
        assert_int_equal(conc_test_nwaiters(&m), 0);
        atomic_store(&h.release, 1);
        conc_test_join(t);
        assert_int_equal(conc_mutex_lock_timed(&m, timeout), 0);
        assert_int_equal(conc_mutex_unlock(&m), 0);
        assert_int_equal(word(&m), CONC__M_UNLOCKED);
        assert_int_equal(conc_mutex_destroy(&m), 0);
    }
}

struct blocked {
    conc_mutex *m;
    atomic_int got;
    int rc;
};

static void *blocked_locker(void *arg)
{
    struct blocked *b = arg;
    b->rc = conc_mutex_lock(b->m);
    atomic_store(&b->got, 1);
    if (b->rc == 0)
        assert_int_equal(conc_mutex_unlock(b->m), 0);
    return NULL;
}

static void mutex_blocked_waiter_gets_it_on_unlock(void **state)
{
    (void)state;
    for (size_t i = 0; i < NMODES; i++) {
        conc_mutex m;
        assert_int_equal(conc_mutex_init(&m, &modes[i]), 0);
        assert_int_equal(conc_mutex_lock(&m), 0);
        struct blocked b = {.m = &m, .rc = 1};
        pthread_t t = conc_test_start(blocked_locker, &b);
        CONC_TEST_POLL_UNTIL(has_sleeper(impl(&m)));
        /* Asleep in lock while we hold it: it cannot have returned. */
        assert_int_equal(atomic_load(&b.got), 0);
        assert_int_equal(conc_mutex_unlock(&m), 0);
        conc_test_join(t);
        assert_int_equal(b.rc, 0);
        assert_int_equal(word(&m), CONC__M_UNLOCKED);
        assert_int_equal(conc_mutex_destroy(&m), 0);
    }
}

/* ================================================ fair mode: FIFO order */

#define MAX_WAITERS 8

struct fifo {
    conc_mutex m;
    int order[MAX_WAITERS]; /* ids in acquisition order; under m */
    int n;
    atomic_int timed_done; /* timed waiters that returned */
    atomic_int holding, go;
};

struct fwaiter {
    struct fifo *f;
    int id;
    int64_t timeout; /* CONC_FOREVER: conc_mutex_lock */
    bool hold;       /* keep the mutex until f->go */
    int rc;
};

static void *fifo_waiter(void *arg)
{
    struct fwaiter *w = arg;
    struct fifo *f = w->f;
    w->rc = w->timeout == CONC_FOREVER ? conc_mutex_lock(&f->m)
                                       : conc_mutex_lock_timed(&f->m, w->timeout);
    if (w->timeout != CONC_FOREVER)
        atomic_fetch_add(&f->timed_done, 1);
    if (w->rc != 0)
        return NULL;
    f->order[f->n++] = w->id;
    if (w->hold) {
        atomic_store(&f->holding, 1);
        CONC_TEST_POLL_UNTIL(atomic_load(&f->go));
    }
    assert_int_equal(conc_mutex_unlock(&f->m), 0);
    return NULL;
}

static void fifo_init(struct fifo *f)
{
    memset(f, 0, sizeof *f);
    conc_mutex_opts fair = {.fair = true};
    assert_int_equal(conc_mutex_init(&f->m, &fair), 0);
}

/* Starts the waiters one at a time, each only once the previous one is
 * queued, so that their queue order is their index order. A timed waiter
 * that already left still counts as having queued. */
static void queue_in_order(struct fifo *f, struct fwaiter *w, pthread_t *t, int n)
{
    for (int i = 0; i < n; i++) {
        t[i] = conc_test_start(fifo_waiter, &w[i]);
        CONC_TEST_POLL_UNTIL(conc_test_nwaiters(&f->m) + (uint32_t)atomic_load(&f->timed_done) ==
                             (uint32_t)i + 1);
    }
}

static void mutex_fair_fifo_order(void **state)
{
    (void)state;
    enum { N = 6 };
    struct fifo f;
    fifo_init(&f);
    struct fwaiter w[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++)
        w[i] = (struct fwaiter){.f = &f, .id = i, .timeout = CONC_FOREVER, .hold = i == 0};
    assert_int_equal(conc_mutex_lock(&f.m), 0);
    queue_in_order(&f, w, t, N);
    assert_int_equal(conc_test_queue_len(&f.m), N);
    assert_int_equal(conc_mutex_unlock(&f.m), 0);
    /* The unlock handed the mutex to waiter 0 (which keeps it until go):
     * a newcomer cannot take it, even the thread that just let go. */
    assert_int_equal(conc_mutex_lock_timed(&f.m, 0), CONC_ETIMEDOUT);
    CONC_TEST_POLL_UNTIL(atomic_load(&f.holding));
    assert_int_equal(conc_mutex_lock_timed(&f.m, 0), CONC_ETIMEDOUT);
    atomic_store(&f.go, 1);
    for (int i = 0; i < N; i++)
        conc_test_join(t[i]);
    assert_int_equal(f.n, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(w[i].rc, 0);
        assert_int_equal(f.order[i], i);
    }
    assert_int_equal(word(&f.m), CONC__M_UNLOCKED);
    assert_int_equal(conc_test_nwaiters(&f.m), 0);
    assert_int_equal(conc_mutex_destroy(&f.m), 0);
}

/* Three queued waiters, the one at `pos` with a timeout: it leaves the queue,
 * and the other two still get the mutex, in their queue order. */
static void fair_timeout_at(int pos)
{
    enum { N = 3 };
    struct fifo f;
    fifo_init(&f);
    struct fwaiter w[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++)
        w[i] = (struct fwaiter){
            .f = &f, .id = i, .timeout = i == pos ? CONC_MSEC(100) : CONC_FOREVER};
    assert_int_equal(conc_mutex_lock(&f.m), 0);
    queue_in_order(&f, w, t, N);
    conc_test_join(t[pos]);
    assert_int_equal(w[pos].rc, CONC_ETIMEDOUT);
    /* Gone from the queue: two announced, two linked. */
    assert_int_equal(conc_test_nwaiters(&f.m), N - 1);
    assert_int_equal(conc_test_queue_len(&f.m), N - 1);
    assert_int_equal(conc_mutex_unlock(&f.m), 0);
    for (int i = 0; i < N; i++)
        if (i != pos)
            conc_test_join(t[i]);
    assert_int_equal(f.n, N - 1);
    int k = 0;
    for (int i = 0; i < N; i++) {
        if (i == pos)
            continue;
        assert_int_equal(w[i].rc, 0);
        assert_int_equal(f.order[k++], i);
    }
    assert_int_equal(word(&f.m), CONC__M_UNLOCKED);
    assert_int_equal(conc_mutex_destroy(&f.m), 0);
}

static void mutex_fair_timed_out_waiter_leaves_queue(void **state)
{
    (void)state;
    for (int pos = 0; pos < 3; pos++) {
        print_message("timed waiter at queue position %d\n", pos);
        fair_timeout_at(pos);
    }
}

/* ---- the wake-versus-timeout race, made deterministic by the hook ---- */

static void mutex_fair_handoff_skips_timed_out_waiter(void **state)
{
    (void)state;
    struct fifo f;
    fifo_init(&f);
    conc_test_timeout_hold_install();
    struct fwaiter w[2] = {
        {.f = &f, .id = 0, .timeout = CONC_MSEC(20)},
        {.f = &f, .id = 1, .timeout = CONC_FOREVER, .hold = true},
    };
    pthread_t t[2];
    assert_int_equal(conc_mutex_lock(&f.m), 0);
    queue_in_order(&f, w, t, 2);
    /* Waiter 0 timed out but is still first in the queue. */
    conc_test_timeout_hold_await();
    assert_int_equal(conc_test_queue_len(&f.m), 2);
    assert_int_equal(conc_mutex_unlock(&f.m), 0);
    /* The hand-off passed over waiter 0 to waiter 1. */
    CONC_TEST_POLL_UNTIL(atomic_load(&f.holding));
    assert_int_equal(f.order[0], 1);
    assert_int_equal(conc_test_queue_len(&f.m), 0);
    assert_int_equal(conc_mutex_lock_timed(&f.m, 0), CONC_ETIMEDOUT);
    /* Let waiter 0 finish: the mutex is held, so its timeout stands. */
    conc_test_timeout_hold_release();
    conc_test_join(t[0]);
    assert_int_equal(w[0].rc, CONC_ETIMEDOUT);
    atomic_store(&f.go, 1);
    conc_test_join(t[1]);
    conc_test_timeout_hold_remove();
    assert_int_equal(w[1].rc, 0);
    assert_int_equal(f.n, 1);
    assert_int_equal(word(&f.m), CONC__M_UNLOCKED);
    assert_int_equal(conc_test_nwaiters(&f.m), 0);
    assert_int_equal(conc_mutex_destroy(&f.m), 0);
}

static void mutex_fair_handoff_to_no_live_waiter_frees_it(void **state)
{
    (void)state;
    struct fifo f;
    fifo_init(&f);
    conc_test_timeout_hold_install();
    struct fwaiter w = {.f = &f, .id = 0, .timeout = CONC_MSEC(20)};
    pthread_t t;
    assert_int_equal(conc_mutex_lock(&f.m), 0);
    queue_in_order(&f, &w, &t, 1);
    conc_test_timeout_hold_await();
    /* The only waiter timed out: the unlock finds nobody to hand over to and
     * must free the mutex rather than leave it owned by nobody. */
    assert_int_equal(conc_mutex_unlock(&f.m), 0);
    assert_int_equal(word(&f.m), CONC__M_UNLOCKED);
    assert_true(atomic_load(&impl(&f.m)->owner) == 0);
    assert_int_equal(conc_mutex_lock_timed(&f.m, 0), 0);
    conc_test_timeout_hold_release();
    conc_test_join(t);
    conc_test_timeout_hold_remove();
    assert_int_equal(w.rc, CONC_ETIMEDOUT);
    assert_int_equal(conc_mutex_unlock(&f.m), 0);
    assert_int_equal(word(&f.m), CONC__M_UNLOCKED);
    assert_int_equal(conc_test_nwaiters(&f.m), 0);
    assert_int_equal(conc_mutex_destroy(&f.m), 0);
}

/* ---- destroy refused (EBUSY) must change nothing ---- */

struct racer {
    conc_mutex *m;
    atomic_int tid, done;
    int rc;
};

static void *racer_lock(void *arg)
{
    struct racer *r = arg;
    atomic_store(&r->tid, (int)conc__tid());
    r->rc = conc_mutex_lock(r->m);
    atomic_store(&r->done, 1);
    if (r->rc == 0)
        assert_int_equal(conc_mutex_unlock(r->m), 0);
    return NULL;
}

static void *racer_destroy(void *arg)
{
    struct racer *r = arg;
    atomic_store(&r->tid, (int)conc__tid());
    r->rc = conc_mutex_destroy(r->m);
    atomic_store(&r->done, 1);
    return NULL;
}

/* Waits until the thread is asleep on the futex of q's internal lock, which
 * the test holds (the only place either racer can sleep), or has finished. */
static void poll_asleep(struct racer *r, struct conc__waitq *q)
{
    CONC_TEST_POLL_UNTIL(atomic_load(&r->tid) != 0);
    CONC_TEST_POLL_UNTIL(atomic_load(&r->done) ||
                         conc_test_thread_in_futex_wait((pid_t)atomic_load(&r->tid), &q->lock));
}

static void mutex_fair_busy_destroy_changes_nothing(void **state)
{
    (void)state;
    /* A fair mutex that is free while a waiter is still announced (one that
     * timed out, held by the hook) is "waited on": destroy must answer
     * EBUSY and change nothing. A locker that runs while destroy decides
     * must still get the mutex. The queue's internal lock, held by the test,
     * orders the two: the locker queues on it first, then destroy. */
    struct fifo f;
    fifo_init(&f);
    conc_test_timeout_hold_install();
    struct fwaiter w = {.f = &f, .id = 0, .timeout = CONC_MSEC(20)};
    pthread_t tw;
    assert_int_equal(conc_mutex_lock(&f.m), 0);
    queue_in_order(&f, &w, &tw, 1);
    conc_test_timeout_hold_await();
    assert_int_equal(conc_mutex_unlock(&f.m), 0); /* nobody to hand over to */
    assert_int_equal(conc_mutex_lock_timed(&f.m, 0), 0);
    struct conc__waitq *q = &impl(&f.m)->q;
    conc__waitq_lock(q);
    struct racer locker = {.m = &f.m, .rc = 1}, destroyer = {.m = &f.m, .rc = 1};
    pthread_t tl = conc_test_start(racer_lock, &locker);
    poll_asleep(&locker, q);
    assert_int_equal(conc_mutex_unlock(&f.m), 0); /* free, no queue: no lock needed */
    pthread_t td = conc_test_start(racer_destroy, &destroyer);
    poll_asleep(&destroyer, q);
    conc__waitq_unlock(q);
    conc_test_join(td);
    assert_int_equal(destroyer.rc, CONC_EBUSY);
    /* Nothing changed: the mutex is free, so the locker gets it. */
    CONC_TEST_POLL_UNTIL(atomic_load(&locker.done));
    conc_test_join(tl);
    assert_int_equal(locker.rc, 0);
    conc_test_timeout_hold_release();
    conc_test_join(tw);
    conc_test_timeout_hold_remove();
    assert_true(w.rc == 0 || w.rc == CONC_ETIMEDOUT); /* free when it looked again */
    assert_int_equal(word(&f.m), CONC__M_UNLOCKED);
    assert_int_equal(conc_test_nwaiters(&f.m), 0);
    assert_int_equal(conc_mutex_destroy(&f.m), 0);
}

/* ============================================================ rmutex */

struct rcall {
    conc_rmutex *m;
    int unlock_rc, trylock_rc, timed_rc;
    unsigned depth;
};

/* What a thread that does not hold m sees. */
static void *rmutex_outsider(void *arg)
{
    struct rcall *c = arg;
    c->depth = conc_rmutex_depth(c->m);
    c->unlock_rc = conc_rmutex_unlock(c->m);
    c->trylock_rc = conc_rmutex_lock_timed(c->m, 0);
    c->timed_rc = conc_rmutex_lock_timed(c->m, CONC_MSEC(5));
    return NULL;
}

static void rmutex_null_is_einval(void **state)
{
    (void)state;
    assert_int_equal(conc_rmutex_init(NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_rmutex_destroy(NULL), CONC_EINVAL);
    assert_int_equal(conc_rmutex_lock(NULL), CONC_EINVAL);
    assert_int_equal(conc_rmutex_lock_timed(NULL, 0), CONC_EINVAL);
    assert_int_equal(conc_rmutex_unlock(NULL), CONC_EINVAL);
    assert_int_equal(conc_rmutex_depth(NULL), CONC_EINVAL);
    conc_rmutex m;
    assert_int_equal(conc_rmutex_init(&m, NULL), 0);
    assert_int_equal(conc_rmutex_lock_timed(&m, -2), CONC_EINVAL);
    assert_int_equal(conc_rmutex_depth(&m), 0);
    /* Held, a bad timeout is still refused and adds no level. */
    assert_int_equal(conc_rmutex_lock(&m), 0);
    assert_int_equal(conc_rmutex_lock_timed(&m, -2), CONC_EINVAL);
    assert_int_equal(conc_rmutex_depth(&m), 1);
    assert_int_equal(conc_rmutex_unlock(&m), 0);
    assert_int_equal(conc_rmutex_destroy(&m), 0);
}

static void rmutex_depth_counts_and_unlock_unheld_is_eperm(void **state)
{
    (void)state;
    conc_mutex_opts ropts[] = {{.fair = false}, {.fair = true}, {.pshared = true}};
    for (size_t i = 0; i < sizeof ropts / sizeof *ropts; i++) {
        conc_rmutex m;
        assert_int_equal(conc_rmutex_init(&m, &ropts[i]), 0);
        assert_int_equal(conc_rmutex_unlock(&m), CONC_EPERM);
        assert_int_equal(conc_rmutex_lock(&m), 0);
        assert_int_equal(conc_rmutex_depth(&m), 1);
        assert_int_equal(conc_rmutex_lock_timed(&m, 0), 0);
        assert_int_equal(conc_rmutex_depth(&m), 2);
        assert_int_equal(conc_rmutex_lock_timed(&m, CONC_MSEC(1)), 0);
        assert_int_equal(conc_rmutex_depth(&m), 3);
        assert_int_equal(conc_rmutex_lock_timed(&m, 0), 0);
        assert_int_equal(conc_rmutex_depth(&m), 4);
        for (unsigned d = 4; d > 0; d--) {
            assert_int_equal(conc_rmutex_unlock(&m), 0);
            assert_int_equal(conc_rmutex_depth(&m), d - 1);
        }
        assert_int_equal(conc_rmutex_unlock(&m), CONC_EPERM);
        assert_int_equal(conc_rmutex_depth(&m), 0);
        assert_int_equal(conc_rmutex_destroy(&m), 0);
    }
}

static void rmutex_non_owner_is_eperm(void **state)
{
    (void)state;
    conc_rmutex m = CONC_RMUTEX_INIT;
    assert_int_equal(conc_rmutex_lock(&m), 0);
    assert_int_equal(conc_rmutex_lock(&m), 0);
    struct rcall c = {.m = &m};
    conc_test_join(conc_test_start(rmutex_outsider, &c));
    assert_int_equal(c.depth, 0);
    assert_int_equal(c.unlock_rc, CONC_EPERM);
    assert_int_equal(c.trylock_rc, CONC_ETIMEDOUT);
    assert_int_equal(c.timed_rc, CONC_ETIMEDOUT);
    /* None of that touched our two levels. */
    assert_int_equal(conc_rmutex_depth(&m), 2);
    assert_int_equal(conc_rmutex_unlock(&m), 0);
    assert_int_equal(conc_rmutex_unlock(&m), 0);
    assert_int_equal(conc_rmutex_unlock(&m), CONC_EPERM);
    assert_int_equal(conc_rmutex_destroy(&m), 0);
}

static void rmutex_destroyed_is_ebadf_and_busy_when_held(void **state)
{
    (void)state;
    conc_rmutex m;
    assert_int_equal(conc_rmutex_init(&m, NULL), 0);
    assert_int_equal(conc_rmutex_lock(&m), 0);
    assert_int_equal(conc_rmutex_lock(&m), 0);
    assert_int_equal(conc_rmutex_destroy(&m), CONC_EBUSY);
    assert_int_equal(conc_rmutex_depth(&m), 2);
    assert_int_equal(conc_rmutex_unlock(&m), 0);
    assert_int_equal(conc_rmutex_destroy(&m), CONC_EBUSY);
    assert_int_equal(conc_rmutex_unlock(&m), 0);
    assert_int_equal(conc_rmutex_destroy(&m), 0);
    assert_int_equal(conc_rmutex_lock(&m), CONC_EBADF);
    assert_int_equal(conc_rmutex_lock_timed(&m, 0), CONC_EBADF);
    assert_int_equal(conc_rmutex_lock_timed(&m, CONC_MSEC(1)), CONC_EBADF);
    assert_int_equal(conc_rmutex_unlock(&m), CONC_EBADF);
    assert_int_equal(conc_rmutex_destroy(&m), CONC_EBADF);
    assert_int_equal(conc_rmutex_depth(&m), CONC_EBADF);
    assert_int_equal(conc_rmutex_init(&m, NULL), 0);
    assert_int_equal(conc_rmutex_lock(&m), 0);
    assert_int_equal(conc_rmutex_lock(&m), 0);
    assert_int_equal(conc_rmutex_depth(&m), 2);
    assert_int_equal(conc_rmutex_unlock(&m), 0);
    assert_int_equal(conc_rmutex_unlock(&m), 0);
    assert_int_equal(conc_rmutex_destroy(&m), 0);
}

static conc_rmutex global_rmutex = CONC_RMUTEX_INIT;

static void check_default_rmutex(conc_rmutex *m)
{
    assert_int_equal(conc_rmutex_unlock(m), CONC_EPERM);
    assert_int_equal(conc_rmutex_lock(m), 0);
    assert_int_equal(conc_rmutex_lock_timed(m, 0), 0);
    assert_int_equal(conc_rmutex_depth(m), 2);
    struct rcall c = {.m = m};
    conc_test_join(conc_test_start(rmutex_outsider, &c));
    assert_int_equal(c.trylock_rc, CONC_ETIMEDOUT);
    assert_int_equal(c.unlock_rc, CONC_EPERM);
    assert_int_equal(conc_rmutex_unlock(m), 0);
    assert_int_equal(conc_rmutex_unlock(m), 0);
    assert_int_equal(conc_rmutex_destroy(m), 0);
}

static void rmutex_static_and_zero_init(void **state)
{
    (void)state;
    check_default_rmutex(&global_rmutex);
    conc_rmutex zero;
    memset(&zero, 0, sizeof zero);
    check_default_rmutex(&zero);
}

static void rmutex_depth_overflow_is_eagain(void **state)
{
    (void)state;
    conc_rmutex m = CONC_RMUTEX_INIT;
    struct conc__rmutex *r = (struct conc__rmutex *)(void *)&m;
    assert_int_equal(conc_rmutex_lock(&m), 0);
    r->depth = UINT32_MAX - 1; /* as if locked that many times */
    assert_int_equal(conc_rmutex_lock(&m), 0);
    assert_true(conc_rmutex_depth(&m) == UINT32_MAX);
    assert_int_equal(conc_rmutex_lock(&m), CONC_EAGAIN);
    assert_int_equal(conc_rmutex_lock_timed(&m, 0), CONC_EAGAIN);
    assert_true(conc_rmutex_depth(&m) == UINT32_MAX);
    r->depth = 1;
    assert_int_equal(conc_rmutex_unlock(&m), 0);
    assert_int_equal(conc_rmutex_destroy(&m), 0);
}

struct rblocked {
    conc_rmutex *m;
    atomic_int got;
    unsigned depth_inside;
    int rc;
};

static void *rmutex_blocked_locker(void *arg)
{
    struct rblocked *b = arg;
    b->rc = conc_rmutex_lock(b->m);
    b->depth_inside = conc_rmutex_depth(b->m);
    atomic_store(&b->got, 1);
    if (b->rc == 0)
        assert_int_equal(conc_rmutex_unlock(b->m), 0);
    return NULL;
}

static void rmutex_released_only_at_depth_zero(void **state)
{
    (void)state;
    conc_mutex_opts ropts[] = {{.fair = false}, {.fair = true}};
    for (size_t i = 0; i < 2; i++) {
        conc_rmutex m;
        assert_int_equal(conc_rmutex_init(&m, &ropts[i]), 0);
        assert_int_equal(conc_rmutex_lock(&m), 0);
        assert_int_equal(conc_rmutex_lock(&m), 0);
        struct rblocked b = {.m = &m, .rc = 1};
        pthread_t t = conc_test_start(rmutex_blocked_locker, &b);
        CONC_TEST_POLL_UNTIL(has_sleeper(rimpl(&m)));
        /* One level left: still ours, the waiter cannot have it. */
        assert_int_equal(conc_rmutex_unlock(&m), 0);
        assert_int_equal(conc_rmutex_depth(&m), 1);
        assert_int_equal(atomic_load(&b.got), 0);
        assert_true(atomic_load(&rimpl(&m)->owner) == conc__self());
        assert_int_equal(conc_rmutex_unlock(&m), 0);
        conc_test_join(t);
        assert_int_equal(b.rc, 0);
        assert_int_equal(b.depth_inside, 1);
        assert_int_equal(conc_rmutex_destroy(&m), 0);
    }
}

/* =========================================================== stresses */

struct counting {
    struct gate *gate;
    conc_mutex *m;
    long iters;
    long *counter; /* plain: only the mutex keeps it exact */
};

static void *count_under_mutex(void *arg)
{
    struct counting *c = arg;
    gate_pass(c->gate);
    for (long i = 0; i < c->iters; i++) {
        if (conc_mutex_lock(c->m) != 0)
            fail_msg("lock failed");
        (*c->counter)++;
        /* A rare yield while holding it makes sure the others pile up on
         * the mutex, even on 2 cores where a thread can otherwise run its
         * whole loop within one time slice. */
        if (i % 1024 == 0)
            conc_yield();
        if (conc_mutex_unlock(c->m) != 0)
            fail_msg("unlock failed");
    }
    return NULL;
}

static void counter_stress(const conc_mutex_opts *opts, long iters)
{
    enum { T = 8 };
    conc_mutex m;
    assert_int_equal(conc_mutex_init(&m, opts), 0);
    long counter = 0;
    struct gate gate = {.parties = T};
    struct counting args[T];
    for (int i = 0; i < T; i++)
        args[i] = (struct counting){.gate = &gate, .m = &m, .iters = iters, .counter = &counter};
    int64_t t0 = conc_now_ns();
    conc_test_run_threads(T, count_under_mutex, args, sizeof *args);
    print_message("%d threads x %ld lock/unlock: %.3f s\n", T, iters,
                  (double)(conc_now_ns() - t0) / 1e9);
    assert_int_equal(counter, (long)T * iters);
    assert_int_equal(word(&m), CONC__M_UNLOCKED);
    assert_int_equal(conc_test_nwaiters(&m), 0);
    assert_int_equal(conc_mutex_destroy(&m), 0);
}

static void mutex_stress_counter(void **state)
{
    (void)state;
    conc_mutex_opts opts = {.fair = false};
    counter_stress(&opts, conc_test_scaled(1000000, 1000));
}

static void mutex_fair_stress_counter(void **state)
{
    (void)state;
    conc_mutex_opts opts = {.fair = true};
    /* Once the threads convoy, every lock is a hand-off to a sleeping thread
     * (a wake-up and a context switch, 5-10 us on 2 cores): 8 x 100000 takes
     * a few seconds at scale 1, and `make stress` (scale 10) runs the full
     * 8 x 1M of the default-mode test. */
    counter_stress(&opts, conc_test_scaled(100000, 100));
}

struct timed_counting {
    struct gate *gate;
    conc_mutex *m;
    long iters;
    long *counter;
    long wins; /* this thread's successful locks */
};

/* Mixes every kind of lock call; only the successful ones count. In fair
 * mode this drives waiters that leave the queue while the mutex is being
 * handed over. */
static void *count_with_timeouts(void *arg)
{
    static const int64_t timeouts[] = {0, CONC_USEC(1), CONC_USEC(20), CONC_USEC(200),
                                       CONC_FOREVER};
    struct timed_counting *c = arg;
    gate_pass(c->gate);
    for (long i = 0; i < c->iters; i++) {
        int rc = conc_mutex_lock_timed(c->m, timeouts[i % 5]);
        if (rc == CONC_ETIMEDOUT)
            continue;
        if (rc != 0)
            fail_msg("timedlock returned %d", rc);
        (*c->counter)++;
        c->wins++;
        /* Now and then give the CPU away while holding the mutex, so that
         * the others pile up in the queue and time out there. */
        if (i % 4 == 0)
            conc_yield();
        if (conc_mutex_unlock(c->m) != 0)
            fail_msg("unlock failed");
    }
    return NULL;
}

static void mutex_timedlock_stress(void **state)
{
    (void)state;
    enum { T = 6 };
    long iters = conc_test_scaled(15000, 150);
    for (size_t k = 0; k < 2; k++) {
        conc_mutex m;
        assert_int_equal(conc_mutex_init(&m, &modes[k]), 0);
        long counter = 0, wins = 0;
        struct gate gate = {.parties = T};
        struct timed_counting args[T];
        for (int i = 0; i < T; i++)
            args[i] = (struct timed_counting){
                .gate = &gate, .m = &m, .iters = iters, .counter = &counter};
        int64_t t0 = conc_now_ns();
        conc_test_run_threads(T, count_with_timeouts, args, sizeof *args);
        for (int i = 0; i < T; i++)
            wins += args[i].wins;
        print_message("%s: %d threads x %ld timed locks, %ld won: %.3f s\n", mode_names[k], T,
                      iters, wins, (double)(conc_now_ns() - t0) / 1e9);
        assert_int_equal(counter, wins);
        /* Every FOREVER call (one in five) must have won. */
        assert_true(wins >= (long)T * (iters / 5));
        assert_int_equal(word(&m), CONC__M_UNLOCKED);
        assert_int_equal(conc_test_nwaiters(&m), 0);
        assert_int_equal(conc_mutex_destroy(&m), 0);
    }
}

struct rcounting {
    struct gate *gate;
    conc_rmutex *m;
    long iters;
    long *counter;
};

/* Takes the mutex 1 to 3 levels deep (mixing lock, trylock-until-won and
 * timedlock), checks the depth, counts at the innermost level. */
static void *count_nested(void *arg)
{
    struct rcounting *c = arg;
    gate_pass(c->gate);
    for (long i = 0; i < c->iters; i++) {
        unsigned depth = 1 + (unsigned)(i % 3);
        if (conc_rmutex_lock(c->m) != 0)
            fail_msg("lock failed");
        for (unsigned d = 2; d <= depth; d++) {
            int rc = conc_rmutex_lock_timed(c->m, d == 2 ? 0 : CONC_MSEC(1));
            if (rc != 0)
                fail_msg("nested lock returned %d", rc);
        }
        if (conc_rmutex_depth(c->m) != depth)
            fail_msg("depth %lld, expected %u", (long long)conc_rmutex_depth(c->m), depth);
        (*c->counter)++;
        for (unsigned d = 0; d < depth; d++)
            if (conc_rmutex_unlock(c->m) != 0)
                fail_msg("unlock failed");
        if (conc_rmutex_depth(c->m) != 0)
            fail_msg("still held after the last unlock");
    }
    return NULL;
}

static void rmutex_stress_nested(void **state)
{
    (void)state;
    enum { T = 4 };
    long iters = conc_test_scaled(300000, 300);
    conc_rmutex m = CONC_RMUTEX_INIT;
    long counter = 0;
    struct gate gate = {.parties = T};
    struct rcounting args[T];
    for (int i = 0; i < T; i++)
        args[i] = (struct rcounting){.gate = &gate, .m = &m, .iters = iters, .counter = &counter};
    int64_t t0 = conc_now_ns();
    conc_test_run_threads(T, count_nested, args, sizeof *args);
    print_message("%d threads x %ld nested locks: %.3f s\n", T, iters,
                  (double)(conc_now_ns() - t0) / 1e9);
    assert_int_equal(counter, (long)T * iters);
    assert_int_equal(conc_rmutex_depth(&m), 0);
    assert_int_equal(conc_rmutex_destroy(&m), 0);
}

/* Lock.locked() and RLock.locked(): whether anyone holds it, whoever asks;
 * the rmutex's depth stays the caller's own. */
static void *locked_from_another_thread(void *p)
{
    void **args = p;
    intptr_t *out = args[2];
    out[0] = conc_mutex_locked(args[0]);
    out[1] = conc_rmutex_locked(args[1]);
    out[2] = conc_rmutex_depth(args[1]);
    return NULL;
}

static void mutex_locked_says_whether_anyone_holds_it(void **state)
{
    (void)state;
    assert_int_equal(conc_mutex_locked(NULL), CONC_EINVAL);
    assert_int_equal(conc_rmutex_locked(NULL), CONC_EINVAL);
    conc_mutex m = CONC_MUTEX_INIT;
    conc_rmutex r = CONC_RMUTEX_INIT;
    assert_int_equal(conc_mutex_locked(&m), 0);
    assert_int_equal(conc_rmutex_locked(&r), 0);
    assert_int_equal(conc_mutex_lock(&m), 0);
    assert_int_equal(conc_rmutex_lock(&r), 0);
    assert_int_equal(conc_rmutex_lock(&r), 0);
    assert_int_equal(conc_mutex_locked(&m), 1);
    assert_int_equal(conc_rmutex_locked(&r), 1);
    intptr_t seen[3] = {-1, -1, -1};
    void *args[3] = {&m, &r, seen};
    conc_test_join(conc_test_start(locked_from_another_thread, args));
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], 1);
    assert_int_equal(seen[2], 0); /* not the other thread's */
    assert_int_equal(conc_rmutex_depth(&r), 2);
    assert_int_equal(conc_mutex_unlock(&m), 0);
    assert_int_equal(conc_rmutex_unlock(&r), 0);
    assert_int_equal(conc_rmutex_locked(&r), 1); /* still held once */
    assert_int_equal(conc_rmutex_unlock(&r), 0);
    assert_int_equal(conc_mutex_locked(&m), 0);
    assert_int_equal(conc_rmutex_locked(&r), 0);
    /* A fair mutex, and a destroyed one. */
    conc_mutex f;
    conc_mutex_opts fo = {.fair = true};
    assert_int_equal(conc_mutex_init(&f, &fo), 0);
    assert_int_equal(conc_mutex_lock(&f), 0);
    assert_int_equal(conc_mutex_locked(&f), 1);
    assert_int_equal(conc_mutex_unlock(&f), 0);
    assert_int_equal(conc_mutex_locked(&f), 0);
    assert_int_equal(conc_mutex_destroy(&f), 0);
    assert_int_equal(conc_mutex_locked(&f), CONC_EBADF);
    assert_int_equal(conc_rmutex_destroy(&r), 0);
    assert_int_equal(conc_rmutex_locked(&r), CONC_EBADF);
}

CONC_TEST_MAIN(
    cmocka_unit_test(mutex_locked_says_whether_anyone_holds_it),
    cmocka_unit_test(mutex_null_is_einval),
    cmocka_unit_test(mutex_negative_timeout_is_einval),
    cmocka_unit_test(mutex_unlock_unlocked_is_eperm),
    cmocka_unit_test(mutex_unlock_by_non_owner_is_eperm),
    cmocka_unit_test(mutex_relock_by_owner_is_edeadlk),
    cmocka_unit_test(mutex_destroyed_is_ebadf),
    cmocka_unit_test(mutex_destroy_locked_is_ebusy),
    cmocka_unit_test(mutex_pshared_fair_is_enotsup),
    cmocka_unit_test(mutex_static_and_zero_init),
    cmocka_unit_test(mutex_trylock_when_held_elsewhere),
    cmocka_unit_test(mutex_timedlock_timing),
    cmocka_unit_test(mutex_blocked_waiter_gets_it_on_unlock),
    cmocka_unit_test(mutex_fair_fifo_order),
    cmocka_unit_test(mutex_fair_timed_out_waiter_leaves_queue),
    cmocka_unit_test(mutex_fair_handoff_skips_timed_out_waiter),
    cmocka_unit_test(mutex_fair_handoff_to_no_live_waiter_frees_it),
    cmocka_unit_test(mutex_fair_busy_destroy_changes_nothing),
    cmocka_unit_test(rmutex_null_is_einval),
    cmocka_unit_test(rmutex_depth_counts_and_unlock_unheld_is_eperm),
    cmocka_unit_test(rmutex_non_owner_is_eperm),
    cmocka_unit_test(rmutex_destroyed_is_ebadf_and_busy_when_held),
    cmocka_unit_test(rmutex_static_and_zero_init),
    cmocka_unit_test(rmutex_depth_overflow_is_eagain),
    cmocka_unit_test(rmutex_released_only_at_depth_zero),
    cmocka_unit_test(mutex_stress_counter),
    cmocka_unit_test(mutex_fair_stress_counter),
    cmocka_unit_test(mutex_timedlock_stress),
    cmocka_unit_test(rmutex_stress_nested))
