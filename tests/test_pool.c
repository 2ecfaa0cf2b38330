/* pool.h: the thread pool against Python's ThreadPoolExecutor — create
 * (max_workers default = conc_cpu_count(), bad input), worker names
 * "<name>-N", submit and results, FIFO start of external tasks, the bounded
 * submission queue (EFULL by the deadline, a blocked submitter released by a
 * free slot or failed by a shutdown, a task's own submits never wait), the
 * initializer (runs once per worker, as it starts; a failure breaks the
 * pool: queued tasks end EBROKEN, later submits fail EBROKEN), shutdown (wait, cancel_futures
 * cancels only pending futures, running tasks may still submit subtasks,
 * EDEADLK from inside, a second call), destroy keeping futures valid, an
 * idle pool asleep, and the stress items: a million tasks from four threads,
 * ten thousand pools created and destroyed, shutdown racing submitters.
 *
 * Running tasks are held by conc_events; blocked threads and sleeping workers
 * are seen through the pool's counters (space_sleepers, sleepers), never by
 * sleeping and hoping. */
#define _GNU_SOURCE
#include "test.h"

#include "exec/future_impl.h"
#include "exec/pool/pool_impl.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */

/* Appends its index to a shared log (order of starts). */
struct order_log {
    _Atomic int n;
    int seq[256];
};

struct order_item {
    struct order_log *log;
    int id;
};

static int order_task(void *arg, conc_result *out)
{
    struct order_item *it = arg;
    it->log->seq[atomic_fetch_add(&it->log->n, 1)] = it->id;
    out->value = it->id;
    return 0;
}

/* ------------------------------------------------------- create and misuse */

static void pool_bad_input_is_einval(void **state)
{
    (void)state;
    conc_pool *p = (conc_pool *)(uintptr_t)1;
    assert_int_equal(conc_pool_create(NULL, NULL), CONC_EINVAL);
    conc_pool_opts neg = {.max_workers = -1};
    assert_int_equal(conc_pool_create(&p, &neg), CONC_EINVAL);
    neg.max_workers = INT32_MIN;
    assert_int_equal(conc_pool_create(&p, &neg), CONC_EINVAL);
    assert_int_equal(conc_pool_workers(NULL), CONC_EINVAL);
    conc_future *f = (conc_future *)(uintptr_t)1;
    assert_int_equal(conc_pool_submit(NULL, conc_test_noop_task, NULL, &f), CONC_EINVAL);
    assert_int_equal(conc_pool_submit_timed(NULL, conc_test_noop_task, NULL, &f, 0), CONC_EINVAL);
    assert_int_equal(conc_pool_shutdown(NULL, false), CONC_EINVAL);
    assert_int_equal(conc_pool_shutdown_timed(NULL, true, 0), CONC_EINVAL);
    assert_int_equal(conc_pool_destroy(NULL), CONC_EINVAL);

    p = conc_test_pool_new(1);
    f = (conc_future *)(uintptr_t)1;
    assert_int_equal(conc_pool_submit(p, NULL, NULL, &f), CONC_EINVAL);
    assert_int_equal(conc_pool_submit_timed(p, conc_test_noop_task, NULL, &f, -2), CONC_EINVAL);
    assert_int_equal(conc_pool_submit_timed(p, conc_test_noop_task, NULL, NULL, INT64_MIN),
                     CONC_EINVAL);
    /* f NULL is fire and forget; a valid submit fills *f. */
    assert_int_equal(conc_pool_submit(p, conc_test_noop_task, NULL, NULL), 0);
    assert_int_equal(conc_pool_submit(p, conc_test_noop_task, NULL, &f), 0);
    assert_non_null(f);
    assert_int_equal(conc_future_result(f, NULL), 0);
    conc_test_release(f);
    conc_test_pool_free(p);
}

/* max_workers 0 (or no options): conc_cpu_count() workers. */
static void pool_default_workers_is_cpu_count(void **state)
{
    (void)state;
    conc_pool *p = NULL;
    assert_int_equal(conc_pool_create(&p, NULL), 0);
    assert_int_equal(conc_pool_workers(p), conc_cpu_count());
    conc_test_pool_free(p);
    conc_pool_opts zero = {0};
    assert_int_equal(conc_pool_create(&p, &zero), 0);
    assert_int_equal(conc_pool_workers(p), conc_cpu_count());
    conc_test_pool_free(p);
    p = conc_test_pool_new(3);
    assert_int_equal(conc_pool_workers(p), 3);
    conc_test_pool_free(p);
}

/* Worker names "<name>-N": through conc_thread_get_name(conc_thread_self())
 * inside a task and through /proc. A barrier of `workers` parties makes every
 * worker run one of the tasks. */
struct name_probe {
    conc_barrier *b;
    char name[64];
    char comm[32];
};

static int name_task(void *arg, conc_result *out)
{
    (void)out;
    struct name_probe *np = arg;
    assert_int_equal(conc_thread_get_name(conc_thread_self(), np->name, sizeof np->name), 0);
    conc_test_read_comm((long)syscall(SYS_gettid), np->comm, sizeof np->comm);
    return conc_barrier_wait(np->b, NULL);
}

