/* future.h: conc_future against Python's concurrent.futures.Future — states
 * (pending, running, finished, cancelled), wait vs. result (a wait's status
 * is never the task's), results and their ownership (free_fn on the last
 * reference), retain/release and fire-and-forget, the two cancels (cancel
 * fails on a running future; request_cancel lets a running task stop and end
 * CANCELLED), done-callbacks (order, thread, at once on a done future, a
 * failing one does not stop the rest), conc_wait's three modes with its done
 * flags, as_completed (completion order, one deadline, duplicates once),
 * EDEADLK on a task's own future, every misuse code, and races of completion
 * against waiters and callbacks.
 *
 * Futures come from a thread pool; a task is held RUNNING (or a future kept
 * PENDING behind it on a one-worker pool) by a conc_event the test sets, and
 * "a thread is blocked on a future" is read from the future's waiter count. */
#include "test.h"

#include "exec/future_impl.h"
#include "exec/pool/pool_impl.h"

#include <stdatomic.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

static _Atomic uint32_t *nwaiters(conc_future *f)
{
    return &f->wq.nwaiters;
}

/* A task that counts its runs and returns `ret` with `value` as its result. */
struct plain {
    _Atomic int runs;
    int ret;
    int64_t value;
};

static int plain_task(void *arg, conc_result *out)
{
    struct plain *t = arg;
    atomic_fetch_add(&t->runs, 1);
    out->value = t->value;
    return t->ret;
}

static conc_future *submit_plain(conc_pool *p, struct plain *t)
{
    return conc_test_submit(p, plain_task, t);
}

static int64_t elapsed_since(int64_t t0)
{
    return conc_now_ns() - t0;
}

/* -------------------------------------------------------------------- misuse */

static int noop_cb(conc_future *f, void *arg)
{
    (void)f;
    (void)arg;
    return 0;
}

static void future_null_arguments_are_einval(void **state)
{
    (void)state;
    conc_result r;
    assert_int_equal(conc_future_wait_timed(NULL, 0), CONC_EINVAL);
    assert_int_equal(conc_future_wait(NULL), CONC_EINVAL);
    assert_int_equal(conc_future_result(NULL, &r), CONC_EINVAL);
    assert_int_equal(conc_future_result(NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_future_cancel(NULL), CONC_EINVAL);
    assert_int_equal(conc_future_request_cancel(NULL), CONC_EINVAL);
    assert_int_equal(conc_future_done(NULL), CONC_EINVAL);
    assert_int_equal(conc_future_running(NULL), CONC_EINVAL);
    assert_int_equal(conc_future_cancelled(NULL), CONC_EINVAL);
    assert_int_equal(conc_future_add_done_callback(NULL, noop_cb, NULL), CONC_EINVAL);
    assert_int_equal(conc_future_retain(NULL), CONC_EINVAL);
    assert_int_equal(conc_future_release(NULL), CONC_EINVAL);
    assert_false(conc_cancel_requested()); /* outside any task */

    conc_pool *p = conc_test_pool_new(1);
    conc_future *f = NULL;
    assert_int_equal(conc_pool_submit(p, conc_test_noop_task, NULL, &f), 0);
    assert_int_equal(conc_future_add_done_callback(f, NULL, NULL), CONC_EINVAL);
    /* Negative timeouts other than CONC_FOREVER. */
    assert_int_equal(conc_future_wait_timed(f, -2), CONC_EINVAL);
    assert_int_equal(conc_future_wait_timed(f, INT64_MIN), CONC_EINVAL);
    assert_int_equal(conc_future_result(f, NULL), 0);
    assert_int_equal(conc_future_wait_timed(f, -2), CONC_EINVAL); /* done: still misuse */
    assert_int_equal(atomic_load(nwaiters(f)), 0);
    conc_test_release(f);
    conc_test_pool_free(p);
}

static void wait_and_as_completed_bad_input_is_einval(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    struct plain t = {.ret = 0};
    conc_future *f = submit_plain(p, &t);
    conc_future *fs[2] = {f, NULL};
    bool done[2];
    conc_as_completed *it = NULL;

    assert_int_equal(conc_wait_timed(NULL, 1, CONC_ALL_COMPLETED, done, 0), CONC_EINVAL);
    assert_int_equal(conc_wait_timed(fs, 2, CONC_ALL_COMPLETED, done, 0), CONC_EINVAL); /* NULL entry */
    assert_int_equal(conc_wait_timed(fs, 1, (conc_wait_mode)0, done, 0), CONC_EINVAL);
    assert_int_equal(conc_wait_timed(fs, 1, (conc_wait_mode)4, done, 0), CONC_EINVAL);
    assert_int_equal(conc_wait_timed(fs, 1, CONC_ALL_COMPLETED, done, -2), CONC_EINVAL);
    assert_int_equal(conc_wait_timed(fs, 1, CONC_FIRST_COMPLETED, NULL, INT64_MIN), CONC_EINVAL);

    assert_int_equal(conc_as_completed_create(NULL, fs, 1), CONC_EINVAL);
    assert_int_equal(conc_as_completed_create(&it, NULL, 1), CONC_EINVAL);
    assert_int_equal(conc_as_completed_create(&it, fs, 2), CONC_EINVAL); /* NULL entry */
    conc_future *out = f;
    assert_int_equal(conc_as_completed_next(NULL, &out), CONC_EINVAL);
    assert_int_equal(conc_as_completed_destroy(NULL), CONC_EINVAL);

    assert_int_equal(conc_as_completed_create(&it, fs, 1), 0);
    assert_int_equal(conc_as_completed_next(it, NULL), CONC_EINVAL);
    assert_int_equal(conc_as_completed_next_timed(it, &out, -2), CONC_EINVAL);
    assert_int_equal(conc_as_completed_destroy(it), 0);

    /* n == 0 needs no array: the condition holds, nothing to yield. */
    assert_int_equal(conc_wait_timed(NULL, 0, CONC_ALL_COMPLETED, NULL, 0), 0);
    assert_int_equal(conc_wait(NULL, 0, CONC_FIRST_COMPLETED, NULL), 0);
    assert_int_equal(conc_wait_timed(NULL, 0, CONC_FIRST_EXCEPTION, NULL, 0), 0);
    assert_int_equal(conc_as_completed_create(&it, NULL, 0), 0);
    assert_int_equal(conc_as_completed_next(it, &out), CONC_ENOENT);
    assert_null(out);
    assert_int_equal(conc_as_completed_next(it, &out), CONC_ENOENT);
    assert_int_equal(conc_as_completed_destroy(it), 0);

    assert_int_equal(conc_future_wait(f), 0);
    conc_test_release(f);
    conc_test_pool_free(p);
}

/* ------------------------------------------------------- states and results */

static void future_states_pending_running_finished(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    struct conc_test_gate a, b;
    conc_test_gate_init(&a, 0, 1);
    conc_test_gate_init(&b, 0, 2);
    conc_future *fa = conc_test_submit_running(p, &a);
    conc_future *fb = NULL;
    assert_int_equal(conc_pool_submit(p, conc_test_gated_task, &b, &fb), 0);

    /* The one worker runs a: b is pending. */
    assert_true(conc_future_running(fa));
    assert_false(conc_future_done(fa));
    assert_false(conc_future_cancelled(fa));
    assert_false(conc_future_running(fb));
    assert_false(conc_future_done(fb));
    assert_false(conc_future_cancelled(fb));

    conc_test_gate_open(&a);
    assert_int_equal(conc_event_wait(&b.started), 0);
    assert_true(conc_future_done(fa));
    assert_false(conc_future_running(fa));
    assert_false(conc_future_cancelled(fa));
    assert_true(conc_future_running(fb));

    conc_test_gate_open(&b);
    assert_int_equal(conc_future_wait(fb), 0);
    assert_true(conc_future_done(fb));
    assert_false(conc_future_running(fb));
    assert_int_equal(atomic_load(&a.runs), 1);
    assert_int_equal(atomic_load(&b.runs), 1);
    conc_test_release(fa);
    conc_test_release(fb);
    conc_test_pool_free(p);
    conc_test_gate_destroy(&a);
    conc_test_gate_destroy(&b);
}

/* conc_future_wait says whether the wait worked; conc_future_result hands back
 * the task's own status — even one that looks like a wait's. */
static void wait_status_is_never_the_task_status(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(2);
    const int statuses[] = {0, -12345, CONC_ETIMEDOUT, CONC_EBROKEN, 99};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        struct plain t = {.ret = statuses[i], .value = 1000 + (int64_t)i};
        conc_future *f = submit_plain(p, &t);
        assert_int_equal(conc_future_wait(f), 0);
        assert_int_equal(conc_future_wait_timed(f, 0), 0); /* done: 0 at once */
        conc_result r;
        memset(&r, 0xa5, sizeof r);
        assert_int_equal(conc_future_result(f, &r), statuses[i]);
        assert_int_equal(r.value, 1000 + (int64_t)i);
        assert_null(r.data);
        assert_int_equal(r.len, 0);
        assert_null(r.free_fn);
        assert_int_equal(conc_future_result(f, NULL), statuses[i]); /* again, out NULL */
        assert_false(conc_future_cancelled(f));
        conc_test_release(f);
    }
    conc_test_pool_free(p);
}

