/* conc_procpool (conc/process.h): tasks in worker processes behind the
 * thread pool's future — results by value, a worker killed in the middle of
 * a task failing that future alone while the pool goes on, workers retired
 * after max_tasks_per_child, the initializer and its failure, shutdown with
 * and without cancel, terminate and kill, cancellation reaching a running
 * task, map, pools started from a busy threaded program, and bad input.
 *
 * The task functions below run in the workers, fresh images of this test
 * program: they see only their argument bytes (and what an initializer
 * left in their globals). */
#define _GNU_SOURCE
#include "test.h"

#include <conc/process.h>
#include <conc/sync.h>
#include <conc/thread.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SEC 1000000000LL

/* ---- tasks (run in the workers) ---- */

/* value = the int64 argument + 1; data = "n=<argument>". */
static int task_inc(const void *arg, size_t size, conc_result *out)
{
    int64_t x;
    if (size != sizeof x)
        return CONC_EINVAL;
    memcpy(&x, arg, sizeof x);
    out->value = x + 1;
    char *s = malloc(32);
    if (!s)
        return CONC_ENOMEM;
    out->len = (size_t)snprintf(s, 32, "n=%lld", (long long)x) + 1;
    out->data = s;
    out->free_fn = free;
    return 0;
}

static int task_pid(const void *arg, size_t size, conc_result *out)
{
    (void)arg;
    (void)size;
    out->value = getpid();
    return 0;
}

static int task_die(const void *arg, size_t size, conc_result *out)
{
    (void)arg;
    (void)size;
    (void)out;
    raise(SIGKILL);
    return 0;
}

static int task_sleep_ms(const void *arg, size_t size, conc_result *out)
{
    (void)out;
    int64_t ms = 0;
    if (size == sizeof ms)
        memcpy(&ms, arg, sizeof ms);
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    return 0;
}

static int task_until_cancelled(const void *arg, size_t size, conc_result *out)
{
    (void)arg;
    (void)size;
    (void)out;
    while (!conc_cancel_requested())
        usleep(100);
    return CONC_ECANCELED;
}

static int task_fail(const void *arg, size_t size, conc_result *out)
{
    (void)arg;
    (void)size;
    (void)out;
    return CONC_EIO;
}

static int task_big_result(const void *arg, size_t size, conc_result *out)
{
    (void)arg;
    (void)size;
    static char big[4096];
    out->data = big;
    out->len = sizeof big;
    return 0;
}

/* For map: value = item * 2; the item 13 fails when the argument says so. */
static int item_double(const void *arg, size_t size, conc_result *out)
{
    int64_t x;
    if (size != sizeof x)
        return CONC_EINVAL;
    memcpy(&x, arg, sizeof x);
    if (x < 0)
        return CONC_EIO;
    out->value = 2 * x;
    return 0;
}

/* The initializer: keeps its argument for task_init_value. */
static int64_t init_value = -1;

static int init_keep(const void *arg, size_t size)
{
    if (size != sizeof init_value)
        return CONC_EINVAL;
    memcpy(&init_value, arg, sizeof init_value);
    return 0;
}

static int init_fail(const void *arg, size_t size)
{
    (void)arg;
    (void)size;
    return CONC_EACCES;
}

static int task_init_value(const void *arg, size_t size, conc_result *out)
{
    (void)arg;
    (void)size;
    out->value = init_value;
    return 0;
}

/* ---- helpers ---- */

static conc_procpool *make_pool(size_t workers, size_t max_tasks)
{
    conc_procpool *pp;
    conc_procpool_opts o = {.max_workers = workers, .max_tasks_per_child = max_tasks};
    assert_int_equal(conc_procpool_create(&pp, &o), 0);
    return pp;
}

static conc_future *submit_int(conc_procpool *pp, conc_proc_task_fn fn, int64_t x)
{
    conc_future *f;
    assert_int_equal(conc_procpool_submit(pp, fn, &x, sizeof x, &f), 0);
    return f;
}

