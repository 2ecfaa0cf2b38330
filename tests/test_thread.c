/* thread.h: start and join (timeouts, misuse codes), detaching and destroying
 * running threads, names as the OS sees them, kernel ids, adopted handles of
 * threads conc did not start, the stack size option, the signal mask of conc
 * threads, conc_sleep, conc_cpu_count, thread-local storage, and start/join
 * under load. Leaks of handles are asserted by ASan's leak checker: tests that
 * leave detached threads behind wait until those threads are gone from
 * /proc/self/task so that the checker sees the final state. */
#define _GNU_SOURCE
#include "test.h"

#include "core/platform.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */

static void event_init(conc_event *e)
{
    assert_int_equal(conc_event_init(e, NULL), 0);
}

static void event_destroy(conc_event *e)
{
    assert_int_equal(conc_event_destroy(e), 0);
}

/* Waits (up to 20 s) until thread tid has left the process: a detached conc
 * thread drops its reference to its handle before it exits, so once it is gone
 * the leak checker sees whether the handle was freed. */
static void wait_task_gone(int64_t tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%lld", (long long)tid);
    struct stat st;
    CONC_TEST_POLL_UNTIL_FOR(stat(path, &st) != 0, 20);
    assert_int_equal(errno, ENOENT);
}

/* The number of threads in the process. */
static int task_count(void)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Waits (up to 30 s) until the process is back to at most n threads. */
static void wait_task_count_at_most(int n)
{
    CONC_TEST_POLL_UNTIL_FOR(task_count() <= n, 30);
}

/* A thread that says it started, then waits to be let go. `started` is set
 * from inside the function, so by then conc has named the thread and stored
 * its id. */
struct gate {
    conc_event started;
    conc_event go;
    conc_event finished; /* set as the function's last act */
    conc_thread *handle; /* what the creator got, published before `go` */
    conc_thread *self;   /* conc_thread_self() inside the thread */
    int64_t tid;         /* gettid inside the thread */
    int ret;
};

static void gate_init(struct gate *g, int ret)
{
    memset(g, 0, sizeof *g);
    event_init(&g->started);
    event_init(&g->go);
    event_init(&g->finished);
    g->ret = ret;
}

static void gate_destroy(struct gate *g)
{
    event_destroy(&g->started);
    event_destroy(&g->go);
    event_destroy(&g->finished);
}

static int gated_fn(void *arg)
{
    struct gate *g = arg;
    g->tid = conc_test_tid();
    g->self = conc_thread_self();
    assert_int_equal(conc_event_set(&g->started), 0);
    assert_int_equal(conc_event_wait(&g->go), 0);
    int ret = g->ret;
    assert_int_equal(conc_event_set(&g->finished), 0);
    return ret;
}

static int return_arg_fn(void *arg)
{
    return (int)(intptr_t)arg;
}

/* --------------------------------------------------------------- start/join */

static void join_returns_function_status(void **state)
{
    (void)state;
    conc_thread *t = NULL;
    assert_int_equal(conc_thread_create(&t, return_arg_fn, (void *)(intptr_t)42, NULL), 0);
    assert_non_null(t);
    int status = -1;
    assert_int_equal(conc_thread_join(t, &status), 0);
    assert_int_equal(status, 42);
    assert_int_equal(conc_thread_destroy(t), 0);

    /* A negative return is the function's own value, not a join error. */
    assert_int_equal(conc_thread_create(&t, return_arg_fn, (void *)(intptr_t)CONC_ETIMEDOUT, NULL), 0);
    assert_int_equal(conc_thread_join_timed(t, &status, CONC_SEC(30)), 0);
    assert_int_equal(status, CONC_ETIMEDOUT);
    assert_int_equal(conc_thread_destroy(t), 0);

    /* status may be NULL. */
    assert_int_equal(conc_thread_create(&t, return_arg_fn, (void *)(intptr_t)7, NULL), 0);
    assert_int_equal(conc_thread_join(t, NULL), 0);
    assert_int_equal(conc_thread_destroy(t), 0);
}