/* A timed wait on a pending future: never before its deadline, nothing left
 * waiting after. */
static void wait_timeout_on_unfinished_future(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    struct conc_test_gate a;
    conc_test_gate_init(&a, 0, 0);
    conc_future *fa = conc_test_submit_running(p, &a);
    struct plain t = {0};
    conc_future *fb = submit_plain(p, &t); /* pending behind a */

    assert_int_equal(conc_future_wait_timed(fa, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_future_wait_timed(fb, 0), CONC_ETIMEDOUT);
    int64_t t0 = conc_now_ns();
    assert_int_equal(conc_future_wait_timed(fb, CONC_MSEC(20)), CONC_ETIMEDOUT);
    int64_t took = elapsed_since(t0);
    assert_true(took >= CONC_MSEC(20));
    assert_true(took < CONC_MSEC(20) + CONC_SEC(1));
    print_message("timed wait of 20 ms took %.3f ms\n", (double)took / 1e6);
    assert_int_equal(atomic_load(nwaiters(fa)), 0);
    assert_int_equal(atomic_load(nwaiters(fb)), 0);
    assert_false(conc_future_done(fb));

    conc_test_gate_open(&a);
    assert_int_equal(conc_future_wait_timed(fb, CONC_SEC(30)), 0);
    assert_int_equal(atomic_load(&t.runs), 1);
    conc_test_release(fa);
    conc_test_release(fb);
    conc_test_pool_free(p);
    conc_test_gate_destroy(&a);
}

/* Threads blocked in conc_future_wait / conc_future_result all wake when it
 * finishes, and leave no waiter behind. */
struct waiter_arg {
    conc_future *f;
    int rc;
    int status;
    int64_t value;
};

static void *wait_thread(void *p)
{
    struct waiter_arg *w = p;
    w->rc = conc_future_wait(w->f);
    conc_result r;
    w->status = conc_future_result(w->f, &r);
    w->value = r.value;
    return NULL;
}

static void blocked_waiters_all_wake(void **state)
{
    (void)state;
    enum { N = 6 };
    conc_pool *p = conc_test_pool_new(1);
    struct conc_test_gate a;
    conc_test_gate_init(&a, -7, 4242);
    conc_future *fa = conc_test_submit_running(p, &a);
    struct waiter_arg w[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct waiter_arg){.f = fa};
        th[i] = conc_test_start(wait_thread, &w[i]);
    }
    conc_test_await_count(nwaiters(fa), N);
    conc_test_gate_open(&a);
    for (int i = 0; i < N; i++) {
        conc_test_join(th[i]);
        assert_int_equal(w[i].rc, 0);
        assert_int_equal(w[i].status, -7);
        assert_int_equal(w[i].value, 4242);
    }
    assert_int_equal(atomic_load(nwaiters(fa)), 0);
    conc_test_release(fa);
    conc_test_pool_free(p);
    conc_test_gate_destroy(&a);
}

/* ------------------------------------------------ results and references */

static _Atomic int buffers_freed;

static void count_free(void *data)
{
    atomic_fetch_add(&buffers_freed, 1);
    free(data);
}

static int buffer_task(void *arg, conc_result *out)
{
    /* The result starts zeroed (future.h). */
    assert_int_equal(out->value, 0);
    assert_null(out->data);
    assert_int_equal(out->len, 0);
    assert_null(out->free_fn);
    const char *text = arg;
    out->len = strlen(text) + 1;
    out->data = malloc(out->len);
    assert_non_null(out->data);
    memcpy(out->data, text, out->len);
    out->free_fn = count_free;
    out->value = 7;
    return 0;
}

/* The future owns the buffer: valid while a reference is held, freed once,
 * by the last release — whoever drops it last. */
static void result_buffer_lives_until_last_release(void **state)
{
    (void)state;
    atomic_store(&buffers_freed, 0);
    conc_pool *p = conc_test_pool_new(1);
    conc_future *f = NULL;
    char text[] = "the result buffer";
    assert_int_equal(conc_pool_submit(p, buffer_task, text, &f), 0);
    conc_result r;
    assert_int_equal(conc_future_result(f, &r), 0);
    assert_int_equal(r.value, 7);
    assert_int_equal(r.len, sizeof text);
    assert_string_equal(r.data, text);
    assert_ptr_equal(r.free_fn, count_free);

    /* The pool dropped its reference when the task ended: ours is the last
     * one (poll: the worker releases just after finishing). */
    CONC_TEST_POLL_UNTIL(atomic_load(&f->refs) == 1);
    assert_int_equal(conc_future_retain(f), 0);
    assert_int_equal(conc_future_retain(f), 0);
    assert_int_equal(atomic_load(&f->refs), 3);
    conc_test_release(f);
    conc_test_release(f);
    assert_int_equal(atomic_load(&buffers_freed), 0);
    conc_result again;
    assert_int_equal(conc_future_result(f, &again), 0);
    assert_ptr_equal(again.data, r.data);
    assert_string_equal(again.data, text);
    conc_test_release(f);
    assert_int_equal(atomic_load(&buffers_freed), 1);
    conc_test_pool_free(p);
    assert_int_equal(atomic_load(&buffers_freed), 1);
}

/* Dropping our reference before the task runs (or never taking one) is fine:
 * the executor holds its own; the buffer is freed when the task is done. */
static void fire_and_forget_and_early_release(void **state)
{
    (void)state;
    atomic_store(&buffers_freed, 0);
    conc_pool *p = conc_test_pool_new(1);
    struct conc_test_gate a;
    conc_test_gate_init(&a, 0, 0);
    conc_future *fa = conc_test_submit_running(p, &a);
    char text[] = "x";
    conc_future *fb = NULL;
    assert_int_equal(conc_pool_submit(p, buffer_task, text, &fb), 0);
    conc_test_release(fb); /* pending, ours dropped */
    assert_int_equal(conc_pool_submit(p, buffer_task, text, NULL), 0); /* no reference at all */
    assert_int_equal(atomic_load(&buffers_freed), 0);
    conc_test_gate_open(&a);
    CONC_TEST_POLL_UNTIL(atomic_load(&buffers_freed) == 2);
    conc_test_release(fa);
    conc_test_pool_free(p);
    assert_int_equal(atomic_load(&buffers_freed), 2);
    conc_test_gate_destroy(&a);
}

/* A result with data but no free_fn is not owned: never freed. */
static int borrowed_task(void *arg, conc_result *out)
{
    out->data = arg;
    out->len = 1;
    return 0;
}

static void result_without_free_fn_is_not_freed(void **state)
{
    (void)state;
    static char borrowed[8] = "static";
    conc_pool *p = conc_test_pool_new(1);
    conc_future *f = NULL;
    assert_int_equal(conc_pool_submit(p, borrowed_task, borrowed, &f), 0);
    conc_result r;
    assert_int_equal(conc_future_result(f, &r), 0);
    assert_ptr_equal(r.data, borrowed);
    assert_null(r.free_fn);
    conc_test_release(f); /* ASan would report a free of a static buffer */
    conc_test_pool_free(p);
    assert_string_equal(borrowed, "static");
}

/* --------------------------------------------------------------- cancelling */

/* Python: cancel() succeeds on a pending future (and again on a cancelled
 * one); the task never runs; result is CONC_ECANCELED. */