/* Submits n task_inc and checks every result. */
static void run_incs(conc_procpool *pp, long n)
{
    conc_future **fs = calloc((size_t)n, sizeof *fs);
    assert_non_null(fs);
    for (long i = 0; i < n; i++)
        fs[i] = submit_int(pp, task_inc, i);
    for (long i = 0; i < n; i++) {
        conc_result r;
        assert_int_equal(conc_future_result(fs[i], &r), 0);
        assert_int_equal(r.value, i + 1);
        char want[32];
        snprintf(want, sizeof want, "n=%ld", i);
        assert_int_equal(r.len, strlen(want) + 1);
        assert_string_equal((const char *)r.data, want);
        conc_future_release(fs[i]);
    }
    free(fs);
}

/* ---- tests ---- */

static void procpool_results_by_value(void **state)
{
    (void)state;
    conc_procpool *pp = make_pool(2, 0);
    assert_int_equal(conc_procpool_workers(pp), 2);
    int64_t pids[4];
    assert_int_equal(conc_procpool_worker_pids(pp, pids, 4), 2);
    assert_true(pids[0] != getpid() && pids[1] != getpid() && pids[0] != pids[1]);
    run_incs(pp, conc_test_scaled(2000, 100));
    /* A task's own error status is its future's. */
    conc_future *f = submit_int(pp, task_fail, 0);
    assert_int_equal(conc_future_result(f, NULL), CONC_EIO);
    conc_future_release(f);
    assert_int_equal(conc_procpool_destroy(pp), 0);
}

/* More workers than a collecting pass takes results from at once (16): the
 * passes that fill up are followed by more, and nothing is left behind. */
static void procpool_many_workers(void **state)
{
    (void)state;
    conc_procpool *pp = make_pool(18, 0);
    run_incs(pp, conc_test_scaled(500, 100));
    conc_procpool_destroy(pp);
}

/* The pool's futures are the thread pool's: conc_wait and as-completed mix
 * them, callbacks run. */
static int count_cb(conc_future *f, void *arg)
{
    (void)f;
    atomic_fetch_add((_Atomic int *)arg, 1);
    return 0;
}

static int thread_task(void *arg, conc_result *out)
{
    (void)arg;
    out->value = 7;
    return 0;
}

static void procpool_futures_mix_with_thread_pool(void **state)
{
    (void)state;
    conc_procpool *pp = make_pool(2, 0);
    conc_pool *tp;
    assert_int_equal(conc_pool_create(&tp, NULL), 0);
    conc_future *fs[6];
    _Atomic int called = 0;
    for (int i = 0; i < 3; i++) {
        fs[i] = submit_int(pp, task_inc, i);
        assert_int_equal(conc_future_add_done_callback(fs[i], count_cb, (void *)&called), 0);
        assert_int_equal(conc_pool_submit(tp, thread_task, NULL, &fs[3 + i]), 0);
    }
    bool done[6];
    assert_int_equal(conc_wait(fs, 6, CONC_ALL_COMPLETED, done), 0);
    for (int i = 0; i < 6; i++)
        assert_true(done[i]);
    conc_as_completed *it;
    assert_int_equal(conc_as_completed_create(&it, fs, 6), 0);
    int seen = 0;
    conc_future *f;
    while (conc_as_completed_next(it, &f) == 0) {
        seen++;
        conc_future_release(f);
    }
    assert_int_equal(seen, 6);
    conc_as_completed_destroy(it);
    for (int i = 0; i < 6; i++)
        conc_future_release(fs[i]);
    conc_pool_destroy(tp);
    conc_procpool_destroy(pp);
    /* A callback runs after the waiters are woken, in the thread that
     * finished the future: once the pool is gone, every one has run. */
    assert_int_equal(atomic_load(&called), 3);
}

/* A worker killed in the middle of a task fails that future alone, with
 * CONC_EWORKERDIED and the signal in the value; the others complete, and
 * the pool (its worker replaced) serves 1000 more. */