static void many_threads_return_distinct_statuses(void **state)
{
    (void)state;
    enum { N = 32 };
    conc_thread *t[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(conc_thread_create(&t[i], return_arg_fn, (void *)(intptr_t)(i * 1000 + 3), NULL), 0);
    for (int i = N - 1; i >= 0; i--) { /* joined in the other order */
        int status = -1;
        assert_int_equal(conc_thread_join(t[i], &status), 0);
        assert_int_equal(status, i * 1000 + 3);
        assert_int_equal(conc_thread_destroy(t[i]), 0);
    }
}

static void join_times_out_while_running_then_succeeds(void **state)
{
    (void)state;
    struct gate g;
    gate_init(&g, 1234);
    conc_thread *t = NULL;
    assert_int_equal(conc_thread_create(&t, gated_fn, &g, NULL), 0);
    assert_int_equal(conc_event_wait(&g.started), 0);

    /* The thread waits for `go`: every timed join runs out, and leaves status
     * alone (a wait's status is never the thread's result). */
    int status = -77;
    assert_int_equal(conc_thread_join_timed(t, &status, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_thread_join_timed(t, &status, CONC_MSEC(20)), CONC_ETIMEDOUT);
    assert_int_equal(conc_thread_join_timed(t, NULL, CONC_MSEC(1)), CONC_ETIMEDOUT);
    assert_int_equal(status, -77);
    assert_int_equal(conc_thread_is_alive(t), 1);

    /* A bad timeout is refused and does not spoil the handle. */
    assert_int_equal(conc_thread_join_timed(t, &status, -2), CONC_EINVAL);
    assert_int_equal(conc_thread_join_timed(t, &status, INT64_MIN), CONC_EINVAL);
    assert_int_equal(status, -77);

    assert_int_equal(conc_event_set(&g.go), 0);
    assert_int_equal(conc_thread_join_timed(t, &status, CONC_SEC(30)), 0);
    assert_int_equal(status, 1234);

    /* Joined once: every later join is misuse, whatever its timeout. */
    status = -77;
    assert_int_equal(conc_thread_join(t, &status), CONC_ESTATE);
    assert_int_equal(conc_thread_join_timed(t, &status, 0), CONC_ESTATE);
    assert_int_equal(status, -77);
    assert_int_equal(conc_thread_detach(t), CONC_ESTATE);
    assert_int_equal(conc_thread_destroy(t), 0);
    gate_destroy(&g);
}

static int dummy_fn(void *arg)
{
    (void)arg;
    return 0;
}

static void null_arguments_are_einval(void **state)
{
    (void)state;
    conc_thread *t = (conc_thread *)(uintptr_t)1;
    assert_int_equal(conc_thread_create(&t, NULL, NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_thread_create(NULL, dummy_fn, NULL, NULL), CONC_EINVAL);
    conc_thread_opts joinable = {.name = "x"};
    assert_int_equal(conc_thread_create(NULL, dummy_fn, NULL, &joinable), CONC_EINVAL);
    conc_thread_opts detached = {.detached = true};
    assert_int_equal(conc_thread_create(NULL, NULL, NULL, &detached), CONC_EINVAL);

    assert_int_equal(conc_thread_join(NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_thread_join_timed(NULL, NULL, 0), CONC_EINVAL);
    assert_int_equal(conc_thread_detach(NULL), CONC_EINVAL);
    assert_int_equal(conc_thread_destroy(NULL), CONC_EINVAL);
    assert_int_equal(conc_thread_is_alive(NULL), CONC_EINVAL);
    assert_int_equal(conc_thread_id(NULL), CONC_EINVAL);
    assert_int_equal(conc_thread_set_name(NULL, "x"), CONC_EINVAL);
    char buf[8];
    assert_int_equal(conc_thread_get_name(NULL, buf, sizeof buf), CONC_EINVAL);
}

/* Joins its own handle, as conc_thread_self() gives it and as the creator
 * published it. */
static int join_self_fn(void *arg)
{
    struct gate *g = arg;
    assert_int_equal(conc_event_wait(&g->go), 0);
    conc_thread *self = conc_thread_self();
    assert_ptr_equal(self, g->handle);
    assert_ptr_equal(conc_thread_self(), self);
    int status = -77;
    assert_int_equal(conc_thread_join(self, &status), CONC_EDEADLK);
    assert_int_equal(conc_thread_join_timed(g->handle, &status, 0), CONC_EDEADLK);
    assert_int_equal(conc_thread_join_timed(g->handle, NULL, CONC_MSEC(10)), CONC_EDEADLK);
    assert_int_equal(status, -77);
    assert_int_equal(conc_thread_is_alive(self), 1);
    assert_int_equal(conc_thread_id(self), conc_test_tid());
    return 5;
}

static void join_self_is_edeadlk(void **state)
{
    (void)state;
    struct gate g;
    gate_init(&g, 0);
    conc_thread *t = NULL;
    assert_int_equal(conc_thread_create(&t, join_self_fn, &g, NULL), 0);
    g.handle = t; /* published by the event below */
    assert_int_equal(conc_event_set(&g.go), 0);
    int status = -1;
    /* The failed self-joins did not spoil the handle for its real joiner. */
    assert_int_equal(conc_thread_join(t, &status), 0);
    assert_int_equal(status, 5);
    assert_int_equal(conc_thread_destroy(t), 0);
    gate_destroy(&g);
}

/* The header: destroy returns CONC_EINVAL for "the calling thread's own
 * handle from conc_thread_self". For a conc thread that handle is also its
 * creator's: freeing it from inside would leave the creator a dangling one. */
struct destroy_self {
    conc_event tried;
    int rc;
};

static int destroy_self_fn(void *arg)
{
    struct destroy_self *d = arg;
    d->rc = conc_thread_destroy(conc_thread_self());
    assert_int_equal(conc_event_set(&d->tried), 0);
    return 0;
}

static void destroy_own_handle_is_estate(void **state)
{
    (void)state;
    struct destroy_self d = {.rc = 1};
    event_init(&d.tried);
    conc_thread *t = NULL;
    assert_int_equal(conc_thread_create(&t, destroy_self_fn, &d, NULL), 0);
    assert_int_equal(conc_event_wait(&d.tried), 0);
    /* Checked before the join: had the thread freed our handle, joining it
     * would be a use after free. */
    assert_int_equal(d.rc, CONC_ESTATE);
    int status = -1;
    assert_int_equal(conc_thread_join(t, &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(conc_thread_destroy(t), 0);
    event_destroy(&d.tried);
}

/* Two joiners race for one thread: exactly one wins and gets the status. */
struct join_race {
    conc_thread *t;
    conc_barrier *ready;
    int rc;
    int status;
};

static void *race_joiner(void *arg)
{
    struct join_race *r = arg;
    assert_int_equal(conc_barrier_wait(r->ready, NULL), 0);
    r->rc = conc_thread_join(r->t, &r->status);
    return NULL;
}

static void concurrent_join_stress(void **state)
{
    (void)state;
    long rounds = conc_test_scaled(300, 20);
    conc_barrier ready;
    assert_int_equal(conc_barrier_init(&ready, 3, NULL), 0);
    for (long i = 0; i < rounds; i++) {
        struct gate g;
        gate_init(&g, (int)i);
        conc_thread *t = NULL;
        assert_int_equal(conc_thread_create(&t, gated_fn, &g, NULL), 0);
        struct join_race r[2] = {{.t = t, .ready = &ready, .status = -1},
                                 {.t = t, .ready = &ready, .status = -1}};
        pthread_t p[2];
        for (int j = 0; j < 2; j++)
            assert_int_equal(pthread_create(&p[j], NULL, race_joiner, &r[j]), 0);
        assert_int_equal(conc_barrier_wait(&ready, NULL), 0);
        assert_int_equal(conc_event_set(&g.go), 0);
        for (int j = 0; j < 2; j++)
            assert_int_equal(pthread_join(p[j], NULL), 0);
        int winner = r[0].rc == 0 ? 0 : 1;
        assert_int_equal(r[winner].rc, 0);
        assert_int_equal(r[winner].status, (int)i);
        assert_int_equal(r[1 - winner].rc, CONC_ESTATE);
        assert_int_equal(r[1 - winner].status, -1);
        assert_int_equal(conc_thread_is_alive(t), 0);
        assert_int_equal(conc_thread_destroy(t), 0);
        gate_destroy(&g);
    }
    assert_int_equal(conc_barrier_destroy(&ready), 0);
}

/* --------------------------------------------------- detaching and destroy */

static void join_of_detached_thread_is_estate(void **state)
{
    (void)state;
    struct gate g;
    gate_init(&g, 9);
    conc_thread *t = NULL;
    assert_int_equal(conc_thread_create(&t, gated_fn, &g, NULL), 0);
    assert_int_equal(conc_event_wait(&g.started), 0);
    int64_t tid = conc_thread_id(t);

    assert_int_equal(conc_thread_detach(t), 0);
    assert_int_equal(conc_thread_detach(t), CONC_ESTATE);
    int status = -77;
    assert_int_equal(conc_thread_join(t, &status), CONC_ESTATE);
    assert_int_equal(conc_thread_join_timed(t, &status, 0), CONC_ESTATE);
    assert_int_equal(status, -77);
    /* The handle stays valid until destroy. */
    assert_int_equal(conc_thread_is_alive(t), 1);
    assert_int_equal(conc_thread_id(t), tid);

    assert_int_equal(conc_event_set(&g.go), 0);
    assert_int_equal(conc_event_wait(&g.finished), 0);
    wait_task_gone(tid);
    /* The thread has ended; the caller's reference still holds the handle. */
    assert_int_equal(conc_thread_is_alive(t), 0);
    assert_int_equal(conc_thread_join_timed(t, NULL, 0), CONC_ESTATE);
    assert_int_equal(conc_thread_destroy(t), 0);
    gate_destroy(&g);
}

struct detached_arg {
    conc_event done;
    _Atomic int64_t tid;
    _Atomic int ran;
};

static int detached_fn(void *arg)
{
    struct detached_arg *d = arg;
    atomic_store(&d->tid, conc_test_tid());
    /* A detached thread has a handle of its own until it ends. */
    conc_thread *self = conc_thread_self();
    assert_non_null(self);
    assert_int_equal(conc_thread_is_alive(self), 1);
    assert_int_equal(conc_thread_join_timed(self, NULL, 0), CONC_EDEADLK);
    char name[32];
    assert_int_equal(conc_thread_get_name(self, name, sizeof name), 0);
    assert_string_equal(name, "detached-one");
    atomic_fetch_add(&d->ran, 1);
    assert_int_equal(conc_event_set(&d->done), 0);
    return 0;
}

static void detached_option_runs_and_frees_itself(void **state)
{
    (void)state;
    conc_thread_opts opts = {.name = "detached-one", .detached = true};
    for (int pass = 0; pass < 2; pass++) {
        struct detached_arg d = {0};
        event_init(&d.done);
        if (pass == 0) {
            assert_int_equal(conc_thread_create(NULL, detached_fn, &d, &opts), 0);
        } else {
            /* Given an out pointer anyway, a detached start stores NULL. */
            conc_thread *t = (conc_thread *)(uintptr_t)1;
            assert_int_equal(conc_thread_create(&t, detached_fn, &d, &opts), 0);
            assert_null(t);
        }
        assert_int_equal(conc_event_wait_timed(&d.done, CONC_SEC(30)), 0);
        assert_int_equal(atomic_load(&d.ran), 1);
        wait_task_gone(atomic_load(&d.tid));
        event_destroy(&d.done);
    }
}

/* Destroyed while it runs: the thread keeps its own reference, so the handle
 * it reaches through conc_thread_self() stays usable (ASan would see a use
 * after free) and is freed when it ends (ASan would see a leak). */
static int outlives_handle_fn(void *arg)
{
    struct gate *g = arg;
    g->tid = conc_test_tid();
    assert_int_equal(conc_event_set(&g->started), 0);
    assert_int_equal(conc_event_wait(&g->go), 0);
    conc_thread *self = conc_thread_self();
    assert_non_null(self);
    assert_int_equal(conc_thread_is_alive(self), 1);
    assert_int_equal(conc_thread_set_name(self, "still-here"), 0);
    char name[32];
    assert_int_equal(conc_thread_get_name(self, name, sizeof name), 0);
    assert_string_equal(name, "still-here");
    assert_int_equal(conc_event_set(&g->finished), 0);
    return 0;
}

static void destroy_running_thread_detaches_it(void **state)
{
    (void)state;
    struct gate g;
    gate_init(&g, 0);
    conc_thread *t = NULL;
    assert_int_equal(conc_thread_create(&t, outlives_handle_fn, &g, NULL), 0);
    assert_int_equal(conc_event_wait(&g.started), 0);
    assert_int_equal(conc_thread_destroy(t), 0);
    assert_int_equal(conc_event_is_set(&g.finished), 0);
    assert_int_equal(conc_event_set(&g.go), 0);
    assert_int_equal(conc_event_wait_timed(&g.finished, CONC_SEC(30)), 0);
    wait_task_gone(g.tid);
    gate_destroy(&g);
}

/* -------------------------------------------------------------------- names */

static void names_visible_in_proc_comm(void **state)
{
    (void)state;
    char comm[64], name[64];
    struct gate g;
    gate_init(&g, 0);
    conc_thread_opts opts = {.name = "worker-7"};
    conc_thread *t = NULL;
    assert_int_equal(conc_thread_create(&t, gated_fn, &g, &opts), 0);
    assert_int_equal(conc_event_wait(&g.started), 0);
    int64_t tid = conc_thread_id(t);
    assert_int_equal(tid, g.tid);
    conc_test_read_comm(tid, comm, sizeof comm);
    assert_string_equal(comm, "worker-7");
    assert_int_equal(conc_thread_get_name(t, name, sizeof name), 0);
    assert_string_equal(name, "worker-7");

    /* Renamed from another thread while it runs. */
    assert_int_equal(conc_thread_set_name(t, "renamed"), 0);
    conc_test_read_comm(tid, comm, sizeof comm);
    assert_string_equal(comm, "renamed");
    assert_int_equal(conc_thread_get_name(t, name, sizeof name), 0);
    assert_string_equal(name, "renamed");

    /* A long name: the OS keeps 15 bytes, conc the whole. */
    const char *longname = "a-very-long-thread-name-here";
    assert_int_equal(conc_thread_set_name(t, longname), 0);
    conc_test_read_comm(tid, comm, sizeof comm);
    assert_int_equal(strlen(comm), CONC_THREAD_OS_NAME_MAX);
    assert_memory_equal(comm, longname, CONC_THREAD_OS_NAME_MAX);
    assert_int_equal(conc_thread_get_name(t, name, sizeof name), 0);
    assert_string_equal(name, longname);

    /* The caller's own name is not touched. */
    conc_test_read_comm(conc_test_tid(), comm, sizeof comm);
    assert_string_not_equal(comm, "renamed");
    assert_memory_not_equal(comm, longname, CONC_THREAD_OS_NAME_MAX);

    assert_int_equal(conc_thread_set_name(t, NULL), CONC_EINVAL);
    assert_int_equal(conc_thread_get_name(t, NULL, 8), CONC_EINVAL);
    assert_int_equal(conc_thread_get_name(t, name, 0), CONC_EINVAL);

    assert_int_equal(conc_event_set(&g.go), 0);
    assert_int_equal(conc_thread_join(t, NULL), 0);
    /* After the end the name is still kept (and there is no OS thread to name). */
    assert_int_equal(conc_thread_set_name(t, "after-the-end"), 0);
    assert_int_equal(conc_thread_get_name(t, name, sizeof name), 0);
    assert_string_equal(name, "after-the-end");
    assert_int_equal(conc_thread_destroy(t), 0);
    gate_destroy(&g);
}

static void long_start_name_shows_first_15_bytes(void **state)
{
    (void)state;
    char comm[64], name[64];
    const char *longname = "0123456789abcdefghij-long";
    struct gate g;
    gate_init(&g, 0);
    conc_thread_opts opts = {.name = longname};
    conc_thread *t = NULL;
    assert_int_equal(conc_thread_create(&t, gated_fn, &g, &opts), 0);
    assert_int_equal(conc_event_wait(&g.started), 0);
    conc_test_read_comm(conc_thread_id(t), comm, sizeof comm);
    assert_string_equal(comm, "0123456789abcde");
    assert_int_equal(conc_thread_get_name(t, name, sizeof name), 0);
    assert_string_equal(name, longname);
    assert_int_equal(conc_event_set(&g.go), 0);
    assert_int_equal(conc_thread_join(t, NULL), 0);
    assert_int_equal(conc_thread_destroy(t), 0);
    gate_destroy(&g);
}

/* Names itself, through its own handle, and reads the OS name back. */
static int self_naming_fn(void *arg)
{
    (void)arg;
    char comm[64];
    assert_int_equal(conc_thread_set_name(conc_thread_self(), "self-named"), 0);
    conc_test_read_comm(conc_test_tid(), comm, sizeof comm);
    assert_string_equal(comm, "self-named");
    return 0;
}

static void thread_renames_itself(void **state)
{
    (void)state;
    conc_thread *t = NULL;
    assert_int_equal(conc_thread_create(&t, self_naming_fn, NULL, NULL), 0);
    assert_int_equal(conc_thread_join(t, NULL), 0);
    char name[64];
    assert_int_equal(conc_thread_get_name(t, name, sizeof name), 0);
    assert_string_equal(name, "self-named");
    assert_int_equal(conc_thread_destroy(t), 0);
}

static int return_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

static void get_name_truncates_and_terminates(void **state)
{
    (void)state;
    conc_thread_opts opts = {.name = "truncate-me"};
    conc_thread *t = NULL;
    assert_int_equal(conc_thread_create(&t, dummy_fn, NULL, &opts), 0);
    assert_int_equal(conc_thread_join(t, NULL), 0);

    char buf[8];
    memset(buf, 'X', sizeof buf);
    assert_int_equal(conc_thread_get_name(t, buf, 5), 0);
    assert_string_equal(buf, "trun");
    assert_int_equal(buf[5], 'X'); /* nothing written past size */
    assert_int_equal(conc_thread_get_name(t, buf, 1), 0);
    assert_string_equal(buf, "");
    assert_int_equal(conc_thread_destroy(t), 0);

    /* No name: Python's "Thread-N", N counting unnamed threads from 1; the
     * OS shows it too. */
    struct gate g;
    gate_init(&g, 0);
    assert_int_equal(conc_thread_create(&t, gated_fn, &g, NULL), 0);
    assert_int_equal(conc_event_wait(&g.started), 0);
    char name[64];
    assert_int_equal(conc_thread_get_name(t, name, sizeof name), 0);
    unsigned n = 0;
    assert_int_equal(sscanf(name, "Thread-%u", &n), 1);
    assert_true(n >= 1);
    char comm[64];
    conc_test_read_comm(conc_thread_id(t), comm, sizeof comm);
    assert_string_equal(comm, name);
    conc_thread *t2 = NULL;
    assert_int_equal(conc_thread_create(&t2, return_arg, NULL, NULL), 0);
    char buf2[64];
    assert_int_equal(conc_thread_get_name(t2, buf2, sizeof buf2), 0);
    unsigned n2 = 0;
    assert_int_equal(sscanf(buf2, "Thread-%u", &n2), 1);
    assert_true(n2 > n);
    assert_int_equal(conc_thread_join(t2, NULL), 0);
    assert_int_equal(conc_thread_destroy(t2), 0);
    assert_int_equal(conc_event_set(&g.go), 0);
    assert_int_equal(conc_thread_join(t, NULL), 0);
    assert_int_equal(conc_thread_destroy(t), 0);
    gate_destroy(&g);
}

/* --------------------------------------------------------- ids and liveness */

static void thread_id_is_gettid_and_is_alive_tracks_function(void **state)
{
    (void)state;
    struct gate g;
    gate_init(&g, 0);
    conc_thread *t = NULL;
    assert_int_equal(conc_thread_create(&t, gated_fn, &g, NULL), 0);
    /* Asked at once, before the thread may have run: the id must still be its
     * own (conc_thread_id waits for the thread to publish it). */
    int64_t tid = conc_thread_id(t);
    assert_int_equal(conc_event_wait(&g.started), 0);
    assert_int_equal(tid, g.tid);
    assert_int_not_equal(tid, conc_test_tid());
    assert_ptr_equal(g.self, t);
    assert_int_equal(conc_thread_is_alive(t), 1);
    assert_int_equal(conc_event_set(&g.go), 0);
    assert_int_equal(conc_thread_join(t, NULL), 0);
    assert_int_equal(conc_thread_is_alive(t), 0);
    assert_int_equal(conc_thread_destroy(t), 0);
    gate_destroy(&g);
}

/* ------------------------------------------------------------ adopted threads */

/* Joins a handle it did not create, from a conc thread. */
static int join_other_fn(void *arg)
{
    conc_thread *other = arg;
    int status = -77;
    int rc0 = conc_thread_join_timed(other, &status, 0);
    int rc1 = conc_thread_join(other, &status);
    assert_int_equal(status, -77);
    return rc0 == rc1 ? rc0 : INT32_MIN;
}

static void self_in_main_thread_is_adopted(void **state)
{
    (void)state;
    conc_thread *me = conc_thread_self();
    assert_non_null(me);
    assert_ptr_equal(conc_thread_self(), me);
    assert_int_equal(conc_thread_is_alive(me), 1);
    assert_int_equal(conc_thread_id(me), conc_test_tid());

    /* Its name is the OS name. */
    char os_name[32] = "", name[64];
    assert_int_equal(prctl(PR_GET_NAME, os_name, 0, 0, 0), 0);
    assert_int_equal(conc_thread_get_name(me, name, sizeof name), 0);
    assert_string_equal(name, os_name);

    /* It cannot be joined (from another thread: the adopted rule alone),
     * detached or destroyed. */
    conc_thread *j = NULL;
    assert_int_equal(conc_thread_create(&j, join_other_fn, me, NULL), 0);
    int status = 0;
    assert_int_equal(conc_thread_join(j, &status), 0);
    assert_int_equal(status, CONC_ESTATE);
    assert_int_equal(conc_thread_destroy(j), 0);
    /* From itself both rules apply (adopted: ESTATE; the caller: EDEADLK);
     * the header does not rank them. Either way it must not block. */
    int rc = conc_thread_join(me, NULL);
    print_message("main joining its adopted self: %s\n", conc_err_name(rc));
    assert_true(rc == CONC_ESTATE || rc == CONC_EDEADLK);
    assert_int_equal(conc_thread_detach(me), CONC_ESTATE);
    assert_int_equal(conc_thread_destroy(me), CONC_ESTATE);
    assert_ptr_equal(conc_thread_self(), me);
    assert_int_equal(conc_thread_is_alive(me), 1);

    /* Renaming it names the OS thread (restored afterwards). */
    assert_int_equal(conc_thread_set_name(me, "main-renamed"), 0);
    char comm[64];
    conc_test_read_comm(conc_test_tid(), comm, sizeof comm);
    assert_string_equal(comm, "main-renamed");
    assert_int_equal(conc_thread_set_name(me, os_name), 0);
    conc_test_read_comm(conc_test_tid(), comm, sizeof comm);
    assert_string_equal(comm, os_name);
}

struct adoptee {
    conc_event ready;
    conc_event go;
    conc_thread *handle;
    int64_t tid;
};

static void *adoptee_main(void *arg)
{
    struct adoptee *a = arg;
    assert_int_equal(prctl(PR_SET_NAME, "adoptee", 0, 0, 0), 0);
    conc_thread *me = conc_thread_self();
    assert_non_null(me);
    assert_ptr_equal(conc_thread_self(), me);
    assert_int_equal(conc_thread_is_alive(me), 1);
    a->tid = conc_test_tid();
    assert_int_equal(conc_thread_id(me), a->tid);
    int rc = conc_thread_join_timed(me, NULL, 0);
    assert_true(rc == CONC_ESTATE || rc == CONC_EDEADLK);
    assert_int_equal(conc_thread_destroy(me), CONC_ESTATE);
    a->handle = me;
    assert_int_equal(conc_event_set(&a->ready), 0);
    assert_int_equal(conc_event_wait(&a->go), 0);
    /* Still the same handle after the others looked at it. */
    assert_ptr_equal(conc_thread_self(), me);
    return NULL;
}

/* A pthread's adopted handle: usable by others while the thread lives, never
 * joinable, freed when the thread exits (under ASan the leak checker is the
 * assertion). */
static void pthread_self_handle_freed_at_exit(void **state)
{
    (void)state;
    enum { N = 8 };
    struct adoptee a[N];
    pthread_t p[N];
    for (int i = 0; i < N; i++) {
        memset(&a[i], 0, sizeof a[i]);
        event_init(&a[i].ready);
        event_init(&a[i].go);
        assert_int_equal(pthread_create(&p[i], NULL, adoptee_main, &a[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(conc_event_wait(&a[i].ready), 0);
        conc_thread *h = a[i].handle;
        assert_non_null(h);
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(h, a[j].handle);
        assert_int_equal(conc_thread_join_timed(h, NULL, 0), CONC_ESTATE);
        assert_int_equal(conc_thread_join(h, NULL), CONC_ESTATE);
        assert_int_equal(conc_thread_detach(h), CONC_ESTATE);
        assert_int_equal(conc_thread_destroy(h), CONC_ESTATE);
        assert_int_equal(conc_thread_is_alive(h), 1);
        assert_int_equal(conc_thread_id(h), a[i].tid);
        char name[32];
        assert_int_equal(conc_thread_get_name(h, name, sizeof name), 0);
        assert_string_equal(name, "adoptee");
    }
    /* All alive at once, so all handles distinct; then let them end. */
    for (int i = 0; i < N; i++)
        assert_int_equal(conc_event_set(&a[i].go), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(pthread_join(p[i], NULL), 0);
        event_destroy(&a[i].ready);
        event_destroy(&a[i].go);
    }
}

/* --------------------------------------------------------------- stack size */

#define BIG_LOCAL (512 * 1024)

/* TSan keeps its per-thread state (about 750 KiB) in static TLS, which glibc
 * carves out of the thread's stack: a 1 MiB thread has only ~250 KiB left. */
#if CONC__TSAN
#define STACK_ASK (2 * 1024 * 1024)
#else
#define STACK_ASK (1024 * 1024)
#endif

/* Touches BIG_LOCAL bytes of stack; returns a checksum of what it wrote. */
static int __attribute__((noinline)) use_big_stack(void)
{
    volatile char big[BIG_LOCAL];
    for (size_t i = 0; i < BIG_LOCAL; i += 512)
        big[i] = (char)(i >> 9);
    big[BIG_LOCAL - 1] = 1;
    int sum = 0;
    for (size_t i = 0; i < BIG_LOCAL; i += 512)
        sum += big[i];
    return sum + big[BIG_LOCAL - 1];
}

static int big_stack_fn(void *arg)
{
    size_t *stack_size = arg;
    pthread_attr_t attr;
    assert_int_equal(pthread_getattr_np(pthread_self(), &attr), 0);
    assert_int_equal(pthread_attr_getstacksize(&attr, stack_size), 0);
    pthread_attr_destroy(&attr);
    return use_big_stack();
}

static void stack_size_option(void **state)
{
    (void)state;
    int expect = 1;
    for (size_t i = 0; i < BIG_LOCAL; i += 512)
        expect += (char)(i >> 9);

    conc_thread_opts opts = {.stack_size = STACK_ASK};
    conc_thread *t = NULL;
    size_t got = 0;
    assert_int_equal(conc_thread_create(&t, big_stack_fn, &got, &opts), 0);
    int status = 0;
    assert_int_equal(conc_thread_join(t, &status), 0);
    assert_int_equal(status, expect);
    /* The size asked for, not the (8 MiB) default. */
    print_message("stack of a %d byte thread: %zu bytes\n", STACK_ASK, got);
    assert_true(got >= STACK_ASK);
    assert_true(got < 2 * STACK_ASK);
    assert_int_equal(conc_thread_destroy(t), 0);

    /* Below PTHREAD_STACK_MIN: refused, nothing started. */
    opts.stack_size = 1024;
    t = (conc_thread *)(uintptr_t)1;
    assert_int_equal(conc_thread_create(&t, big_stack_fn, &got, &opts), CONC_EINVAL);
    assert_null(t);
    opts.detached = true;
    assert_int_equal(conc_thread_create(NULL, big_stack_fn, &got, &opts), CONC_EINVAL);
}

/* ------------------------------------------------------------------ signals */

static int check_mask_fn(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &set), 0);
    static const int async[] = {SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGHUP, SIGQUIT, SIGALRM, SIGCHLD, SIGPIPE};
    for (size_t i = 0; i < sizeof async / sizeof *async; i++)
        assert_int_equal(sigismember(&set, async[i]), 1);
    assert_int_equal(sigismember(&set, SIGRTMIN), 1);
    static const int sync[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS};
    for (size_t i = 0; i < sizeof sync / sizeof *sync; i++)
        assert_int_equal(sigismember(&set, sync[i]), 0);
    return 0;
}

static void same_mask(const sigset_t *a, const sigset_t *b)
{
    for (int sig = 1; sig <= SIGRTMAX; sig++)
        assert_int_equal(sigismember(a, sig), sigismember(b, sig));
}

static void async_signals_blocked_in_conc_threads(void **state)
{
    (void)state;
    /* A creator mask that is neither empty nor full: SIGUSR2 blocked only. */
    sigset_t orig, mine, before, after;
    sigemptyset(&mine);
    sigaddset(&mine, SIGUSR2);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &mine, &orig), 0);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &before), 0);

    conc_thread *t = NULL;
    assert_int_equal(conc_thread_create(&t, check_mask_fn, NULL, NULL), 0);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &after), 0);
    same_mask(&before, &after);
    assert_int_equal(conc_thread_join(t, NULL), 0);
    assert_int_equal(conc_thread_destroy(t), 0);

    /* Detached threads too; a failed start leaves the mask alone as well. */
    conc_thread_opts opts = {.detached = true};
    assert_int_equal(conc_thread_create(NULL, check_mask_fn, NULL, &opts), 0);
    opts.stack_size = 1024;
    assert_int_equal(conc_thread_create(NULL, check_mask_fn, NULL, &opts), CONC_EINVAL);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &after), 0);
    same_mask(&before, &after);

    /* With an empty creator mask the thread's is still the blocking one. */
    sigemptyset(&mine);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &mine, NULL), 0);
    assert_int_equal(conc_thread_create(&t, check_mask_fn, NULL, NULL), 0);
    assert_int_equal(conc_thread_join(t, NULL), 0);
    assert_int_equal(conc_thread_destroy(t), 0);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &orig, NULL), 0);
}

