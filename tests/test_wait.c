/* The wait core (src/wait.h), through its internal API and through conc_sem:
 * the wake-versus-timeout race in both directions (made deterministic with the
 * conc__test_after_timeout hook and with a signal that pins a waiter), no lost
 * wake-up under a randomised semaphore stress, wake(n) / wake_if / handoff on
 * a raw queue, multi-waits over several queues, and the asymmetric fences
 * (a Dekker litmus that must never see both loads read 0). */
#define _GNU_SOURCE
#include "test_impl.h"

#include "core/deadline.h"

#include <linux/membarrier.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* ---- the after-timeout hook: holds a chosen thread in the window between
 * its TIMED_OUT compare-and-swap and its re-taking of the queue lock ---- */

static _Thread_local bool hold_here;          /* armed on this thread only */
static _Atomic(struct conc__waiter *) held;   /* the held thread's record */
static atomic_int release_held;

static void hold_after_timeout(struct conc__waiter *w)
{
    if (!hold_here)
        return;
    atomic_store(&held, w);
    while (!atomic_load(&release_held))
        conc_sleep(CONC_USEC(100));
}

static void arm_hook(void)
{
    atomic_store(&held, NULL);
    atomic_store(&release_held, 0);
    conc__test_after_timeout = hold_after_timeout;
}

static void disarm_hook(void)
{
    conc__test_after_timeout = NULL; /* every thread that could read it is joined */
}

/* ---- a raw sleeper: one conc__waitq_sleep on q, as a primitive would ---- */

struct sleeper {
    struct conc__waitq *q;
    uintptr_t want, ctx;
    int64_t timeout; /* CONC_FOREVER or ns */
    bool hold;       /* arm the after-timeout hook on this thread */
    _Atomic(struct conc__waiter *) rec;
    _Atomic uint32_t result; /* final state, once done */
    atomic_int done;
    bool joined;
    pthread_t th;
};

static void *sleeper_main(void *p)
{
    struct sleeper *s = p;
    hold_here = s->hold;
    struct conc__waiter w;
    conc__waiter_init(&w, s->want, s->ctx);
    int64_t deadline = s->timeout == CONC_FOREVER ? CONC__NO_DEADLINE : conc_now_ns() + s->timeout;
    conc__waitq_lock(s->q);
    conc__waitq_announce(s->q);
    atomic_store(&s->rec, &w);
    uint32_t st = conc__waitq_sleep(s->q, &w, deadline);
    conc__waitq_retire(s->q);
    conc__waitq_unlock(s->q);
    atomic_store(&s->result, st);
    atomic_store(&s->done, 1);
    return NULL;
}

/* Starts s and waits until it is linked in its queue, so that sleepers started
 * one after another are queued in that order. */
static void start_sleeper(struct sleeper *s, struct conc__waitq *q, uintptr_t want, int64_t timeout,
                          bool hold)
{
    uint32_t before = conc_test_nwaiters(q);
    s->q = q;
    s->want = want;
    s->ctx = want * 1000 + 7;
    s->timeout = timeout;
    s->hold = hold;
    atomic_store(&s->rec, NULL);
    atomic_store(&s->result, 0);
    atomic_store(&s->done, 0);
    s->joined = false;
    s->th = conc_test_start(sleeper_main, s);
    CONC_TEST_POLL_UNTIL(conc_test_nwaiters(q) == before + 1);
    /* announce and link happen under one hold of q's lock: taking it now
     * guarantees the record is linked (or already gone, if timed out) */
    conc__waitq_lock(q);
    conc__waitq_unlock(q);
}

/* Waits (bounded) until s returned and joins it, once. */
static void join_sleeper(struct sleeper *s)
{
    if (s->joined)
        return;
    CONC_TEST_POLL_UNTIL(atomic_load(&s->done));
    assert_int_equal(pthread_join(s->th, NULL), 0);
    s->joined = true;
}

static int count_done(struct sleeper *s, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += atomic_load(&s[i].done);
    return c;
}

/* ============================================================ 1a: the race */

struct sem_taker {
    conc_sem *sem;
    int64_t timeout;
    bool hold;
    conc_event *done; /* set once acquire returned (may be NULL) */
    int rc;
};

static void *sem_taker_main(void *p)
{
    struct sem_taker *t = p;
    hold_here = t->hold;
    t->rc = conc_sem_acquire_timed(t->sem, t->timeout);
    if (t->done)
        assert_int_equal(conc_event_set(t->done), 0);
    return NULL;
}

/* The "Must show" race: the waiter a wake-one picks (A, the oldest) times out
 * in the same instant. A is held right after its TIMED_OUT CAS, still linked
 * at the head; a release must skip it and wake B, and nobody sleeps forever. */
static void sem_wake_one_passes_over_expiring_waiter(void **state)
{
    (void)state;
    conc_sem sem;
    conc_event b_done;
    assert_int_equal(conc_sem_init(&sem, 0, NULL), 0);
    assert_int_equal(conc_event_init(&b_done, NULL), 0);
    struct conc__waitq *q = conc_test_waitq(&sem);
    arm_hook();

    struct sem_taker a = {.sem = &sem, .timeout = CONC_MSEC(50), .hold = true};
    struct sem_taker b = {.sem = &sem, .timeout = CONC_FOREVER, .done = &b_done};
    pthread_t ta = conc_test_start(sem_taker_main, &a);
    CONC_TEST_POLL_UNTIL(conc_test_nwaiters(q) == 1);
    pthread_t tb = conc_test_start(sem_taker_main, &b);
    CONC_TEST_POLL_UNTIL(conc_test_nwaiters(q) == 2);
    CONC_TEST_POLL_UNTIL(atomic_load(&held) != NULL); /* A timed out and is held */

    /* The situation the waker meets: A first, TIMED_OUT, still linked; B next. */
    struct conc__waiter *wa = atomic_load(&held);
    conc__waitq_lock(q);
    assert_ptr_equal(q->head, wa);
    assert_true(wa->linked);
    assert_int_equal(atomic_load(&wa->state), CONC__W_TIMED_OUT);
    assert_non_null(wa->next);
    assert_ptr_equal(wa->next, q->tail);
    conc__waitq_unlock(q);

    assert_int_equal(conc_sem_release(&sem), 0);
    /* The wake must reach B (a lost wake leaves B asleep forever). */
    assert_int_equal(conc_event_wait_timed(&b_done, CONC_SEC(5)), 0);
    assert_int_equal(b.rc, 0);
    conc__waitq_lock(q);
    assert_false(wa->linked); /* the waker unlinked the timed-out A */
    assert_null(q->head);
    conc__waitq_unlock(q);

    atomic_store(&release_held, 1);
    assert_int_equal(pthread_join(ta, NULL), 0);
    assert_int_equal(pthread_join(tb, NULL), 0);
    disarm_hook();
    assert_int_equal(a.rc, CONC_ETIMEDOUT);
    assert_int_equal(conc_sem_value(&sem), 0);
    assert_int_equal(conc_test_nwaiters(q), 0);
    assert_int_equal(conc_sem_destroy(&sem), 0);
    assert_int_equal(conc_event_destroy(&b_done), 0);
}

