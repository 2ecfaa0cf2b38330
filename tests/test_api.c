/* The API's rules (docs/api.md), checked across modules: options with
 * reserved space, the misuse detail, lifecycle verbs (once, tls, the static
 * barrier), the untimed forms, predicates answering 1/0/error. */
#include "test.h"

/* ---- options structs: non-zero reserved space is refused everywhere ---- */

static int nop_thread(void *arg)
{
    (void)arg;
    return 0;
}

static int nop_item(void *arg, size_t index, conc_result *out)
{
    (void)arg;
    (void)index;
    (void)out;
    return 0;
}

static void options_with_reserved_bits_are_einval(void **state)
{
    (void)state;
    conc_mutex m;
    conc_rmutex r;
    conc_cond c;
    conc_sem s;
    conc_event e;
    conc_barrier b;
    conc_rwlock l;
    conc_mutex_opts mo = {.reserved_ = {1}};
    assert_int_equal(conc_mutex_init(&m, &mo), CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "reserved"));
    assert_int_equal(conc_rmutex_init(&r, &mo), CONC_EINVAL);
    assert_int_equal(conc_cond_init(&c, &(conc_cond_opts){.reserved_ = {0, 0, 0, 1}}), CONC_EINVAL);
    assert_int_equal(conc_sem_init(&s, 1, &(conc_sem_opts){.reserved_ = {2}}), CONC_EINVAL);
    assert_int_equal(conc_event_init(&e, &(conc_event_opts){.reserved_ = {3}}), CONC_EINVAL);
    assert_int_equal(conc_barrier_init(&b, 2, &(conc_barrier_opts){.reserved_ = {4}}), CONC_EINVAL);
    assert_int_equal(conc_rwlock_init(&l, &(conc_rwlock_opts){.reserved_ = {5}}), CONC_EINVAL);
    conc_thread *t = NULL;
    assert_int_equal(conc_thread_create(&t, nop_thread, NULL, &(conc_thread_opts){.reserved_ = {6}}),
                     CONC_EINVAL);
    assert_null(t);
    conc_timer *tm = NULL;
    assert_int_equal(conc_timer_create(&tm, 0, nop_thread, NULL, &(conc_timer_opts){.reserved_ = {7}}),
                     CONC_EINVAL);
    assert_null(tm);
    conc_queue *q = NULL;
    assert_int_equal(conc_queue_create(&q, 8, &(conc_queue_opts){.reserved_ = {8}}), CONC_EINVAL);
    assert_null(q);
    conc_pool *p = NULL;
    assert_int_equal(conc_pool_create(&p, &(conc_pool_opts){.reserved_ = {9}}), CONC_EINVAL);
    assert_null(p);
    assert_int_equal(conc_pool_create(&p, &(conc_pool_opts){.max_workers = 1}), 0);
    conc_map *map = NULL;
    assert_int_equal(conc_map_create(&map, p, nop_item, NULL, 4,
                                     &(conc_map_opts){.reserved_ = {10}}),
                     CONC_EINVAL);
    assert_null(map);
    assert_int_equal(conc_pool_destroy(p), 0);

    /* The same options with zero reserved space work. */
    assert_int_equal(conc_mutex_init(&m, &(conc_mutex_opts){.name = "api.m"}), 0);
    assert_int_equal(conc_mutex_destroy(&m), 0);
    assert_int_equal(conc_queue_create(&q, 8, &(conc_queue_opts){.capacity = 4}), 0);
    assert_int_equal(conc_queue_destroy(q), 0);
}

/* ---- which misuse: the per-thread detail ---- */

static int detail_in_fresh_thread(void *arg)
{
    const char **out = arg;
    *out = conc_error_detail();
    return 0;
}