/* -------------------------------------------------------------------- sleep */

static void sleep_timing_lower_bound(void **state)
{
    (void)state;
    static const int64_t asks[] = {CONC_USEC(100), CONC_MSEC(5), CONC_MSEC(30)};
    for (size_t i = 0; i < sizeof asks / sizeof *asks; i++) {
        int64_t t0 = conc_now_ns();
        assert_int_equal(conc_sleep(asks[i]), 0);
        int64_t took = conc_now_ns() - t0;
        print_message("conc_sleep(%lld ns): slack %lld ns\n", (long long)asks[i],
                      (long long)(took - asks[i]));
        assert_true(took >= asks[i]);
        assert_true(took < asks[i] + CONC_SEC(1));
    }
    int64_t t0 = conc_now_ns();
    assert_int_equal(conc_sleep(0), 0);
    assert_true(conc_now_ns() - t0 < CONC_SEC(1));

    assert_int_equal(conc_sleep(-2), CONC_EINVAL);
    assert_int_equal(conc_sleep(INT64_MIN), CONC_EINVAL);
    for (int i = 0; i < 100; i++)
        conc_yield();
}

static _Atomic int sigusr1_seen;

static void on_sigusr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&sigusr1_seen, 1);
}

struct pester {
    pthread_t target;
    _Atomic bool stop;
    int sent;
};

