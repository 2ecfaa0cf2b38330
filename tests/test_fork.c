/* fork() from a busy threaded program (core/fork.h): the fork table takes
 * conc's internal locks in one order, so a child never finds one held by a
 * thread that did not come along; a pool inherited from the parent answers
 * CONC_EBROKEN; everything the child creates works.
 *
 * Eight threads hammer a queue, a pool, lock-order checking and a trace
 * while the main thread forks. Each child checks the inherited pool, then
 * creates its own pool, queue, locks (under lock-order checking) and trace,
 * uses them, and exits 0; a failed check exits with a code that names it.
 * The parent waits for each child with a deadline: a child that hangs is
 * killed and fails the test. */
#define _GNU_SOURCE
#include "test.h"

#include "conc/conc.h"
#include "core/platform.h"
#include "exec/pool/pool_impl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define HAMMER_THREADS 8
#define CHILD_DEADLINE_S 60

/* AddressSanitizer's allocator (gcc 12's runtime) takes no lock around
 * fork(): a child forked while another thread allocates can hang in its
 * first malloc, in ASan's code, not conc's. Under ASan only, the hammering
 * threads hold this gate shared for each round (after their start, which
 * allocates too) and the forker takes it exclusive and waits for the pool's
 * workers to sleep, so no thread is inside malloc at the fork. The release and
 * ThreadSanitizer runs fork with no gate, in the middle of everything. */
static pthread_rwlock_t asan_fork_gate =
    PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP; /* the forker is not starved */

static void gate_enter(bool forker)
{
    if (CONC__ASAN)
        (forker ? pthread_rwlock_wrlock : pthread_rwlock_rdlock)(&asan_fork_gate);
}

static void gate_leave(void)
{
    if (CONC__ASAN)
        pthread_rwlock_unlock(&asan_fork_gate);
}

struct hammer {
    conc_pool *pool;
    conc_queue *queue;
    conc_mutex a, b;
    _Atomic bool stop;
    _Atomic uint32_t started; /* threads past their start (and its allocations) */
    _Atomic uint64_t rounds;
};

static int task_add_one(void *arg, conc_result *out)
{
    out->value = (int64_t)(intptr_t)arg + 1;
    return 0;
}

/* Two threads each: queue traffic, pool submissions, ordered lock pairs,
 * trace spans. */
static int hammer_main(void *arg)
{
    struct hammer *h = arg;
    static _Atomic int next_role;
    int role = atomic_fetch_add(&next_role, 1) % 4;
    atomic_fetch_add(&h->started, 1);
    while (!atomic_load(&h->stop)) {
        gate_enter(false);
        if (role == 0) {
            int v = 7;
            if (conc_queue_put_timed(h->queue, &v, CONC_MSEC(10)) == 0)
                (void)conc_queue_get_timed(h->queue, &v, CONC_MSEC(10));
        } else if (role == 1) {
            conc_future *f;
            if (conc_pool_submit(h->pool, task_add_one, (void *)(intptr_t)1, &f) == 0) {
                conc_result r;
                (void)conc_future_result(f, &r);
                conc_future_release(f);
            }
        } else if (role == 2) {
            conc_mutex_lock(&h->a);
            conc_mutex_lock(&h->b);
            conc_mutex_unlock(&h->b);
            conc_mutex_unlock(&h->a);
        } else {
            conc_trace_begin("hammer");
            conc_trace_end();
        }
        gate_leave();
        atomic_fetch_add(&h->rounds, 1);
    }
    return 0;
}

static void quiet_reporter(const char *text, void *arg)
{
    (void)text, (void)arg;
}

/* ---- the child ---- */

enum child_failure {
    CHILD_INHERITED_POOL = 10,
    CHILD_POOL_CREATE,
    CHILD_POOL_TASKS,
    CHILD_POOL_DESTROY,
    CHILD_QUEUE,
    CHILD_LOCKS,
    CHILD_TRACE,
};

struct child_queue {
    conc_queue *q;
    int n;
};

static int child_producer(void *arg, conc_result *out)
{
    struct child_queue *cq = arg;
    for (int i = 0; i < cq->n; i++)
        if (conc_queue_put_timed(cq->q, &i, CONC_SEC(10)) != 0)
            return CONC_ETIMEDOUT;
    out->value = cq->n;
    return 0;
}

