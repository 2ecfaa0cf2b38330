/* pool.h: workers started on demand, as Python's ThreadPoolExecutor since
 * 3.8 — none after create, one per task held at once up to max_workers and
 * never more, an idle worker reused before a new one starts, nested
 * fork-join from one outside task spreading over several workers, racing
 * submitters within max_workers, a shutdown racing the starts (every
 * accepted task runs, every started worker is joined) — and
 * conc_pool_enumerate_workers (the live workers, bad input).
 *
 * Tasks are held by events until the test lets them go, and counts are
 * awaited by polling (a ceiling that only catches a hang): nothing here
 * depends on timing. */
#define _GNU_SOURCE
#include "test.h"

#include "exec/pool/pool_impl.h"

#include <stdatomic.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

static int64_t live_workers(conc_pool *p)
{
    int64_t n = conc_pool_enumerate_workers(p, NULL, 0);
    assert_true(n >= 0);
    return n;
}

/* Many tasks held by one gate: each counts itself running, then waits. */
struct held {
    conc_event go;
    _Atomic int running, ended;
};

static int held_task(void *arg, conc_result *out)
{
    struct held *h = arg;
    (void)out;
    atomic_fetch_add(&h->running, 1);
    int rc = conc_event_wait(&h->go);
    atomic_fetch_add(&h->ended, 1);
    return rc;
}

/* --------------------------------------------------------------- the tests */

/* A pool sized for waiting work starts no thread until it is used; one task
 * held running makes exactly one worker, named "<name>-0". */
static void pool_workers_none_until_used(void **state)
{
    (void)state;
    conc_pool *p = NULL;
    conc_pool_opts o = {.max_workers = 32, .name = "lazy"};
    assert_int_equal(conc_pool_create(&p, &o), 0);
    assert_int_equal(live_workers(p), 0);
    assert_int_equal(conc_pool_workers(p), 32); /* the maximum, not the live count */

    struct conc_test_gate g;
    conc_future *f = conc_test_hold_worker(p, &g);
    conc_thread_info info[4];
    memset(info, 0, sizeof info);
    assert_int_equal(conc_pool_enumerate_workers(p, info, 4), 1);
    assert_string_equal(info[0].name, "lazy-0");
    assert_true(info[0].started_by_conc);
    assert_true(info[0].id > 0);
    assert_int_equal(conc_pool_workers(p), 32);
    conc_test_gate_open(&g);
    assert_int_equal(conc_future_result(f, NULL), 0);
    conc_test_release(f);
    conc_test_gate_destroy(&g);
    assert_int_equal(live_workers(p), 1);
    assert_int_equal(conc_pool_shutdown(p, false), 0);
    assert_int_equal(live_workers(p), 0); /* shutdown ends them */
    conc_test_pool_free(p);
}

/* 40 tasks held at once on a pool of at most 8: exactly 8 workers start and
 * run 8 of them, the other 32 wait queued; let go, all 40 finish, and the 8
 * workers stay. */