/* The same race with the raw queue: wake(1) skips the timed-out head and wakes
 * the next waiter, and reports one wake. */
static void wake_one_skips_expiring_waiter(void **state)
{
    (void)state;
    struct conc__waitq q;
    conc__waitq_init(&q, 0);
    arm_hook();
    struct sleeper s[2];
    start_sleeper(&s[0], &q, 1, CONC_MSEC(20), true);
    start_sleeper(&s[1], &q, 2, CONC_FOREVER, false);
    CONC_TEST_POLL_UNTIL(atomic_load(&held) != NULL);

    conc__waitq_lock(&q);
    assert_ptr_equal(q.head, atomic_load(&s[0].rec));
    assert_int_equal(conc__waitq_wake(&q, 1), 1);
    assert_null(q.head);
    conc__waitq_unlock(&q);

    join_sleeper(&s[1]);
    assert_int_equal(atomic_load(&s[1].result), CONC__W_WOKEN);
    atomic_store(&release_held, 1);
    join_sleeper(&s[0]);
    disarm_hook();
    assert_int_equal(atomic_load(&s[0].result), CONC__W_TIMED_OUT);
    assert_int_equal(conc_test_nwaiters(&q), 0);
    assert_int_equal(conc__waitq_kill(&q), 0);
}

/* conc__waiter_park without a spin. */
static uint32_t park(struct conc__waiter *w, int64_t deadline)
{
    unsigned spun;
    return conc__waiter_park(w, deadline, 0, &spun);
}

/* The mirror race, in the record itself: a waker that already won (the
 * record is WOKEN) beats a deadline that has passed. Also the plain
 * timeout, and the hook left NULL in production. */
static void park_honours_wake_after_deadline(void **state)
{
    (void)state;
    assert_null(conc__test_after_timeout);
    struct conc__waiter w;
    conc__waiter_init(&w, 0, 0);
    atomic_store(&w.state, CONC__W_WOKEN);
    assert_int_equal(park(&w, conc_now_ns() - CONC_MSEC(1)), CONC__W_WOKEN);
    assert_int_equal(park(&w, 0), CONC__W_WOKEN);
    /* Nobody wakes: a passed deadline gives TIMED_OUT, and the state says so. */
    conc__waiter_init(&w, 0, 0);
    assert_int_equal(park(&w, conc_now_ns() - 1), CONC__W_TIMED_OUT);
    assert_int_equal(atomic_load(&w.state), CONC__W_TIMED_OUT);
    conc__waiter_init(&w, 0, 0);
    int64_t t0 = conc_now_ns();
    assert_int_equal(park(&w, t0 + CONC_MSEC(5)), CONC__W_TIMED_OUT);
    assert_true(conc_now_ns() - t0 >= CONC_MSEC(5));
    /* A cancelled record is final too. */
    conc__waiter_init(&w, 0, 0);
    atomic_store(&w.state, CONC__W_CANCELLED);
    assert_int_equal(park(&w, CONC__NO_DEADLINE), CONC__W_CANCELLED);
}

/* ---- the mirror race with a real sleeper: a signal handler pins the
 * waiter while it is PARKED; its deadline passes; the waker's CAS wins; the
 * waiter, released, must report WOKEN, not TIMED_OUT ---- */

static atomic_int pin_entered, pin_release;

static void pin_handler(int sig)
{
    (void)sig;
    atomic_store(&pin_entered, 1);
    struct timespec ts = {0, 100000};
    while (!atomic_load(&pin_release))
        nanosleep(&ts, NULL);
}

struct pinned {
    struct conc__waitq *q;
    int64_t timeout;
    _Atomic int64_t deadline;
    uint32_t result;
    int64_t returned_at;
    atomic_int done;
};

static void *pinned_main(void *p)
{
    struct pinned *pw = p;
    struct conc__waiter w;
    conc__waiter_init(&w, 0, 0);
    conc__waitq_lock(pw->q);
    conc__waitq_announce(pw->q);
    int64_t deadline = conc_now_ns() + pw->timeout;
    atomic_store(&pw->deadline, deadline);
    pw->result = conc__waitq_sleep(pw->q, &w, deadline);
    pw->returned_at = conc_now_ns();
    conc__waitq_retire(pw->q);
    conc__waitq_unlock(pw->q);
    atomic_store(&pw->done, 1);
    return NULL;
}

/* One attempt: returns false (after checking the plain timeout) if the
 * machine was so slow that the waiter timed out before it could be pinned. */
static bool pinned_race(int64_t timeout)
{
    atomic_store(&pin_entered, 0);
    atomic_store(&pin_release, 0);
    struct conc__waitq q;
    conc__waitq_init(&q, 0);
    struct pinned pw = {.q = &q, .timeout = timeout};
    pthread_t t = conc_test_start(pinned_main, &pw);
    CONC_TEST_POLL_UNTIL(conc_test_queue_parked(&q) == 1 || atomic_load(&pw.done));
    assert_int_equal(pthread_kill(t, SIGUSR1), 0);
    CONC_TEST_POLL_UNTIL(atomic_load(&pin_entered));
    bool pinned = conc_test_queue_parked(&q) == 1; /* pinned before its deadline: PARKED, linked */
    if (pinned) {
        int64_t deadline = atomic_load(&pw.deadline);
        while (conc_now_ns() <= deadline + CONC_MSEC(5))
            conc_sleep(CONC_MSEC(1));
        conc__waitq_lock(&q);
        assert_int_equal(atomic_load(&q.head->state), CONC__W_PARKED);
        assert_int_equal(conc__waitq_wake(&q, 1), 1); /* the waker's CAS wins */
        conc__waitq_unlock(&q);
    }
    atomic_store(&pin_release, 1);
    assert_int_equal(pthread_join(t, NULL), 0);
    if (pinned) {
        assert_int_equal(pw.result, CONC__W_WOKEN); /* the wake is honoured */
        assert_true(pw.returned_at > atomic_load(&pw.deadline));
    } else {
        assert_int_equal(pw.result, CONC__W_TIMED_OUT);
    }
    assert_int_equal(conc_test_nwaiters(&q), 0);
    assert_null(q.head);
    assert_int_equal(conc__waitq_kill(&q), 0);
    return pinned;
}

static void waker_wins_over_passed_deadline(void **state)
{
    (void)state;
#if CONC__TSAN
    /* TSan defers an asynchronous signal until the thread leaves the raw
     * futex syscall, i.e. until the deadline: the pin cannot be placed. */
    skip();
#endif
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pin_handler; /* no SA_RESTART: the futex wait sees EINTR */
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    bool done = false;
    int64_t timeout = CONC_MSEC(100);
    for (; !done && timeout <= CONC_MSEC(1600); timeout *= 4)
        done = pinned_race(timeout);
    print_message("waiter pinned past its deadline (timeout %lld ms), the wake won\n",
                  (long long)(timeout / 4 / CONC_NSEC_PER_MSEC));
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
    assert_true(done);
}