static void cancel_pending_future(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    struct conc_test_gate a;
    conc_test_gate_init(&a, 0, 0);
    conc_future *fa = conc_test_submit_running(p, &a);
    struct plain t = {.ret = 0};
    conc_future *fb = submit_plain(p, &t);

    assert_int_equal(conc_future_cancel(fb), 0);
    assert_true(conc_future_cancelled(fb));
    assert_true(conc_future_done(fb));
    assert_false(conc_future_running(fb));
    assert_int_equal(conc_future_wait_timed(fb, 0), 0);
    assert_int_equal(conc_future_result(fb, NULL), CONC_ECANCELED);
    assert_int_equal(conc_future_cancel(fb), 0);              /* already: success */
    assert_int_equal(conc_future_request_cancel(fb), CONC_EBUSY); /* already done */
    assert_true(conc_future_cancelled(fb));

    conc_test_gate_open(&a);
    conc_test_release(fa);
    conc_test_release(fb);
    conc_test_pool_free(p); /* drains the pool: fb would have run by now */
    assert_int_equal(atomic_load(&t.runs), 0);
    conc_test_gate_destroy(&a);
}

/* Python: cancel() of a running or finished future fails and changes nothing. */
static void cancel_running_or_finished_fails(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    struct conc_test_gate a;
    conc_test_gate_init(&a, 5, 55);
    conc_future *fa = conc_test_submit_running(p, &a);
    assert_int_equal(conc_future_cancel(fa), CONC_EBUSY);
    assert_true(conc_future_running(fa));
    assert_false(conc_future_cancelled(fa));
    assert_false(conc_future_done(fa));
    conc_test_gate_open(&a);
    conc_result r;
    assert_int_equal(conc_future_result(fa, &r), 5);
    assert_int_equal(r.value, 55);
    assert_int_equal(conc_future_cancel(fa), CONC_EBUSY);
    assert_int_equal(conc_future_request_cancel(fa), CONC_EBUSY);
    assert_false(conc_future_cancelled(fa));
    assert_int_equal(conc_future_result(fa, NULL), 5);
    conc_test_release(fa);
    conc_test_pool_free(p);
    conc_test_gate_destroy(&a);
}

/* request_cancel on a pending future cancels it at once. */
static void request_cancel_pending_cancels_at_once(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    struct conc_test_gate a;
    conc_test_gate_init(&a, 0, 0);
    conc_future *fa = conc_test_submit_running(p, &a);
    struct plain t = {0};
    conc_future *fb = submit_plain(p, &t);
    assert_int_equal(conc_future_request_cancel(fb), 0);
    assert_true(conc_future_cancelled(fb));
    assert_int_equal(conc_future_result(fb, NULL), CONC_ECANCELED);
    conc_test_gate_open(&a);
    conc_test_release(fa);
    conc_test_release(fb);
    conc_test_pool_free(p);
    assert_int_equal(atomic_load(&t.runs), 0);
    conc_test_gate_destroy(&a);
}

/* A running task sees the request and may stop with CONC_ECANCELED: then it
 * ends CANCELLED; a task that ignores it ends FINISHED with its status. */
struct cooperative {
    conc_event started;
    bool obey;
    _Atomic bool saw_request;
};

static int cooperative_task(void *arg, conc_result *out)
{
    struct cooperative *c = arg;
    assert_false(conc_cancel_requested());
    assert_int_equal(conc_event_set(&c->started), 0);
    while (!conc_cancel_requested())
        conc_yield();
    atomic_store(&c->saw_request, true);
    out->value = 3;
    return c->obey ? CONC_ECANCELED : 0;
}

static void request_cancel_running_task(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    for (int obey = 0; obey <= 1; obey++) {
        struct cooperative c = {.obey = obey};
        assert_int_equal(conc_event_init(&c.started, NULL), 0);
        conc_future *f = NULL;
        assert_int_equal(conc_pool_submit(p, cooperative_task, &c, &f), 0);
        assert_int_equal(conc_event_wait(&c.started), 0);
        assert_int_equal(conc_future_request_cancel(f), 0);
        assert_int_equal(conc_future_wait(f), 0);
        assert_true(atomic_load(&c.saw_request));
        conc_result r;
        if (obey) {
            assert_true(conc_future_cancelled(f));
            assert_int_equal(conc_future_result(f, &r), CONC_ECANCELED);
        } else {
            assert_false(conc_future_cancelled(f));
            assert_int_equal(conc_future_result(f, &r), 0);
            assert_int_equal(r.value, 3);
        }
        assert_true(conc_future_done(f));
        assert_int_equal(conc_future_request_cancel(f), CONC_EBUSY);
        conc_test_release(f);
        assert_int_equal(conc_event_destroy(&c.started), 0);
    }
    assert_false(conc_cancel_requested());
    conc_test_pool_free(p);
}

/* A task returning CONC_ECANCELED with no request is just a failed task:
 * FINISHED, not cancelled, and it counts for CONC_FIRST_EXCEPTION. */
static void ecanceled_without_request_is_a_failure(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    struct plain t = {.ret = CONC_ECANCELED};
    conc_future *f = submit_plain(p, &t);
    assert_int_equal(conc_future_result(f, NULL), CONC_ECANCELED);
    assert_false(conc_future_cancelled(f));
    assert_true(conc_future_done(f));
    bool done = false;
    assert_int_equal(conc_wait_timed(&f, 1, CONC_FIRST_EXCEPTION, &done, 0), 0);
    assert_true(done);
    conc_test_release(f);
    conc_test_pool_free(p);
}

/* --------------------------------------------------------------- callbacks */

struct cb_log {
    _Atomic int calls[8];
    int order[8];
    _Atomic int n;
    _Atomic int finished; /* callbacks that returned: their records are written */
    pthread_t thread[8];
    bool saw_done[8];
    int status_seen[8];
    conc_future *f_seen[8];
};

struct cb_arg {
    struct cb_log *log;
    int id;
    int ret;
};

static int logging_cb(conc_future *f, void *arg)
{
    struct cb_arg *a = arg;
    struct cb_log *l = a->log;
    int k = atomic_fetch_add(&l->n, 1);
    l->order[k] = a->id;
    atomic_fetch_add(&l->calls[a->id], 1);
    l->thread[a->id] = pthread_self();
    l->saw_done[a->id] = conc_future_done(f);
    l->f_seen[a->id] = f;
    /* The future is done: its result is there without blocking. */
    l->status_seen[a->id] = conc_future_result(f, NULL);
    atomic_fetch_add(&l->finished, 1);
    return a->ret;
}

/* Callbacks run once each, in the order added, on the thread that finishes
 * the future, seeing it done; a failing callback does not stop the next. */
static void callbacks_run_in_order_on_finishing_thread(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    struct conc_test_gate a;
    conc_test_gate_init(&a, -3, 0);
    conc_future *fa = conc_test_submit_running(p, &a);
    struct cb_log log;
    memset(&log, 0, sizeof log);
    struct cb_arg args[4] = {{&log, 0, 0}, {&log, 1, -1}, {&log, 2, 12345}, {&log, 3, 0}};
    for (int i = 0; i < 4; i++)
        assert_int_equal(conc_future_add_done_callback(fa, logging_cb, &args[i]), 0);
    assert_int_equal(atomic_load(&log.n), 0); /* not done: none ran */
    conc_test_gate_open(&a);
    CONC_TEST_POLL_UNTIL(atomic_load(&log.finished) == 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(log.order[i], i);
        assert_int_equal(atomic_load(&log.calls[i]), 1);
        assert_true(pthread_equal(log.thread[i], atomic_load(&a.thread)));
        assert_true(log.saw_done[i]);
        assert_ptr_equal(log.f_seen[i], fa);
        assert_int_equal(log.status_seen[i], -3);
    }
    conc_test_release(fa);
    conc_test_pool_free(p);
    assert_int_equal(atomic_load(&log.n), 4);
    conc_test_gate_destroy(&a);
}

/* Python: a callback added to a done future runs at once, in the caller. */
static void callback_on_done_future_runs_at_once(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    struct plain t = {.ret = 9};
    conc_future *f = submit_plain(p, &t);
    assert_int_equal(conc_future_wait(f), 0);
    struct cb_log log;
    memset(&log, 0, sizeof log);
    struct cb_arg args[2] = {{&log, 0, -1}, {&log, 1, 0}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(conc_future_add_done_callback(f, logging_cb, &args[i]), 0);
        assert_int_equal(atomic_load(&log.n), i + 1); /* ran before add returned */
        assert_true(pthread_equal(log.thread[i], pthread_self()));
        assert_int_equal(log.status_seen[i], 9);
    }
    conc_test_release(f);
    conc_test_pool_free(p);
}