static void check_worker_names(const char *name, const char *prefix)
{
    enum { W = 3 };
    conc_pool *p = NULL;
    conc_pool_opts o = {.max_workers = W, .name = name};
    assert_int_equal(conc_pool_create(&p, &o), 0);
    conc_barrier b;
    assert_int_equal(conc_barrier_init(&b, W, NULL), 0);
    struct name_probe np[W];
    conc_future *f[W];
    for (int i = 0; i < W; i++) {
        np[i].b = &b;
        assert_int_equal(conc_pool_submit(p, name_task, &np[i], &f[i]), 0);
    }
    bool seen[W] = {false};
    for (int i = 0; i < W; i++) {
        assert_int_equal(conc_future_result(f[i], NULL), 0);
        conc_test_release(f[i]);
        int n = -1;
        char want[64];
        for (int k = 0; k < W; k++) {
            snprintf(want, sizeof want, "%s-%d", prefix, k);
            if (strcmp(np[i].name, want) == 0)
                n = k;
        }
        assert_true(n >= 0);
        assert_false(seen[n]); /* three tasks, three different workers */
        seen[n] = true;
        snprintf(want, sizeof want, "%s-%d", prefix, n);
        want[CONC_THREAD_OS_NAME_MAX] = 0; /* the OS keeps 15 bytes */
        assert_string_equal(np[i].comm, want);
    }
    conc_test_pool_free(p);
    assert_int_equal(conc_barrier_destroy(&b), 0);
}

static void pool_worker_names(void **state)
{
    (void)state;
    check_worker_names(NULL, "conc-pool");
    check_worker_names("mine", "mine");
    check_worker_names("a-rather-long-pool-name", "a-rather-long-pool-name");
}

/* ------------------------------------------------------------- submitting */