static void *pester_main(void *arg)
{
    struct pester *p = arg;
    while (!atomic_load(&p->stop)) {
        assert_int_equal(pthread_kill(p->target, SIGUSR1), 0);
        p->sent++;
        conc_sleep(CONC_MSEC(2));
    }
    return NULL;
}

/* Signals that interrupt the sleep (EINTR) do not shorten it. */
static void sleep_timing_survives_signals(void **state)
{
    (void)state;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGUSR1);
    assert_int_equal(pthread_sigmask(SIG_UNBLOCK, &unblock, NULL), 0);

    struct pester p = {.target = pthread_self()};
    pthread_t pt;
    assert_int_equal(pthread_create(&pt, NULL, pester_main, &p), 0);
    const int64_t ask = CONC_MSEC(100);
    int64_t t0 = conc_now_ns();
    assert_int_equal(conc_sleep(ask), 0);
    int64_t took = conc_now_ns() - t0;
    atomic_store(&p.stop, true);
    assert_int_equal(pthread_join(pt, NULL), 0);
    print_message("slept %lld ns of %lld with %d signals sent, %d handled\n", (long long)took,
                  (long long)ask, p.sent, atomic_load(&sigusr1_seen));
    assert_true(took >= ask);
    assert_true(took < ask + CONC_SEC(1));
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