/* Cancelling runs the callbacks on the cancelling thread, before cancel
 * returns; a cancelled future's callbacks see it cancelled. */
static int cancelled_seen_cb(conc_future *f, void *arg)
{
    *(bool *)arg = conc_future_cancelled(f);
    return 0;
}

static void callbacks_run_on_cancelling_thread(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    struct conc_test_gate a;
    conc_test_gate_init(&a, 0, 0);
    conc_future *fa = conc_test_submit_running(p, &a);
    struct plain t = {0};
    conc_future *fb = submit_plain(p, &t);
    struct cb_log log;
    memset(&log, 0, sizeof log);
    struct cb_arg args[2] = {{&log, 0, 0}, {&log, 1, 0}};
    bool saw_cancelled = false;
    assert_int_equal(conc_future_add_done_callback(fb, logging_cb, &args[0]), 0);
    assert_int_equal(conc_future_add_done_callback(fb, cancelled_seen_cb, &saw_cancelled), 0);
    assert_int_equal(conc_future_add_done_callback(fb, logging_cb, &args[1]), 0);
    assert_int_equal(conc_future_cancel(fb), 0);
    assert_int_equal(atomic_load(&log.n), 2);
    assert_true(saw_cancelled);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(log.order[i], i);
        assert_true(pthread_equal(log.thread[i], pthread_self()));
        assert_int_equal(log.status_seen[i], CONC_ECANCELED);
    }
    assert_int_equal(conc_future_cancel(fb), 0); /* again: callbacks do not run twice */
    assert_int_equal(atomic_load(&log.n), 2);
    conc_test_gate_open(&a);
    conc_test_release(fa);
    conc_test_release(fb);
    conc_test_pool_free(p);
    assert_int_equal(atomic_load(&log.calls[0]), 1);
    assert_int_equal(atomic_load(&log.calls[1]), 1);
    conc_test_gate_destroy(&a);
}

/* A callback may take a reference of its own: the future then stays valid
 * after the caller and the pool dropped theirs. */
static int retaining_cb(conc_future *f, void *arg)
{
    assert_int_equal(conc_future_retain(f), 0);
    *(conc_future **)arg = f;
    return 0;
}

static void callback_may_retain_future(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    struct plain t = {.ret = 4, .value = 44};
    conc_future *f = NULL;
    struct conc_test_gate a;
    conc_test_gate_init(&a, 0, 0);
    conc_future *fa = conc_test_submit_running(p, &a);
    assert_int_equal(conc_pool_submit(p, plain_task, &t, &f), 0);
    conc_future *kept = NULL;
    assert_int_equal(conc_future_add_done_callback(f, retaining_cb, &kept), 0);
    conc_test_release(f);
    conc_test_gate_open(&a);
    conc_test_pool_free(p);
    assert_non_null(kept);
    conc_result r;
    assert_int_equal(conc_future_result(kept, &r), 4);
    assert_int_equal(r.value, 44);
    conc_test_release(kept);
    conc_test_release(fa);
    conc_test_gate_destroy(&a);
}

/* Callbacks added while the future completes on another thread: each runs
 * exactly once, whoever runs it. */
struct race_cb {
    _Atomic int calls;
};

static int race_cb_fn(conc_future *f, void *arg)
{
    assert_true(conc_future_done(f));
    atomic_fetch_add(&((struct race_cb *)arg)->calls, 1);
    return 0;
}

static void callback_add_races_completion_stress(void **state)
{
    (void)state;
    enum { K = 8 };
    long rounds = conc_test_scaled(20000, 1000);
    conc_pool *p = conc_test_pool_new(2);
    struct race_cb *cbs = calloc((size_t)rounds * K, sizeof *cbs);
    assert_non_null(cbs);
    for (long r = 0; r < rounds; r++) {
        struct plain t = {0};
        conc_future *f = submit_plain(p, &t);
        for (int k = 0; k < K; k++)
            assert_int_equal(conc_future_add_done_callback(f, race_cb_fn, &cbs[r * K + k]), 0);
        assert_int_equal(conc_future_wait(f), 0);
        /* Callbacks of the finisher may still be running: poll the last. */
        CONC_TEST_POLL_UNTIL(atomic_load(&cbs[r * K + K - 1].calls) == 1);
        conc_test_release(f);
    }
    conc_test_pool_free(p);
    for (long i = 0; i < rounds * K; i++)
        assert_int_equal(atomic_load(&cbs[i].calls), 1);
    free(cbs);
}

/* ---------------------------------------------------------------- EDEADLK */

struct self_wait {
    conc_event go;
    conc_future *self;
    conc_future *other; /* done before go */
    int wait_rc, wait0_rc, result_rc, all_rc, first_rc, ac_rc, ac_create_rc;
    bool first_flags[2];
};

static int self_waiting_task(void *arg, conc_result *out)
{
    (void)out;
    struct self_wait *s = arg;
    assert_int_equal(conc_event_wait(&s->go), 0);
    s->wait_rc = conc_future_wait(s->self);
    s->wait0_rc = conc_future_wait_timed(s->self, CONC_MSEC(1));
    s->result_rc = conc_future_result(s->self, NULL);
    conc_future *both[2] = {s->self, s->other};
    s->all_rc = conc_wait(both, 2, CONC_ALL_COMPLETED, NULL);
    /* Met already (other is done): no deadlock, so no EDEADLK. */
    s->first_rc = conc_wait(both, 2, CONC_FIRST_COMPLETED, s->first_flags);
    conc_as_completed *it = NULL;
    s->ac_create_rc = conc_as_completed_create(&it, both, 2);
    conc_future *got = NULL;
    assert_int_equal(conc_as_completed_next(it, &got), 0); /* other: done */
    assert_ptr_equal(got, s->other);
    conc_test_release(got);
    s->ac_rc = conc_as_completed_next(it, &got); /* only self left */
    assert_int_equal(conc_as_completed_destroy(it), 0);
    return 0;
}

static void waiting_on_own_future_is_edeadlk(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    struct self_wait s;
    memset(&s, 0, sizeof s);
    assert_int_equal(conc_event_init(&s.go, NULL), 0);
    struct plain t = {0};
    s.other = submit_plain(p, &t);
    assert_int_equal(conc_future_wait(s.other), 0);
    assert_int_equal(conc_pool_submit(p, self_waiting_task, &s, &s.self), 0);
    assert_int_equal(conc_event_set(&s.go), 0);
    assert_int_equal(conc_future_result(s.self, NULL), 0);
    assert_int_equal(s.wait_rc, CONC_EDEADLK);
    assert_int_equal(s.wait0_rc, CONC_EDEADLK);
    assert_int_equal(s.result_rc, CONC_EDEADLK);
    assert_int_equal(s.all_rc, CONC_EDEADLK);
    assert_int_equal(s.first_rc, 0);
    assert_false(s.first_flags[0]);
    assert_true(s.first_flags[1]);
    assert_int_equal(s.ac_create_rc, 0);
    assert_int_equal(s.ac_rc, CONC_EDEADLK);
    conc_test_release(s.self);
    conc_test_release(s.other);
    conc_test_pool_free(p);
    assert_int_equal(conc_event_destroy(&s.go), 0);
}

/* --------------------------------------------------------------- conc_wait */

struct wait_set {
    conc_pool *p;
    struct conc_test_gate g[4];
    conc_future *f[4];
};

/* Four futures, each held RUNNING on its own worker. */
static void wait_set_start(struct wait_set *w, const int *rets)
{
    w->p = conc_test_pool_new(4);
    for (int i = 0; i < 4; i++) {
        conc_test_gate_init(&w->g[i], rets[i], i);
        w->f[i] = conc_test_submit_running(w->p, &w->g[i]);
    }
}

static void wait_set_finish(struct wait_set *w)
{
    for (int i = 0; i < 4; i++)
        conc_test_gate_open(&w->g[i]);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(conc_future_wait(w->f[i]), 0);
        assert_int_equal(atomic_load(nwaiters(w->f[i])), 0);
        conc_test_release(w->f[i]);
    }
    conc_test_pool_free(w->p);
    for (int i = 0; i < 4; i++)
        conc_test_gate_destroy(&w->g[i]);
}

static void finish_one(struct wait_set *w, int i)
{
    conc_test_gate_open(&w->g[i]);
    assert_int_equal(conc_future_wait(w->f[i]), 0);
}

static void assert_flags(const bool *done, const bool *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(done[i], want[i]);
}