static void pool_submit_runs_each_task_once(void **state)
{
    (void)state;
    enum { N = 500 };
    conc_pool *p = conc_test_pool_new(3);
    static _Atomic int runs[N];
    conc_future *f[N];
    for (int i = 0; i < N; i++) {
        atomic_store(&runs[i], 0);
        assert_int_equal(conc_pool_submit(p, conc_test_count_task, &runs[i], &f[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(conc_future_result(f[i], NULL), 0);
        assert_int_equal(atomic_load(&runs[i]), 1);
        conc_test_release(f[i]);
    }
    conc_test_pool_free(p);
}

/* Tasks submitted from outside start in submission order (one worker). */
static void pool_external_tasks_start_in_order(void **state)
{
    (void)state;
    enum { N = 200 };
    conc_pool *p = conc_test_pool_new(1);
    struct conc_test_gate g;
    conc_future *fg = conc_test_hold_worker(p, &g);
    struct order_log log = {0};
    struct order_item items[N];
    for (int i = 0; i < N; i++) {
        items[i] = (struct order_item){&log, i};
        assert_int_equal(conc_pool_submit(p, order_task, &items[i], NULL), 0);
    }
    conc_test_gate_open(&g);
    conc_test_release(fg);
    conc_test_pool_free(p);
    assert_int_equal(atomic_load(&log.n), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(log.seq[i], i);
    conc_test_gate_destroy(&g);
}

/* Fire and forget: destroy waits for every task (it shuts down waiting). */
static void pool_destroy_waits_for_fire_and_forget(void **state)
{
    (void)state;
    enum { N = 2000 };
    conc_pool *p = conc_test_pool_new(2);
    _Atomic int runs = 0;
    for (int i = 0; i < N; i++)
        assert_int_equal(conc_pool_submit(p, conc_test_count_task, &runs, NULL), 0);
    conc_test_pool_free(p);
    assert_int_equal(atomic_load(&runs), N);
}

/* Futures stay valid after the pool is gone. */
static void pool_futures_outlive_pool(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(2);
    _Atomic int runs = 0;
    conc_future *f[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(conc_pool_submit(p, conc_test_count_task, &runs, &f[i]), 0);
    conc_test_pool_free(p);
    for (int i = 0; i < 8; i++) {
        assert_true(conc_future_done(f[i]));
        assert_int_equal(conc_future_result(f[i], NULL), 0);
        assert_int_equal(conc_future_cancel(f[i]), CONC_EBUSY);
        conc_test_release(f[i]);
    }
    assert_int_equal(atomic_load(&runs), 8);
}

/* ------------------------------------------------------- bounded queue */

struct submitter {
    conc_pool *p;
    conc_task_fn fn;
    void *arg;
    int64_t timeout;
    conc_future *f;
    int rc;
};

static void *submit_thread(void *arg)
{
    struct submitter *s = arg;
    s->rc = conc_pool_submit_timed(s->p, s->fn, s->arg, &s->f, s->timeout);
    return NULL;
}

static void pool_bounded_queue_backpressure(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new_bounded(1, 2);
    struct conc_test_gate g;
    conc_future *fa = conc_test_hold_worker(p, &g); /* started: holds no slot */
    _Atomic int runs = 0;
    conc_future *fb, *fc, *fd = (conc_future *)(uintptr_t)1;
    assert_int_equal(conc_pool_submit_timed(p, conc_test_count_task, &runs, &fb, 0), 0);
    assert_int_equal(conc_pool_submit_timed(p, conc_test_count_task, &runs, &fc, 0), 0);
    assert_int_equal(atomic_load(&p->queued), 2);

    /* Full: a try fails at once, a timed submit at its deadline. */
    assert_int_equal(conc_pool_submit_timed(p, conc_test_count_task, &runs, &fd, 0), CONC_EFULL);
    assert_null(fd);
    int64_t t0 = conc_now_ns();
    assert_int_equal(conc_pool_submit_timed(p, conc_test_count_task, &runs, &fd, CONC_MSEC(20)),
                     CONC_EFULL);
    int64_t took = conc_now_ns() - t0;
    assert_true(took >= CONC_MSEC(20));
    assert_true(took < CONC_MSEC(20) + CONC_SEC(1));
    print_message("EFULL after %.3f ms (timeout 20 ms)\n", (double)took / 1e6);
    assert_int_equal(atomic_load(&p->space_sleepers), 0);

    /* An untimed submit waits for room: the worker taking b frees a slot. */
    struct submitter s = {p, conc_test_count_task, &runs, CONC_FOREVER, NULL, 1};
    pthread_t th = conc_test_start(submit_thread, &s);
    conc_test_await_count(&p->space_sleepers, 1);
    assert_int_equal(atomic_load(&runs), 0); /* a is still running */
    conc_test_gate_open(&g);
    conc_test_join(th);
    assert_int_equal(s.rc, 0);
    assert_int_equal(conc_future_result(s.f, NULL), 0);
    assert_int_equal(conc_future_result(fb, NULL), 0);
    assert_int_equal(conc_future_result(fc, NULL), 0);
    assert_int_equal(atomic_load(&runs), 3);
    assert_int_equal(atomic_load(&p->queued), 0);
    assert_int_equal(atomic_load(&p->space_sleepers), 0);
    conc_test_release(fa);
    conc_test_release(fb);
    conc_test_release(fc);
    conc_test_release(s.f);
    conc_test_pool_free(p);
    conc_test_gate_destroy(&g);
}

/* Cancelling a queued task frees its slot. */
static void pool_bounded_cancel_frees_slot(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new_bounded(1, 1);
    struct conc_test_gate g;
    conc_future *fa = conc_test_hold_worker(p, &g);
    _Atomic int runs = 0;
    conc_future *fb, *fc;
    assert_int_equal(conc_pool_submit_timed(p, conc_test_count_task, &runs, &fb, 0), 0);
    assert_int_equal(conc_pool_submit_timed(p, conc_test_count_task, &runs, &fc, 0), CONC_EFULL);

    /* A submitter blocked for room is released by the cancel. */
    struct submitter s = {p, conc_test_count_task, &runs, CONC_FOREVER, NULL, 1};
    pthread_t th = conc_test_start(submit_thread, &s);
    conc_test_await_count(&p->space_sleepers, 1);
    assert_int_equal(conc_future_cancel(fb), 0);
    conc_test_join(th);
    assert_int_equal(s.rc, 0);
    assert_int_equal(conc_pool_submit_timed(p, conc_test_count_task, &runs, &fc, 0), CONC_EFULL);
    conc_test_gate_open(&g);
    assert_int_equal(conc_future_result(s.f, NULL), 0);
    assert_int_equal(conc_future_result(fb, NULL), CONC_ECANCELED);
    assert_int_equal(atomic_load(&runs), 1);
    conc_test_release(fa);
    conc_test_release(fb);
    conc_test_release(s.f);
    conc_test_pool_free(p);
    assert_int_equal(atomic_load(&runs), 1);
    conc_test_gate_destroy(&g);
}

/* A submitter waiting for room fails with ESHUTDOWN when the pool shuts down. */
static void pool_bounded_submitter_fails_on_shutdown(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new_bounded(1, 1);
    struct conc_test_gate g;
    conc_future *fa = conc_test_hold_worker(p, &g);
    _Atomic int runs = 0;
    assert_int_equal(conc_pool_submit(p, conc_test_count_task, &runs, NULL), 0);
    struct submitter s = {p, conc_test_count_task, &runs, CONC_FOREVER, (conc_future *)(uintptr_t)1,
                          1};
    pthread_t th = conc_test_start(submit_thread, &s);
    conc_test_await_count(&p->space_sleepers, 1);
    assert_int_equal(conc_pool_shutdown_timed(p, false, 0), 0);
    conc_test_join(th);
    assert_int_equal(s.rc, CONC_ESHUTDOWN);
    assert_null(s.f);
    conc_test_gate_open(&g);
    conc_test_release(fa);
    conc_test_pool_free(p);
    assert_int_equal(atomic_load(&runs), 1); /* the queued one still ran */
    conc_test_gate_destroy(&g);
}

/* A task's own submits go to its worker's deque: they never wait for room,
 * even with the submission queue full. */
struct spawner {
    conc_pool *p;
    conc_event go;
    int n;
    _Atomic int runs;
    int submit_rc[16];
};

static int spawner_task(void *arg, conc_result *out)
{
    (void)out;
    struct spawner *s = arg;
    assert_int_equal(conc_event_wait(&s->go), 0);
    conc_future *kids[16];
    for (int i = 0; i < s->n; i++)
        s->submit_rc[i] = conc_pool_submit_timed(s->p, conc_test_count_task, &s->runs, &kids[i], 0);
    for (int i = 0; i < s->n; i++) {
        if (s->submit_rc[i] == 0) {
            assert_int_equal(conc_future_result(kids[i], NULL), 0);
            conc_test_release(kids[i]);
        }
    }
    return 0;
}

static void pool_task_submits_never_wait_for_room(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new_bounded(1, 1);
    struct spawner s = {.p = p, .n = 16};
    assert_int_equal(conc_event_init(&s.go, NULL), 0);
    conc_future *fs = NULL;
    assert_int_equal(conc_pool_submit(p, spawner_task, &s, &fs), 0);
    CONC_TEST_POLL_UNTIL(conc_future_running(fs));
    _Atomic int other = 0;
    /* fills it */
    assert_int_equal(conc_pool_submit_timed(p, conc_test_count_task, &other, NULL, 0), 0);
    assert_int_equal(conc_pool_submit_timed(p, conc_test_count_task, &other, NULL, 0), CONC_EFULL);
    assert_int_equal(conc_event_set(&s.go), 0);
    assert_int_equal(conc_future_result(fs, NULL), 0);
    for (int i = 0; i < s.n; i++)
        assert_int_equal(s.submit_rc[i], 0);
    assert_int_equal(atomic_load(&s.runs), s.n);
    conc_test_release(fs);
    conc_test_pool_free(p);
    assert_int_equal(atomic_load(&other), 1);
    assert_int_equal(conc_event_destroy(&s.go), 0);
}

/* ------------------------------------------------------------ initializer */

struct init_ctx {
    conc_event go;
    _Atomic int calls;
    _Atomic int wrong_arg;
    int ret;
};

static int initializer(void *arg)
{
    struct init_ctx *c = arg;
    atomic_fetch_add(&c->calls, 1);
    assert_int_equal(conc_event_wait(&c->go), 0);
    return c->ret;
}

/* Runs once on each worker, with initarg, as it starts and before any
 * task: not at create (no worker yet), once for the first task's worker,
 * and once more for each worker that tasks held at once make start. */
static void pool_initializer_runs_once_per_worker(void **state)
{
    (void)state;
    struct init_ctx c = {.ret = 0};
    assert_int_equal(conc_event_init(&c.go, NULL), 0);
    conc_pool *p = NULL;
    conc_pool_opts o = {.max_workers = 3, .initializer = initializer, .initarg = &c};
    assert_int_equal(conc_pool_create(&p, &o), 0);
    assert_int_equal(atomic_load(&c.calls), 0);
    _Atomic int runs = 0;
    conc_future *f = NULL;
    assert_int_equal(conc_pool_submit(p, conc_test_count_task, &runs, &f), 0);
    CONC_TEST_POLL_UNTIL(atomic_load(&c.calls) == 1);
    assert_false(conc_future_done(f)); /* its worker is still initialising */
    assert_int_equal(atomic_load(&runs), 0);
    assert_int_equal(conc_event_set(&c.go), 0);
    assert_int_equal(conc_future_result(f, NULL), 0);
    conc_test_release(f);
    struct conc_test_gate g[3];
    conc_future *held[3];
    for (int i = 0; i < 3; i++)
        held[i] = conc_test_hold_worker(p, &g[i]);
    assert_int_equal(atomic_load(&c.calls), 3);
    for (int i = 0; i < 3; i++) {
        conc_test_gate_open(&g[i]);
        assert_int_equal(conc_future_result(held[i], NULL), 0);
        conc_test_release(held[i]);
        conc_test_gate_destroy(&g[i]);
    }
    conc_test_pool_free(p);
    assert_int_equal(atomic_load(&c.calls), 3);
    assert_int_equal(atomic_load(&runs), 1);
    assert_int_equal(conc_event_destroy(&c.go), 0);
}

static int group_child(void *arg, conc_result *out)
{
    (void)out;
    atomic_fetch_add((_Atomic int *)arg, 1);
    return 0;
}

static int map_fn(void *arg, size_t i, conc_result *out)
{
    (void)arg;
    (void)i;
    (void)out;
    return 0;
}

/* Python's BrokenThreadPool: tasks queued when an initializer fails end with
 * CONC_EBROKEN; later submits (map, task groups too) fail with it. */
static void check_broken_pool(int workers)
{
    struct init_ctx c = {.ret = -1};
    assert_int_equal(conc_event_init(&c.go, NULL), 0);
    conc_pool *p = NULL;
    conc_pool_opts o = {.max_workers = workers, .initializer = initializer, .initarg = &c};
    assert_int_equal(conc_pool_create(&p, &o), 0);
    _Atomic int runs = 0;
    conc_future *f[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(conc_pool_submit(p, conc_test_count_task, &runs, &f[i]), 0);
    assert_int_equal(conc_event_set(&c.go), 0);
    CONC_TEST_POLL_UNTIL(atomic_load(&p->state) == CONC__POOL_BROKEN);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(conc_future_result(f[i], NULL), CONC_EBROKEN);
        assert_false(conc_future_cancelled(f[i]));
        assert_true(conc_future_done(f[i]));
        conc_test_release(f[i]);
    }
    assert_int_equal(atomic_load(&runs), 0);

    conc_future *g = (conc_future *)(uintptr_t)1;
    assert_int_equal(conc_pool_submit(p, conc_test_count_task, &runs, &g), CONC_EBROKEN);
    assert_null(g);
    assert_int_equal(conc_pool_submit_timed(p, conc_test_count_task, &runs, NULL, 0), CONC_EBROKEN);
    conc_map *m = NULL;
    assert_int_equal(conc_map_create(&m, p, map_fn, NULL, 10, NULL), CONC_EBROKEN);
    conc_task_group *tg = NULL;
    assert_int_equal(conc_task_group_create(&tg, p), 0);
    assert_int_equal(conc_task_group_spawn(tg, group_child, &runs), CONC_EBROKEN);
    assert_int_equal(conc_task_group_destroy(tg), 0);
    assert_int_equal(conc_pool_shutdown(p, false), 0);
    assert_int_equal(conc_pool_submit(p, conc_test_count_task, &runs, NULL), CONC_EBROKEN);
    conc_test_pool_free(p);
    assert_int_equal(atomic_load(&runs), 0);
    /* Workers start as tasks come: at least the first one; none once the
     * pool is broken. */
    assert_true(atomic_load(&c.calls) >= 1 && atomic_load(&c.calls) <= workers);
    assert_int_equal(conc_event_destroy(&c.go), 0);
}

static void pool_initializer_failure_breaks_pool(void **state)
{
    (void)state;
    check_broken_pool(1);
    check_broken_pool(3);
}

/* --------------------------------------------------------------- shutdown */

/* shutdown(wait=false) returns at once; submits then fail; shutdown(wait=true)
 * runs what was queued and joins; a second call is allowed. */
static void pool_shutdown_runs_queued_tasks(void **state)
{
    (void)state;
    enum { N = 10 };
    conc_pool *p = conc_test_pool_new(1);
    struct conc_test_gate g;
    conc_future *fa = conc_test_hold_worker(p, &g);
    _Atomic int runs = 0;
    conc_future *f[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(conc_pool_submit(p, conc_test_count_task, &runs, &f[i]), 0);
    assert_int_equal(conc_pool_shutdown_timed(p, false, 0), 0);
    assert_true(conc_future_running(fa)); /* returned without waiting */
    conc_future *late = (conc_future *)(uintptr_t)1;
    assert_int_equal(conc_pool_submit(p, conc_test_count_task, &runs, &late), CONC_ESHUTDOWN);
    assert_null(late);
    assert_int_equal(conc_pool_submit_timed(p, conc_test_count_task, &runs, NULL, 0),
                     CONC_ESHUTDOWN);
    conc_test_gate_open(&g);
    assert_int_equal(conc_pool_shutdown(p, false), 0);
    assert_int_equal(atomic_load(&runs), N);
    for (int i = 0; i < N; i++) {
        assert_true(conc_future_done(f[i]));
        assert_false(conc_future_cancelled(f[i]));
        conc_test_release(f[i]);
    }
    assert_int_equal(conc_pool_shutdown(p, true), 0); /* again */
    assert_int_equal(conc_pool_shutdown_timed(p, false, 0), 0);
    assert_true(conc_future_done(fa));
    conc_test_release(fa);
    conc_test_pool_free(p);
    conc_test_gate_destroy(&g);
}

/* Python's cancel_futures: only the pending futures are cancelled; the
 * running task finishes untouched (no cancel request either). */
static void pool_shutdown_cancel_futures_cancels_only_pending(void **state)
{
    (void)state;
    enum { N = 10 };
    conc_pool *p = conc_test_pool_new(2);
    struct conc_test_gate a, b;
    conc_test_gate_init(&a, 5, 1);
    conc_test_gate_init(&b, 6, 1);
    conc_future *fa = conc_test_submit_running(p, &a);
    conc_future *fb = conc_test_submit_running(p, &b);
    _Atomic int runs = 0;
    conc_future *f[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(conc_pool_submit(p, conc_test_count_task, &runs, &f[i]), 0);
    assert_int_equal(conc_pool_shutdown_timed(p, true, 0), 0);
    for (int i = 0; i < N; i++) {
        assert_true(conc_future_cancelled(f[i])); /* at once, before any wait */
        assert_int_equal(conc_future_result(f[i], NULL), CONC_ECANCELED);
    }
    assert_true(conc_future_running(fa));
    assert_true(conc_future_running(fb));
    assert_int_equal(conc_pool_submit(p, conc_test_count_task, &runs, NULL), CONC_ESHUTDOWN);
    conc_test_gate_open(&a);
    conc_test_gate_open(&b);
    conc_test_pool_free(p);
    assert_int_equal(conc_future_result(fa, NULL), 5);
    assert_int_equal(conc_future_result(fb, NULL), 6);
    assert_false(conc_future_cancelled(fa));
    assert_false(atomic_load(&a.saw_cancel));
    assert_false(atomic_load(&b.saw_cancel));
    assert_int_equal(atomic_load(&runs), 0);
    for (int i = 0; i < N; i++)
        conc_test_release(f[i]);
    conc_test_release(fa);
    conc_test_release(fb);
    conc_test_gate_destroy(&a);
    conc_test_gate_destroy(&b);
}

/* From inside: waiting shutdown and destroy are EDEADLK (nothing happens);
 * a non-waiting shutdown works; the running task may still submit subtasks,
 * which run, while outsiders get ESHUTDOWN. */
struct inside {
    conc_pool *p;
    conc_event go;
    int shut_wait_rc, shut_wait_cancel_rc, destroy_rc, shut_rc, sub_rc, sub_status;
    _Atomic int child_runs;
};

static int inside_task(void *arg, conc_result *out)
{
    (void)out;
    struct inside *in = arg;
    in->shut_wait_rc = conc_pool_shutdown(in->p, false);
    in->shut_wait_cancel_rc = conc_pool_shutdown(in->p, true);
    in->destroy_rc = conc_pool_destroy(in->p);
    in->shut_rc = conc_pool_shutdown_timed(in->p, false, 0);
    assert_int_equal(conc_event_wait(&in->go), 0);
    conc_future *kid = NULL;
    in->sub_rc = conc_pool_submit(in->p, conc_test_count_task, &in->child_runs, &kid);
    if (in->sub_rc == 0) {
        in->sub_status = conc_future_result(kid, NULL);
        conc_test_release(kid);
    }
    return 0;
}

static void pool_shutdown_from_inside(void **state)
{
    (void)state;
    struct inside in = {0};
    in.p = conc_test_pool_new(2);
    assert_int_equal(conc_event_init(&in.go, NULL), 0);
    conc_future *f = NULL;
    assert_int_equal(conc_pool_submit(in.p, inside_task, &in, &f), 0);
    CONC_TEST_POLL_UNTIL(atomic_load(&in.p->state) == CONC__POOL_SHUTDOWN);
    _Atomic int runs = 0;
    assert_int_equal(conc_pool_submit(in.p, conc_test_count_task, &runs, NULL), CONC_ESHUTDOWN);
    assert_int_equal(conc_event_set(&in.go), 0);
    assert_int_equal(conc_future_result(f, NULL), 0);
    assert_int_equal(in.shut_wait_rc, CONC_EDEADLK);
    assert_int_equal(in.shut_wait_cancel_rc, CONC_EDEADLK);
    assert_int_equal(in.destroy_rc, CONC_EDEADLK);
    assert_int_equal(in.shut_rc, 0);
    assert_int_equal(in.sub_rc, 0);
    assert_int_equal(in.sub_status, 0);
    assert_int_equal(atomic_load(&in.child_runs), 1);
    conc_test_release(f);
    conc_test_pool_free(in.p);
    assert_int_equal(atomic_load(&runs), 0);
    assert_int_equal(conc_event_destroy(&in.go), 0);
}

/* An idle pool sleeps: after four tasks held at once (which start all four
 * workers) every worker is counted asleep, and stays so over ~300 ms of
 * idleness. The CPU time used is printed only. */
static void pool_idle_timing_workers_sleep(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(4);
    _Atomic int runs = 0;
    conc_future *f = NULL;
    assert_int_equal(conc_pool_submit(p, conc_test_count_task, &runs, &f), 0);
    assert_int_equal(conc_future_result(f, NULL), 0);
    conc_test_release(f);
    struct conc_test_gate g[4];
    conc_future *held[4];
    for (int i = 0; i < 4; i++)
        held[i] = conc_test_hold_worker(p, &g[i]);
    for (int i = 0; i < 4; i++) {
        conc_test_gate_open(&g[i]);
        assert_int_equal(conc_future_result(held[i], NULL), 0);
        conc_test_release(held[i]);
        conc_test_gate_destroy(&g[i]);
    }
    assert_int_equal(atomic_load(&p->started), 4);
    CONC_TEST_POLL_UNTIL(atomic_load(&p->sleepers) == 4);
    struct rusage r0, r1;
    assert_int_equal(getrusage(RUSAGE_SELF, &r0), 0);
    int64_t t0 = conc_now_ns();
    assert_int_equal(conc_sleep(CONC_MSEC(300)), 0);
    int64_t wall = conc_now_ns() - t0;
    assert_int_equal(getrusage(RUSAGE_SELF, &r1), 0);
    double cpu_ms = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1e3 +
                    (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e3 +
                    (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1e3 +
                    (double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e3;
    print_message("idle pool of 4 workers: %.3f ms CPU over %.1f ms\n", cpu_ms, (double)wall / 1e6);
    assert_int_equal(atomic_load(&p->sleepers), 4); /* nobody woke up */
    assert_int_equal(atomic_load(&p->searching), 0);
    conc_test_pool_free(p);
    assert_int_equal(atomic_load(&runs), 1);
}

/* ------------------------------------------------------------------ stress */

/* Two tasks that meet: a waits on an event only b sets. With two workers
 * both must run at once whatever the timing (a task must never sit in a
 * deque while a worker sleeps): a lost wake-up shows as b not run 5 s on (a gives up after 10 s). In
 * every other round a third task keeps one worker busy while a and b are
 * submitted, and is released right after. */
struct rendezvous {
    conc_event met;
};

static int rendezvous_wait(void *arg, conc_result *out)
{
    (void)out;
    return conc_event_wait_timed(&((struct rendezvous *)arg)->met, CONC_SEC(10));
}

static int rendezvous_set(void *arg, conc_result *out)
{
    (void)out;
    return conc_event_set(&((struct rendezvous *)arg)->met);
}

static void pool_rendezvous_stress(void **state)
{
    (void)state;
    long rounds = conc_test_scaled(6000, 600);
    conc_pool *p = conc_test_pool_new(2);
    for (long r = 0; r < rounds; r++) {
        struct rendezvous rv;
        assert_int_equal(conc_event_init(&rv.met, NULL), 0);
        struct conc_test_gate x;
        conc_future *fx = NULL;
        if (r % 2) {
            conc_test_gate_init(&x, 0, 1);
            fx = conc_test_submit_running(p, &x);
        }
        conc_future *fa, *fb;
        assert_int_equal(conc_pool_submit(p, rendezvous_wait, &rv, &fa), 0);
        assert_int_equal(conc_pool_submit(p, rendezvous_set, &rv, &fb), 0);
        if (fx)
            conc_test_gate_open(&x);
        /* b is trivial: 5 s without it running means it was left queued. */
        if (conc_future_wait_timed(fb, CONC_SEC(5)) != 0)
            fail_msg("round %ld: b in state %u after 5 s, a in state %u; sleepers %u, searching "
                     "%u, inbox %s, deques %zu and %zu",
                     r, atomic_load(&fb->state), atomic_load(&fa->state),
                     atomic_load(&p->sleepers), atomic_load(&p->searching),
                     conc__inbox_nonempty(&p->inbox) ? "non-empty" : "empty",
                     conc__deque_size(&p->workers[0].dq), conc__deque_size(&p->workers[1].dq));
        assert_int_equal(conc_future_result(fa, NULL), 0);
        assert_int_equal(conc_future_result(fb, NULL), 0);
        conc_test_release(fa);
        conc_test_release(fb);
        if (fx) {
            assert_int_equal(conc_future_result(fx, NULL), 0); /* its gate worked */
            assert_int_equal(atomic_load(&x.runs), 1);
            conc_test_release(fx);
            conc_test_gate_destroy(&x);
        }
        assert_int_equal(conc_event_destroy(&rv.met), 0);
    }
    conc_test_pool_free(p);
}

/* A million tiny tasks from four submitting threads: each runs exactly once
 * and every future ends done with status 0. */
struct million {
    conc_pool *p;
    _Atomic unsigned char *hits;
    size_t first, count;
    conc_future **fs;
};

static int hit_task(void *arg, conc_result *out)
{
    (void)out;
    atomic_fetch_add((_Atomic unsigned char *)arg, 1);
    return 0;
}

static void *million_submitter(void *arg)
{
    struct million *m = arg;
    for (size_t i = 0; i < m->count; i++)
        assert_int_equal(conc_pool_submit(m->p, hit_task, (void *)&m->hits[m->first + i],
                                          &m->fs[m->first + i]),
                         0);
    return NULL;
}

static void pool_million_tasks_stress(void **state)
{
    (void)state;
    size_t n = (size_t)conc_test_scaled(1000000, 10000);
    conc_pool *p = NULL;
    assert_int_equal(conc_pool_create(&p, NULL), 0);
    _Atomic unsigned char *hits = calloc(n, sizeof *hits);
    conc_future **fs = calloc(n, sizeof *fs);
    assert_non_null(hits);
    assert_non_null(fs);
    struct million m[4];
    for (int t = 0; t < 4; t++)
        m[t] = (struct million){p, hits, n / 4 * (size_t)t, t == 3 ? n - n / 4 * 3 : n / 4, fs};
    int64_t t0 = conc_now_ns();
    conc_test_run_threads(4, million_submitter, m, sizeof m[0]);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(conc_future_wait(fs[i]), 0);
        assert_true(conc_future_done(fs[i]));
        assert_int_equal(conc_future_result(fs[i], NULL), 0);
        conc_test_release(fs[i]);
    }
    print_message("%zu tasks from 4 threads on %d workers: %.1f ms\n", n, (int)conc_pool_workers(p),
                  (double)(conc_now_ns() - t0) / 1e6);
    conc_test_pool_free(p);
    for (size_t i = 0; i < n; i++)
        if (atomic_load(&hits[i]) != 1)
            fail_msg("task %zu ran %d times", i, (int)atomic_load(&hits[i]));
    free(hits);
    free(fs);
}

/* Ten thousand pools of two workers, each running one task, created and
 * destroyed in turn: no hang, no leak (ASan's leak checker in that build). */
static void pool_create_destroy_stress(void **state)
{
    (void)state;
    long n = conc_test_scaled(10000, 100);
    _Atomic int runs = 0;
    int64_t t0 = conc_now_ns();
    for (long i = 0; i < n; i++) {
        conc_pool *p = conc_test_pool_new_bounded(2, i % 2 ? 4 : 0);
        assert_int_equal(conc_pool_submit(p, conc_test_count_task, &runs, NULL), 0);
        if (i % 3 == 0) /* waiting, or only shutting down */
            assert_int_equal(i % 2 == 0 ? conc_pool_shutdown(p, false)
                                        : conc_pool_shutdown_timed(p, false, 0),
                             0);
        conc_test_pool_free(p);
    }
    print_message("%ld pools created and destroyed in %.1f ms\n", n,
                  (double)(conc_now_ns() - t0) / 1e6);
    assert_int_equal(atomic_load(&runs), (int)n);
}

/* shutdown(wait=false, cancel_futures=true) while two threads submit: every
 * future ends cancelled (never run) or finished (run once); none is left
 * pending after destroy; every submit after shutdown returned is ESHUTDOWN. */
enum { RACE_CAP = 4096 };

struct racer {
    conc_pool *p;
    _Atomic int *total;
    _Atomic bool *shut; /* set once conc_pool_shutdown returned */
    conc_future *fs[RACE_CAP];
    _Atomic int runs[RACE_CAP];
    int n;
};

static void *race_submitter(void *arg)
{
    struct racer *r = arg;
    for (;;) {
        bool after = atomic_load(r->shut);
        if (r->n == RACE_CAP) {
            if (!after) {
                conc_yield();
                continue;
            }
            break;
        }
        conc_future *f = (conc_future *)(uintptr_t)1;
        int rc = conc_pool_submit(r->p, conc_test_count_task, &r->runs[r->n], &f);
        if (rc == 0) {
            assert_false(after); /* accepted after shutdown returned */
            r->fs[r->n++] = f;
            atomic_fetch_add(r->total, 1);
            continue;
        }
        assert_int_equal(rc, CONC_ESHUTDOWN);
        assert_null(f);
        break;
    }
    /* Once refused, always refused. */
    for (int k = 0; k < 3; k++)
        assert_int_equal(conc_pool_submit(r->p, conc_test_count_task, &r->runs[0], NULL),
                         CONC_ESHUTDOWN);
    return NULL;
}

static void pool_shutdown_race_stress(void **state)
{
    (void)state;
    long rounds = conc_test_scaled(300, 30);
    struct racer *r = calloc(2, sizeof *r);
    assert_non_null(r);
    long cancelled = 0, finished = 0;
    for (long round = 0; round < rounds; round++) {
        _Atomic int total = 0;
        _Atomic bool shut = false;
        conc_pool *p = conc_test_pool_new(2);
        for (int t = 0; t < 2; t++) {
            r[t].p = p;
            r[t].total = &total;
            r[t].shut = &shut;
            r[t].n = 0;
            for (int i = 0; i < RACE_CAP; i++)
                atomic_store(&r[t].runs[i], 0);
        }
        pthread_t th[2];
        for (int t = 0; t < 2; t++)
            th[t] = conc_test_start(race_submitter, &r[t]);
        int at = 16 + (int)(round % 64) * 8;
        CONC_TEST_POLL_UNTIL(atomic_load(&total) >= at);
        assert_int_equal(conc_pool_shutdown_timed(p, true, 0), 0);
        atomic_store(&shut, true);
        /* The submitters stop at their first ESHUTDOWN: join them before
         * destroying (a pool may not be destroyed while in use). */
        for (int t = 0; t < 2; t++)
            conc_test_join(th[t]);
        conc_test_pool_free(p);
        for (int t = 0; t < 2; t++) {
            for (int i = 0; i < r[t].n; i++) {
                conc_future *f = r[t].fs[i];
                assert_true(conc_future_done(f));
                int runs = atomic_load(&r[t].runs[i]);
                if (conc_future_cancelled(f)) {
                    assert_int_equal(runs, 0);
                    assert_int_equal(conc_future_result(f, NULL), CONC_ECANCELED);
                    cancelled++;
                } else {
                    assert_int_equal(runs, 1);
                    assert_int_equal(conc_future_result(f, NULL), 0);
                    finished++;
                }
                conc_test_release(f);
            }
        }
    }
    print_message("%ld rounds: %ld futures cancelled, %ld finished\n", rounds, cancelled, finished);
    free(r);
}

/* The timed shutdown: a task still running at the deadline gives
 * CONC_ETIMEDOUT, never before it; the pool stays shut down, and a later
 * call joins the workers once the task ends. */
static void pool_shutdown_timed_times_out_then_joins(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(2);
    assert_int_equal(conc_pool_shutdown_timed(p, false, -5), CONC_EINVAL);
    assert_int_equal(conc_pool_shutdown_timed(NULL, false, 0), CONC_EINVAL);
    struct conc_test_gate g;
    conc_future *f = conc_test_hold_worker(p, &g);
    int64_t t0 = conc_now_ns();
    assert_int_equal(conc_pool_shutdown_timed(p, false, CONC_MSEC(20)), CONC_ETIMEDOUT);
    int64_t waited = conc_now_ns() - t0;
    print_message("timed shutdown returned after %.1f ms (deadline 20 ms)\n", waited / 1e6);
    assert_true(waited >= CONC_MSEC(20));
    assert_true(waited < CONC_SEC(1) + CONC_MSEC(20));
    assert_int_equal(conc_pool_submit(p, conc_test_gated_task, &g, NULL), CONC_ESHUTDOWN);
    assert_false(conc_future_done(f));
    conc_test_gate_open(&g);
    assert_int_equal(conc_pool_shutdown_timed(p, false, CONC_FOREVER), 0);
    assert_true(conc_future_done(f));
    assert_int_equal(atomic_load(&g.runs), 1);
    conc_test_release(f);
    conc_test_pool_free(p);
    conc_test_gate_destroy(&g);
}

/* Tasks submitted from outside start in submission order with several
 * workers too (Python's ThreadPoolExecutor takes them from one FIFO): with
 * every worker held, 40 tasks are submitted at once, then the workers are
 * let go. Each task records when it started, and does not end before the
 * next w - 1 have started (a turnstile: every worker must take tasks while
 * the others run theirs). With w workers taking tasks in order, task i
 * starts within w - 1 places of i. */
struct start_order {
    _Atomic int next;
    int workers;
    int at[40];
};

struct start_task {
    struct start_order *o;
    int i;
};

static int record_start(void *arg, conc_result *out)
{
    (void)out;
    struct start_task *t = arg;
    int s = atomic_fetch_add(&t->o->next, 1);
    t->o->at[t->i] = s;
    int until = s + t->o->workers < 40 ? s + t->o->workers : 40;
    CONC_TEST_POLL_UNTIL(atomic_load(&t->o->next) >= until);
    return 0;
}

static void pool_outside_tasks_start_in_order_with_workers(int workers)
{
    conc_pool *p = conc_test_pool_new(workers);
    struct conc_test_gate gates[8];
    conc_future *held[8];
    for (int w = 0; w < workers; w++) {
        conc_test_gate_init(&gates[w], 0, 0);
        held[w] = conc_test_submit_running(p, &gates[w]);
    }
    struct start_order o = {.workers = workers};
    struct start_task tasks[40];
    conc_future *fs[40];
    for (int i = 0; i < 40; i++) {
        tasks[i] = (struct start_task){&o, i};
        fs[i] = conc_test_submit(p, record_start, &tasks[i]);
    }
    for (int w = 0; w < workers; w++)
        conc_test_gate_open(&gates[w]);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(conc_future_result(fs[i], NULL), 0);
        conc_future_release(fs[i]);
    }
    for (int i = 0; i < 40; i++)
        if (abs(o.at[i] - i) > workers - 1)
            fail_msg("%d workers: task %d started %dth", workers, i, o.at[i]);
    for (int w = 0; w < workers; w++) {
        assert_int_equal(conc_future_result(held[w], NULL), 0);
        conc_future_release(held[w]);
        conc_test_gate_destroy(&gates[w]);
    }
    conc_test_pool_free(p);
}

static void pool_outside_tasks_start_in_order_several_workers(void **state)
{
    (void)state;
    pool_outside_tasks_start_in_order_with_workers(2);
    pool_outside_tasks_start_in_order_with_workers(4);
}

CONC_TEST_MAIN(
    cmocka_unit_test(pool_outside_tasks_start_in_order_several_workers),
    cmocka_unit_test(pool_bad_input_is_einval),
    cmocka_unit_test(pool_shutdown_timed_times_out_then_joins),
    cmocka_unit_test(pool_default_workers_is_cpu_count),
    cmocka_unit_test(pool_worker_names),
    cmocka_unit_test(pool_submit_runs_each_task_once),
    cmocka_unit_test(pool_external_tasks_start_in_order),
    cmocka_unit_test(pool_destroy_waits_for_fire_and_forget),
    cmocka_unit_test(pool_futures_outlive_pool),
    cmocka_unit_test(pool_bounded_queue_backpressure),
    cmocka_unit_test(pool_bounded_cancel_frees_slot),
    cmocka_unit_test(pool_bounded_submitter_fails_on_shutdown),
    cmocka_unit_test(pool_task_submits_never_wait_for_room),
    cmocka_unit_test(pool_initializer_runs_once_per_worker),
    cmocka_unit_test(pool_initializer_failure_breaks_pool),
    cmocka_unit_test(pool_shutdown_runs_queued_tasks),
    cmocka_unit_test(pool_shutdown_cancel_futures_cancels_only_pending),
    cmocka_unit_test(pool_shutdown_from_inside),
    cmocka_unit_test(pool_idle_timing_workers_sleep),
    cmocka_unit_test(pool_rendezvous_stress),
    cmocka_unit_test(pool_million_tasks_stress),
    cmocka_unit_test(pool_create_destroy_stress),
    cmocka_unit_test(pool_shutdown_race_stress))