/* ---- a wake that a barging thread makes useless is passed on: the value
 * left must not stay unused while a waiter it covers sleeps ---- */

struct sem_n_taker {
    conc_sem *sem;
    int n;
    conc_event *done;
    int rc;
};

static void *sem_n_taker_main(void *p)
{
    struct sem_n_taker *t = p;
    t->rc = conc_sem_acquire_n(t->sem, t->n);
    assert_int_equal(conc_event_set(t->done), 0);
    return NULL;
}

/* W2 (wants 2) and W1 (wants 1) wait. A release of 2 picks W2 (the oldest;
 * W1 is skipped, the budget is spent). W2 is pinned by a signal before it can
 * take its units, and a barging acquire takes one. When W2 runs it finds 1
 * unit, too few: the one unit covers W1, which must get it. */
static void sem_barged_wake_passed_on(void **state)
{
    (void)state;
#if CONC__TSAN
    skip(); /* TSan defers the pinning signal: see waker_wins_over_passed_deadline */
#endif
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pin_handler;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    atomic_store(&pin_entered, 0);
    atomic_store(&pin_release, 0);

    conc_sem sem;
    conc_event done2, done1;
    assert_int_equal(conc_sem_init(&sem, 0, NULL), 0);
    assert_int_equal(conc_event_init(&done2, NULL), 0);
    assert_int_equal(conc_event_init(&done1, NULL), 0);
    struct conc__waitq *q = conc_test_waitq(&sem);
    struct sem_n_taker w2 = {.sem = &sem, .n = 2, .done = &done2};
    struct sem_n_taker w1 = {.sem = &sem, .n = 1, .done = &done1};
    pthread_t t2 = conc_test_start(sem_n_taker_main, &w2);
    CONC_TEST_POLL_UNTIL(conc_test_queue_parked(q) == 1);
    pthread_t t1 = conc_test_start(sem_n_taker_main, &w1);
    CONC_TEST_POLL_UNTIL(conc_test_nwaiters(q) == 2);
    assert_int_equal(conc_test_queue_len(q), 2);

    assert_int_equal(pthread_kill(t2, SIGUSR1), 0);
    CONC_TEST_POLL_UNTIL(atomic_load(&pin_entered));
    assert_int_equal(conc_sem_release_n(&sem, 2), 0);
    assert_int_equal(conc_test_queue_len(q), 1); /* W2 chosen, W1 skipped */
    assert_int_equal(conc_sem_acquire_timed(&sem, 0), 0); /* the barging thread */
    assert_int_equal(conc_sem_value(&sem), 1);
    atomic_store(&pin_release, 1);

    assert_int_equal(conc_event_wait_timed(&done1, CONC_SEC(5)), 0); /* W1 got the unit */
    assert_int_equal(w1.rc, 0);
    assert_int_equal(conc_event_is_set(&done2), 0);
    assert_int_equal(conc_sem_release_n(&sem, 2), 0); /* now W2's turn */
    assert_int_equal(conc_event_wait_timed(&done2, CONC_SEC(5)), 0);
    assert_int_equal(w2.rc, 0);
    assert_int_equal(pthread_join(t1, NULL), 0);
    assert_int_equal(pthread_join(t2, NULL), 0);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
    assert_int_equal(conc_sem_value(&sem), 0);
    assert_int_equal(conc_test_nwaiters(q), 0);
    assert_int_equal(conc_sem_destroy(&sem), 0);
    assert_int_equal(conc_event_destroy(&done1), 0);
    assert_int_equal(conc_event_destroy(&done2), 0);
}

/* ---- the same race left to chance, many times: a waker aims its wake at
 * the waiter's deadline. Exactly one side wins each round: the wake counts 1
 * if and only if the waiter reports WOKEN. ---- */

struct race {
    struct conc__waitq q;
    pthread_barrier_t bar;
    long rounds;
    _Atomic int64_t deadline;
    uint32_t result; /* read after the round's barrier */
    int64_t returned_at;
};

static void *race_waiter(void *p)
{
    struct race *r = p;
    for (long i = 0; i < r->rounds; i++) {
        pthread_barrier_wait(&r->bar);
        struct conc__waiter w;
        conc__waiter_init(&w, 0, 0);
        conc__waitq_lock(&r->q);
        conc__waitq_announce(&r->q);
        int64_t d = conc_now_ns() + CONC_USEC(200);
        atomic_store(&r->deadline, d);
        r->result = conc__waitq_sleep(&r->q, &w, d);
        r->returned_at = conc_now_ns();
        conc__waitq_retire(&r->q);
        conc__waitq_unlock(&r->q);
        pthread_barrier_wait(&r->bar);
    }
    return NULL;
}