static void procpool_killed_worker_fails_only_its_future(void **state)
{
    (void)state;
    conc_procpool *pp = make_pool(2, 0);
    long n = conc_test_scaled(200, 20);
    conc_future **fs = calloc((size_t)n, sizeof *fs);
    assert_non_null(fs);
    long victim = n / 2;
    for (long i = 0; i < n; i++)
        fs[i] = i == victim ? submit_int(pp, task_die, 0) : submit_int(pp, task_inc, i);
    for (long i = 0; i < n; i++) {
        conc_result r;
        int st = conc_future_result(fs[i], &r);
        if (i == victim) {
            assert_int_equal(st, CONC_EWORKERDIED);
            assert_int_equal(r.value, -SIGKILL);
        } else {
            assert_int_equal(st, 0);
            assert_int_equal(r.value, i + 1);
        }
        conc_future_release(fs[i]);
    }
    free(fs);
    run_incs(pp, conc_test_scaled(1000, 1000));
    /* The dead worker was replaced (its replacement may still be starting). */
    int64_t deadline = conc_now_ns() + 10 * SEC;
    while (conc_procpool_worker_pids(pp, NULL, 0) != 2 && conc_now_ns() < deadline)
        usleep(1000);
    assert_int_equal(conc_procpool_worker_pids(pp, NULL, 0), 2);
    conc_procpool_destroy(pp);
}

/* Killed from outside while it holds a task: the same. */
static void procpool_worker_killed_from_outside(void **state)
{
    (void)state;
    conc_procpool *pp = make_pool(1, 0);
    conc_future *f = submit_int(pp, task_sleep_ms, 60000);
    conc_future *after = submit_int(pp, task_inc, 41);
    while (conc_future_running(f) != 1)
        usleep(1000);
    int64_t pid;
    assert_int_equal(conc_procpool_worker_pids(pp, &pid, 1), 1);
    assert_int_equal(kill((pid_t)pid, SIGKILL), 0);
    conc_result r;
    assert_int_equal(conc_future_result(f, &r), CONC_EWORKERDIED);
    assert_int_equal(r.value, -SIGKILL);
    assert_int_equal(conc_future_result(after, &r), 0);
    assert_int_equal(r.value, 42);
    int64_t again;
    assert_int_equal(conc_procpool_worker_pids(pp, &again, 1), 1);
    assert_true(again != pid);
    conc_future_release(f);
    conc_future_release(after);
    conc_procpool_destroy(pp);
}

/* max_tasks_per_child = 1: every task in a fresh worker, all complete. */
static void procpool_max_tasks_per_child(void **state)
{
    (void)state;
    conc_procpool *pp = make_pool(2, 1);
    long n = conc_test_scaled(200, 20);
    conc_future **fs = calloc((size_t)n, sizeof *fs);
    int64_t *pids = calloc((size_t)n, sizeof *pids);
    assert_true(fs && pids);
    for (long i = 0; i < n; i++)
        fs[i] = submit_int(pp, task_pid, i);
    for (long i = 0; i < n; i++) {
        conc_result r;
        assert_int_equal(conc_future_result(fs[i], &r), 0);
        pids[i] = r.value;
        for (long j = 0; j < i; j++)
            assert_true(pids[j] != pids[i]); /* pids are not reused this fast */
        conc_future_release(fs[i]);
    }
    free(fs);
    free(pids);
    conc_procpool_destroy(pp);
}

static void procpool_initializer(void **state)
{
    (void)state;
    int64_t v = 12345;
    conc_procpool_opts o = {.max_workers = 2, .initializer = init_keep, .initargs = &v,
                            .initargs_size = sizeof v, .max_tasks_per_child = 2};
    conc_procpool *pp;
    assert_int_equal(conc_procpool_create(&pp, &o), 0);
    /* Also in the workers that replace retired ones. */
    for (int i = 0; i < 10; i++) {
        conc_future *f = submit_int(pp, task_init_value, 0);
        conc_result r;
        assert_int_equal(conc_future_result(f, &r), 0);
        assert_int_equal(r.value, v);
        conc_future_release(f);
    }
    conc_procpool_destroy(pp);
}