/* Python's done / not_done sets, by index, for each mode. */
static void wait_first_completed_sets(void **state)
{
    (void)state;
    struct wait_set w;
    const int rets[4] = {0, 0, 0, 0};
    wait_set_start(&w, rets);
    bool done[5];
    memset(done, 1, sizeof done);
    assert_int_equal(conc_wait_timed(w.f, 4, CONC_FIRST_COMPLETED, done, 0), CONC_ETIMEDOUT);
    assert_flags(done, (bool[]){0, 0, 0, 0}, 4);
    finish_one(&w, 2);
    memset(done, 0, sizeof done);
    assert_int_equal(conc_wait(w.f, 4, CONC_FIRST_COMPLETED, done), 0);
    assert_flags(done, (bool[]){0, 0, 1, 0}, 4);
    assert_int_equal(conc_wait_timed(w.f, 4, CONC_FIRST_COMPLETED, NULL, 0), 0); /* done may be NULL */
    /* A future listed twice gets its flag twice. */
    conc_future *dup[5] = {w.f[2], w.f[0], w.f[2], w.f[1], w.f[0]};
    assert_int_equal(conc_wait_timed(dup, 5, CONC_FIRST_COMPLETED, done, 0), 0);
    assert_flags(done, (bool[]){1, 0, 1, 0, 0}, 5);
    wait_set_finish(&w);
}

static void wait_all_completed_sets(void **state)
{
    (void)state;
    struct wait_set w;
    const int rets[4] = {0, -1, 0, 0};
    wait_set_start(&w, rets);
    finish_one(&w, 1); /* a failure does not end ALL_COMPLETED */
    finish_one(&w, 3);
    bool done[4];
    int64_t t0 = conc_now_ns();
    assert_int_equal(conc_wait_timed(w.f, 4, CONC_ALL_COMPLETED, done, CONC_MSEC(10)), CONC_ETIMEDOUT);
    assert_true(elapsed_since(t0) >= CONC_MSEC(10));
    assert_flags(done, (bool[]){0, 1, 0, 1}, 4);
    finish_one(&w, 0);
    finish_one(&w, 2);
    assert_int_equal(conc_wait_timed(w.f, 4, CONC_ALL_COMPLETED, done, 0), 0);
    assert_flags(done, (bool[]){1, 1, 1, 1}, 4);
    wait_set_finish(&w);
}

static void wait_first_exception_sets(void **state)
{
    (void)state;
    struct wait_set w;
    const int rets[4] = {0, 0, -5, 0};
    wait_set_start(&w, rets);
    bool done[4];
    finish_one(&w, 0); /* success: not an exception */
    assert_int_equal(conc_wait_timed(w.f, 4, CONC_FIRST_EXCEPTION, done, CONC_MSEC(5)), CONC_ETIMEDOUT);
    assert_flags(done, (bool[]){1, 0, 0, 0}, 4);
    finish_one(&w, 2); /* fails */
    assert_int_equal(conc_wait(w.f, 4, CONC_FIRST_EXCEPTION, done), 0);
    assert_flags(done, (bool[]){1, 0, 1, 0}, 4);
    wait_set_finish(&w);
}

/* Cancelled futures are not exceptions: FIRST_EXCEPTION over cancelled and
 * successful futures holds only once all are done. */
static void wait_first_exception_ignores_cancelled(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    struct conc_test_gate a;
    conc_test_gate_init(&a, 0, 0);
    conc_future *fa = conc_test_submit_running(p, &a);
    struct plain t = {0};
    conc_future *fb = submit_plain(p, &t);
    assert_int_equal(conc_future_cancel(fb), 0);
    conc_future *fs[2] = {fa, fb};
    bool done[2];
    assert_int_equal(conc_wait_timed(fs, 2, CONC_FIRST_EXCEPTION, done, CONC_MSEC(5)), CONC_ETIMEDOUT);
    assert_flags(done, (bool[]){0, 1}, 2);
    conc_test_gate_open(&a);
    /* All done without a failure also ends FIRST_EXCEPTION. */
    assert_int_equal(conc_wait(fs, 2, CONC_FIRST_EXCEPTION, done), 0);
    assert_flags(done, (bool[]){1, 1}, 2);
    conc_test_release(fa);
    conc_test_release(fb);
    conc_test_pool_free(p);
    conc_test_gate_destroy(&a);

    /* A task that stops on request with CONC_ECANCELED is cancelled, not
     * failed: FIRST_EXCEPTION does not end on it. */
    p = conc_test_pool_new(2);
    struct cooperative c = {.obey = true};
    assert_int_equal(conc_event_init(&c.started, NULL), 0);
    conc_test_gate_init(&a, 0, 0);
    conc_future *fc = NULL;
    assert_int_equal(conc_pool_submit(p, cooperative_task, &c, &fc), 0);
    assert_int_equal(conc_event_wait(&c.started), 0);
    fa = conc_test_submit_running(p, &a);
    assert_int_equal(conc_future_request_cancel(fc), 0);
    assert_int_equal(conc_future_wait(fc), 0);
    fs[0] = fc;
    fs[1] = fa;
    assert_int_equal(conc_wait_timed(fs, 2, CONC_FIRST_EXCEPTION, done, CONC_MSEC(5)), CONC_ETIMEDOUT);
    assert_flags(done, (bool[]){1, 0}, 2);
    conc_test_gate_open(&a);
    assert_int_equal(conc_wait(fs, 2, CONC_FIRST_EXCEPTION, done), 0);
    conc_test_release(fa);
    conc_test_release(fc);
    conc_test_pool_free(p);
    conc_test_gate_destroy(&a);
    assert_int_equal(conc_event_destroy(&c.started), 0);
}

/* A thread blocked in conc_wait is linked on every future; the completion
 * that meets its condition wakes it, and it unlinks from all. */
struct multi_waiter {
    conc_future **fs;
    size_t n;
    conc_wait_mode mode;
    bool done[16];
    int rc;
};

static void *multi_wait_thread(void *p)
{
    struct multi_waiter *m = p;
    m->rc = conc_wait(m->fs, m->n, m->mode, m->done);
    return NULL;
}

static void blocked_conc_wait_wakes_and_unlinks(void **state)
{
    (void)state;
    struct wait_set w;
    const int rets[4] = {0, 0, -9, 0};
    wait_set_start(&w, rets);
    struct multi_waiter all = {w.f, 4, CONC_ALL_COMPLETED, {0}, 1};
    struct multi_waiter first = {w.f, 4, CONC_FIRST_COMPLETED, {0}, 1};
    struct multi_waiter exc = {w.f, 4, CONC_FIRST_EXCEPTION, {0}, 1};
    pthread_t ta = conc_test_start(multi_wait_thread, &all);
    pthread_t tf = conc_test_start(multi_wait_thread, &first);
    pthread_t te = conc_test_start(multi_wait_thread, &exc);
    for (int i = 0; i < 4; i++)
        conc_test_await_count(nwaiters(w.f[i]), 3);

    finish_one(&w, 0); /* ends FIRST_COMPLETED only */
    conc_test_join(tf);
    assert_int_equal(first.rc, 0);
    assert_true(first.done[0]);
    for (int i = 1; i < 4; i++) /* still running when it woke: done only if finished */
        assert_false(first.done[i]);

    finish_one(&w, 2); /* a failure: ends FIRST_EXCEPTION */
    conc_test_join(te);
    assert_int_equal(exc.rc, 0);
    assert_flags(exc.done, (bool[]){1, 0, 1, 0}, 4);

    /* all: still linked on the two unfinished futures. */
    conc_test_await_count(nwaiters(w.f[1]), 1);
    conc_test_await_count(nwaiters(w.f[3]), 1);
    finish_one(&w, 3);
    finish_one(&w, 1);
    conc_test_join(ta);
    assert_int_equal(all.rc, 0);
    assert_flags(all.done, (bool[]){1, 1, 1, 1}, 4);
    wait_set_finish(&w); /* asserts no waiter is left on any future */
}