/* Every item through a bounded queue, from a task of the child's pool to
 * the child's main thread, exactly once and in order. */
static bool child_queue_works(conc_pool *p)
{
    conc_queue *q;
    conc_queue_opts o = {.capacity = 4};
    if (conc_queue_create(&q, sizeof(int), &o) != 0)
        return false;
    struct child_queue cq = {q, 100};
    conc_future *f;
    bool ok = conc_pool_submit(p, child_producer, &cq, &f) == 0;
    for (int i = 0; ok && i < cq.n; i++) {
        int v = -1;
        ok = conc_queue_get_timed(q, &v, CONC_SEC(10)) == 0 && v == i;
    }
    if (ok) {
        conc_result r;
        ok = conc_future_result(f, &r) == 0 && r.value == cq.n;
        conc_future_release(f);
    }
    return conc_queue_destroy(q) == 0 && ok;
}

static bool child_pool_works(conc_pool *p)
{
    enum { N = 64 };
    conc_future *fs[N];
    for (int i = 0; i < N; i++)
        if (conc_pool_submit(p, task_add_one, (void *)(intptr_t)i, &fs[i]) != 0)
            return false;
    bool ok = true;
    for (int i = 0; i < N; i++) {
        conc_result r;
        ok &= conc_future_result(fs[i], &r) == 0 && r.value == i + 1;
        conc_future_release(fs[i]);
    }
    return ok;
}

/* Locks of its own, under the lock-order checking inherited on (ERROR
 * mode): the order c -> d is learnt, and then d -> c is refused. (The
 * parent's locks may have been held by a thread that did not come along:
 * the child never touches them.) */
static bool child_locks_work(void)
{
    conc_mutex c = CONC_MUTEX_INIT, d = CONC_MUTEX_INIT;
    bool ok = conc_mutex_lock(&c) == 0 && conc_mutex_lock(&d) == 0 &&
              conc_mutex_unlock(&d) == 0 && conc_mutex_unlock(&c) == 0;
    ok = ok && conc_mutex_lock(&d) == 0;
    ok = ok && conc_mutex_lock(&c) == CONC_EDEADLK;
    ok = ok && conc_mutex_unlock(&d) == 0;
    return ok && conc_mutex_destroy(&c) == 0 && conc_mutex_destroy(&d) == 0;
}

static bool child_trace_works(int round)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/conc-test-fork-%d-%d.json", (int)getpid(), round);
    if (conc_trace_start(path, 64) != 0)
        return false;
    conc_trace_begin("child");
    conc_trace_end();
    bool ok = conc_trace_stop() == 0;
    struct stat st;
    ok = ok && stat(path, &st) == 0 && st.st_size > 0;
    unlink(path);
    return ok;
}

static int child_main(struct hammer *h, int round)
{
    if (conc_pool_submit(h->pool, task_add_one, NULL, NULL) != CONC_EBROKEN ||
        conc_pool_shutdown(h->pool, false) != CONC_EBROKEN)
        return CHILD_INHERITED_POOL;
    conc_pool *p;
    conc_pool_opts po = {.max_workers = 2};
    if (conc_pool_create(&p, &po) != 0)
        return CHILD_POOL_CREATE;
    if (!child_pool_works(p))
        return CHILD_POOL_TASKS;
    if (!child_queue_works(p))
        return CHILD_QUEUE;
    if (conc_pool_destroy(p) != 0)
        return CHILD_POOL_DESTROY;
    if (!child_locks_work())
        return CHILD_LOCKS;
    if (!child_trace_works(round))
        return CHILD_TRACE;
    return 0;
}

/* ---- the parent ---- */