/* ---------------------------------------------------------------- cpu count */

static int affinity_count(cpu_set_t *set)
{
    CPU_ZERO(set);
    assert_int_equal(sched_getaffinity(0, sizeof *set, set), 0);
    return CPU_COUNT(set);
}

static int cpu_count_fn(void *arg)
{
    (void)arg;
    return conc_cpu_count();
}

static void cpu_count_bounds_and_affinity(void **state)
{
    (void)state;
    int n = conc_cpu_count();
    cpu_set_t orig;
    int aff = affinity_count(&orig);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    print_message("conc_cpu_count %d, affinity %d, online %ld\n", n, aff, online);
    assert_true(n >= 1);
    assert_true(n <= aff);
    assert_true(online < 1 || n <= online);

    /* Narrowed to one CPU (the affinity mask is per thread). */
    int first = -1;
    for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
        if (CPU_ISSET(c, &orig))
            first = c;
    assert_true(first >= 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
    assert_int_equal(conc_cpu_count(), 1);
    /* A thread started now inherits the narrowed mask. */
    conc_thread *t = NULL;
    assert_int_equal(conc_thread_create(&t, cpu_count_fn, NULL, NULL), 0);
    int status = 0;
    assert_int_equal(conc_thread_join(t, &status), 0);
    assert_int_equal(status, 1);
    assert_int_equal(conc_thread_destroy(t), 0);

    assert_int_equal(sched_setaffinity(0, sizeof orig, &orig), 0);
    assert_int_equal(conc_cpu_count(), n);
}

/* ---------------------------------------------------------------------- TLS */

enum { TLS_THREADS = 8 };

struct tls_slot {
    _Atomic int dtor_calls;
};

static struct tls_slot tls_slots[TLS_THREADS + 2];
static _Atomic int tls_dtor_total;

static void tls_dtor(void *value)
{
    struct tls_slot *s = value;
    assert_true(s >= tls_slots && s < tls_slots + TLS_THREADS + 2);
    atomic_fetch_add(&s->dtor_calls, 1);
    atomic_fetch_add(&tls_dtor_total, 1);
}

struct tls_arg {
    conc_tls *key;
    conc_tls *plain; /* a key without destructor */
    conc_barrier *all_set;
    int index;
};

static int tls_fn(void *arg)
{
    struct tls_arg *a = arg;
    assert_null(conc_tls_get(a->key));
    assert_null(conc_tls_get(a->plain));
    struct tls_slot *mine = &tls_slots[a->index];
    assert_int_equal(conc_tls_set(a->key, mine), 0);
    assert_int_equal(conc_tls_set(a->plain, (void *)(intptr_t)(a->index + 1)), 0);
    /* Everyone has set a value before anyone reads one back. */
    assert_int_equal(conc_barrier_wait(a->all_set, NULL), 0);
    assert_ptr_equal(conc_tls_get(a->key), mine);
    assert_ptr_equal(conc_tls_get(a->plain), (void *)(intptr_t)(a->index + 1));
    return 0;
}

/* Sets a value and takes it back: a NULL value gets no destructor call. */
static int tls_unset_fn(void *arg)
{
    struct tls_arg *a = arg;
    assert_int_equal(conc_tls_set(a->key, &tls_slots[a->index]), 0);
    assert_int_equal(conc_tls_set(a->key, NULL), 0);
    assert_null(conc_tls_get(a->key));
    return 0;
}

static void tls_values_are_per_thread(void **state)
{
    (void)state;
    conc_tls key, plain;
    assert_int_equal(conc_tls_init(&key, tls_dtor), 0);
    assert_int_equal(conc_tls_init(&plain, NULL), 0);
    assert_null(conc_tls_get(&key));
    /* The main thread's own value, which no thread may see or disturb. */
    struct tls_slot *main_slot = &tls_slots[TLS_THREADS + 1];
    assert_int_equal(conc_tls_set(&key, main_slot), 0);

    conc_barrier all_set;
    assert_int_equal(conc_barrier_init(&all_set, TLS_THREADS, NULL), 0);
    struct tls_arg args[TLS_THREADS + 1];
    conc_thread *t[TLS_THREADS + 1];
    for (int i = 0; i < TLS_THREADS; i++) {
        args[i] = (struct tls_arg){.key = &key, .plain = &plain, .all_set = &all_set, .index = i};
        assert_int_equal(conc_thread_create(&t[i], tls_fn, &args[i], NULL), 0);
    }
    args[TLS_THREADS] = (struct tls_arg){.key = &key, .plain = &plain, .index = TLS_THREADS};
    assert_int_equal(conc_thread_create(&t[TLS_THREADS], tls_unset_fn, &args[TLS_THREADS], NULL), 0);
    for (int i = 0; i <= TLS_THREADS; i++) {
        int status = -1;
        assert_int_equal(conc_thread_join(t[i], &status), 0);
        assert_int_equal(status, 0);
        assert_int_equal(conc_thread_destroy(t[i]), 0);
    }
    /* A joined thread has run its destructors: once each, with its value. */
    for (int i = 0; i < TLS_THREADS; i++)
        assert_int_equal(atomic_load(&tls_slots[i].dtor_calls), 1);
    assert_int_equal(atomic_load(&tls_slots[TLS_THREADS].dtor_calls), 0);
    assert_int_equal(atomic_load(&main_slot->dtor_calls), 0);
    assert_int_equal(atomic_load(&tls_dtor_total), TLS_THREADS);
    assert_ptr_equal(conc_tls_get(&key), main_slot);
    assert_null(conc_tls_get(&plain));
    assert_int_equal(conc_barrier_destroy(&all_set), 0);

    /* Destroyed keys are dead: no value, no set, no second destroy. */
    assert_int_equal(conc_tls_destroy(&key), 0);
    assert_null(conc_tls_get(&key));
    assert_int_equal(conc_tls_set(&key, main_slot), CONC_EBADF);
    assert_int_equal(conc_tls_destroy(&key), CONC_EBADF);
    assert_int_equal(conc_tls_destroy(&plain), 0);
    assert_int_equal(atomic_load(&main_slot->dtor_calls), 0);
}

static void tls_invalid_keys(void **state)
{
    (void)state;
    conc_tls zero;
    memset(&zero, 0, sizeof zero);
    assert_null(conc_tls_get(&zero));
    assert_int_equal(conc_tls_set(&zero, &zero), CONC_EINVAL);
    assert_int_equal(conc_tls_destroy(&zero), CONC_EINVAL);
    assert_null(conc_tls_get(NULL));
    assert_int_equal(conc_tls_set(NULL, &zero), CONC_EINVAL);
    assert_int_equal(conc_tls_destroy(NULL), CONC_EINVAL);
    assert_int_equal(conc_tls_init(NULL, NULL), CONC_EINVAL);

    /* A key made after others were deleted starts empty in every thread. */
    conc_tls k;
    assert_int_equal(conc_tls_init(&k, NULL), 0);
    assert_int_equal(conc_tls_set(&k, &k), 0);
    assert_int_equal(conc_tls_destroy(&k), 0);
    assert_int_equal(conc_tls_init(&k, NULL), 0);
    assert_null(conc_tls_get(&k));
    assert_int_equal(conc_tls_destroy(&k), 0);
}

/* ------------------------------------------------------------------- stress */

static int stress_fn(void *arg)
{
    return (int)((intptr_t)arg * 2654435761u & 0x7fffffff);
}

static int stress_expect(long i)
{
    return (int)((intptr_t)i * 2654435761u & 0x7fffffff);
}

static void start_join_stress(void **state)
{
    (void)state;
    long n = conc_test_scaled(2000, 100);
    /* One at a time. */
    for (long i = 0; i < n; i++) {
        conc_thread *t = NULL;
        assert_int_equal(conc_thread_create(&t, stress_fn, (void *)(intptr_t)i, NULL), 0);
        int status = -1;
        assert_int_equal(conc_thread_join(t, &status), 0);
        assert_int_equal(status, stress_expect(i));
        assert_int_equal(conc_thread_destroy(t), 0);
    }
    /* Eight at a time; every other one joined by polling with timeout 0 and
     * retrying after CONC_ETIMEDOUT. */
    enum { BATCH = 8 };
    long timeouts = 0;
    for (long base = 0; base < n; base += BATCH) {
        conc_thread *t[BATCH];
        for (int j = 0; j < BATCH; j++)
            assert_int_equal(conc_thread_create(&t[j], stress_fn, (void *)(intptr_t)(base + j), NULL), 0);
        for (int j = 0; j < BATCH; j++) {
            int status = -1, rc;
            if (j % 2) {
                while ((rc = conc_thread_join_timed(t[j], &status, 0)) == CONC_ETIMEDOUT) {
                    assert_int_equal(status, -1);
                    timeouts++;
                    conc_yield();
                }
            } else {
                rc = conc_thread_join(t[j], &status);
            }
            assert_int_equal(rc, 0);
            assert_int_equal(status, stress_expect(base + j));
            assert_int_equal(conc_thread_is_alive(t[j]), 0);
            assert_int_equal(conc_thread_destroy(t[j]), 0);
        }
    }
    print_message("%ld threads one by one, %ld in batches, %ld join timeouts\n", n, n, timeouts);
}

static _Atomic long unjoined_done;

static int unjoined_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&unjoined_done, 1);
    return 0;
}