/* More futures than the on-stack link array holds: the heap path. */
static void conc_wait_many_futures(void **state)
{
    (void)state;
    enum { N = 40 };
    conc_pool *p = conc_test_pool_new(2);
    struct conc_test_gate g;
    conc_test_gate_init(&g, 0, 0);
    conc_future *fs[N];
    struct plain t[N];
    fs[0] = conc_test_submit_running(p, &g);
    for (int i = 1; i < N; i++) {
        t[i] = (struct plain){.ret = i % 7 == 0 ? -i : 0};
        fs[i] = submit_plain(p, &t[i]);
    }
    bool done[N];
    assert_int_equal(conc_wait_timed(fs, N, CONC_ALL_COMPLETED, done, CONC_MSEC(5)), CONC_ETIMEDOUT);
    assert_false(done[0]);
    /* The second worker drains the rest; FIRST_EXCEPTION holds at i = 7. */
    assert_int_equal(conc_wait(fs, N, CONC_FIRST_EXCEPTION, done), 0);
    bool any_failed = false;
    for (int i = 1; i < N; i++)
        if (done[i] && conc_future_result(fs[i], NULL) != 0)
            any_failed = true;
    assert_true(any_failed);
    conc_test_gate_open(&g);
    assert_int_equal(conc_wait(fs, N, CONC_ALL_COMPLETED, done), 0);
    for (int i = 0; i < N; i++) {
        assert_true(done[i]);
        assert_int_equal(atomic_load(nwaiters(fs[i])), 0);
        conc_test_release(fs[i]);
    }
    conc_test_pool_free(p);
    conc_test_gate_destroy(&g);
}

/* ----------------------------------------------------------- as_completed */

static void as_completed_yields_in_completion_order(void **state)
{
    (void)state;
    struct wait_set w;
    const int rets[4] = {0, 1, 2, 3};
    wait_set_start(&w, rets);
    conc_as_completed *it = NULL;
    assert_int_equal(conc_as_completed_create(&it, w.f, 4), 0);
    const int order[4] = {2, 0, 3, 1};
    for (int k = 0; k < 4; k++) {
        conc_test_gate_open(&w.g[order[k]]);
        conc_future *f = NULL;
        assert_int_equal(conc_as_completed_next(it, &f), 0);
        assert_ptr_equal(f, w.f[order[k]]);
        assert_true(conc_future_done(f));
        conc_test_release(f); /* the iterator's reference, now ours */
    }
    conc_future *f = w.f[0];
    assert_int_equal(conc_as_completed_next(it, &f), CONC_ENOENT);
    assert_null(f);
    assert_int_equal(conc_as_completed_next(it, &f), CONC_ENOENT);
    assert_int_equal(conc_as_completed_destroy(it), 0);
    wait_set_finish(&w);
}

/* Already-done futures come out at once; a future listed twice once. */
static void as_completed_done_and_duplicates(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(2);
    struct plain t[3] = {{0}, {0}, {0}};
    conc_future *f3[3];
    for (int i = 0; i < 3; i++) {
        f3[i] = submit_plain(p, &t[i]);
        assert_int_equal(conc_future_wait(f3[i]), 0);
    }
    conc_future *list[6] = {f3[1], f3[0], f3[1], f3[2], f3[0], f3[1]};
    conc_as_completed *it = NULL;
    for (int i = 0; i < 3; i++)
        CONC_TEST_POLL_UNTIL(atomic_load(&f3[i]->refs) == 1);
    assert_int_equal(conc_as_completed_create(&it, list, 6), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&f3[i]->refs), 2); /* one each, not per listing */
    int seen[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        conc_future *f = NULL;
        assert_int_equal(conc_as_completed_next(it, &f), 0);
        for (int i = 0; i < 3; i++)
            if (f == f3[i])
                seen[i]++;
        conc_test_release(f);
    }
    conc_future *f = NULL;
    assert_int_equal(conc_as_completed_next(it, &f), CONC_ENOENT);
    assert_int_equal(conc_as_completed_destroy(it), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(seen[i], 1);
        assert_int_equal(atomic_load(&f3[i]->refs), 1);
        conc_test_release(f3[i]);
    }
    conc_test_pool_free(p);
}

/* Python's one deadline for the whole iteration, as the header says to
 * write it: each call is given what is left; after the deadline, calls
 * time out at once unless a future is done by then, which they still
 * yield. */
static void as_completed_deadline(void **state)
{
    (void)state;
    struct wait_set w;
    const int rets[4] = {0, 0, 0, 0};
    wait_set_start(&w, rets);
    conc_as_completed *it = NULL;
    int64_t t0 = conc_now_ns();
    int64_t deadline = t0 + CONC_MSEC(30);
#define LEFT() (deadline > conc_now_ns() ? deadline - conc_now_ns() : 0)
    assert_int_equal(conc_as_completed_create(&it, w.f, 3), 0);
    finish_one(&w, 1);
    conc_future *f = NULL;
    assert_int_equal(conc_as_completed_next_timed(it, &f, LEFT()), 0);
    assert_ptr_equal(f, w.f[1]);
    conc_test_release(f);
    assert_int_equal(conc_as_completed_next_timed(it, &f, LEFT()), CONC_ETIMEDOUT);
    assert_null(f);
    int64_t took = elapsed_since(t0);
    assert_true(took >= CONC_MSEC(30));
    assert_true(took < CONC_MSEC(30) + CONC_SEC(1));
    print_message("as_completed deadline of 30 ms reached after %.3f ms\n", (double)took / 1e6);
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(nwaiters(w.f[i])), 0);
    assert_int_equal(conc_as_completed_next_timed(it, &f, LEFT()), CONC_ETIMEDOUT); /* at once */
    finish_one(&w, 2);
    assert_int_equal(conc_as_completed_next_timed(it, &f, LEFT()), 0);
#undef LEFT
    assert_ptr_equal(f, w.f[2]);
    conc_test_release(f);
    /* Destroy releases the one never yielded (w.f[0]). */
    uint32_t before = atomic_load(&w.f[0]->refs);
    assert_int_equal(conc_as_completed_destroy(it), 0);
    assert_int_equal(atomic_load(&w.f[0]->refs), before - 1);
    wait_set_finish(&w);
}

/* A thread blocked in next wakes on the first completion. */
struct ac_thread {
    conc_as_completed *it;
    conc_future *got;
    int rc;
};

static void *as_completed_thread(void *p)
{
    struct ac_thread *a = p;
    a->rc = conc_as_completed_next(a->it, &a->got);
    return NULL;
}

static void as_completed_blocked_next_wakes(void **state)
{
    (void)state;
    struct wait_set w;
    const int rets[4] = {0, 0, 0, 0};
    wait_set_start(&w, rets);
    struct ac_thread a = {0};
    assert_int_equal(conc_as_completed_create(&a.it, w.f, 4), 0);
    pthread_t th = conc_test_start(as_completed_thread, &a);
    for (int i = 0; i < 4; i++)
        conc_test_await_count(nwaiters(w.f[i]), 1);
    finish_one(&w, 3);
    conc_test_join(th);
    assert_int_equal(a.rc, 0);
    assert_ptr_equal(a.got, w.f[3]);
    conc_test_release(a.got);
    for (int i = 0; i < 4; i++)
        assert_int_equal(atomic_load(nwaiters(w.f[i])), 0);
    assert_int_equal(conc_as_completed_destroy(a.it), 0);
    wait_set_finish(&w);
}

/* ------------------------------------------------------------------ stress */

/* Many futures finishing in any order on 4 workers while one thread drains
 * them with as_completed and another waits on all of them: each is yielded
 * exactly once, and every waiter leaves. */
static int spin_task(void *arg, conc_result *out)
{
    uintptr_t i = (uintptr_t)arg;
    volatile unsigned x = 0;
    for (unsigned k = 0; k < (i * 2654435761u) % 2000; k++)
        x += k;
    (void)x; /* only burns time (clang: set but not used) */
    out->value = (int64_t)i;
    return (int)(i % 5 == 0);
}

struct all_waiter {
    conc_future **fs;
    size_t n;
    int rc;
};

static void *all_wait_thread(void *p)
{
    struct all_waiter *a = p;
    a->rc = conc_wait(a->fs, a->n, CONC_ALL_COMPLETED, NULL);
    return NULL;
}