static void wake_versus_timeout_race_stress(void **state)
{
    (void)state;
    struct race r = {.rounds = conc_test_scaled(3000, 200)};
    conc__waitq_init(&r.q, 0);
    assert_int_equal(pthread_barrier_init(&r.bar, NULL, 2), 0);
    pthread_t t = conc_test_start(race_waiter, &r);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    long woken = 0, timed_out = 0, woken_late = 0;
    for (long i = 0; i < r.rounds; i++) {
        atomic_store(&r.deadline, 0);
        pthread_barrier_wait(&r.bar);
        while (atomic_load(&r.deadline) == 0)
            sched_yield();
        /* aim anywhere from 100 us before to 150 us after the deadline */
        int64_t aim = atomic_load(&r.deadline) - CONC_USEC(100) +
                      (int64_t)(xorshift(&rng) % (uint64_t)CONC_USEC(250));
        while (conc_now_ns() < aim)
            ;
        conc__waitq_lock(&r.q);
        unsigned n = conc__waitq_wake(&r.q, 1);
        conc__waitq_unlock(&r.q);
        pthread_barrier_wait(&r.bar);
        if (n == 1) {
            assert_int_equal(r.result, CONC__W_WOKEN);
            woken++;
            woken_late += r.returned_at >= atomic_load(&r.deadline);
        } else {
            assert_int_equal(n, 0);
            assert_int_equal(r.result, CONC__W_TIMED_OUT);
            timed_out++;
        }
        assert_null(r.q.head); /* nobody left linked */
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    print_message("rounds %ld: woken %ld (%ld returned after their deadline), timed out %ld\n",
                  r.rounds, woken, woken_late, timed_out);
    assert_int_equal(conc_test_nwaiters(&r.q), 0);
    assert_int_equal(pthread_barrier_destroy(&r.bar), 0);
    assert_int_equal(conc__waitq_kill(&r.q), 0);
}

/* ===================================================== 1b: no lost wake-up */

enum { STRESS_WAITERS = 8, STRESS_PRODUCERS = 2 };

struct sem_stress {
    conc_sem sem;
    long per_producer;
    atomic_int stop;
    atomic_long acquired;     /* units taken by successful acquires */
    atomic_int finished;      /* waiter threads that left their loop */
    atomic_long ok, timeouts; /* for the report */
};

struct stress_arg {
    struct sem_stress *st;
    int index;
};

static void *stress_waiter(void *p)
{
    struct stress_arg *a = p;
    struct sem_stress *st = a->st;
    uint64_t rng = 0x1234567ull + (uint64_t)a->index * 7919;
    int n = a->index % 4 == 3 ? 2 : 1; /* some take two units at once */
    static const int64_t timeouts[] = {0, 1000, CONC_USEC(50), CONC_MSEC(1), CONC_FOREVER};
    long ok = 0, to = 0;
    while (!atomic_load(&st->stop)) {
        int64_t tmo = timeouts[xorshift(&rng) % 5];
        int rc = conc_sem_acquire_n_timed(&st->sem, n, tmo);
        if (rc == 0) {
            atomic_fetch_add(&st->acquired, n);
            ok++;
        } else {
            assert_int_equal(rc, CONC_ETIMEDOUT);
            assert_true(tmo != CONC_FOREVER);
            to++;
        }
    }
    atomic_fetch_add(&st->ok, ok);
    atomic_fetch_add(&st->timeouts, to);
    atomic_fetch_add(&st->finished, 1);
    return NULL;
}

static unsigned smallest_want(struct conc__waitq *q);

/* A queued waiter that the value covers must be woken soon: by the release
 * that raised the value, or by a woken waiter that a barging thread left
 * short. Waits (bounded) until the value covers no sleeping waiter. */
static void check_nobody_stranded(struct sem_stress *st)
{
    struct conc__waitq *q = conc_test_waitq(&st->sem);
    int64_t limit = conc_now_ns() + CONC_SEC(5);
    while (smallest_want(q) <= (unsigned)conc_sem_value(&st->sem)) {
        if (conc_now_ns() > limit)
            fail_msg("a waiter sleeps for 5 s while the value (%lld) covers it (want %u)",
                     (long long)conc_sem_value(&st->sem), smallest_want(q));
        sched_yield();
    }
}

static void *stress_producer(void *p)
{
    struct stress_arg *a = p;
    struct sem_stress *st = a->st;
    uint64_t rng = 0xabcdefull + (uint64_t)a->index;
    long left = st->per_producer;
    for (long i = 0; left > 0; i++) {
        int n = (int)(xorshift(&rng) % 3) + 1;
        if (n > left)
            n = (int)left;
        assert_int_equal(conc_sem_release_n(&st->sem, n), 0);
        left -= n;
        /* keep the value low, so that waiters really sleep */
        while (conc_sem_value(&st->sem) > 2)
            sched_yield();
        if (i % 8 == 0)
            check_nobody_stranded(st);
    }
    return NULL;
}

/* The smallest want among the queued waiters not yet woken (UINT_MAX: none):
 * the value must never cover it for long. */
static unsigned smallest_want(struct conc__waitq *q)
{
    unsigned min = UINT32_MAX;
    conc__waitq_lock(q);
    for (struct conc__waiter *w = q->head; w; w = w->next)
        if (atomic_load(&w->state) < CONC__W_WOKEN && w->want < min)
            min = (unsigned)w->want;
    conc__waitq_unlock(q);
    return min;
}

static void sem_no_lost_wakeup_stress(void **state)
{
    (void)state;
    struct sem_stress st = {.per_producer = conc_test_scaled(300000, 10000)};
    assert_int_equal(conc_sem_init(&st.sem, 0, NULL), 0);
    struct conc__waitq *q = conc_test_waitq(&st.sem);
    struct stress_arg wa[STRESS_WAITERS], pa[STRESS_PRODUCERS];
    pthread_t wt[STRESS_WAITERS], pt[STRESS_PRODUCERS];
    for (int i = 0; i < STRESS_WAITERS; i++) {
        wa[i] = (struct stress_arg){&st, i};
        wt[i] = conc_test_start(stress_waiter, &wa[i]);
    }
    for (int i = 0; i < STRESS_PRODUCERS; i++) {
        pa[i] = (struct stress_arg){&st, i};
        pt[i] = conc_test_start(stress_producer, &pa[i]);
    }
    for (int i = 0; i < STRESS_PRODUCERS; i++)
        assert_int_equal(pthread_join(pt[i], NULL), 0);
    long released = st.per_producer * STRESS_PRODUCERS;

    /* Stop the waiters. One that waits forever needs units: give one only
     * while the value covers none of the queued waiters, so a waiter left
     * asleep while the value would satisfy it (a lost wake-up) shows as a
     * timeout here instead of being rescued. */
    atomic_store(&st.stop, 1);
    long extra = 0;
    int64_t limit = conc_now_ns() + CONC_SEC(10);
    while (atomic_load(&st.finished) < STRESS_WAITERS) {
        if (conc_now_ns() > limit)
            fail_msg("waiters stuck: %d finished, value %lld, nwaiters %u, smallest want %u",
                     atomic_load(&st.finished), (long long)conc_sem_value(&st.sem), conc_test_nwaiters(q),
                     smallest_want(q));
        if (conc_test_nwaiters(q) > 0 && smallest_want(q) > (unsigned)conc_sem_value(&st.sem)) {
            assert_int_equal(conc_sem_release(&st.sem), 0);
            extra++;
        }
        conc_sleep(CONC_USEC(200));
    }
    for (int i = 0; i < STRESS_WAITERS; i++)
        assert_int_equal(pthread_join(wt[i], NULL), 0);

    int value = conc_sem_value(&st.sem);
    print_message("released %ld (+%ld extra), acquires ok %ld, timeouts %ld, final value %d\n",
                  released, extra, atomic_load(&st.ok), atomic_load(&st.timeouts), value);
    assert_int_equal(atomic_load(&st.acquired) + value, released + extra);
    assert_int_equal(conc_test_nwaiters(q), 0);
    assert_null(q->head);
    assert_int_equal(conc_sem_destroy(&st.sem), 0);
}

/* =================================== 1c: wake(n), wake_if, handoff, raw queue */

static void wake_n_wakes_exactly_n_oldest_first(void **state)
{
    (void)state;
    enum { N = 5 };
    struct conc__waitq q;
    conc__waitq_init(&q, 0);
    struct sleeper s[N];
    for (int i = 0; i < N; i++)
        start_sleeper(&s[i], &q, (uintptr_t)i, CONC_FOREVER, false);
    assert_int_equal(conc_test_queue_len(&q), N);
    /* All asleep: from now on only a wake (WOKEN) lets one of them go. */
    CONC_TEST_POLL_UNTIL(conc_test_queue_parked(&q) == N);

    conc__waitq_lock(&q);
    assert_int_equal(conc__waitq_wake(&q, 2), 2);
    conc__waitq_unlock(&q);
    /* A wake marks its waiters WOKEN before it returns: the other three are
     * still linked and still PARKED, which a wrong extra wake would have
     * changed already. */
    assert_int_equal(conc_test_queue_len(&q), 3);
    assert_int_equal(conc_test_queue_parked(&q), 3);
    CONC_TEST_POLL_UNTIL(count_done(s, N) == 2);
    /* the two oldest woke */
    assert_true(atomic_load(&s[0].done) && atomic_load(&s[1].done));
    assert_int_equal(atomic_load(&s[0].result), CONC__W_WOKEN);
    assert_int_equal(atomic_load(&s[1].result), CONC__W_WOKEN);
    assert_int_equal(conc_test_queue_parked(&q), 3);
    assert_int_equal(count_done(s, N), 2);
    assert_int_equal(conc_test_nwaiters(&q), 3);

    conc__waitq_lock(&q);
    assert_int_equal(conc__waitq_wake(&q, 1), 1);
    conc__waitq_unlock(&q);
    join_sleeper(&s[2]);
    conc__waitq_lock(&q);
    conc__waitq_wake_all(&q);
    assert_null(q.head);
    assert_int_equal(conc__waitq_wake(&q, 3), 0); /* empty: nothing to wake */
    conc__waitq_unlock(&q);
    for (int i = 0; i < N; i++) {
        join_sleeper(&s[i]);
        assert_int_equal(atomic_load(&s[i].result), CONC__W_WOKEN);
    }
    assert_int_equal(conc_test_nwaiters(&q), 0);
    assert_int_equal(conc__waitq_kill(&q), 0);
    assert_true(conc__waitq_dead(&q));
}

struct pick_arg {
    uintptr_t match;  /* pick_equal: the want to pick */
    uint32_t budget;  /* pick_fits: units left */
    int took_calls;
    uintptr_t took_sum;
};

static bool pick_equal(uintptr_t want, void *arg)
{
    return want == ((struct pick_arg *)arg)->match;
}

static bool pick_fits(uintptr_t want, void *arg)
{
    return want <= ((struct pick_arg *)arg)->budget;
}

static bool pick_all(uintptr_t want, void *arg)
{
    (void)want;
    (void)arg;
    return true;
}

static void took_count(uintptr_t want, void *arg)
{
    struct pick_arg *a = arg;
    a->took_calls++;
    a->took_sum += want;
}

static void took_spend(uintptr_t want, void *arg)
{
    struct pick_arg *a = arg;
    a->budget -= (uint32_t)want;
    took_count(want, arg);
}

static void wake_if_picks_by_want(void **state)
{
    (void)state;
    enum { N = 5 };
    static const uintptr_t wants[N] = {1, 2, 1, 2, 3};
    struct conc__waitq q;
    conc__waitq_init(&q, 0);
    struct sleeper s[N];
    for (int i = 0; i < N; i++)
        start_sleeper(&s[i], &q, wants[i], CONC_FOREVER, false);

    struct pick_arg a = {.match = 2};
    conc__waitq_lock(&q);
    assert_int_equal(conc__waitq_wake_if(&q, pick_equal, took_count, &a), 2);
    conc__waitq_unlock(&q);
    assert_int_equal(a.took_calls, 2);
    assert_int_equal(a.took_sum, 4);
    join_sleeper(&s[1]);
    join_sleeper(&s[3]);
    assert_int_equal(count_done(s, N), 2);
    /* left, in order: wants 1, 1, 3 */
    conc__waitq_lock(&q);
    assert_ptr_equal(q.head, atomic_load(&s[0].rec));
    assert_ptr_equal(q.head->next, atomic_load(&s[2].rec));
    assert_ptr_equal(q.tail, atomic_load(&s[4].rec));
    conc__waitq_unlock(&q);

    /* A budget of 3, as the semaphore uses it: 1 and 1 fit, then 3 does not. */
    struct pick_arg b = {.budget = 3};
    conc__waitq_lock(&q);
    assert_int_equal(conc__waitq_wake_if(&q, pick_fits, took_spend, &b), 2);
    conc__waitq_unlock(&q);
    assert_int_equal(b.budget, 1);
    join_sleeper(&s[0]);
    join_sleeper(&s[2]);
    assert_int_equal(conc_test_queue_len(&q), 1);
    assert_false(atomic_load(&s[4].done));

    /* took may be NULL */
    struct pick_arg c = {.match = 3};
    conc__waitq_lock(&q);
    assert_int_equal(conc__waitq_wake_if(&q, pick_equal, NULL, &c), 1);
    conc__waitq_unlock(&q);
    join_sleeper(&s[4]);
    for (int i = 0; i < N; i++)
        assert_int_equal(atomic_load(&s[i].result), CONC__W_WOKEN);
    assert_null(q.head);
    assert_int_equal(conc_test_nwaiters(&q), 0);
    assert_int_equal(conc__waitq_kill(&q), 0);
}

/* wake_if meets a waiter that timed out (held by the hook, still linked): it
 * unlinks it, does not count it and does not call took for it. */
static void wake_if_skips_timed_out_waiter(void **state)
{
    (void)state;
    struct conc__waitq q;
    conc__waitq_init(&q, 0);
    arm_hook();
    struct sleeper s[2];
    start_sleeper(&s[0], &q, 1, CONC_MSEC(10), true);
    start_sleeper(&s[1], &q, 1, CONC_FOREVER, false);
    CONC_TEST_POLL_UNTIL(atomic_load(&held) != NULL);

    struct pick_arg a = {0};
    conc__waitq_lock(&q);
    assert_int_equal(conc__waitq_wake_if(&q, pick_all, took_count, &a), 1);
    assert_null(q.head);
    assert_false(atomic_load(&held)->linked);
    conc__waitq_unlock(&q);
    assert_int_equal(a.took_calls, 1);
    join_sleeper(&s[1]);
    assert_int_equal(atomic_load(&s[1].result), CONC__W_WOKEN);
    atomic_store(&release_held, 1);
    join_sleeper(&s[0]);
    disarm_hook();
    assert_int_equal(atomic_load(&s[0].result), CONC__W_TIMED_OUT);
    assert_int_equal(conc_test_nwaiters(&q), 0);
    assert_int_equal(conc__waitq_kill(&q), 0);
}

struct handoff_log {
    int calls;
    uintptr_t last_ctx;
};

static void log_before_wake(struct conc__waiter *w, void *arg)
{
    struct handoff_log *l = arg;
    l->calls++;
    l->last_ctx = w->ctx;
}

/* handoff gives the wake to the oldest live waiter, after before_wake has
 * seen it (a timed-out head is passed over); with only timed-out waiters or
 * none, nobody takes it. */
static void handoff_goes_to_oldest_live_waiter(void **state)
{
    (void)state;
    struct conc__waitq q;
    conc__waitq_init(&q, 0);
    struct handoff_log log = {0};
    conc__waitq_lock(&q);
    assert_false(conc__waitq_handoff(&q, log_before_wake, &log));
    conc__waitq_unlock(&q);
    assert_int_equal(log.calls, 0);

    arm_hook();
    struct sleeper s[3];
    start_sleeper(&s[0], &q, 1, CONC_MSEC(10), true);
    start_sleeper(&s[1], &q, 2, CONC_FOREVER, false);
    start_sleeper(&s[2], &q, 3, CONC_FOREVER, false);
    CONC_TEST_POLL_UNTIL(atomic_load(&held) != NULL);

    conc__waitq_lock(&q);
    assert_true(conc__waitq_handoff(&q, log_before_wake, &log));
    conc__waitq_unlock(&q);
    assert_int_equal(log.last_ctx, s[1].ctx); /* the last one written is the taker */
    join_sleeper(&s[1]);
    assert_int_equal(atomic_load(&s[1].result), CONC__W_WOKEN);
    assert_int_equal(conc_test_queue_len(&q), 1);
    assert_false(atomic_load(&s[2].done));
    atomic_store(&release_held, 1);
    join_sleeper(&s[0]);
    disarm_hook();
    assert_int_equal(atomic_load(&s[0].result), CONC__W_TIMED_OUT);

    conc__waitq_lock(&q);
    assert_true(conc__waitq_handoff(&q, log_before_wake, &log));
    conc__waitq_unlock(&q);
    assert_int_equal(log.last_ctx, s[2].ctx);
    join_sleeper(&s[2]);

    /* only a timed-out waiter left: the hand-off finds nobody */
    arm_hook();
    struct sleeper t;
    start_sleeper(&t, &q, 4, CONC_MSEC(5), true);
    CONC_TEST_POLL_UNTIL(atomic_load(&held) != NULL);
    int calls = log.calls;
    conc__waitq_lock(&q);
    assert_false(conc__waitq_handoff(&q, log_before_wake, &log));
    assert_null(q.head);
    conc__waitq_unlock(&q);
    assert_int_equal(log.calls, calls + 1);
    atomic_store(&release_held, 1);
    join_sleeper(&t);
    disarm_hook();
    assert_int_equal(atomic_load(&t.result), CONC__W_TIMED_OUT);
    assert_int_equal(conc_test_nwaiters(&q), 0);
    assert_int_equal(conc__waitq_kill(&q), 0);
}

/* A queue with waiters cannot be killed; a dead one is marked. */
static void kill_refuses_busy_queue(void **state)
{
    (void)state;
    struct conc__waitq q;
    conc__waitq_init(&q, 0);
    struct sleeper s;
    start_sleeper(&s, &q, 0, CONC_FOREVER, false);
    assert_int_equal(conc__waitq_kill(&q), CONC_EBUSY);
    assert_false(conc__waitq_dead(&q));
    conc__waitq_lock(&q);
    assert_int_equal(conc__waitq_wake(&q, 1), 1);
    conc__waitq_unlock(&q);
    join_sleeper(&s);
    assert_int_equal(conc__waitq_kill(&q), 0);
    assert_true(conc__waitq_dead(&q));
}

/* ============================================================ 1d: multi-wait */

enum { MQ = 3 };

struct multi {
    struct conc__waitq q[MQ];
    int64_t timeout;       /* for the park */
    _Atomic pid_t tid;     /* the multi-waiter's thread */
    _Atomic(struct conc__multiwait *) m; /* its multi-wait, while it runs */
    atomic_int linked;     /* links are in place */
    atomic_int go;         /* may park now */
    atomic_int done;       /* unlinked everything, about to return */
    unsigned fired;
    bool woken[MQ];
    bool all_unlinked;
};

static void *multi_main(void *p)
{
    struct multi *mw = p;
    struct conc__multiwait m;
    struct conc__waiter links[MQ];
    conc__multiwait_init(&m);
    atomic_store(&mw->tid, conc_test_tid());
    atomic_store(&mw->m, &m);
    for (int i = 0; i < MQ; i++) {
        conc__waitq_lock(&mw->q[i]);
        conc__multiwait_link(&m, &mw->q[i], &links[i], (uintptr_t)i);
        conc__waitq_unlock(&mw->q[i]);
    }
    atomic_store(&mw->linked, 1);
    while (!atomic_load(&mw->go))
        conc_sleep(CONC_USEC(100));
    int64_t deadline =
        mw->timeout == CONC_FOREVER ? CONC__NO_DEADLINE : conc_now_ns() + mw->timeout;
    mw->fired = conc__multiwait_park(&m, deadline);
    mw->all_unlinked = true;
    for (int i = 0; i < MQ; i++) {
        mw->woken[i] = conc__multiwait_unlink(&mw->q[i], &links[i]);
        mw->all_unlinked &= !links[i].linked;
    }
    atomic_store(&mw->done, 1);
    return NULL;
}

static void multi_setup(struct multi *mw, int64_t timeout)
{
    memset(mw, 0, sizeof *mw);
    for (int i = 0; i < MQ; i++)
        conc__waitq_init(&mw->q[i], 0);
    mw->timeout = timeout;
}

static void multi_teardown(struct multi *mw)
{
    for (int i = 0; i < MQ; i++) {
        assert_null(mw->q[i].head);
        assert_null(mw->q[i].tail);
        assert_int_equal(conc__waitq_kill(&mw->q[i]), 0);
    }
}

static unsigned wake_queue(struct conc__waitq *q)
{
    conc__waitq_lock(q);
    unsigned n = conc__waitq_wake(q, 1);
    conc__waitq_unlock(q);
    return n;
}

static void multiwait_one_queue_fires(void **state)
{
    (void)state;
    struct multi mw;
    multi_setup(&mw, CONC_SEC(30));
    pthread_t t = conc_test_start(multi_main, &mw);
    CONC_TEST_POLL_UNTIL(atomic_load(&mw.linked));
    for (int i = 0; i < MQ; i++)
        assert_int_equal(conc_test_queue_len(&mw.q[i]), 1);
    atomic_store(&mw.go, 1);
    /* The futex path: the multi-waiter is asleep in the kernel on its fired
     * word, and says so (parked), so the wake must reach it with a futex
     * wake. */
    struct conc__multiwait *m = atomic_load(&mw.m);
    CONC_TEST_POLL_UNTIL(conc_test_thread_in_futex_wait(atomic_load(&mw.tid), &m->fired));
    assert_int_equal(atomic_load(&m->parked), 1);
    assert_int_equal(atomic_load(&m->fired), 0);
    assert_int_equal(wake_queue(&mw.q[1]), 1);
    /* Woken by that wake, not by its deadline (30 s, past this poll's 10). */
    CONC_TEST_POLL_UNTIL(atomic_load(&mw.done));
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(mw.fired, 1);
    assert_false(mw.woken[0]);
    assert_true(mw.woken[1]);
    assert_false(mw.woken[2]);
    assert_true(mw.all_unlinked);
    /* the cancelled links are gone: a later wake finds nobody */
    assert_int_equal(wake_queue(&mw.q[0]), 0);
    multi_teardown(&mw);
}

static void multiwait_several_fire_before_park(void **state)
{
    (void)state;
    struct multi mw;
    multi_setup(&mw, CONC_SEC(30));
    pthread_t t = conc_test_start(multi_main, &mw);
    CONC_TEST_POLL_UNTIL(atomic_load(&mw.linked));
    assert_int_equal(wake_queue(&mw.q[0]), 1);
    assert_int_equal(wake_queue(&mw.q[2]), 1);
    atomic_store(&mw.go, 1);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(mw.fired, 2);
    assert_true(mw.woken[0]);
    assert_false(mw.woken[1]);
    assert_true(mw.woken[2]);
    assert_true(mw.all_unlinked);
    multi_teardown(&mw);
}

static void multiwait_times_out(void **state)
{
    (void)state;
    struct multi mw;
    multi_setup(&mw, CONC_MSEC(20));
    atomic_store(&mw.go, 1);
    int64_t t0 = conc_now_ns();
    pthread_t t = conc_test_start(multi_main, &mw);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(conc_now_ns() - t0 >= CONC_MSEC(20));
    assert_int_equal(mw.fired, 0);
    for (int i = 0; i < MQ; i++)
        assert_false(mw.woken[i]);
    assert_true(mw.all_unlinked);
    multi_teardown(&mw);
}

/* A thread waiter and a multi-wait link in one queue: wakes go oldest first,
 * and the multi-wait learns of the one meant for it. */
static void multiwait_shares_queue_with_thread_waiter(void **state)
{
    (void)state;
    struct multi mw;
    multi_setup(&mw, CONC_SEC(30));
    struct sleeper s;
    start_sleeper(&s, &mw.q[0], 9, CONC_FOREVER, false);
    pthread_t t = conc_test_start(multi_main, &mw);
    CONC_TEST_POLL_UNTIL(atomic_load(&mw.linked));
    atomic_store(&mw.go, 1);
    assert_int_equal(wake_queue(&mw.q[0]), 1); /* the older: the thread */
    join_sleeper(&s);
    assert_int_equal(atomic_load(&s.result), CONC__W_WOKEN);
    assert_int_equal(wake_queue(&mw.q[0]), 1); /* then the link */
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(mw.fired, 1);
    assert_true(mw.woken[0]);
    assert_false(mw.woken[1] || mw.woken[2]);
    assert_int_equal(conc_test_nwaiters(&mw.q[0]), 0);
    multi_teardown(&mw);
}

/* Wakers hit three queues while a multi-waiter links, parks briefly and
 * unlinks, round after round: every wake that counted is reported to the
 * multi-waiter exactly once (fired and the unlink results agree). */
struct mstress {
    struct conc__waitq q[MQ];
    atomic_int stop_wakers, stop_parker;
    atomic_long wakes;      /* wakes that counted, by the wakers */
    long reported;          /* by the parker */
    atomic_long rounds;
};

struct mstress_arg {
    struct mstress *ms;
    int index;
};

static void *mstress_waker(void *p)
{
    struct mstress_arg *a = p;
    long n = 0;
    uint64_t rng = 77 + (uint64_t)a->index;
    while (!atomic_load(&a->ms->stop_wakers)) {
        n += wake_queue(&a->ms->q[a->index]);
        if (xorshift(&rng) % 4 == 0)
            sched_yield();
    }
    atomic_fetch_add(&a->ms->wakes, n);
    return NULL;
}

static void *mstress_parker(void *p)
{
    struct mstress *ms = p;
    uint64_t rng = 4242;
    while (!atomic_load(&ms->stop_parker)) {
        struct conc__multiwait m;
        struct conc__waiter links[MQ];
        conc__multiwait_init(&m);
        for (int i = 0; i < MQ; i++) {
            conc__waitq_lock(&ms->q[i]);
            conc__multiwait_link(&m, &ms->q[i], &links[i], 0);
            conc__waitq_unlock(&ms->q[i]);
        }
        int64_t d = conc_now_ns() + (int64_t)(xorshift(&rng) % (uint64_t)CONC_USEC(100));
        unsigned fired = conc__multiwait_park(&m, d);
        long got = 0;
        for (int i = 0; i < MQ; i++)
            got += conc__multiwait_unlink(&ms->q[i], &links[i]);
        assert_true(fired <= got);
        assert_int_equal(atomic_load(&m.fired), got);
        ms->reported += got;
        atomic_fetch_add(&ms->rounds, 1);
    }
    return NULL;
}

static void multiwait_wakes_counted_stress(void **state)
{
    (void)state;
    struct mstress ms;
    memset(&ms, 0, sizeof ms);
    for (int i = 0; i < MQ; i++)
        conc__waitq_init(&ms.q[i], 0);
    struct mstress_arg args[MQ];
    pthread_t wt[MQ];
    pthread_t pt = conc_test_start(mstress_parker, &ms);
    for (int i = 0; i < MQ; i++) {
        args[i] = (struct mstress_arg){&ms, i};
        wt[i] = conc_test_start(mstress_waker, &args[i]);
    }
    conc_sleep(conc_test_scaled(CONC_MSEC(500), CONC_MSEC(50)));
    CONC_TEST_POLL_UNTIL(atomic_load(&ms.rounds) >= 100); /* even on a loaded machine */
    atomic_store(&ms.stop_wakers, 1);
    for (int i = 0; i < MQ; i++)
        assert_int_equal(pthread_join(wt[i], NULL), 0);
    atomic_store(&ms.stop_parker, 1);
    assert_int_equal(pthread_join(pt, NULL), 0);
    print_message("rounds %ld, wakes %ld, reported %ld\n", atomic_load(&ms.rounds),
                  atomic_load(&ms.wakes), ms.reported);
    assert_int_equal(ms.reported, atomic_load(&ms.wakes));
    for (int i = 0; i < MQ; i++) {
        assert_null(ms.q[i].head);
        assert_int_equal(conc__waitq_kill(&ms.q[i]), 0);
    }
}

/* =============================================================== 1e: fences */

struct dekker {
    _Atomic int x, y;
    _Atomic long go, done;
    _Atomic int r1; /* the heavy side's load of x, for this round */
    long rounds;
    long seen[2][2]; /* [light's y][heavy's x] */
};

static void spin_for(uint64_t *rng, unsigned max)
{
    for (unsigned i = (unsigned)(xorshift(rng) % max); i > 0; i--)
        conc__cpu_relax();
}

/* Spin-waiting for the other side: spin first (the rounds should overlap),
 * then yield, so that a loaded machine does not burn whole time slices. */
static void relax_or_yield(int k)
{
    if (k < 2000)
        conc__cpu_relax();
    else
        sched_yield();
}

/* The light side also runs the rounds: it resets x and y once the heavy side
 * has finished the previous round, starts the next, and checks the outcome. */
static void *dekker_light(void *p)
{
    struct dekker *d = p;
    uint64_t rng = 99;
    unsigned delay = 64; /* steered so that the two sides overlap */
    for (long r = 1; r <= d->rounds; r++) {
        atomic_store_explicit(&d->x, 0, memory_order_relaxed);
        atomic_store_explicit(&d->y, 0, memory_order_relaxed);
        atomic_store_explicit(&d->go, r, memory_order_release);
        spin_for(&rng, 2 * delay + 1);
        atomic_store_explicit(&d->x, 1, memory_order_relaxed);
        conc__fence_light();
        int r0 = atomic_load_explicit(&d->y, memory_order_relaxed);
        for (int k = 0; atomic_load_explicit(&d->done, memory_order_acquire) != r; k++)
            relax_or_yield(k);
        int r1 = atomic_load_explicit(&d->r1, memory_order_relaxed);
        d->seen[r0][r1]++;
        if (r0 == 0 && r1 == 0)
            break; /* reported by the test */
        if (r0 == 0 && r1 == 1)
            delay += 1 + delay / 8; /* we ran before the other side: start later */
        else if (r0 == 1 && r1 == 0 && delay > 0)
            delay -= 1 + delay / 8; /* we ran after it: start sooner */
    }
    return NULL;
}

static void *dekker_heavy(void *p)
{
    struct dekker *d = p;
    uint64_t rng = 7;
    for (long r = 1; r <= d->rounds; r++) {
        for (int k = 0; atomic_load_explicit(&d->go, memory_order_acquire) != r; k++)
            relax_or_yield(k);
        spin_for(&rng, 16);
        atomic_store_explicit(&d->y, 1, memory_order_relaxed);
        conc__fence_heavy();
        atomic_store_explicit(&d->r1, atomic_load_explicit(&d->x, memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&d->done, r, memory_order_release);
    }
    return NULL;
}

static void run_dekker(long rounds)
{
    struct dekker d;
    memset(&d, 0, sizeof d);
    d.rounds = rounds;
    pthread_t h = conc_test_start(dekker_heavy, &d);
    pthread_t l = conc_test_start(dekker_light, &d);
    assert_int_equal(pthread_join(l, NULL), 0);
    if (d.seen[0][0]) {
        /* the heavy side waits for a round that will not come: let it finish */
        for (long r = atomic_load(&d.go) + 1; r <= rounds; r++) {
            while (atomic_load(&d.done) != r - 1)
                sched_yield();
            atomic_store(&d.go, r);
        }
    }
    assert_int_equal(pthread_join(h, NULL), 0);
    print_message("membarrier %s: (y,x) = (0,1) %ld, (1,0) %ld, (1,1) %ld, (0,0) %ld\n",
                  conc__membarrier_ok ? "in use" : "not in use (full fences)", d.seen[0][1],
                  d.seen[1][0], d.seen[1][1], d.seen[0][0]);
    assert_int_equal(d.seen[0][0], 0);
    assert_int_equal(d.seen[0][1] + d.seen[1][0] + d.seen[1][1], rounds);
}

static void fence_dekker_stress(void **state)
{
    (void)state;
    /* The library registers membarrier when the kernel offers it. */
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    bool offered = cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED);
    print_message("kernel offers PRIVATE_EXPEDITED: %s; conc__membarrier_ok: %s\n",
                  offered ? "yes" : "no", conc__membarrier_ok ? "yes" : "no");
    if (conc__membarrier_ok)
        assert_true(offered);
    else if (offered)
        assert_int_not_equal(
            syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0), 0);
    run_dekker(conc_test_scaled(5000, 500));
}