/* A failing initializer breaks the pool: its futures fail with
 * CONC_EBROKEN, later submissions are refused, no worker restarts. */
static void procpool_initializer_failure_breaks_the_pool(void **state)
{
    (void)state;
    conc_procpool_opts o = {.max_workers = 2, .initializer = init_fail};
    conc_procpool *pp;
    assert_int_equal(conc_procpool_create(&pp, &o), 0);
    conc_future *fs[5];
    int queued = 0;
    for (int i = 0; i < 5; i++) {
        int rc = conc_procpool_submit(pp, task_pid, NULL, 0, &fs[queued]);
        if (rc == 0)
            queued++;
        else
            assert_int_equal(rc, CONC_EBROKEN);
    }
    for (int i = 0; i < queued; i++) {
        assert_int_equal(conc_future_result(fs[i], NULL), CONC_EBROKEN);
        conc_future_release(fs[i]);
    }
    /* Broken for good: refused now, and the workers are gone. */
    int rc;
    while ((rc = conc_procpool_submit(pp, task_pid, NULL, 0, NULL)) == 0)
        usleep(1000);
    assert_int_equal(rc, CONC_EBROKEN);
    assert_int_equal(conc_procpool_shutdown(pp, false), 0);
    assert_int_equal(conc_procpool_worker_pids(pp, NULL, 0), 0);
    conc_procpool_destroy(pp);
}

static void procpool_shutdown_runs_or_cancels_the_queue(void **state)
{
    (void)state;
    for (int cancel = 0; cancel < 2; cancel++) {
        conc_procpool *pp = make_pool(1, 0);
        conc_future *slow = submit_int(pp, task_sleep_ms, 100);
        conc_future *fs[10];
        for (int i = 0; i < 10; i++)
            fs[i] = submit_int(pp, task_inc, i);
        while (conc_future_running(slow) != 1) /* started: a cancel cannot reach it */
            usleep(1000);
        assert_int_equal(conc_procpool_shutdown(pp, cancel), 0);
        assert_int_equal(conc_procpool_submit(pp, task_pid, NULL, 0, NULL), CONC_ESHUTDOWN);
        assert_int_equal(conc_future_result(slow, NULL), 0);
        for (int i = 0; i < 10; i++) {
            assert_int_equal(conc_future_done(fs[i]), 1);
            conc_result r;
            int st = conc_future_result(fs[i], &r);
            if (cancel) {
                /* queued behind the slow one: cancelled, unless the worker
                 * took it before the shutdown */
                assert_true(st == CONC_ECANCELED || (st == 0 && r.value == i + 1));
            } else {
                assert_int_equal(st, 0);
                assert_int_equal(r.value, i + 1);
            }
            conc_future_release(fs[i]);
        }
        if (cancel)
            assert_int_equal(conc_future_cancelled(fs[9]), 1);
        conc_future_release(slow);
        assert_int_equal(conc_procpool_worker_pids(pp, NULL, 0), 0);
        conc_procpool_destroy(pp);
    }
}

/* A timed shutdown gives up; kill_workers ends the running task with
 * CONC_EWORKERDIED, terminate_workers with -SIGTERM. */
static void procpool_shutdown_timed_then_kill(void **state)
{
    (void)state;
    int sigs[2] = {SIGKILL, SIGTERM};
    for (int k = 0; k < 2; k++) {
        conc_procpool *pp = make_pool(1, 0);
        conc_future *f = submit_int(pp, task_sleep_ms, 60000);
        conc_future *queued = submit_int(pp, task_inc, 1);
        while (conc_future_running(f) != 1)
            usleep(1000);
        assert_int_equal(conc_procpool_shutdown_timed(pp, false, SEC / 50), CONC_ETIMEDOUT);
        assert_int_equal(conc_procpool_shutdown_timed(pp, false, 0), 0);
        if (sigs[k] == SIGKILL)
            assert_int_equal(conc_procpool_kill_workers(pp), 0);
        else
            assert_int_equal(conc_procpool_terminate_workers(pp), 0);
        conc_result r;
        assert_int_equal(conc_future_result(f, &r), CONC_EWORKERDIED);
        assert_int_equal(r.value, -sigs[k]);
        assert_int_equal(conc_future_result(queued, NULL), CONC_ECANCELED);
        assert_int_equal(conc_procpool_shutdown(pp, false), 0);
        conc_future_release(f);
        conc_future_release(queued);
        conc_procpool_destroy(pp);
    }
}