/* Handles let go every way while their threads may still be running: the
 * reference counts must free each handle exactly once (ASan: no leak, no
 * double free, no use after free; TSan: no race). */
static void destroy_unjoined_stress(void **state)
{
    (void)state;
    long n = conc_test_scaled(1000, 60);
    /* The baseline after a first thread: TSan starts a helper thread of its
     * own at the first pthread_create. */
    conc_thread *warm = NULL;
    assert_int_equal(conc_thread_create(&warm, dummy_fn, NULL, NULL), 0);
    assert_int_equal(conc_thread_join(warm, NULL), 0);
    assert_int_equal(conc_thread_destroy(warm), 0);
    int baseline = task_count();
    conc_thread_opts opts = {.stack_size = 256 * 1024};
    for (long i = 0; i < n; i++) {
        /* At most 64 outstanding, to stay far from thread limits. */
        while (i - atomic_load(&unjoined_done) > 64)
            conc_yield();
        conc_thread *t = NULL;
        switch (i % 3) {
        case 0: /* destroyed at once: detached by destroy */
            assert_int_equal(conc_thread_create(&t, unjoined_fn, NULL, &opts), 0);
            assert_int_equal(conc_thread_destroy(t), 0);
            break;
        case 1: /* detached, then destroyed */
            assert_int_equal(conc_thread_create(&t, unjoined_fn, NULL, &opts), 0);
            assert_int_equal(conc_thread_detach(t), 0);
            assert_int_equal(conc_thread_join_timed(t, NULL, 0), CONC_ESTATE);
            assert_int_equal(conc_thread_destroy(t), 0);
            break;
        default: { /* started detached */
            conc_thread_opts d = opts;
            d.detached = true;
            assert_int_equal(conc_thread_create(NULL, unjoined_fn, NULL, &d), 0);
        }
        }
    }
    CONC_TEST_POLL_UNTIL_FOR(atomic_load(&unjoined_done) >= n, 30);
    assert_int_equal(atomic_load(&unjoined_done), n);
    wait_task_count_at_most(baseline);
}