static void fork_stress_from_busy_threads(void **state)
{
    (void)state;
    static struct hammer h;
    conc_pool_opts po = {.max_workers = 2};
    assert_int_equal(conc_pool_create(&h.pool, &po), 0);
    conc_queue_opts qo = {.capacity = 16};
    assert_int_equal(conc_queue_create(&h.queue, sizeof(int), &qo), 0);
    assert_int_equal(conc_mutex_init(&h.a, NULL), 0);
    assert_int_equal(conc_mutex_init(&h.b, NULL), 0);
    assert_int_equal(conc_lockdep_set_mode(CONC_LOCKDEP_ERROR), 0);
    /* The children's refused orders are reported: not on the test's output. */
    assert_int_equal(conc_debug_set_reporter(quiet_reporter, NULL), 0);
    char path[64];
    snprintf(path, sizeof path, "/tmp/conc-test-fork-parent-%d.json", (int)getpid());
    assert_int_equal(conc_trace_start(path, 1024), 0);

    conc_thread *threads[HAMMER_THREADS];
    for (int i = 0; i < HAMMER_THREADS; i++)
        assert_int_equal(conc_thread_create(&threads[i], hammer_main, &h, NULL), 0);
    /* Every thread is at work before the first fork. */
    CONC_TEST_POLL_UNTIL(atomic_load(&h.started) == HAMMER_THREADS &&
                         atomic_load(&h.rounds) >= 4 * HAMMER_THREADS);

    long forks = conc_test_scaled(200, 200);
    for (long i = 0; i < forks; i++) {
        gate_enter(true);
        if (CONC__ASAN)
            CONC_TEST_POLL_UNTIL(atomic_load(&h.pool->sleepers) == (uint32_t)atomic_load(&h.pool->started));
        pid_t pid = fork();
        if (pid == 0)
            _exit(child_main(&h, (int)i));
        gate_leave();
        assert_true(pid > 0);
        int rc = conc_test_wait_child(pid, CHILD_DEADLINE_S);
        if (rc != 0)
            fail_msg("fork %ld: the child %s (status %d)", i,
                     rc < 0 ? "hung and was killed" : "failed", rc);
    }

    atomic_store(&h.stop, true);
    for (int i = 0; i < HAMMER_THREADS; i++) {
        assert_int_equal(conc_thread_join(threads[i], NULL), 0);
        conc_thread_destroy(threads[i]);
    }
    assert_int_equal(conc_trace_stop(), 0);
    unlink(path);
    assert_int_equal(conc_lockdep_set_mode(CONC_LOCKDEP_OFF), 0);
    assert_int_equal(conc_debug_set_reporter(NULL, NULL), 0);
    assert_int_equal(conc_pool_destroy(h.pool), 0);
    assert_int_equal(conc_queue_destroy(h.queue), 0);
    assert_int_equal(conc_mutex_destroy(&h.a), 0);
    assert_int_equal(conc_mutex_destroy(&h.b), 0);
}

/* ---- an inherited future ---- */

static int task_wait_event(void *arg, conc_result *out)
{
    (void)out;
    return conc_event_wait(arg);
}

/* A future still pending at the fork would never finish in the child: its
 * wait answers CONC_EBROKEN at once, timed or not, as does the pool. */
static void inherited_pending_future_is_broken(void **state)
{
    (void)state;
    conc_pool *p;
    conc_pool_opts po = {.max_workers = 1};
    assert_int_equal(conc_pool_create(&p, &po), 0);
    conc_event release = CONC_EVENT_INIT;
    conc_future *running, *queued;
    assert_int_equal(conc_pool_submit(p, task_wait_event, &release, &running), 0);
    assert_int_equal(conc_pool_submit(p, task_add_one, NULL, &queued), 0);
    CONC_TEST_POLL_UNTIL(conc_future_running(running));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        bool ok = conc_future_wait(queued) == CONC_EBROKEN &&
                  conc_future_wait_timed(running, CONC_SEC(1)) == CONC_EBROKEN &&
                  conc_future_result(queued, NULL) == CONC_EBROKEN &&
                  conc_pool_destroy(p) == CONC_EBROKEN;
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(conc_test_wait_child(pid, CHILD_DEADLINE_S), 0);
    /* The parent's pool and futures are untouched. */
    assert_int_equal(conc_event_set(&release), 0);
    conc_result r;
    assert_int_equal(conc_future_result(queued, &r), 0);
    assert_int_equal(r.value, 1);
    assert_int_equal(conc_future_result(running, NULL), 0);
    conc_future_release(running);
    conc_future_release(queued);
    assert_int_equal(conc_pool_destroy(p), 0);
}

CONC_TEST_MAIN(cmocka_unit_test(fork_stress_from_busy_threads),
               cmocka_unit_test(inherited_pending_future_is_broken))
