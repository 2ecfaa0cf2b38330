/* pool.h, task groups (structured concurrency): spawn and wait, the first
 * error is what the group reports and it requests cancellation of every
 * other task (running ones see conc_cancel_requested() turn true, queued ones
 * never start, a task spawned after the failure is cancelled before it
 * starts), only the first error counts, wait's timeout, conc_task_group_cancel,
 * destroy waits for every task (nothing outlives the group), EDEADLK from a
 * task of the group, nested spawns from the group's own tasks, a wait inside
 * a pool task that helps on one worker, misuse codes and shut-down pools. */
#include "test.h"

#include "exec/future_impl.h"
#include "exec/pool/pool_impl.h"

#include <stdatomic.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

static conc_task_group *group_new(conc_pool *p)
{
    conc_task_group *g = NULL;
    assert_int_equal(conc_task_group_create(&g, p), 0);
    assert_non_null(g);
    return g;
}

static void group_free(conc_task_group *g)
{
    assert_int_equal(conc_task_group_destroy(g), 0);
}

/* Runs until cancellation is requested, then stops with CONC_ECANCELED. */
struct coop {
    conc_event started;
    _Atomic bool saw_cancel;
};

static int coop_task(void *arg, conc_result *out)
{
    (void)out;
    struct coop *c = arg;
    assert_false(conc_cancel_requested());
    assert_int_equal(conc_event_set(&c->started), 0);
    while (!conc_cancel_requested())
        conc_yield();
    atomic_store(&c->saw_cancel, true);
    return CONC_ECANCELED;
}

static int fail_task(void *arg, conc_result *out)
{
    (void)out;
    return (int)(intptr_t)arg;
}

/* ------------------------------------------------------------------ misuse */