/* A status nobody joins for is reported once (Python's excepthook): a
 * detached thread, and a thread destroyed unjoined after it ended; a joined
 * one is not, nor one returning 0. */

static void unjoined_failing_thread_is_reported(void **state)
{
    (void)state;
    static struct conc_test_unhandled seen;
    assert_int_equal(conc_set_unhandled_hook(conc_test_unhandled_hook, &seen), 0);
    conc_thread_opts detached = {.name = "lost-worker", .detached = true};
    assert_int_equal(conc_thread_create(NULL, return_arg, (void *)(intptr_t)7, &detached), 0);
    CONC_TEST_POLL_UNTIL(atomic_load(&seen.calls) == 1);
    assert_string_equal(seen.kind, "thread");
    assert_string_equal(seen.name, "lost-worker");
    assert_int_equal(atomic_load(&seen.status), 7);
    /* Joined: read, not reported. Returning 0: nothing to report. */
    conc_thread *t;
    int st = 0;
    assert_int_equal(conc_thread_create(&t, return_arg, (void *)(intptr_t)-5, NULL), 0);
    assert_int_equal(conc_thread_join(t, &st), 0);
    assert_int_equal(st, -5);
    assert_int_equal(conc_thread_destroy(t), 0);
    assert_int_equal(conc_thread_create(NULL, return_arg, NULL, &detached), 0); /* status 0 */
    /* Ended, never joined, then destroyed: reported at the destroy. */
    assert_int_equal(conc_thread_create(&t, return_arg, (void *)(intptr_t)CONC_EIO, NULL), 0);
    CONC_TEST_POLL_UNTIL(conc_thread_is_alive(t) == 0);
    assert_int_equal(atomic_load(&seen.calls), 1);
    assert_int_equal(conc_thread_destroy(t), 0);
    assert_int_equal(atomic_load(&seen.calls), 2);
    assert_int_equal(atomic_load(&seen.status), CONC_EIO);
    assert_memory_equal(seen.name, "Thread-", 7); /* an unnamed thread's default name */
    assert_int_equal(conc_set_unhandled_hook(NULL, NULL), 0);
}

/* threading.main_thread(): one handle, the same from every thread, the
 * process's id, not joinable; in a forked child, the forking thread's. */
static void *main_from_another_thread(void *arg)
{
    *(conc_thread **)arg = conc_thread_main();
    return NULL;
}

static int fork_child_main_check(void *arg)
{
    (void)arg;
    pid_t pid = fork();
    if (pid == 0) {
        conc_thread *m = conc_thread_main();
        _exit(m && m == conc_thread_self() && conc_thread_id(m) == (int64_t)getpid() ? 0 : 1);
    }
    int st = -1;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 2;
}

static void main_thread_handle_is_one_and_the_process(void **state)
{
    (void)state;
    conc_thread *seen = NULL;
    /* Asked first from another thread, then by the main thread itself. */
    conc_test_join(conc_test_start(main_from_another_thread, &seen));
    assert_non_null(seen);
    conc_thread *m = conc_thread_main();
    assert_ptr_equal(m, seen);
    assert_ptr_equal(m, conc_thread_self());
    assert_int_equal(conc_thread_id(m), (int64_t)getpid());
    assert_int_equal(conc_thread_is_alive(m), 1);
    assert_int_equal(conc_thread_join_timed(m, NULL, 0), CONC_EDEADLK); /* joining oneself */
    assert_int_equal(conc_thread_destroy(m), CONC_ESTATE);
    char name[64], comm[64];
    assert_int_equal(conc_thread_get_name(m, name, sizeof name), 0);
    conc_test_read_comm(getpid(), comm, sizeof comm);
    assert_string_equal(name, comm);
    seen = NULL;
    conc_test_join(conc_test_start(main_from_another_thread, &seen));
    assert_ptr_equal(seen, m);
    /* A child forked by a conc thread: that thread is the child's main. */
    conc_thread *t;
    int st = -1;
    assert_int_equal(conc_thread_create(&t, fork_child_main_check, NULL, NULL), 0);
    assert_int_equal(conc_thread_join(t, &st), 0);
    assert_int_equal(st, 0);
    assert_int_equal(conc_thread_destroy(t), 0);
}

/* ---- timers ---- */

static int count_run(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
    return 11;
}