static void as_completed_and_wait_stress(void **state)
{
    (void)state;
    long rounds = conc_test_scaled(200, 20);
    enum { N = 64 };
    conc_pool *p = conc_test_pool_new(4);
    for (long r = 0; r < rounds; r++) {
        conc_future *fs[N];
        for (uintptr_t i = 0; i < N; i++)
            assert_int_equal(conc_pool_submit(p, spin_task, (void *)i, &fs[i]), 0);
        struct all_waiter aw = {fs, N, 1};
        pthread_t th = conc_test_start(all_wait_thread, &aw);
        conc_as_completed *it = NULL;
        assert_int_equal(conc_as_completed_create(&it, fs, N), 0);
        int seen[N] = {0};
        conc_future *f;
        for (int k = 0; k < N; k++) {
            assert_int_equal(conc_as_completed_next(it, &f), 0);
            conc_result res;
            int st = conc_future_result(f, &res);
            assert_true(res.value >= 0 && res.value < N);
            assert_int_equal(st, (int)(res.value % 5 == 0));
            seen[res.value]++;
            conc_test_release(f);
        }
        assert_int_equal(conc_as_completed_next(it, &f), CONC_ENOENT);
        assert_int_equal(conc_as_completed_destroy(it), 0);
        conc_test_join(th);
        assert_int_equal(aw.rc, 0);
        for (int i = 0; i < N; i++) {
            assert_int_equal(seen[i], 1);
            assert_int_equal(atomic_load(nwaiters(fs[i])), 0);
            conc_test_release(fs[i]);
        }
    }
    conc_test_pool_free(p);
}

/* Many threads wait on futures that complete concurrently: nobody hangs. */
static void *single_waiter(void *p)
{
    conc_future *f = p;
    assert_int_equal(conc_future_wait(f), 0);
    return NULL;
}

static void future_wait_wakeup_stress(void **state)
{
    (void)state;
    long rounds = conc_test_scaled(3000, 300);
    conc_pool *p = conc_test_pool_new(2);
    for (long r = 0; r < rounds; r++) {
        struct plain t = {0};
        conc_future *f = submit_plain(p, &t);
        pthread_t th[3];
        for (int i = 0; i < 3; i++)
            th[i] = conc_test_start(single_waiter, f);
        assert_int_equal(conc_future_wait(f), 0);
        for (int i = 0; i < 3; i++)
            conc_test_join(th[i]);
        assert_int_equal(atomic_load(nwaiters(f)), 0);
        assert_int_equal(atomic_load(&t.runs), 1);
        conc_test_release(f);
    }
    conc_test_pool_free(p);
}

/* ---- futures made by the program ---- */

static int count_callback(conc_future *f, void *arg)
{
    (void)f;
    atomic_fetch_add((_Atomic int *)arg, 1);
    return 0;
}