/* The fallback (both sides full fences) must be just as correct. */
static void fence_dekker_fallback_stress(void **state)
{
    (void)state;
    bool saved = conc__membarrier_ok;
    conc__membarrier_ok = false; /* no other thread runs yet */
    run_dekker(conc_test_scaled(200000, 10000));
    conc__membarrier_ok = saved;
}

/* ---- adaptive spinning (wait.h): the score's rules ---- */

static bool never_ready(void *arg)
{
    (void)arg;
    return false;
}

static bool said_asleep(void *arg)
{
    return *(bool *)arg;
}

/* Waits on q that do not spin, out of the next n: each one not a probe. */
static int waits_without_spin(struct conc__waitq *q, int n)
{
    int quiet = 0;
    for (int i = 0; i < n; i++) {
        bool probe;
        if (conc__spin_budget(q, &probe) == 0)
            quiet++;
        else
            conc__spin_learn(q, false, probe);
    }
    return quiet;
}

/* A new queue spins; failures stop it; a successful probe resumes spinning
 * at once; failed probes grow apart up to one in 256 waits, no further. */
static void spin_score_stops_and_resumes(void **state)
{
    (void)state;
    if (!CONC__SPIN_ENABLED)
        skip(); /* sanitizer builds never spin */
    struct conc__waitq q;
    conc__waitq_init(&q, 0);
    bool probe;
    assert_int_equal(conc__spin_budget(&q, &probe), CONC__SPIN_BUDGET);
    assert_false(probe);
    for (int i = 0; i < 8; i++)
        conc__spin_learn(&q, false, false);
    assert_false(conc__spin_worthwhile(&q));
    /* Every failed probe doubles the interval, up to 16 << 4 waits. */
    int quiet = waits_without_spin(&q, 16 * 1024);
    assert_true(quiet >= 16 * 1024 - 16 * 1024 / 256 - 8);
    assert_true(quiet < 16 * 1024 - 16 * 1024 / 256 + 8);
    /* A probe that succeeds resumes spinning for every wait. */
    while (conc__spin_budget(&q, &probe) == 0)
        ;
    assert_true(probe);
    conc__spin_learn(&q, true, probe);
    assert_true(conc__spin_worthwhile(&q));
    assert_int_equal(conc__spin_budget(&q, &probe), CONC__SPIN_BUDGET);
    assert_false(probe);
}