static void timer_runs_once_after_its_delay(void **state)
{
    (void)state;
    conc_timer *t;
    _Atomic int runs = 0;
    assert_int_equal(conc_timer_create(NULL, 0, count_run, (void *)&runs, NULL), CONC_EINVAL);
    assert_int_equal(conc_timer_create(&t, 0, NULL, NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_timer_create(&t, -1, count_run, (void *)&runs, NULL), CONC_EINVAL);
    assert_int_equal(conc_timer_cancel(NULL), CONC_EINVAL);
    assert_int_equal(conc_timer_join_timed(NULL, NULL, 0), CONC_EINVAL);
    assert_int_equal(conc_timer_destroy(NULL), CONC_EINVAL);
    int64_t t0 = conc_now_ns();
    assert_int_equal(conc_timer_create(&t, CONC_MSEC(20), count_run, (void *)&runs, &(conc_timer_opts){.name = "tick"}), 0);
    int st = 0;
    assert_int_equal(conc_timer_join(t, &st), 0);
    assert_true(conc_now_ns() - t0 >= CONC_MSEC(20)); /* never early */
    assert_int_equal(st, 11);
    assert_int_equal(atomic_load(&runs), 1);
    assert_int_equal(conc_timer_cancel(t), CONC_EBUSY); /* it ran */
    assert_int_equal(conc_timer_join_timed(t, NULL, 0), CONC_ESTATE); /* a second join */
    assert_int_equal(conc_timer_destroy(t), 0);
}

static void timer_cancelled_before_it_fires_never_runs(void **state)
{
    (void)state;
    conc_timer *t;
    _Atomic int runs = 0;
    assert_int_equal(conc_timer_create(&t, CONC_SEC(60), count_run, (void *)&runs, NULL), 0);
    assert_int_equal(conc_timer_cancel(t), 0);
    assert_int_equal(conc_timer_cancel(t), 0); /* cancelled already: still "will never run" */
    int st = 0;
    assert_int_equal(conc_timer_join_timed(t, &st, CONC_SEC(30)), 0); /* woken, not after 60 s */
    assert_int_equal(st, CONC_ECANCELED);
    assert_int_equal(atomic_load(&runs), 0);
    assert_int_equal(conc_timer_destroy(t), 0);
    /* Destroyed while waiting: cancelled, joined, freed. */
    assert_int_equal(conc_timer_create(&t, CONC_SEC(60), count_run, (void *)&runs, NULL), 0);
    assert_int_equal(conc_timer_destroy(t), 0);
    assert_int_equal(atomic_load(&runs), 0);
}

/* fn destroying or joining its own timer would wait for itself. */
struct self_timer {
    conc_timer *t;
    conc_event ready;
    int destroy_rc, join_rc;
};

static int destroy_own_timer(void *arg)
{
    struct self_timer *s = arg;
    assert_int_equal(conc_event_wait(&s->ready), 0);
    s->destroy_rc = conc_timer_destroy(s->t);
    s->join_rc = conc_timer_join_timed(s->t, NULL, 0);
    return 0;
}

static void timer_destroyed_from_its_fn_is_edeadlk(void **state)
{
    (void)state;
    struct self_timer s = {0};
    assert_int_equal(conc_event_init(&s.ready, NULL), 0);
    assert_int_equal(conc_timer_create(&s.t, 0, destroy_own_timer, &s, NULL), 0);
    assert_int_equal(conc_event_set(&s.ready), 0);
    int st = -1;
    assert_int_equal(conc_timer_join(s.t, &st), 0);
    assert_int_equal(st, 0);
    assert_int_equal(s.destroy_rc, CONC_EDEADLK);
    assert_int_equal(s.join_rc, CONC_EDEADLK);
    assert_int_equal(conc_timer_destroy(s.t), 0);
    assert_int_equal(conc_event_destroy(&s.ready), 0);
}

/* A cancel racing the delay's end: fn runs exactly when the cancel says it
 * was too late. */
static void timer_cancel_races_fire_exactly_one_wins(void **state)
{
    (void)state;
    long n = conc_test_scaled(300, 30);
    for (long i = 0; i < n; i++) {
        conc_timer *t;
        _Atomic int runs = 0;
        assert_int_equal(conc_timer_create(&t, CONC_USEC(i % 50), count_run, (void *)&runs, NULL), 0);
        int rc = conc_timer_cancel(t);
        int st = 0;
        assert_int_equal(conc_timer_join(t, &st), 0);
        if (rc == 0) {
            assert_int_equal(atomic_load(&runs), 0);
            assert_int_equal(st, CONC_ECANCELED);
        } else {
            assert_int_equal(rc, CONC_EBUSY);
            assert_int_equal(atomic_load(&runs), 1);
            assert_int_equal(st, 11);
        }
        assert_int_equal(conc_timer_destroy(t), 0);
    }
}

/* threading.enumerate() and active_count(): the main thread always; conc
 * threads while their function runs; adopted threads until they exit. */
static bool info_has(const conc_thread_info *info, int n, const char *name, int64_t id)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(info[i].name, name) && (id == 0 || info[i].id == id))
            return true;
    return false;
}

static void *adopt_and_wait(void *arg)
{
    struct gate *g = arg;
    conc_thread_set_name(conc_thread_self(), "adopted-one");
    assert_int_equal(conc_event_set(&g->started), 0);
    assert_int_equal(conc_event_wait(&g->go), 0);
    return NULL;
}

static void enumerate_lists_live_threads(void **state)
{
    (void)state;
    assert_int_equal(conc_thread_enumerate(NULL, 3), CONC_EINVAL);
    int base = conc_thread_active_count();
    assert_true(base >= 1); /* the main thread */
    conc_thread_info info[16];
    int n = conc_thread_enumerate(info, 16);
    assert_int_equal(n, base);
    bool main_seen = false; /* the main thread, by its id */
    for (int i = 0; i < n && i < 16; i++)
        main_seen |= info[i].id == (int64_t)getpid() && !info[i].started_by_conc;
    assert_true(main_seen);
    /* A conc thread while it runs, an adopted one until it exits. */
    struct gate g, a;
    gate_init(&g, 0);
    gate_init(&a, 0);
    conc_thread *t;
    conc_thread_opts opts = {.name = "listed-one"};
    assert_int_equal(conc_thread_create(&t, gated_fn, &g, &opts), 0);
    assert_int_equal(conc_event_wait(&g.started), 0);
    pthread_t p = conc_test_start(adopt_and_wait, &a);
    assert_int_equal(conc_event_wait(&a.started), 0);
    n = conc_thread_enumerate(info, 16);
    assert_int_equal(n, base + 2);
    assert_int_equal(conc_thread_active_count(), base + 2);
    assert_true(info_has(info, n, "listed-one", conc_thread_id(t)));
    assert_true(info_has(info, n, "adopted-one", 0));
    for (int i = 0; i < n; i++)
        if (!strcmp(info[i].name, "listed-one"))
            assert_true(info[i].started_by_conc);
        else if (!strcmp(info[i].name, "adopted-one"))
            assert_false(info[i].started_by_conc);
    /* Fewer places than threads: the count is still the whole. */
    assert_int_equal(conc_thread_enumerate(info, 1), base + 2);
    assert_int_equal(conc_event_set(&g.go), 0);
    assert_int_equal(conc_thread_join(t, NULL), 0);
    assert_int_equal(conc_event_set(&a.go), 0);
    conc_test_join(p);
    assert_int_equal(conc_thread_active_count(), base);
    assert_int_equal(conc_thread_destroy(t), 0);
    gate_destroy(&g);
    gate_destroy(&a);
}

CONC_TEST_MAIN(
    cmocka_unit_test(enumerate_lists_live_threads),
    cmocka_unit_test(timer_runs_once_after_its_delay),
    cmocka_unit_test(timer_cancelled_before_it_fires_never_runs),
    cmocka_unit_test(timer_cancel_races_fire_exactly_one_wins),
    cmocka_unit_test(timer_destroyed_from_its_fn_is_edeadlk),
    cmocka_unit_test(main_thread_handle_is_one_and_the_process),
    cmocka_unit_test(unjoined_failing_thread_is_reported),
    cmocka_unit_test(join_returns_function_status),
    cmocka_unit_test(many_threads_return_distinct_statuses),
    cmocka_unit_test(join_times_out_while_running_then_succeeds),
    cmocka_unit_test(null_arguments_are_einval),
    cmocka_unit_test(join_self_is_edeadlk),
    cmocka_unit_test(destroy_own_handle_is_estate),
    cmocka_unit_test(concurrent_join_stress),
    cmocka_unit_test(join_of_detached_thread_is_estate),
    cmocka_unit_test(detached_option_runs_and_frees_itself),
    cmocka_unit_test(destroy_running_thread_detaches_it),
    cmocka_unit_test(names_visible_in_proc_comm),
    cmocka_unit_test(long_start_name_shows_first_15_bytes),
    cmocka_unit_test(thread_renames_itself),
    cmocka_unit_test(get_name_truncates_and_terminates),
    cmocka_unit_test(thread_id_is_gettid_and_is_alive_tracks_function),
    cmocka_unit_test(self_in_main_thread_is_adopted),
    cmocka_unit_test(pthread_self_handle_freed_at_exit),
    cmocka_unit_test(stack_size_option),
    cmocka_unit_test(async_signals_blocked_in_conc_threads),
    cmocka_unit_test(sleep_timing_lower_bound),
    cmocka_unit_test(sleep_timing_survives_signals),
    cmocka_unit_test(cpu_count_bounds_and_affinity),
    cmocka_unit_test(tls_values_are_per_thread),
    cmocka_unit_test(tls_invalid_keys),
    cmocka_unit_test(start_join_stress),
    cmocka_unit_test(destroy_unjoined_stress))