static void procpool_cancel_reaches_running_task(void **state)
{
    (void)state;
    conc_procpool *pp = make_pool(1, 0);
    conc_future *f = submit_int(pp, task_until_cancelled, 0);
    conc_future *queued = submit_int(pp, task_inc, 1);
    while (conc_future_running(f) != 1)
        usleep(1000);
    assert_int_equal(conc_future_cancel(queued), 0); /* still queued: cancelled at once */
    assert_int_equal(conc_future_request_cancel(f), 0);
    assert_int_equal(conc_future_result(f, NULL), CONC_ECANCELED);
    assert_int_equal(conc_future_cancelled(f), 1);
    assert_int_equal(conc_future_result(queued, NULL), CONC_ECANCELED);
    conc_future_release(f);
    conc_future_release(queued);
    run_incs(pp, 10); /* the cancelled one freed its worker */
    conc_procpool_destroy(pp);
}

static void procpool_result_too_large_is_eoverflow(void **state)
{
    (void)state;
    conc_procpool_opts o = {.max_workers = 1, .result_max = 1024};
    conc_procpool *pp;
    assert_int_equal(conc_procpool_create(&pp, &o), 0);
    conc_future *f;
    assert_int_equal(conc_procpool_submit(pp, task_big_result, NULL, 0, &f), 0);
    assert_int_equal(conc_future_result(f, NULL), CONC_EOVERFLOW);
    conc_future_release(f);
    run_incs(pp, 3);
    conc_procpool_destroy(pp);
}

static void procpool_map_every_item_once(void **state)
{
    (void)state;
    conc_procpool *pp = make_pool(2, 0);
    size_t n = (size_t)conc_test_scaled(10000, 1000);
    int64_t *items = malloc(n * sizeof *items);
    bool *seen = calloc(n, 1);
    assert_true(items && seen);
    for (size_t i = 0; i < n; i++)
        items[i] = (int64_t)i;
    for (int unordered = 0; unordered < 2; unordered++) {
        conc_map *m;
        conc_map_opts mo = {.chunksize = 100, .unordered = unordered};
        assert_int_equal(conc_procpool_map(&m, pp, item_double, items, sizeof *items, n, &mo), 0);
        size_t idx, count = 0;
        int st;
        conc_result r;
        memset(seen, 0, n);
        while (conc_map_next(m, &idx, &st, &r) == 0) {
            assert_int_equal(st, 0);
            assert_true(idx < n && !seen[idx]);
            if (!unordered)
                assert_int_equal(idx, count);
            seen[idx] = true;
            assert_int_equal(r.value, 2 * (int64_t)idx);
            count++;
        }
        assert_int_equal(count, n);
        assert_int_equal(conc_map_destroy(m), 0);
    }
    /* The first error stops the map there. */
    items[250] = -1;
    conc_map *m;
    conc_map_opts mo = {.chunksize = 100};
    assert_int_equal(conc_procpool_map(&m, pp, item_double, items, sizeof *items, n, &mo), 0);
    size_t idx, count = 0;
    int st;
    while (conc_map_next(m, &idx, &st, NULL) == 0) {
        if (st != 0) {
            assert_int_equal(st, CONC_EIO);
            assert_int_equal(idx, 250);
        }
        count++;
    }
    assert_int_equal(count, 251);
    conc_map_destroy(m);
    free(items);
    free(seen);
    conc_procpool_destroy(pp);
}