/* A spin that fails while the thread it waits for sleeps on the same queue
 * teaches nothing; one that fails while it is awake counts. */
static void spin_failure_excused_while_other_side_sleeps(void **state)
{
    (void)state;
    if (!CONC__SPIN_ENABLED)
        skip();
    struct conc__waitq q;
    conc__waitq_init(&q, 0);
    bool asleep = true;
    for (int i = 0; i < 8; i++)
        assert_false(conc__spin_until_awake(&q, never_ready, said_asleep, &asleep));
    assert_true(conc__spin_worthwhile(&q));
    asleep = false;
    for (int i = 0; i < 8; i++)
        conc__spin_until_awake(&q, never_ready, said_asleep, &asleep);
    assert_false(conc__spin_worthwhile(&q));
}

CONC_TEST_MAIN(cmocka_unit_test(sem_wake_one_passes_over_expiring_waiter),
               cmocka_unit_test(wake_one_skips_expiring_waiter),
               cmocka_unit_test(park_honours_wake_after_deadline),
               cmocka_unit_test(waker_wins_over_passed_deadline),
               cmocka_unit_test(sem_barged_wake_passed_on),
               cmocka_unit_test(wake_versus_timeout_race_stress),
               cmocka_unit_test(sem_no_lost_wakeup_stress),
               cmocka_unit_test(wake_n_wakes_exactly_n_oldest_first),
               cmocka_unit_test(wake_if_picks_by_want),
               cmocka_unit_test(wake_if_skips_timed_out_waiter),
               cmocka_unit_test(handoff_goes_to_oldest_live_waiter),
               cmocka_unit_test(kill_refuses_busy_queue),
               cmocka_unit_test(multiwait_one_queue_fires),
               cmocka_unit_test(multiwait_several_fire_before_park),
               cmocka_unit_test(multiwait_times_out),
               cmocka_unit_test(multiwait_shares_queue_with_thread_waiter),
               cmocka_unit_test(multiwait_wakes_counted_stress),
               cmocka_unit_test(fence_dekker_stress),
               cmocka_unit_test(fence_dekker_fallback_stress),
               cmocka_unit_test(spin_score_stops_and_resumes),
               cmocka_unit_test(spin_failure_excused_while_other_side_sleeps))