static void pool_workers_grow_to_max_and_no_more(void **state)
{
    (void)state;
    enum { MAX = 8, N = 40 };
    conc_pool *p = conc_test_pool_new(MAX);
    struct held h = {0};
    assert_int_equal(conc_event_init(&h.go, NULL), 0);
    conc_future *f[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(conc_pool_submit(p, held_task, &h, &f[i]), 0);
    CONC_TEST_POLL_UNTIL(atomic_load(&h.running) == MAX);
    assert_int_equal(live_workers(p), MAX);
    assert_int_equal(atomic_load(&p->started), MAX);
    int running = 0;
    for (int i = 0; i < N; i++)
        running += conc_future_running(f[i]);
    assert_int_equal(running, MAX);
    assert_int_equal(atomic_load(&h.running), MAX); /* no ninth worker took one */
    assert_int_equal(conc_event_set(&h.go), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(conc_future_result(f[i], NULL), 0);
        conc_test_release(f[i]);
    }
    assert_int_equal(atomic_load(&h.ended), N);
    assert_int_equal(live_workers(p), MAX);
    conc_test_pool_free(p);
    assert_int_equal(conc_event_destroy(&h.go), 0);
}

/* Submit, wait, submit again: the worker that ran the first task is idle by
 * the time its result can be seen, so every later task reuses it. */
static void pool_workers_idle_one_is_reused(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(4);
    _Atomic int runs = 0;
    for (int i = 0; i < 200; i++) {
        conc_future *f = conc_test_submit(p, conc_test_count_task, &runs);
        assert_int_equal(conc_future_result(f, NULL), 0);
        conc_test_release(f);
        assert_int_equal(live_workers(p), 1);
    }
    assert_int_equal(atomic_load(&runs), 200);
    conc_test_pool_free(p);
}

/* Nested fork-join from one outside task: the task spawns K children, each
 * of which waits until all K run at once (an event the K-th sets). With a
 * pool of at most K workers that can happen only if the spawns started
 * K - 1 more workers (the parent's own worker runs one child while it
 * waits). A child that waited 10 s for the others fails with ETIMEDOUT. */
enum { FJ_K = 4 };

struct fork_join {
    conc_pool *p;
    conc_event all_running;
    _Atomic int running;
    _Atomic pthread_t thread[FJ_K];
};

struct fj_child {
    struct fork_join *fj;
    int i;
};

static int fj_child_task(void *arg, conc_result *out)
{
    struct fj_child *c = arg;
    (void)out;
    atomic_store(&c->fj->thread[c->i], pthread_self());
    if (atomic_fetch_add(&c->fj->running, 1) + 1 == FJ_K)
        conc_event_set(&c->fj->all_running);
    return conc_event_wait_timed(&c->fj->all_running, CONC_SEC(10));
}

static int fj_parent_task(void *arg, conc_result *out)
{
    struct fork_join *fj = arg;
    struct fj_child child[FJ_K];
    conc_future *f[FJ_K];
    int rc = 0;
    for (int i = 0; i < FJ_K; i++) {
        child[i] = (struct fj_child){fj, i};
        if (conc_pool_submit(fj->p, fj_child_task, &child[i], &f[i]) != 0)
            return -1;
    }
    for (int i = 0; i < FJ_K; i++) {
        int st = conc_future_result(f[i], NULL);
        if (st != 0 && rc == 0)
            rc = st;
        conc_future_release(f[i]);
    }
    out->value = atomic_load(&fj->running);
    return rc;
}

static void pool_workers_nested_fork_join_spreads(void **state)
{
    (void)state;
    struct fork_join fj = {.p = conc_test_pool_new(FJ_K)};
    assert_int_equal(conc_event_init(&fj.all_running, NULL), 0);
    conc_future *f = conc_test_submit(fj.p, fj_parent_task, &fj);
    conc_result r;
    assert_int_equal(conc_future_result(f, &r), 0);
    assert_int_equal(r.value, FJ_K);
    conc_test_release(f);
    for (int i = 0; i < FJ_K; i++)
        for (int j = i + 1; j < FJ_K; j++)
            assert_false(pthread_equal(atomic_load(&fj.thread[i]), atomic_load(&fj.thread[j])));
    assert_int_equal(live_workers(fj.p), FJ_K);
    conc_test_pool_free(fj.p);
    assert_int_equal(conc_event_destroy(&fj.all_running), 0);
}

/* Four threads submit 10 held tasks each at once to a pool of at most 8:
 * racing starts never make more than 8 workers. */
struct submitter {
    conc_pool *p;
    struct held *h;
    conc_future *f[10];
};

static void *submit_ten(void *arg)
{
    struct submitter *s = arg;
    for (int i = 0; i < 10; i++)
        assert_int_equal(conc_pool_submit(s->p, held_task, s->h, &s->f[i]), 0);
    return NULL;
}

static void pool_workers_racing_submitters_stay_within_max(void **state)
{
    (void)state;
    enum { MAX = 8 };
    long rounds = conc_test_scaled(20, 3);
    for (long r = 0; r < rounds; r++) {
        conc_pool *p = conc_test_pool_new(MAX);
        struct held h = {0};
        assert_int_equal(conc_event_init(&h.go, NULL), 0);
        struct submitter s[4];
        for (int i = 0; i < 4; i++)
            s[i] = (struct submitter){.p = p, .h = &h};
        conc_test_run_threads(4, submit_ten, s, sizeof s[0]);
        CONC_TEST_POLL_UNTIL(atomic_load(&h.running) == MAX);
        assert_int_equal(atomic_load(&p->started), MAX);
        assert_int_equal(live_workers(p), MAX);
        assert_int_equal(conc_event_set(&h.go), 0);
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 10; j++) {
                assert_int_equal(conc_future_result(s[i].f[j], NULL), 0);
                conc_test_release(s[i].f[j]);
            }
        assert_int_equal(atomic_load(&h.ended), 40);
        assert_int_equal(atomic_load(&p->started), MAX);
        conc_test_pool_free(p);
        assert_int_equal(conc_event_destroy(&h.go), 0);
    }
}