static void error_detail_names_the_call_and_the_mistake(void **state)
{
    (void)state;
    /* A thread that never misused anything has an empty detail. */
    const char *fresh = NULL;
    conc_thread *t;
    assert_int_equal(conc_thread_create(&t, detail_in_fresh_thread, &fresh, NULL), 0);
    assert_int_equal(conc_thread_join(t, NULL), 0);
    assert_int_equal(conc_thread_destroy(t), 0);
    assert_non_null(fresh);
    assert_string_equal(fresh, "");

    /* Three misuses that share no code path, each named. */
    conc_queue *q;
    assert_int_equal(conc_queue_create(&q, sizeof(int), NULL), 0);
    assert_int_equal(conc_queue_task_done(q), CONC_ESTATE);
    assert_non_null(strstr(conc_error_detail(), "conc_queue_task_done"));
    assert_non_null(strstr(conc_error_detail(), "more times than items were put"));

    conc_sem s;
    assert_int_equal(conc_sem_init(&s, 1, &(conc_sem_opts){.bound = 1}), 0);
    assert_int_equal(conc_sem_release(&s), CONC_ESTATE);
    assert_non_null(strstr(conc_error_detail(), "conc_sem_release_n"));
    assert_non_null(strstr(conc_error_detail(), "released too many times"));

    int x = 1;
    assert_int_equal(conc_queue_get_timed(q, &x, -5), CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "negative timeout"));

    /* An outcome that is not a misuse leaves the detail alone. */
    assert_int_equal(conc_queue_get_timed(q, &x, 0), CONC_EEMPTY);
    assert_non_null(strstr(conc_error_detail(), "negative timeout"));

    conc_thread *self = conc_thread_self();
    assert_int_equal(conc_thread_destroy(self), CONC_ESTATE);
    assert_non_null(strstr(conc_error_detail(), "conc_thread_destroy"));

    assert_int_equal(conc_sem_destroy(&s), 0);
    assert_int_equal(conc_queue_destroy(q), 0);
}

/* ---- lifecycle: once, tls, the static barrier ---- */

struct once_gate {
    conc_event entered, go;
    int runs;
};

static int gated_init(void *arg)
{
    struct once_gate *g = arg;
    g->runs++;
    conc_event_set(&g->entered);
    return conc_event_wait(&g->go);
}

static conc_once gated_once;

static int call_gated_once(void *arg)
{
    return conc_once_call(&gated_once, gated_init, arg);
}

static int count_init(void *arg)
{
    (*(int *)arg)++;
    return 0;
}