/* Pools created, used and destroyed over and over from a program whose
 * other threads hold conc locks and malloc all the time: a start never
 * hangs (the fork server forks, never this program). */
struct busy {
    _Atomic bool stop;
    conc_mutex m;
};

static int busy_locker(void *arg)
{
    struct busy *b = arg;
    while (!atomic_load(&b->stop)) {
        conc_mutex_lock(&b->m);
        for (volatile int i = 0; i < 100; i++)
            ;
        conc_mutex_unlock(&b->m);
    }
    return 0;
}

static int busy_mallocer(void *arg)
{
    struct busy *b = arg;
    while (!atomic_load(&b->stop)) {
        void *p[16];
        for (int i = 0; i < 16; i++)
            p[i] = malloc((size_t)(i + 1) * 100);
        for (int i = 0; i < 16; i++)
            free(p[i]);
    }
    return 0;
}

static void procpool_create_from_busy_threads_stress(void **state)
{
    (void)state;
    struct busy b = {.stop = false};
    assert_int_equal(conc_mutex_init(&b.m, NULL), 0);
    conc_thread *t[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(conc_thread_create(&t[i], i < 4 ? busy_locker : busy_mallocer, &b, NULL),
                         0);
    long rounds = conc_test_scaled(200, 10);
    for (long k = 0; k < rounds; k++) {
        conc_procpool *pp = make_pool(2, 0);
        conc_future *f = submit_int(pp, task_inc, k);
        conc_result r;
        assert_int_equal(conc_future_result_timed(f, &r, 30 * SEC), 0);
        assert_int_equal(r.value, k + 1);
        conc_future_release(f);
        assert_int_equal(conc_procpool_destroy(pp), 0);
    }
    atomic_store(&b.stop, true);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(conc_thread_join(t[i], NULL), 0);
        conc_thread_destroy(t[i]);
    }
    conc_mutex_destroy(&b.m);
}

/* Threads still inside a wait on the pool's futures while another
 * destroys it: the destroy waits for them to leave the pool's memory
 * (ASan would see a use after free). */
static int wait_future(void *arg)
{
    return conc_future_wait(arg);
}

static void procpool_destroy_while_others_wait(void **state)
{
    (void)state;
    long rounds = conc_test_scaled(20, 3);
    for (long k = 0; k < rounds; k++) {
        conc_procpool *pp = make_pool(2, 0);
        conc_future *fs[4];
        conc_thread *t[4];
        for (int i = 0; i < 4; i++) {
            fs[i] = submit_int(pp, i % 2 ? task_inc : task_sleep_ms, i % 2 ? i : 5);
            assert_int_equal(conc_thread_create(&t[i], wait_future, fs[i], NULL), 0);
        }
        assert_int_equal(conc_procpool_destroy(pp), 0);
        for (int i = 0; i < 4; i++) {
            int st = -1;
            assert_int_equal(conc_thread_join(t[i], &st), 0);
            assert_int_equal(st, 0);
            conc_thread_destroy(t[i]);
            assert_int_equal(conc_future_result(fs[i], NULL), 0);
            conc_future_release(fs[i]);
        }
    }
}

static int not_code;