/* A shutdown racing the starts of workers: a thread submits short tasks
 * (each naps 20 us, so workers stay busy and more start) until the pool
 * refuses, while the test shuts the pool down after a varying number of
 * submissions; room for 8 queued tasks keeps the backlog short (the
 * submitter waits for room, and the shutdown fails that wait). Every task accepted runs (none is left with no worker),
 * shutdown joins every worker started (none is live after it, and the
 * process has no thread more than before), whatever the interleaving. */
struct racer {
    conc_pool *p;
    _Atomic long accepted, ran;
    int last_rc;
};

static int nap_task(void *arg, conc_result *out)
{
    (void)out;
    conc_sleep(CONC_USEC(20));
    atomic_fetch_add(&((struct racer *)arg)->ran, 1);
    return 0;
}

static void *submit_until_refused(void *arg)
{
    struct racer *r = arg;
    int rc;
    while ((rc = conc_pool_submit(r->p, nap_task, r, NULL)) == 0)
        atomic_fetch_add(&r->accepted, 1);
    r->last_rc = rc;
    return NULL;
}

static void pool_workers_shutdown_races_starts_stress(void **state)
{
    (void)state;
    int threads0 = conc_thread_active_count();
    long rounds = conc_test_scaled(300, 30);
    for (long i = 0; i < rounds; i++) {
        struct racer r = {.p = conc_test_pool_new_bounded(4, 8)};
        pthread_t t = conc_test_start(submit_until_refused, &r);
        long after = i % 8;
        CONC_TEST_POLL_UNTIL(atomic_load(&r.accepted) >= after);
        assert_int_equal(conc_pool_shutdown(r.p, false), 0);
        assert_int_equal(live_workers(r.p), 0);
        conc_test_join(t);
        assert_int_equal(r.last_rc, CONC_ESHUTDOWN);
        assert_int_equal(atomic_load(&r.ran), atomic_load(&r.accepted));
        assert_true(atomic_load(&r.p->started) <= 4);
        conc_test_pool_free(r.p);
        assert_int_equal(conc_thread_active_count(), threads0);
    }
}

/* conc_pool_enumerate_workers: NULL pool, NULL out with room; NULL out with
 * cap 0 counts; a short array gets the first entries and the full count. */
static void pool_enumerate_workers_bad_input(void **state)
{
    (void)state;
    conc_thread_info info[2];
    assert_int_equal(conc_pool_enumerate_workers(NULL, info, 2), CONC_EINVAL);
    assert_int_equal(conc_pool_enumerate_workers(NULL, NULL, 0), CONC_EINVAL);
    conc_pool *p = conc_test_pool_new(3);
    assert_int_equal(conc_pool_enumerate_workers(p, NULL, 1), CONC_EINVAL);
    assert_int_equal(conc_pool_enumerate_workers(p, NULL, 0), 0);
    assert_int_equal(conc_pool_enumerate_workers(p, info, 0), 0);
    struct conc_test_gate g[3];
    conc_future *f[3];
    for (int i = 0; i < 3; i++)
        f[i] = conc_test_hold_worker(p, &g[i]);
    memset(info, 0, sizeof info);
    assert_int_equal(conc_pool_enumerate_workers(p, info, 2), 3);
    assert_int_equal(strncmp(info[0].name, "conc-pool-", 10), 0);
    assert_int_equal(strncmp(info[1].name, "conc-pool-", 10), 0);
    assert_true(info[0].id != info[1].id);
    for (int i = 0; i < 3; i++) {
        conc_test_gate_open(&g[i]);
        assert_int_equal(conc_future_result(f[i], NULL), 0);
        conc_test_release(f[i]);
        conc_test_gate_destroy(&g[i]);
    }
    conc_test_pool_free(p);
}

CONC_TEST_MAIN(cmocka_unit_test(pool_workers_none_until_used),
               cmocka_unit_test(pool_workers_grow_to_max_and_no_more),
               cmocka_unit_test(pool_workers_idle_one_is_reused),
               cmocka_unit_test(pool_workers_nested_fork_join_spreads),
               cmocka_unit_test(pool_workers_racing_submitters_stay_within_max),
               cmocka_unit_test(pool_workers_shutdown_races_starts_stress),
               cmocka_unit_test(pool_enumerate_workers_bad_input))