static void made_future_bad_input(void **state)
{
    (void)state;
    assert_int_equal(conc_future_create(NULL), CONC_EINVAL);
    assert_int_equal(conc_future_set_running_or_notify_cancel(NULL), CONC_EINVAL);
    assert_int_equal(conc_future_set_result(NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_future_set_error(NULL, CONC_EIO), CONC_EINVAL);
    conc_future *f;
    assert_int_equal(conc_future_create(&f), 0);
    assert_int_equal(conc_future_set_error(f, 0), CONC_EINVAL);
    assert_int_equal(conc_future_set_error(f, 5), CONC_EINVAL);
    assert_false(conc_future_done(f)); /* the refused calls changed nothing */
    conc_future_release(f);
    /* A pool's future is its executor's to complete. */
    conc_pool *p = conc_test_pool_new(1);
    conc_future *pf;
    assert_int_equal(conc_pool_submit(p, conc_test_noop_task, NULL, &pf), 0);
    assert_int_equal(conc_future_wait(pf), 0);
    assert_int_equal(conc_future_set_result(pf, NULL), CONC_EINVAL);
    assert_int_equal(conc_future_set_error(pf, CONC_EIO), CONC_EINVAL);
    assert_int_equal(conc_future_set_running_or_notify_cancel(pf), CONC_EINVAL);
    conc_future_release(pf);
    conc_test_pool_free(p);
}

/* A result set by another thread wakes the waiter; callbacks run once; the
 * result is the one set; completing again is CONC_ESTATE. */
struct setter {
    conc_future *f;
    conc_result r;
    int rc;
};

static void *set_result_main(void *p)
{
    struct setter *s = p;
    s->rc = conc_future_set_result(s->f, &s->r);
    return NULL;
}

static void made_future_set_result_from_another_thread(void **state)
{
    (void)state;
    conc_future *f;
    assert_int_equal(conc_future_create(&f), 0);
    _Atomic int calls = 0;
    assert_int_equal(conc_future_add_done_callback(f, count_callback, (void *)&calls), 0);
    assert_false(conc_future_running(f));
    assert_int_equal(conc_future_wait_timed(f, 0), CONC_ETIMEDOUT);
    char *data = strdup("forty-two");
    struct setter s = {f, {42, data, 10, free}, 1};
    pthread_t t = conc_test_start(set_result_main, &s);
    conc_result r;
    assert_int_equal(conc_future_result(f, &r), 0);
    conc_test_join(t);
    assert_int_equal(s.rc, 0);
    assert_int_equal(r.value, 42);
    assert_string_equal(r.data, "forty-two");
    assert_int_equal(atomic_load(&calls), 1);
    assert_true(conc_future_done(f));
    assert_false(conc_future_cancelled(f));
    /* Once done: Python's InvalidStateError, and nothing changes. */
    conc_result other = {7, NULL, 0, NULL};
    assert_int_equal(conc_future_set_result(f, &other), CONC_ESTATE);
    assert_int_equal(conc_future_set_error(f, CONC_EIO), CONC_ESTATE);
    assert_int_equal(conc_future_set_running_or_notify_cancel(f), CONC_ESTATE);
    assert_int_equal(conc_future_cancel(f), CONC_EBUSY);
    assert_int_equal(conc_future_result(f, &r), 0);
    assert_int_equal(r.value, 42);
    assert_int_equal(atomic_load(&calls), 1);
    conc_future_release(f); /* frees data */
}

static void made_future_error_and_cancel(void **state)
{
    (void)state;
    conc_future *f;
    /* An error, as a task's status. */
    assert_int_equal(conc_future_create(&f), 0);
    assert_int_equal(conc_future_set_error(f, CONC_EIO), 0);
    assert_int_equal(conc_future_result(f, NULL), CONC_EIO);
    conc_future_release(f);
    /* Cancelled while pending: completing it is CONC_ESTATE, and
     * set_running_or_notify_cancel says "cancelled" (Python's False). */
    assert_int_equal(conc_future_create(&f), 0);
    _Atomic int calls = 0;
    assert_int_equal(conc_future_add_done_callback(f, count_callback, (void *)&calls), 0);
    assert_int_equal(conc_future_cancel(f), 0);
    assert_int_equal(atomic_load(&calls), 1);
    assert_int_equal(conc_future_set_running_or_notify_cancel(f), CONC_ECANCELED);
    assert_int_equal(conc_future_set_result(f, NULL), CONC_ESTATE);
    assert_int_equal(conc_future_set_error(f, CONC_EIO), CONC_ESTATE);
    assert_int_equal(conc_future_result(f, NULL), CONC_ECANCELED);
    conc_future_release(f);
    /* Running: cancel fails, a requested cancel ends it cancelled if the
     * holder honours it. */
    assert_int_equal(conc_future_create(&f), 0);
    assert_int_equal(conc_future_set_running_or_notify_cancel(f), 0);
    assert_true(conc_future_running(f));
    assert_int_equal(conc_future_set_running_or_notify_cancel(f), CONC_ESTATE);
    assert_int_equal(conc_future_cancel(f), CONC_EBUSY);
    assert_int_equal(conc_future_request_cancel(f), 0);
    assert_int_equal(conc_future_set_error(f, CONC_ECANCELED), 0);
    assert_true(conc_future_cancelled(f));
    assert_int_equal(conc_future_result(f, NULL), CONC_ECANCELED);
    conc_future_release(f);
}

/* conc_wait and as-completed over made futures, completed out of order. */
static void made_futures_with_wait_and_as_completed(void **state)
{
    (void)state;
    enum { N = 4 };
    conc_future *fs[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(conc_future_create(&fs[i]), 0);
    bool done[N];
    assert_int_equal(conc_wait_timed(fs, N, CONC_FIRST_COMPLETED, done, 0), CONC_ETIMEDOUT);
    struct setter s = {fs[2], {2, NULL, 0, NULL}, 1};
    pthread_t t = conc_test_start(set_result_main, &s);
    assert_int_equal(conc_wait(fs, N, CONC_FIRST_COMPLETED, done), 0);
    conc_test_join(t);
    assert_true(done[2] && !done[0] && !done[1] && !done[3]);
    conc_as_completed *it;
    assert_int_equal(conc_as_completed_create(&it, fs, N), 0);
    conc_future *next;
    assert_int_equal(conc_as_completed_next(it, &next), 0);
    assert_ptr_equal(next, fs[2]);
    conc_future_release(next);
    const int order[] = {3, 0, 1};
    for (int k = 0; k < 3; k++) {
        conc_result r = {order[k], NULL, 0, NULL};
        assert_int_equal(conc_future_set_result(fs[order[k]], &r), 0);
        assert_int_equal(conc_as_completed_next(it, &next), 0);
        assert_ptr_equal(next, fs[order[k]]);
        conc_future_release(next);
    }
    assert_int_equal(conc_as_completed_next(it, &next), CONC_ENOENT);
    assert_int_equal(conc_as_completed_destroy(it), 0);
    assert_int_equal(conc_wait_timed(fs, N, CONC_ALL_COMPLETED, done, 0), 0);
    for (int i = 0; i < N; i++)
        conc_future_release(fs[i]);
}

/* Completers racing: exactly one wins each future, whatever the mix of
 * set_result, set_error and cancel; the others get CONC_ESTATE (or, for a
 * cancel, CONC_EBUSY), and the outcome matches the winner. */
struct racer {
    conc_future *const *fs;
    int n, kind;
    _Atomic int *go;
    int wins;
};

static void *race_main(void *p)
{
    struct racer *r = p;
    while (!atomic_load(r->go))
        ;
    for (int i = 0; i < r->n; i++) {
        int rc;
        if (r->kind == 0) {
            conc_result res = {1000 + i, NULL, 0, NULL};
            rc = conc_future_set_result(r->fs[i], &res);
        } else if (r->kind == 1) {
            rc = conc_future_set_error(r->fs[i], CONC_EIO);
        } else {
            rc = conc_future_cancel(r->fs[i]);
            if (rc == CONC_EBUSY)
                rc = CONC_ESTATE;
        }
        if (rc == 0)
            r->wins++;
        else
            assert_int_equal(rc, CONC_ESTATE);
    }
    return NULL;
}

static void made_future_completions_race_one_wins(void **state)
{
    (void)state;
    int n = (int)conc_test_scaled(20000, 500);
    conc_future **fs = calloc((size_t)n, sizeof *fs);
    assert_non_null(fs);
    for (int i = 0; i < n; i++)
        assert_int_equal(conc_future_create(&fs[i]), 0);
    _Atomic int go = 0;
    struct racer r[3];
    pthread_t t[3];
    for (int k = 0; k < 3; k++) {
        r[k] = (struct racer){fs, n, k, &go, 0};
        t[k] = conc_test_start(race_main, &r[k]);
    }
    atomic_store(&go, 1);
    for (int k = 0; k < 3; k++)
        conc_test_join(t[k]);
    assert_int_equal(r[0].wins + r[1].wins + r[2].wins, n);
    int results = 0, errors = 0, cancels = 0;
    for (int i = 0; i < n; i++) {
        conc_result res;
        int rc = conc_future_result(fs[i], &res);
        if (rc == 0) {
            assert_int_equal(res.value, 1000 + i);
            results++;
        } else if (rc == CONC_EIO) {
            errors++;
        } else {
            assert_int_equal(rc, CONC_ECANCELED);
            cancels++;
        }
        conc_future_release(fs[i]);
    }
    assert_int_equal(results, r[0].wins);
    assert_int_equal(errors, r[1].wins);
    assert_int_equal(cancels, r[2].wins);
    free(fs);
}

/* An error nobody read is reported once, when the last reference goes
 * (asyncio's "exception was never retrieved"): a fire-and-forget task, a
 * made future; not one whose result was read, a cancelled one, or a task
 * group's (the group answers for it). */
static int fail_with_arg(void *arg, conc_result *out)
{
    (void)out;
    return (int)(intptr_t)arg;
}

static void unread_future_error_is_reported(void **state)
{
    (void)state;
    static struct conc_test_unhandled seen;
    assert_int_equal(conc_set_unhandled_hook(conc_test_unhandled_hook, &seen), 0);
    conc_pool *p = conc_test_pool_new(1);
    assert_int_equal(conc_pool_submit(p, fail_with_arg, (void *)(intptr_t)CONC_EIO, NULL), 0);
    CONC_TEST_POLL_UNTIL(atomic_load(&seen.calls) == 1);
    assert_string_equal(seen.kind, "future");
    assert_int_equal(atomic_load(&seen.status), CONC_EIO);
    /* Read: not reported. */
    conc_future *f = conc_test_submit(p, fail_with_arg, (void *)(intptr_t)CONC_EPERM);
    assert_int_equal(conc_future_result(f, NULL), CONC_EPERM);
    conc_future_release(f);
    /* A task group's failure is the group's. */
    conc_task_group *g;
    assert_int_equal(conc_task_group_create(&g, p), 0);
    assert_int_equal(conc_task_group_spawn(g, fail_with_arg, (void *)(intptr_t)CONC_EPIPE), 0);
    int first = 0;
    assert_int_equal(conc_task_group_wait(g, &first), 0);
    assert_int_equal(first, CONC_EPIPE);
    assert_int_equal(conc_task_group_destroy(g), 0);
    conc_test_pool_free(p); /* every task has ended and been released */
    assert_int_equal(atomic_load(&seen.calls), 1);
    /* A made future: an error set and never read; a cancelled one. */
    assert_int_equal(conc_future_create(&f), 0);
    assert_int_equal(conc_future_set_error(f, CONC_ENOENT), 0);
    conc_future_release(f);
    assert_int_equal(atomic_load(&seen.calls), 2);
    assert_int_equal(atomic_load(&seen.status), CONC_ENOENT);
    assert_int_equal(conc_future_create(&f), 0);
    assert_int_equal(conc_future_cancel(f), 0);
    conc_future_release(f);
    assert_int_equal(atomic_load(&seen.calls), 2);
    assert_int_equal(conc_set_unhandled_hook(NULL, NULL), 0);
}

CONC_TEST_MAIN(
    cmocka_unit_test(unread_future_error_is_reported),
    cmocka_unit_test(made_future_bad_input),
    cmocka_unit_test(made_future_set_result_from_another_thread),
    cmocka_unit_test(made_future_error_and_cancel),
    cmocka_unit_test(made_futures_with_wait_and_as_completed),
    cmocka_unit_test(made_future_completions_race_one_wins),
    cmocka_unit_test(future_null_arguments_are_einval),
    cmocka_unit_test(wait_and_as_completed_bad_input_is_einval),
    cmocka_unit_test(future_states_pending_running_finished),
    cmocka_unit_test(wait_status_is_never_the_task_status),
    cmocka_unit_test(wait_timeout_on_unfinished_future),
    cmocka_unit_test(blocked_waiters_all_wake),
    cmocka_unit_test(result_buffer_lives_until_last_release),
    cmocka_unit_test(fire_and_forget_and_early_release),
    cmocka_unit_test(result_without_free_fn_is_not_freed),
    cmocka_unit_test(cancel_pending_future),
    cmocka_unit_test(cancel_running_or_finished_fails),
    cmocka_unit_test(request_cancel_pending_cancels_at_once),
    cmocka_unit_test(request_cancel_running_task),
    cmocka_unit_test(ecanceled_without_request_is_a_failure),
    cmocka_unit_test(callbacks_run_in_order_on_finishing_thread),
    cmocka_unit_test(callback_on_done_future_runs_at_once),
    cmocka_unit_test(callbacks_run_on_cancelling_thread),
    cmocka_unit_test(callback_may_retain_future),
    cmocka_unit_test(callback_add_races_completion_stress),
    cmocka_unit_test(waiting_on_own_future_is_edeadlk),
    cmocka_unit_test(wait_first_completed_sets),
    cmocka_unit_test(wait_all_completed_sets),
    cmocka_unit_test(wait_first_exception_sets),
    cmocka_unit_test(wait_first_exception_ignores_cancelled),
    cmocka_unit_test(blocked_conc_wait_wakes_and_unlinks),
    cmocka_unit_test(conc_wait_many_futures),
    cmocka_unit_test(as_completed_yields_in_completion_order),
    cmocka_unit_test(as_completed_done_and_duplicates),
    cmocka_unit_test(as_completed_deadline),
    cmocka_unit_test(as_completed_blocked_next_wakes),
    cmocka_unit_test(as_completed_and_wait_stress),
    cmocka_unit_test(future_wait_wakeup_stress))