static void once_init_and_destroy(void **state)
{
    (void)state;
    assert_int_equal(conc_once_init(NULL), CONC_EINVAL);
    assert_int_equal(conc_once_destroy(NULL), CONC_EINVAL);

    /* init on dirty memory gives a fresh once. */
    conc_once o;
    memset(&o, 0xa5, sizeof o);
    assert_int_equal(conc_once_init(&o), 0);
    int runs = 0;
    assert_int_equal(conc_once_call(&o, count_init, &runs), 0);
    assert_int_equal(conc_once_call(&o, count_init, &runs), 0);
    assert_int_equal(runs, 1);
    /* Destroyed, done or not: every call is CONC_EBADF until init. */
    assert_int_equal(conc_once_destroy(&o), 0);
    assert_int_equal(conc_once_call(&o, count_init, &runs), CONC_EBADF);
    assert_int_equal(conc_once_call_timed(&o, count_init, &runs, 0), CONC_EBADF);
    assert_int_equal(conc_once_destroy(&o), CONC_EBADF);
    assert_int_equal(runs, 1);
    assert_int_equal(conc_once_init(&o), 0);
    assert_int_equal(conc_once_call(&o, count_init, &runs), 0);
    assert_int_equal(runs, 2);
    assert_int_equal(conc_once_destroy(&o), 0);

    /* While its initialiser runs, destroy is CONC_EBUSY and changes nothing. */
    struct once_gate g = {.runs = 0};
    assert_int_equal(conc_event_init(&g.entered, NULL), 0);
    assert_int_equal(conc_event_init(&g.go, NULL), 0);
    assert_int_equal(conc_once_init(&gated_once), 0);
    conc_thread *t;
    assert_int_equal(conc_thread_create(&t, call_gated_once, &g, NULL), 0);
    assert_int_equal(conc_event_wait(&g.entered), 0);
    assert_int_equal(conc_once_destroy(&gated_once), CONC_EBUSY);
    assert_non_null(strstr(conc_error_detail(), "initialiser is running"));
    assert_int_equal(conc_event_set(&g.go), 0);
    int status = -1;
    assert_int_equal(conc_thread_join(t, &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(conc_thread_destroy(t), 0);
    assert_int_equal(g.runs, 1);
    assert_int_equal(conc_once_destroy(&gated_once), 0);
    assert_int_equal(conc_event_destroy(&g.entered), 0);
    assert_int_equal(conc_event_destroy(&g.go), 0);
}

static void tls_key_states(void **state)
{
    (void)state;
    conc_tls never = {0};
    assert_int_equal(conc_tls_set(&never, &never), CONC_EINVAL);
    assert_int_equal(conc_tls_destroy(&never), CONC_EINVAL);
    assert_null(conc_tls_get(&never));
    assert_int_equal(conc_tls_init(NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_tls_set(NULL, NULL), CONC_EINVAL);
    conc_tls k;
    assert_int_equal(conc_tls_init(&k, NULL), 0);
    assert_int_equal(conc_tls_set(&k, &k), 0);
    assert_ptr_equal(conc_tls_get(&k), &k);
    assert_int_equal(conc_tls_destroy(&k), 0);
    assert_int_equal(conc_tls_set(&k, &k), CONC_EBADF);
    assert_non_null(strstr(conc_error_detail(), "destroyed"));
    assert_null(conc_tls_get(&k));
}

static conc_barrier static_barrier = CONC_BARRIER_INIT(2);

static int meet_static(void *arg)
{
    size_t *idx = arg;
    return conc_barrier_wait(&static_barrier, idx);
}

static void barrier_static_initialiser(void **state)
{
    (void)state;
    assert_int_equal(conc_barrier_parties(&static_barrier), 2);
    assert_int_equal(conc_barrier_n_waiting(&static_barrier), 0);
    assert_int_equal(conc_barrier_broken(&static_barrier), 0);
    size_t a = SIZE_MAX, b = SIZE_MAX;
    for (int round = 0; round < 3; round++) {
        conc_thread *t;
        assert_int_equal(conc_thread_create(&t, meet_static, &a, NULL), 0);
        assert_int_equal(meet_static(&b), 0);
        int status = -1;
        assert_int_equal(conc_thread_join(t, &status), 0);
        assert_int_equal(status, 0);
        assert_int_equal(conc_thread_destroy(t), 0);
        assert_true((a == 0 && b == 1) || (a == 1 && b == 0));
    }
    conc_barrier zero = {0};
    assert_int_equal(conc_barrier_wait(&zero, NULL), CONC_EINVAL);
    assert_int_equal(conc_barrier_init(&zero, 0, NULL), CONC_EINVAL);
    assert_int_equal(conc_barrier_init(&zero, (size_t)UINT32_MAX + 1, NULL), CONC_EINVAL);
}

/* ---- untimed forms and their timed twins ---- */

static void queue_untimed_forms(void **state)
{
    (void)state;
    conc_queue *q;
    assert_int_equal(conc_queue_create(&q, sizeof(int), &(conc_queue_opts){.kind = CONC_QUEUE_PRIORITY}),
                     0);
    int v = 5;
    assert_int_equal(conc_queue_put_key(q, &v, 7), 0);
    v = 6;
    assert_int_equal(conc_queue_put(q, &v), 0); /* key 0: first */
    int many[3] = {1, 2, 3};
    size_t done = 0;
    assert_int_equal(conc_queue_put_many(q, many, 3, &done), 0);
    assert_int_equal(done, 3);
    int64_t key = -1;
    int out = 0;
    assert_int_equal(conc_queue_get_key(q, &out, &key), 0);
    assert_int_equal(key, 0);
    assert_int_equal(out, 6);
    int got_many[4] = {0};
    size_t got = 0;
    assert_int_equal(conc_queue_get_many(q, got_many, 3, &got), 0);
    assert_int_equal(got, 3);
    assert_int_equal(got_many[0] + got_many[1] + got_many[2], 6);
    assert_int_equal(conc_queue_get(q, &out), 0);
    assert_int_equal(out, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(conc_queue_task_done(q), 0);
    assert_int_equal(conc_queue_join(q), 0);
    /* Bad input reaches the untimed forms as the timed ones. */
    assert_int_equal(conc_queue_put(NULL, &v), CONC_EINVAL);
    assert_int_equal(conc_queue_get(q, NULL), CONC_EINVAL);
    assert_int_equal(conc_queue_put_many(q, many, 0, NULL), CONC_EINVAL);
    assert_int_equal(conc_queue_get_many(q, got_many, 0, NULL), CONC_EINVAL);
    assert_int_equal(conc_queue_join(NULL), CONC_EINVAL);
    assert_int_equal(conc_queue_shutdown(q, false), 0);
    assert_int_equal(conc_queue_get(q, &out), CONC_ESHUTDOWN);
    assert_int_equal(conc_queue_destroy(q), 0);
}

static void future_result_timed_and_predicates(void **state)
{
    (void)state;
    conc_future *f;
    assert_int_equal(conc_future_create(&f), 0);
    conc_result r = {0};
    assert_int_equal(conc_future_result_timed(f, &r, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_future_result_timed(f, &r, CONC_MSEC(1)), CONC_ETIMEDOUT);
    assert_int_equal(conc_future_result_timed(f, &r, -3), CONC_EINVAL);
    assert_int_equal(conc_future_result_timed(NULL, &r, 0), CONC_EINVAL);
    assert_int_equal(conc_future_wait_timed(f, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_future_done(f), 0);
    assert_int_equal(conc_future_running(f), 0);
    assert_int_equal(conc_future_cancelled(f), 0);
    assert_int_equal(conc_future_set_result(f, &(conc_result){.value = 42}), 0);
    assert_int_equal(conc_future_done(f), 1);
    assert_int_equal(conc_future_result_timed(f, &r, 0), 0);
    assert_int_equal(r.value, 42);
    assert_int_equal(conc_future_wait(f), 0);
    assert_int_equal(conc_future_release(f), 0);
    assert_int_equal(conc_cancel_requested(), 0); /* outside any task */
}

struct pred_state {
    conc_mutex m;
    conc_cond c;
    int calls;
};

static int failing_pred(void *arg)
{
    struct pred_state *p = arg;
    return ++p->calls == 1 ? 0 : CONC_EIO;
}

static void cond_predicate_error_ends_the_wait(void **state)
{
    (void)state;
    struct pred_state p = {.calls = 0};
    assert_int_equal(conc_mutex_init(&p.m, NULL), 0);
    assert_int_equal(conc_cond_init(&p.c, NULL), 0);
    assert_int_equal(conc_mutex_lock(&p.m), 0);
    /* First answer: not yet; the timed wait runs out (1 ms), the predicate
     * is asked again and fails: its code is the wait's. */
    assert_int_equal(conc_cond_wait_for_timed(&p.c, &p.m, failing_pred, &p, CONC_MSEC(1)), CONC_EIO);
    assert_int_equal(p.calls, 2);
    assert_int_equal(conc_mutex_locked(&p.m), 1); /* returned holding it */
    assert_int_equal(conc_mutex_unlock(&p.m), 0);
    assert_int_equal(conc_cond_destroy(&p.c), 0);
    assert_int_equal(conc_mutex_destroy(&p.m), 0);
}

/* A queue's name is what conc_debug_dump shows for it. */
static void queue_name_shows_in_the_dump(void **state)
{
    (void)state;
    conc_queue *q;
    assert_int_equal(conc_queue_create(&q, sizeof(int), &(conc_queue_opts){.name = "orders"}), 0);
    int v = 1;
    assert_int_equal(conc_queue_put(q, &v), 0);
    char path[] = "/tmp/conc-api-dump-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(conc_debug_dump(fd), 0);
    char buf[65536];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    close(fd);
    assert_non_null(strstr(buf, "queue \"orders\""));
    assert_non_null(strstr(buf, "1 item,"));
    assert_int_equal(conc_queue_destroy(q), 0);
}

CONC_TEST_MAIN(cmocka_unit_test(options_with_reserved_bits_are_einval),
               cmocka_unit_test(error_detail_names_the_call_and_the_mistake),
               cmocka_unit_test(once_init_and_destroy),
               cmocka_unit_test(tls_key_states),
               cmocka_unit_test(barrier_static_initialiser),
               cmocka_unit_test(queue_untimed_forms),
               cmocka_unit_test(future_result_timed_and_predicates),
               cmocka_unit_test(cond_predicate_error_ends_the_wait),
               cmocka_unit_test(queue_name_shows_in_the_dump))