static void procpool_bad_input(void **state)
{
    (void)state;
    conc_procpool *pp;
    assert_int_equal(conc_procpool_create(NULL, NULL), CONC_EINVAL);
    conc_procpool_opts o = {.reserved_ = {1}};
    assert_int_equal(conc_procpool_create(&pp, &o), CONC_EINVAL);
    o = (conc_procpool_opts){.initializer = (conc_proc_init_fn)(void *)&not_code};
    assert_int_equal(conc_procpool_create(&pp, &o), CONC_EINVAL);
    int64_t v = 0;
    o = (conc_procpool_opts){.initializer = init_keep, .initargs = &v, .initargs_size = 2048,
                             .arg_max = 1024};
    assert_int_equal(conc_procpool_create(&pp, &o), CONC_EINVAL);
    o = (conc_procpool_opts){.initializer = init_keep, .initargs_size = 8};
    assert_int_equal(conc_procpool_create(&pp, &o), CONC_EINVAL);

    o = (conc_procpool_opts){.max_workers = 1, .arg_max = 1024};
    assert_int_equal(conc_procpool_create(&pp, &o), 0);
    conc_future *f = (conc_future *)&not_code;
    assert_int_equal(conc_procpool_submit(NULL, task_pid, NULL, 0, &f), CONC_EINVAL);
    assert_null(f);
    assert_int_equal(conc_procpool_submit(pp, NULL, NULL, 0, &f), CONC_EINVAL);
    assert_int_equal(conc_procpool_submit(pp, task_pid, NULL, 8, &f), CONC_EINVAL);
    assert_int_equal(conc_procpool_submit(pp, (conc_proc_task_fn)(void *)&not_code, NULL, 0, &f),
                     CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "not in a loaded module"));
    static char big[2048];
    assert_int_equal(conc_procpool_submit(pp, task_pid, big, sizeof big, &f), CONC_EOVERFLOW);
    conc_map *m;
    int64_t items[4] = {0};
    assert_int_equal(conc_procpool_map(&m, pp, item_double, items, 0, 4, NULL), CONC_EINVAL);
    assert_int_equal(conc_procpool_map(&m, pp, item_double, NULL, 8, 4, NULL), CONC_EINVAL);
    assert_int_equal(conc_procpool_map(&m, NULL, item_double, items, 8, 4, NULL), CONC_EINVAL);
    assert_int_equal(conc_procpool_map(&m, pp, item_double, items, 8, 4,
                                       &(conc_map_opts){.chunksize = 1000}),
                     CONC_EOVERFLOW);
    assert_int_equal(conc_procpool_shutdown_timed(pp, false, -5), CONC_EINVAL);
    assert_int_equal(conc_procpool_shutdown(NULL, false), CONC_EINVAL);
    assert_int_equal(conc_procpool_kill_workers(NULL), CONC_EINVAL);
    assert_int_equal(conc_procpool_terminate_workers(NULL), CONC_EINVAL);
    assert_int_equal(conc_procpool_workers(NULL), CONC_EINVAL);
    assert_int_equal(conc_procpool_worker_pids(pp, NULL, 3), CONC_EINVAL);
    assert_int_equal(conc_procpool_shutdown(pp, false), 0);
    assert_int_equal(conc_procpool_submit(pp, task_pid, NULL, 0, &f), CONC_ESHUTDOWN);
    assert_int_equal(conc_procpool_map(&m, pp, item_double, items, 8, 4, NULL), CONC_ESHUTDOWN);
    assert_int_equal(conc_procpool_destroy(pp), 0);
    assert_int_equal(conc_procpool_destroy(NULL), 0);
}

CONC_TEST_MAIN(cmocka_unit_test(procpool_results_by_value),
               cmocka_unit_test(procpool_many_workers),
               cmocka_unit_test(procpool_futures_mix_with_thread_pool),
               cmocka_unit_test(procpool_killed_worker_fails_only_its_future),
               cmocka_unit_test(procpool_worker_killed_from_outside),
               cmocka_unit_test(procpool_max_tasks_per_child),
               cmocka_unit_test(procpool_initializer),
               cmocka_unit_test(procpool_initializer_failure_breaks_the_pool),
               cmocka_unit_test(procpool_shutdown_runs_or_cancels_the_queue),
               cmocka_unit_test(procpool_shutdown_timed_then_kill),
               cmocka_unit_test(procpool_cancel_reaches_running_task),
               cmocka_unit_test(procpool_result_too_large_is_eoverflow),
               cmocka_unit_test(procpool_map_every_item_once),
               cmocka_unit_test(procpool_create_from_busy_threads_stress),
               cmocka_unit_test(procpool_destroy_while_others_wait),
               cmocka_unit_test(procpool_bad_input))