static void task_group_bad_input_is_einval(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    conc_task_group *g = NULL;
    assert_int_equal(conc_task_group_create(NULL, p), CONC_EINVAL);
    assert_int_equal(conc_task_group_create(&g, NULL), CONC_EINVAL);
    _Atomic int runs = 0;
    assert_int_equal(conc_task_group_spawn(NULL, conc_test_count_task, &runs), CONC_EINVAL);
    int fe;
    assert_int_equal(conc_task_group_wait_timed(NULL, &fe, 0), CONC_EINVAL);
    assert_int_equal(conc_task_group_cancel(NULL), CONC_EINVAL);
    assert_int_equal(conc_task_group_destroy(NULL), CONC_EINVAL);
    g = group_new(p);
    assert_int_equal(conc_task_group_spawn(g, NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_task_group_wait_timed(g, &fe, -2), CONC_EINVAL);
    assert_int_equal(conc_task_group_wait_timed(g, NULL, INT64_MIN), CONC_EINVAL);
    /* An empty group: waits end at once. */
    fe = 7;
    assert_int_equal(conc_task_group_wait_timed(g, &fe, 0), 0);
    assert_int_equal(fe, 0);
    assert_int_equal(conc_task_group_wait(g, NULL), 0);
    assert_int_equal(conc_task_group_cancel(g), 0);
    group_free(g);
    conc_test_pool_free(p);
    assert_int_equal(atomic_load(&runs), 0);
}

static void task_group_on_shut_down_pool(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    conc_task_group *g = group_new(p);
    assert_int_equal(conc_pool_shutdown(p, false), 0);
    _Atomic int runs = 0;
    assert_int_equal(conc_task_group_spawn(g, conc_test_count_task, &runs), CONC_ESHUTDOWN);
    int fe = 1;
    assert_int_equal(conc_task_group_wait_timed(g, &fe, 0), 0);
    assert_int_equal(fe, 0);
    group_free(g);
    conc_test_pool_free(p);
    assert_int_equal(atomic_load(&runs), 0);
}

/* --------------------------------------------------------- spawn and wait */

static void task_group_spawn_and_wait(void **state)
{
    (void)state;
    enum { N = 300 };
    conc_pool *p = conc_test_pool_new(3);
    conc_task_group *g = group_new(p);
    _Atomic int runs = 0;
    for (int i = 0; i < N; i++)
        assert_int_equal(conc_task_group_spawn(g, conc_test_count_task, &runs), 0);
    int fe = 1;
    assert_int_equal(conc_task_group_wait(g, &fe), 0);
    assert_int_equal(fe, 0);
    assert_int_equal(atomic_load(&runs), N);
    /* More spawns after a wait: the next wait covers them. */
    for (int i = 0; i < N; i++)
        assert_int_equal(conc_task_group_spawn(g, conc_test_count_task, &runs), 0);
    assert_int_equal(conc_task_group_wait(g, &fe), 0);
    assert_int_equal(atomic_load(&runs), 2 * N);
    group_free(g);
    conc_test_pool_free(p);
}

static void task_group_wait_timeout(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    conc_task_group *g = group_new(p);
    struct conc_test_gate a;
    conc_test_gate_init(&a, 0, 0);
    assert_int_equal(conc_task_group_spawn(g, conc_test_gated_task, &a), 0);
    assert_int_equal(conc_event_wait(&a.started), 0);
    int fe = 5;
    assert_int_equal(conc_task_group_wait_timed(g, &fe, 0), CONC_ETIMEDOUT);
    assert_int_equal(fe, 0);
    int64_t t0 = conc_now_ns();
    assert_int_equal(conc_task_group_wait_timed(g, &fe, CONC_MSEC(20)), CONC_ETIMEDOUT);
    int64_t took = conc_now_ns() - t0;
    assert_true(took >= CONC_MSEC(20));
    assert_true(took < CONC_MSEC(20) + CONC_SEC(1));
    print_message("group wait timed out after %.3f ms (timeout 20 ms)\n", (double)took / 1e6);
    conc_test_gate_open(&a);
    assert_int_equal(conc_task_group_wait(g, &fe), 0);
    assert_true(atomic_load(&a.ended));
    group_free(g);
    conc_test_pool_free(p);
    conc_test_gate_destroy(&a);
}

/* ------------------------------------------------------------ first error */

/* Two cooperative tasks run and three queue behind a failing one: the failure
 * is reported, the running two see the cancel request (and stopping with
 * CONC_ECANCELED does not count as failing), the queued three never run. */
static void task_group_first_error_cancels_the_rest(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(3);
    conc_task_group *g = group_new(p);
    struct coop c[2];
    for (int i = 0; i < 2; i++) {
        memset(&c[i], 0, sizeof c[i]);
        assert_int_equal(conc_event_init(&c[i].started, NULL), 0);
        assert_int_equal(conc_task_group_spawn(g, coop_task, &c[i]), 0);
        assert_int_equal(conc_event_wait(&c[i].started), 0);
    }
    struct conc_test_gate f;
    conc_test_gate_init(&f, -42, 0);
    assert_int_equal(conc_task_group_spawn(g, conc_test_gated_task, &f), 0);
    assert_int_equal(conc_event_wait(&f.started), 0);
    _Atomic int queued_runs = 0;
    for (int i = 0; i < 3; i++) /* every worker is busy: these queue */
        assert_int_equal(conc_task_group_spawn(g, conc_test_count_task, &queued_runs), 0);
    int fe = 1;
    assert_int_equal(conc_task_group_wait_timed(g, &fe, 0), CONC_ETIMEDOUT);
    assert_int_equal(fe, 0);
    assert_false(atomic_load(&c[0].saw_cancel));

    conc_test_gate_open(&f);
    assert_int_equal(conc_task_group_wait(g, &fe), 0);
    assert_int_equal(fe, -42);
    assert_true(atomic_load(&c[0].saw_cancel));
    assert_true(atomic_load(&c[1].saw_cancel));
    assert_int_equal(atomic_load(&queued_runs), 0);
    group_free(g);
    conc_test_pool_free(p);
    assert_int_equal(atomic_load(&queued_runs), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(conc_event_destroy(&c[i].started), 0);
    conc_test_gate_destroy(&f);
}

/* Only the first failure is reported: a later failing task changes nothing.
 * (That tasks spawned after the failure never start is checked, with many
 * of them, by task_group_spawn_after_failure_stress.) */
static void task_group_only_first_error_counts(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    conc_task_group *g = group_new(p);
    assert_int_equal(conc_task_group_spawn(g, fail_task, (void *)(intptr_t)-1), 0);
    int fe = 0;
    assert_int_equal(conc_task_group_wait(g, &fe), 0);
    assert_int_equal(fe, -1);
    assert_int_equal(conc_task_group_spawn(g, fail_task, (void *)(intptr_t)-2), 0);
    assert_int_equal(conc_task_group_wait(g, &fe), 0);
    assert_int_equal(fe, -1);
    group_free(g);
    conc_test_pool_free(p);
}

/* After the failure is known, spawned tasks never start, even with idle
 * workers racing to take them. */
static void task_group_spawn_after_failure_stress(void **state)
{
    (void)state;
    long n = conc_test_scaled(20000, 2000);
    conc_pool *p = conc_test_pool_new(4);
    conc_task_group *g = group_new(p);
    assert_int_equal(conc_task_group_spawn(g, fail_task, (void *)(intptr_t)-3), 0);
    int fe = 0;
    assert_int_equal(conc_task_group_wait(g, &fe), 0);
    assert_int_equal(fe, -3);
    _Atomic int runs = 0;
    for (long i = 0; i < n; i++)
        assert_int_equal(conc_task_group_spawn(g, conc_test_count_task, &runs), 0);
    assert_int_equal(conc_task_group_wait(g, &fe), 0);
    assert_int_equal(fe, -3);
    group_free(g);
    conc_test_pool_free(p);
    print_message("%d of %ld tasks spawned after the failure started\n", atomic_load(&runs), n);
    assert_int_equal(atomic_load(&runs), 0);
}

/* conc_task_group_cancel: running tasks see the request, queued ones never
 * run, and nothing counts as a failure. */
static void task_group_cancel(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    conc_task_group *g = group_new(p);
    struct coop c;
    memset(&c, 0, sizeof c);
    assert_int_equal(conc_event_init(&c.started, NULL), 0);
    assert_int_equal(conc_task_group_spawn(g, coop_task, &c), 0);
    assert_int_equal(conc_event_wait(&c.started), 0);
    _Atomic int runs = 0;
    for (int i = 0; i < 5; i++)
        assert_int_equal(conc_task_group_spawn(g, conc_test_count_task, &runs), 0);
    assert_int_equal(conc_task_group_cancel(g), 0);
    int fe = 1;
    assert_int_equal(conc_task_group_wait(g, &fe), 0);
    assert_int_equal(fe, 0);
    assert_true(atomic_load(&c.saw_cancel));
    assert_int_equal(atomic_load(&runs), 0);
    group_free(g);
    conc_test_pool_free(p);
    assert_int_equal(conc_event_destroy(&c.started), 0);
}

/* ------------------------------------------------------------- lifetime */

/* destroy waits for every task: each task checks, as its last act, that
 * destroy has not returned. */
struct lifetime {
    conc_task_group *g;
    conc_event go;
    _Atomic pid_t destroyer; /* the thread that calls destroy */
    _Atomic bool destroyed;
    _Atomic int outlived, ended;
    int destroy_rc;
};

static int lifetime_task(void *arg, conc_result *out)
{
    (void)out;
    struct lifetime *l = arg;
    assert_int_equal(conc_event_wait(&l->go), 0);
    if (atomic_load(&l->destroyed))
        atomic_fetch_add(&l->outlived, 1);
    atomic_fetch_add(&l->ended, 1);
    return 0;
}

static void *destroy_thread(void *arg)
{
    struct lifetime *l = arg;
    atomic_store(&l->destroyer, conc_test_tid());
    l->destroy_rc = conc_task_group_destroy(l->g);
    atomic_store(&l->destroyed, true);
    return NULL;
}

static void task_group_destroy_waits_for_tasks(void **state)
{
    (void)state;
    enum { N = 20 };
    conc_pool *p = conc_test_pool_new(3);
    struct lifetime l;
    memset(&l, 0, sizeof l);
    assert_int_equal(conc_event_init(&l.go, NULL), 0);
    l.g = group_new(p);
    for (int i = 0; i < N; i++)
        assert_int_equal(conc_task_group_spawn(l.g, lifetime_task, &l), 0);
    pthread_t th = conc_test_start(destroy_thread, &l);
    /* Destroy waits for the tasks: the kernel has its thread asleep in a
     * futex wait with no timeout (the group's wait queue: no other futex is
     * in its way), which only a wake ends. One that returns, or waits with a
     * deadline, fails here. */
    CONC_TEST_POLL_UNTIL(atomic_load(&l.destroyer) != 0);
    CONC_TEST_POLL_UNTIL(atomic_load(&l.destroyed) ||
                         conc_test_thread_in_untimed_futex_wait(atomic_load(&l.destroyer), NULL));
    assert_false(atomic_load(&l.destroyed));
    assert_int_equal(conc_event_set(&l.go), 0);
    conc_test_join(th);
    assert_int_equal(l.destroy_rc, 0);
    assert_int_equal(atomic_load(&l.ended), N);
    assert_int_equal(atomic_load(&l.outlived), 0);
    conc_test_pool_free(p);
    assert_int_equal(conc_event_destroy(&l.go), 0);
}

/* From a task of the group, waiting on the group (and destroying it) could
 * never end: EDEADLK, and nothing is freed. */
struct self_group {
    conc_task_group *g;
    int wait_rc, wait0_rc, destroy_rc;
};

static int self_group_task(void *arg, conc_result *out)
{
    (void)out;
    struct self_group *s = arg;
    s->wait_rc = conc_task_group_wait(s->g, NULL);
    s->wait0_rc = conc_task_group_wait_timed(s->g, NULL, 0);
    s->destroy_rc = conc_task_group_destroy(s->g);
    return 0;
}

static void task_group_wait_from_own_task_is_edeadlk(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(2);
    struct self_group s = {0};
    s.g = group_new(p);
    assert_int_equal(conc_task_group_spawn(s.g, self_group_task, &s), 0);
    int fe = 1;
    assert_int_equal(conc_task_group_wait(s.g, &fe), 0);
    assert_int_equal(fe, 0);
    assert_int_equal(s.wait_rc, CONC_EDEADLK);
    assert_int_equal(s.wait0_rc, CONC_EDEADLK);
    assert_int_equal(s.destroy_rc, CONC_EDEADLK);
    group_free(s.g); /* still valid */
    conc_test_pool_free(p);
}

/* ---------------------------------------------------------------- nesting */

/* Group tasks spawn into their own group, a tree of fanout 3: one wait from
 * outside covers them all. */
struct node_ctx {
    conc_task_group *g;
    _Atomic long nodes;
    int depth_max;
};

struct node {
    struct node_ctx *ctx;
    int depth;
};

static int node_task(void *arg, conc_result *out)
{
    (void)out;
    struct node *n = arg;
    struct node_ctx *ctx = n->ctx;
    atomic_fetch_add(&ctx->nodes, 1);
    if (n->depth < ctx->depth_max) {
        for (int i = 0; i < 3; i++) {
            struct node *kid = malloc(sizeof *kid);
            assert_non_null(kid);
            *kid = (struct node){ctx, n->depth + 1};
            assert_int_equal(conc_task_group_spawn(ctx->g, node_task, kid), 0);
        }
    }
    free(n);
    return 0;
}

static void task_group_nested_spawns(void **state)
{
    (void)state;
    const int workers[] = {1, 4};
    for (int k = 0; k < 2; k++) {
        conc_pool *p = conc_test_pool_new(workers[k]);
        struct node_ctx ctx = {group_new(p), 0, 6};
        struct node *root = malloc(sizeof *root);
        assert_non_null(root);
        *root = (struct node){&ctx, 0};
        assert_int_equal(conc_task_group_spawn(ctx.g, node_task, root), 0);
        int fe = 1;
        assert_int_equal(conc_task_group_wait(ctx.g, &fe), 0);
        assert_int_equal(fe, 0);
        assert_int_equal(atomic_load(&ctx.nodes), (729 * 3 - 1) / 2); /* 3^0 + ... + 3^6 */
        group_free(ctx.g);
        conc_test_pool_free(p);
    }
}

/* A pool task owning a group waits on it: on one worker the wait must run
 * the group's tasks itself. */
struct owner {
    conc_pool *p;
    _Atomic int runs;
    int wait_rc, fe;
};

static int owner_task(void *arg, conc_result *out)
{
    (void)out;
    struct owner *o = arg;
    conc_task_group *g = NULL;
    assert_int_equal(conc_task_group_create(&g, o->p), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(conc_task_group_spawn(g, conc_test_count_task, &o->runs), 0);
    o->wait_rc = conc_task_group_wait(g, &o->fe);
    assert_int_equal(conc_task_group_destroy(g), 0);
    return 0;
}

static void task_group_wait_in_task_helps_one_worker(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    struct owner o = {p, 0, 1, 1};
    conc_future *f = NULL;
    assert_int_equal(conc_pool_submit(p, owner_task, &o, &f), 0);
    assert_int_equal(conc_future_result(f, NULL), 0);
    assert_int_equal(conc_future_release(f), 0);
    assert_int_equal(o.wait_rc, 0);
    assert_int_equal(o.fe, 0);
    assert_int_equal(atomic_load(&o.runs), 20);
    conc_test_pool_free(p);
}

/* ------------------------------------------------------------------ stress */

/* Groups from two threads at once on one pool, some with a failing task at
 * a varying place: the reported error is that task's, every group ends, and
 * a group without a failure runs every task. */
struct group_job {
    conc_pool *p;
    long rounds;
    int seed;
};

static void *group_job_thread(void *arg)
{
    struct group_job *j = arg;
    for (long r = 0; r < j->rounds; r++) {
        conc_task_group *g = group_new(j->p);
        _Atomic int runs = 0;
        int fail_at = (int)((r * 7 + j->seed) % 40); /* >= 30: no failure */
        for (int i = 0; i < 30; i++) {
            if (i == fail_at)
                assert_int_equal(conc_task_group_spawn(g, fail_task, (void *)(intptr_t)-(i + 1)), 0);
            else
                assert_int_equal(conc_task_group_spawn(g, conc_test_count_task, &runs), 0);
        }
        int fe = 1;
        assert_int_equal(conc_task_group_wait(g, &fe), 0);
        if (fail_at < 30) {
            assert_int_equal(fe, -(fail_at + 1));
            assert_true(atomic_load(&runs) <= 29);
        } else {
            assert_int_equal(fe, 0);
            assert_int_equal(atomic_load(&runs), 30);
        }
        group_free(g);
    }
    return NULL;
}

static void task_group_many_groups_stress(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(4);
    long rounds = conc_test_scaled(2000, 200);
    struct group_job jobs[2] = {{p, rounds, 1}, {p, rounds, 2}};
    conc_test_run_threads(2, group_job_thread, jobs, sizeof jobs[0]);
    conc_test_pool_free(p);
}

CONC_TEST_MAIN(
    cmocka_unit_test(task_group_bad_input_is_einval),
    cmocka_unit_test(task_group_on_shut_down_pool),
    cmocka_unit_test(task_group_spawn_and_wait),
    cmocka_unit_test(task_group_wait_timeout),
    cmocka_unit_test(task_group_first_error_cancels_the_rest),
    cmocka_unit_test(task_group_only_first_error_counts),
    cmocka_unit_test(task_group_spawn_after_failure_stress),
    cmocka_unit_test(task_group_cancel),
    cmocka_unit_test(task_group_destroy_waits_for_tasks),
    cmocka_unit_test(task_group_wait_from_own_task_is_edeadlk),
    cmocka_unit_test(task_group_nested_spawns),
    cmocka_unit_test(task_group_wait_in_task_helps_one_worker),
    cmocka_unit_test(task_group_many_groups_stress))
