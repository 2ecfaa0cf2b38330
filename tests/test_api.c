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
    conc_pmutex pm;
    assert_int_equal(conc_pmutex_init(&pm, &(conc_pmutex_opts){.reserved_ = {11}}), CONC_EINVAL);
    conc_shm *shm = NULL;
    assert_int_equal(conc_shm_create(&shm, 64, &(conc_shm_opts){.reserved_ = {12}}), CONC_EINVAL);
    assert_null(shm);
    conc_pqueue *pq = NULL;
    assert_int_equal(conc_pqueue_create(&pq, 8, 4, &(conc_pqueue_opts){.reserved_ = {13}}),
                     CONC_EINVAL);
    assert_null(pq);
    conc_pipe *pa = NULL, *pb = NULL;
    assert_int_equal(conc_pipe_create(&pa, &pb, &(conc_pipe_opts){.reserved_ = {14}}), CONC_EINVAL);
    assert_null(pa);
    conc_process *proc = NULL;
    char *argv[] = {"true", NULL};
    assert_int_equal(
        conc_process_spawn(&proc, "true", argv, NULL, &(conc_process_opts){.reserved_ = {15}}),
        CONC_EINVAL);
    assert_null(proc);
    conc_procpool *pp = NULL;
    assert_int_equal(conc_procpool_create(&pp, &(conc_procpool_opts){.reserved_ = {16}}),
                     CONC_EINVAL);
    assert_null(pp);

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

/* ---- every module's misuse says which: a table of calls with bad input ----
 *
 * EXPECT_MISUSE(call, code, needle): the call returns the documented misuse
 * code, and conc_error_detail() is set by that very call (a sentinel detail
 * is put in place first), names no internal conc__ function, and contains
 * needle: the public call's name or a word of the mistake. */

static char misuse_sentinel[160];

/* A known detail, so that a call that leaves the detail alone is caught. */
static void misuse_sentinel_set(void)
{
    assert_int_equal(conc_thread_enumerate(NULL, 1), CONC_EINVAL);
    snprintf(misuse_sentinel, sizeof misuse_sentinel, "%s", conc_error_detail());
    assert_non_null(strstr(misuse_sentinel, "conc_thread_enumerate"));
}

static void misuse_check(int64_t rc, int code, const char *needle, const char *call, int line)
{
    const char *d = conc_error_detail();
    if (rc != code)
        fail_msg("line %d: %s returned %s (%lld), want %s", line, call,
                 conc_err_name((int)rc), (long long)rc, conc_err_name(code));
    if (!d[0] || !strcmp(d, misuse_sentinel))
        fail_msg("line %d: %s returned %s without setting the detail", line, call,
                 conc_err_name(code));
    if (!strstr(d, needle))
        fail_msg("line %d: %s: detail \"%s\" does not say \"%s\"", line, call, d, needle);
    if (strstr(d, "conc__"))
        fail_msg("line %d: %s: detail \"%s\" names an internal function", line, call, d);
}

#define EXPECT_MISUSE(call, code, needle)                                \
    do {                                                                 \
        misuse_sentinel_set();                                           \
        int64_t rc_ = (call);                                            \
        misuse_check(rc_, (code), (needle), #call, __LINE__);            \
    } while (0)

static int misuse_quick_fn(void *arg)
{
    (void)arg;
    return 0;
}

static int misuse_true(void *arg)
{
    (void)arg;
    return 1;
}


static int misuse_task(void *arg, conc_result *out)
{
    (void)arg;
    (void)out;
    return 0;
}

static int misuse_item(void *arg, size_t index, conc_result *out)
{
    (void)arg;
    (void)index;
    (void)out;
    return 0;
}

static int misuse_range(void *arg, size_t begin, size_t end)
{
    (void)arg;
    (void)begin;
    (void)end;
    return 0;
}

struct misuse_inside {
    conc_pool *pool;
    conc_task_group *group;
    int shutdown_rc, group_rc;
    char shutdown_detail[160], group_detail[160];
};

static int misuse_inside_task(void *arg, conc_result *out)
{
    (void)out;
    struct misuse_inside *in = arg;
    in->shutdown_rc = conc_pool_shutdown(in->pool, false);
    snprintf(in->shutdown_detail, sizeof in->shutdown_detail, "%s", conc_error_detail());
    in->group_rc = conc_task_group_wait(in->group, NULL);
    snprintf(in->group_detail, sizeof in->group_detail, "%s", conc_error_detail());
    return 0;
}

static void misuse_swallow_report(const char *text, void *arg)
{
    (void)text;
    (void)arg;
}

/* A pool task that waits on its own future. */
struct misuse_self_wait {
    conc_event go;
    conc_future *self;
    int rc;
    char detail[160];
};

static int misuse_self_waiting_task(void *arg, conc_result *out)
{
    (void)out;
    struct misuse_self_wait *s = arg;
    conc_event_wait(&s->go);
    s->rc = conc_future_wait(s->self);
    snprintf(s->detail, sizeof s->detail, "%s", conc_error_detail());
    return 0;
}

static void every_module_names_its_misuse(void **state)
{
    (void)state;
    int x = 0;
    char buf[16];

    /* thread */
    conc_thread *t = NULL;
    EXPECT_MISUSE(conc_thread_create(NULL, misuse_quick_fn, NULL, NULL), CONC_EINVAL,
                  "conc_thread_create");
    EXPECT_MISUSE(conc_thread_create(&t, NULL, NULL, NULL), CONC_EINVAL, "NULL function");
    assert_int_equal(conc_thread_create(&t, misuse_quick_fn, NULL, NULL), 0);
    EXPECT_MISUSE(conc_thread_join_timed(t, NULL, -1), CONC_EINVAL, "negative timeout");
    EXPECT_MISUSE(conc_thread_join_timed(NULL, NULL, 0), CONC_EINVAL, "NULL thread");
    EXPECT_MISUSE(conc_thread_get_name(t, buf, 0), CONC_EINVAL, "conc_thread_get_name");
    EXPECT_MISUSE(conc_thread_get_name(t, NULL, 4), CONC_EINVAL, "NULL buffer");
    EXPECT_MISUSE(conc_thread_set_name(t, NULL), CONC_EINVAL, "conc_thread_set_name");
    assert_int_equal(conc_thread_join(t, NULL), 0);
    EXPECT_MISUSE(conc_thread_join_timed(t, NULL, 0), CONC_ESTATE, "joined already");
    EXPECT_MISUSE(conc_thread_detach(t), CONC_ESTATE, "conc_thread_detach");
    assert_int_equal(conc_thread_destroy(t), 0);
    EXPECT_MISUSE(conc_thread_join_timed(conc_thread_self(), NULL, 0), CONC_EDEADLK,
                  "conc_thread_join_timed");
    EXPECT_MISUSE(conc_thread_id(NULL), CONC_EINVAL, "conc_thread_id");
    EXPECT_MISUSE(conc_thread_is_alive(NULL), CONC_EINVAL, "conc_thread_is_alive");
    EXPECT_MISUSE(conc_sleep(-1), CONC_EINVAL, "negative timeout");

    /* timer */
    conc_timer *tm = NULL;
    EXPECT_MISUSE(conc_timer_create(&tm, -1, misuse_quick_fn, NULL, NULL), CONC_EINVAL,
                  "negative delay");
    EXPECT_MISUSE(conc_timer_create(&tm, 0, NULL, NULL, NULL), CONC_EINVAL, "NULL function");
    EXPECT_MISUSE(conc_timer_cancel(NULL), CONC_EINVAL, "conc_timer_cancel");
    EXPECT_MISUSE(conc_timer_destroy(NULL), CONC_EINVAL, "conc_timer_destroy");
    assert_int_equal(conc_timer_create(&tm, 0, misuse_quick_fn, NULL, NULL), 0);
    assert_int_equal(conc_timer_join(tm, NULL), 0); /* it fired */
    EXPECT_MISUSE(conc_timer_cancel(tm), CONC_EBUSY, "conc_timer_cancel");
    EXPECT_MISUSE(conc_timer_join_timed(tm, NULL, 0), CONC_ESTATE, "conc_timer_join_timed");
    EXPECT_MISUSE(conc_timer_join_timed(tm, NULL, -2), CONC_EINVAL, "negative timeout");
    assert_int_equal(conc_timer_destroy(tm), 0);

    /* tls */
    conc_tls k;
    EXPECT_MISUSE(conc_tls_init(NULL, NULL), CONC_EINVAL, "conc_tls_init");
    assert_int_equal(conc_tls_init(&k, NULL), 0);
    assert_int_equal(conc_tls_destroy(&k), 0);
    EXPECT_MISUSE(conc_tls_set(&k, &x), CONC_EBADF, "destroyed");
    EXPECT_MISUSE(conc_tls_destroy(&k), CONC_EBADF, "destroyed");

    /* mutex */
    conc_mutex m;
    EXPECT_MISUSE(conc_mutex_init(NULL, NULL), CONC_EINVAL, "NULL mutex");
    EXPECT_MISUSE(conc_mutex_lock(NULL), CONC_EINVAL, "conc_mutex_lock");
    assert_int_equal(conc_mutex_init(&m, NULL), 0);
    EXPECT_MISUSE(conc_mutex_lock_timed(&m, -1), CONC_EINVAL, "negative timeout");
    EXPECT_MISUSE(conc_mutex_unlock(&m), CONC_EPERM, "conc_mutex_unlock");
    assert_int_equal(conc_mutex_lock(&m), 0);
    EXPECT_MISUSE(conc_mutex_lock_timed(&m, 0), CONC_EDEADLK, "re-locking");
    EXPECT_MISUSE(conc_mutex_destroy(&m), CONC_EBUSY, "conc_mutex_destroy");
    assert_int_equal(conc_mutex_unlock(&m), 0);
    assert_int_equal(conc_mutex_destroy(&m), 0);
    EXPECT_MISUSE(conc_mutex_lock(&m), CONC_EBADF, "destroyed");
    EXPECT_MISUSE(conc_mutex_unlock(&m), CONC_EBADF, "destroyed");
    EXPECT_MISUSE(conc_mutex_locked(&m), CONC_EBADF, "destroyed");
    EXPECT_MISUSE(conc_mutex_destroy(&m), CONC_EBADF, "conc_mutex_destroy");
    conc_mutex fair;
    assert_int_equal(conc_mutex_init(&fair, &(conc_mutex_opts){.fair = true}), 0);
    EXPECT_MISUSE(conc_mutex_unlock(&fair), CONC_EPERM, "does not hold");
    assert_int_equal(conc_mutex_destroy(&fair), 0);

    /* rmutex */
    conc_rmutex r;
    EXPECT_MISUSE(conc_rmutex_lock(NULL), CONC_EINVAL, "NULL recursive mutex");
    assert_int_equal(conc_rmutex_init(&r, NULL), 0);
    EXPECT_MISUSE(conc_rmutex_lock_timed(&r, -1), CONC_EINVAL, "negative timeout");
    EXPECT_MISUSE(conc_rmutex_unlock(&r), CONC_EPERM, "conc_rmutex_unlock");
    EXPECT_MISUSE(conc_rmutex_depth(NULL), CONC_EINVAL, "conc_rmutex_depth");
    assert_int_equal(conc_rmutex_destroy(&r), 0);
    EXPECT_MISUSE(conc_rmutex_unlock(&r), CONC_EBADF, "destroyed");
    EXPECT_MISUSE(conc_rmutex_depth(&r), CONC_EBADF, "conc_rmutex_depth");

    /* cond */
    conc_cond c;
    assert_int_equal(conc_mutex_init(&m, NULL), 0);
    assert_int_equal(conc_rmutex_init(&r, NULL), 0);
    assert_int_equal(conc_cond_init(&c, NULL), 0);
    EXPECT_MISUSE(conc_cond_wait(&c, &m), CONC_EPERM, "without holding");
    EXPECT_MISUSE(conc_cond_wait_timed(NULL, &m, 0), CONC_EINVAL, "conc_cond_wait_timed");
    EXPECT_MISUSE(conc_cond_wait_timed(&c, NULL, 0), CONC_EINVAL, "NULL mutex");
    EXPECT_MISUSE(conc_cond_wait_timed(&c, &m, -1), CONC_EINVAL, "negative timeout");
    EXPECT_MISUSE(conc_cond_wait_rmutex_timed(&c, NULL, 0), CONC_EINVAL,
                  "conc_cond_wait_rmutex_timed");
    EXPECT_MISUSE(conc_cond_wait_for_timed(&c, &m, NULL, NULL, 0), CONC_EINVAL, "NULL predicate");
    EXPECT_MISUSE(conc_cond_wait_for_rmutex(&c, &r, misuse_true, NULL), CONC_EPERM,
                  "without holding");
    assert_int_equal(conc_cond_destroy(&c), 0);
    EXPECT_MISUSE(conc_cond_notify(&c), CONC_EBADF, "destroyed");
    assert_int_equal(conc_mutex_lock(&m), 0);
    EXPECT_MISUSE(conc_cond_wait(&c, &m), CONC_EBADF, "condition was destroyed");
    assert_int_equal(conc_mutex_unlock(&m), 0);
    EXPECT_MISUSE(conc_cond_destroy(&c), CONC_EBADF, "conc_cond_destroy");
    assert_int_equal(conc_rmutex_destroy(&r), 0);
    assert_int_equal(conc_mutex_destroy(&m), 0);

    /* sem */
    conc_sem s;
    EXPECT_MISUSE(conc_sem_init(&s, 2, &(conc_sem_opts){.bound = 1}), CONC_EINVAL, "bound");
    assert_int_equal(conc_sem_init(&s, 0, NULL), 0);
    EXPECT_MISUSE(conc_sem_acquire_n(&s, 0), CONC_EINVAL, "n is 0");
    EXPECT_MISUSE(conc_sem_acquire_timed(&s, -1), CONC_EINVAL, "negative timeout");
    EXPECT_MISUSE(conc_sem_release_n(&s, 0), CONC_EINVAL, "conc_sem_release_n");
    EXPECT_MISUSE(conc_sem_value(NULL), CONC_EINVAL, "conc_sem_value");
    assert_int_equal(conc_sem_destroy(&s), 0);
    EXPECT_MISUSE(conc_sem_value(&s), CONC_EBADF, "destroyed");
    EXPECT_MISUSE(conc_sem_acquire(&s), CONC_EBADF, "destroyed");
    EXPECT_MISUSE(conc_sem_destroy(&s), CONC_EBADF, "conc_sem_destroy");

    /* event */
    conc_event e;
    EXPECT_MISUSE(conc_event_set(NULL), CONC_EINVAL, "NULL event");
    EXPECT_MISUSE(conc_event_init(NULL, NULL), CONC_EINVAL, "conc_event_init");
    assert_int_equal(conc_event_init(&e, NULL), 0);
    EXPECT_MISUSE(conc_event_wait_timed(&e, -1), CONC_EINVAL, "negative timeout");
    assert_int_equal(conc_event_destroy(&e), 0);
    EXPECT_MISUSE(conc_event_is_set(&e), CONC_EBADF, "destroyed");
    EXPECT_MISUSE(conc_event_wait(&e), CONC_EBADF, "destroyed");
    EXPECT_MISUSE(conc_event_destroy(&e), CONC_EBADF, "destroyed");

    /* barrier */
    conc_barrier b, never = {0};
    EXPECT_MISUSE(conc_barrier_init(&b, 0, NULL), CONC_EINVAL, "parties");
    EXPECT_MISUSE(conc_barrier_wait(&never, NULL), CONC_EINVAL, "never initialised");
    EXPECT_MISUSE(conc_barrier_abort(NULL), CONC_EINVAL, "NULL barrier");
    assert_int_equal(conc_barrier_init(&b, 2, NULL), 0);
    EXPECT_MISUSE(conc_barrier_wait_timed(&b, NULL, -1), CONC_EINVAL, "negative timeout");
    assert_int_equal(conc_barrier_destroy(&b), 0);
    EXPECT_MISUSE(conc_barrier_parties(&b), CONC_EBADF, "destroyed");

    /* once */
    conc_once o;
    assert_int_equal(conc_once_init(&o), 0);
    EXPECT_MISUSE(conc_once_call(&o, NULL, NULL), CONC_EINVAL, "NULL function");
    EXPECT_MISUSE(conc_once_call(NULL, misuse_quick_fn, NULL), CONC_EINVAL, "NULL once");
    EXPECT_MISUSE(conc_once_call_timed(&o, misuse_quick_fn, NULL, -1), CONC_EINVAL,
                  "negative timeout");
    assert_int_equal(conc_once_destroy(&o), 0);
    EXPECT_MISUSE(conc_once_call(&o, misuse_quick_fn, NULL), CONC_EBADF, "destroyed");
    EXPECT_MISUSE(conc_once_destroy(&o), CONC_EBADF, "conc_once_destroy");

    /* rwlock */
    conc_rwlock l;
    EXPECT_MISUSE(conc_rwlock_rdlock(NULL), CONC_EINVAL, "NULL rwlock");
    assert_int_equal(conc_rwlock_init(&l, NULL), 0);
    EXPECT_MISUSE(conc_rwlock_unlock(&l), CONC_EPERM, "conc_rwlock_unlock");
    EXPECT_MISUSE(conc_rwlock_wrlock_timed(&l, -1), CONC_EINVAL, "negative timeout");
    assert_int_equal(conc_rwlock_wrlock(&l), 0);
    EXPECT_MISUSE(conc_rwlock_wrlock_timed(&l, 0), CONC_EDEADLK, "re-locking");
    EXPECT_MISUSE(conc_rwlock_rdlock_timed(&l, 0), CONC_EDEADLK, "read-locking");
    EXPECT_MISUSE(conc_rwlock_destroy(&l), CONC_EBUSY, "conc_rwlock_destroy");
    assert_int_equal(conc_rwlock_unlock(&l), 0);
    assert_int_equal(conc_rwlock_rdlock(&l), 0);
    assert_int_equal(conc_rwlock_unlock(&l), 0);
    EXPECT_MISUSE(conc_rwlock_unlock(&l), CONC_EPERM, "does not hold");
    assert_int_equal(conc_rwlock_destroy(&l), 0);
    EXPECT_MISUSE(conc_rwlock_rdlock(&l), CONC_EBADF, "destroyed");
    EXPECT_MISUSE(conc_rwlock_destroy(&l), CONC_EBADF, "conc_rwlock_destroy");

    /* queue */
    conc_queue *q = NULL;
    int items[2] = {1, 2};
    size_t n = 0;
    int64_t key = 0;
    EXPECT_MISUSE(conc_queue_create(&q, 0, NULL), CONC_EINVAL, "item_size is 0");
    EXPECT_MISUSE(conc_queue_create(&q, 4, &(conc_queue_opts){.kind = 42}), CONC_EINVAL,
                  "unknown queue kind");
    EXPECT_MISUSE(conc_queue_put(NULL, &x), CONC_EINVAL, "NULL queue");
    assert_int_equal(conc_queue_create(&q, sizeof(int), NULL), 0);
    EXPECT_MISUSE(conc_queue_put(q, NULL), CONC_EINVAL, "NULL item");
    EXPECT_MISUSE(conc_queue_put_many(q, items, 0, &n), CONC_EINVAL, "n is 0");
    EXPECT_MISUSE(conc_queue_get_timed(q, NULL, 0), CONC_EINVAL, "NULL output");
    EXPECT_MISUSE(conc_queue_get_many_timed(q, items, 0, &n, 0), CONC_EINVAL,
                  "conc_queue_get_many_timed");
    EXPECT_MISUSE(conc_queue_get_key_timed(q, &x, NULL, 0), CONC_EINVAL, "NULL key");
    EXPECT_MISUSE(conc_queue_put_key_timed(q, &x, key, -1), CONC_EINVAL, "negative timeout");
    EXPECT_MISUSE(conc_queue_join_timed(NULL, 0), CONC_EINVAL, "conc_queue_join_timed");
    EXPECT_MISUSE(conc_queue_size(NULL), CONC_EINVAL, "conc_queue_size");
    EXPECT_MISUSE(conc_queue_empty(NULL), CONC_EINVAL, "conc_queue_empty");
    EXPECT_MISUSE(conc_queue_full(NULL), CONC_EINVAL, "conc_queue_full");
    EXPECT_MISUSE(conc_queue_shutdown(NULL, false), CONC_EINVAL, "conc_queue_shutdown");
    EXPECT_MISUSE(conc_queue_task_done(q), CONC_ESTATE, "conc_queue_task_done");
    EXPECT_MISUSE(conc_queue_destroy(NULL), CONC_EINVAL, "conc_queue_destroy");
    assert_int_equal(conc_queue_destroy(q), 0);

    /* future */
    conc_future *f = NULL;
    EXPECT_MISUSE(conc_future_create(NULL), CONC_EINVAL, "conc_future_create");
    EXPECT_MISUSE(conc_future_retain(NULL), CONC_EINVAL, "conc_future_retain");
    EXPECT_MISUSE(conc_future_done(NULL), CONC_EINVAL, "NULL future");
    assert_int_equal(conc_future_create(&f), 0);
    EXPECT_MISUSE(conc_future_wait_timed(f, -1), CONC_EINVAL, "negative timeout");
    EXPECT_MISUSE(conc_future_add_done_callback(f, NULL, NULL), CONC_EINVAL, "NULL callback");
    EXPECT_MISUSE(conc_future_set_error(f, 0), CONC_EINVAL, "conc_future_set_error");
    EXPECT_MISUSE(conc_future_set_result(NULL, NULL), CONC_EINVAL, "conc_future_set_result");
    assert_int_equal(conc_future_set_result(f, NULL), 0);
    EXPECT_MISUSE(conc_future_set_result(f, NULL), CONC_ESTATE, "conc_future_set_result");
    EXPECT_MISUSE(conc_future_set_error(f, CONC_EIO), CONC_ESTATE, "conc_future_set_error");
    EXPECT_MISUSE(conc_future_set_running_or_notify_cancel(f), CONC_ESTATE, "already");
    EXPECT_MISUSE(conc_future_cancel(f), CONC_EBUSY, "conc_future_cancel");
    EXPECT_MISUSE(conc_future_request_cancel(f), CONC_EBUSY, "conc_future_request_cancel");

    /* a pool task that waits on its own future */
    conc_pool *p = NULL;
    assert_int_equal(conc_pool_create(&p, &(conc_pool_opts){.max_workers = 1}), 0);
    struct misuse_self_wait sw = {.rc = 0};
    assert_int_equal(conc_event_init(&sw.go, NULL), 0);
    assert_int_equal(conc_pool_submit(p, misuse_self_waiting_task, &sw, &sw.self), 0);
    assert_int_equal(conc_event_set(&sw.go), 0);
    assert_int_equal(conc_future_wait(sw.self), 0);
    assert_int_equal(sw.rc, CONC_EDEADLK);
    assert_non_null(strstr(sw.detail, "own task"));
    assert_int_equal(conc_future_release(sw.self), 0);
    assert_int_equal(conc_pool_destroy(p), 0);
    assert_int_equal(conc_event_destroy(&sw.go), 0);

    /* conc_wait */
    conc_future *fs[2] = {f, NULL};
    EXPECT_MISUSE(conc_wait(fs, 1, (conc_wait_mode)99, NULL), CONC_EINVAL, "unknown wait mode");
    EXPECT_MISUSE(conc_wait(NULL, 2, CONC_ALL_COMPLETED, NULL), CONC_EINVAL, "conc_wait_timed");
    EXPECT_MISUSE(conc_wait(fs, 2, CONC_ALL_COMPLETED, NULL), CONC_EINVAL, "a NULL entry");
    EXPECT_MISUSE(conc_wait_timed(fs, 1, CONC_ALL_COMPLETED, NULL, -1), CONC_EINVAL,
                  "negative timeout");

    /* as_completed */
    conc_as_completed *it = NULL;
    conc_future *got = NULL;
    EXPECT_MISUSE(conc_as_completed_create(NULL, fs, 1), CONC_EINVAL, "conc_as_completed_create");
    EXPECT_MISUSE(conc_as_completed_create(&it, fs, 2), CONC_EINVAL, "a NULL entry");
    assert_int_equal(conc_as_completed_create(&it, fs, 1), 0);
    EXPECT_MISUSE(conc_as_completed_next_timed(it, NULL, 0), CONC_EINVAL, "NULL output");
    EXPECT_MISUSE(conc_as_completed_next_timed(it, &got, -1), CONC_EINVAL, "negative timeout");
    EXPECT_MISUSE(conc_as_completed_next(NULL, &got), CONC_EINVAL, "NULL iterator");
    EXPECT_MISUSE(conc_as_completed_destroy(NULL), CONC_EINVAL, "conc_as_completed_destroy");
    assert_int_equal(conc_as_completed_destroy(it), 0);
    assert_int_equal(conc_future_release(f), 0);

    /* pool, map, task groups, parallel for */
    conc_pool *pool = NULL;
    EXPECT_MISUSE(conc_pool_create(NULL, NULL), CONC_EINVAL, "conc_pool_create");
    EXPECT_MISUSE(conc_pool_create(&pool, &(conc_pool_opts){.max_workers = CONC_POOL_MAX_WORKERS + 1}),
                  CONC_EINVAL, "max_workers");
    assert_int_equal(conc_pool_create(&pool, &(conc_pool_opts){.max_workers = 1}), 0);
    EXPECT_MISUSE(conc_pool_submit(NULL, misuse_task, NULL, NULL), CONC_EINVAL, "NULL pool");
    EXPECT_MISUSE(conc_pool_submit(pool, NULL, NULL, NULL), CONC_EINVAL, "NULL task function");
    EXPECT_MISUSE(conc_pool_submit_timed(pool, misuse_task, NULL, NULL, -1), CONC_EINVAL,
                  "negative timeout");
    EXPECT_MISUSE(conc_pool_shutdown_timed(pool, false, -1), CONC_EINVAL, "negative timeout");
    EXPECT_MISUSE(conc_pool_workers(NULL), CONC_EINVAL, "conc_pool_workers");
    EXPECT_MISUSE(conc_pool_enumerate_workers(pool, NULL, 2), CONC_EINVAL, "cap");
    EXPECT_MISUSE(conc_pool_set_exit_timeout(-2), CONC_EINVAL, "negative timeout");
    conc_map *map = NULL;
    EXPECT_MISUSE(conc_map_create(&map, NULL, misuse_item, NULL, 1, NULL), CONC_EINVAL,
                  "conc_map_create");
    EXPECT_MISUSE(conc_map_next(NULL, NULL, &x, NULL), CONC_EINVAL, "NULL map");
    EXPECT_MISUSE(conc_map_destroy(NULL), CONC_EINVAL, "conc_map_destroy");
    conc_task_group *group = NULL;
    EXPECT_MISUSE(conc_task_group_create(&group, NULL), CONC_EINVAL, "conc_task_group_create");
    assert_int_equal(conc_task_group_create(&group, pool), 0);
    EXPECT_MISUSE(conc_task_group_spawn(group, NULL, NULL), CONC_EINVAL, "conc_task_group_spawn");
    EXPECT_MISUSE(conc_task_group_wait_timed(group, NULL, -1), CONC_EINVAL, "negative timeout");
    EXPECT_MISUSE(conc_task_group_cancel(NULL), CONC_EINVAL, "conc_task_group_cancel");
    /* From a task of the pool: waiting for the pool, or the group, waits on itself. */
    struct misuse_inside in = {.pool = pool, .group = group};
    assert_int_equal(conc_task_group_spawn(group, misuse_inside_task, &in), 0);
    assert_int_equal(conc_task_group_wait(group, NULL), 0);
    assert_int_equal(in.shutdown_rc, CONC_EDEADLK);
    assert_int_equal(in.group_rc, CONC_EDEADLK);
    assert_non_null(strstr(in.shutdown_detail, "own tasks"));
    assert_non_null(strstr(in.group_detail, "own tasks"));
    assert_int_equal(conc_task_group_destroy(group), 0);
    EXPECT_MISUSE(conc_parallel_for(pool, 2, 1, misuse_range, NULL, NULL), CONC_EINVAL,
                  "conc_parallel_for");
    assert_int_equal(conc_pool_destroy(pool), 0);
    EXPECT_MISUSE(conc_pool_destroy(NULL), CONC_EINVAL, "conc_pool_destroy");

    /* robust mutex */
    conc_pmutex pm, pm_never;
    memset(&pm_never, 0, sizeof pm_never);
    EXPECT_MISUSE(conc_pmutex_init(NULL, NULL), CONC_EINVAL, "conc_pmutex_init");
    EXPECT_MISUSE(conc_pmutex_lock(NULL), CONC_EINVAL, "NULL robust mutex");
    EXPECT_MISUSE(conc_pmutex_lock(&pm_never), CONC_EINVAL, "never initialised");
    assert_int_equal(conc_pmutex_init(&pm, NULL), 0);
    EXPECT_MISUSE(conc_pmutex_lock_timed(&pm, -1), CONC_EINVAL, "negative timeout");
    EXPECT_MISUSE(conc_pmutex_unlock(&pm), CONC_EPERM, "conc_pmutex_unlock");
    EXPECT_MISUSE(conc_pmutex_consistent(&pm), CONC_EPERM, "does not hold");
    assert_int_equal(conc_pmutex_lock(&pm), 0);
    EXPECT_MISUSE(conc_pmutex_lock_timed(&pm, 0), CONC_EDEADLK, "re-locking");
    EXPECT_MISUSE(conc_pmutex_lock(&pm), CONC_EDEADLK, "conc_pmutex_lock");
    EXPECT_MISUSE(conc_pmutex_consistent(&pm), CONC_ESTATE, "no owner died");
    EXPECT_MISUSE(conc_pmutex_destroy(&pm), CONC_EBUSY, "conc_pmutex_destroy");
    assert_int_equal(conc_pmutex_unlock(&pm), 0);
    assert_int_equal(conc_pmutex_destroy(&pm), 0);
    EXPECT_MISUSE(conc_pmutex_lock(&pm), CONC_EBADF, "destroyed");
    EXPECT_MISUSE(conc_pmutex_unlock(&pm), CONC_EBADF, "destroyed");
    EXPECT_MISUSE(conc_pmutex_destroy(&pm), CONC_EBADF, "conc_pmutex_destroy");

    /* shared memory */
    conc_shm *shm = NULL;
    EXPECT_MISUSE(conc_shm_create(NULL, 64, NULL), CONC_EINVAL, "conc_shm_create");
    EXPECT_MISUSE(conc_shm_create(&shm, 0, NULL), CONC_EINVAL, "size is 0");
    EXPECT_MISUSE(conc_shm_create(&shm, 64, &(conc_shm_opts){.name = "a/b"}), CONC_EINVAL, "'/'");
    EXPECT_MISUSE(conc_shm_create(&shm, 64, &(conc_shm_opts){.name = ""}), CONC_EINVAL,
                  "empty segment name");
    EXPECT_MISUSE(conc_shm_open(&shm, NULL), CONC_EINVAL, "NULL name");
    EXPECT_MISUSE(conc_shm_open(NULL, "x"), CONC_EINVAL, "conc_shm_open");
    EXPECT_MISUSE(conc_shm_unlink_name(".."), CONC_EINVAL, "conc_shm_unlink_name");
    EXPECT_MISUSE(conc_shm_destroy(NULL), CONC_EINVAL, "conc_shm_destroy");
    EXPECT_MISUSE(conc_shm_size(NULL), CONC_EINVAL, "conc_shm_size");
    EXPECT_MISUSE(conc_shm_get_name(NULL, buf, sizeof buf), CONC_EINVAL, "conc_shm_get_name");
    assert_int_equal(conc_shm_create(&shm, 64, NULL), 0);
    EXPECT_MISUSE(conc_shm_get_name(shm, buf, 0), CONC_EINVAL, "size 0");
    EXPECT_MISUSE(conc_shm_unlink(shm), CONC_EINVAL, "anonymous");
    assert_int_equal(conc_shm_destroy(shm), 0);

    /* process queues */
    conc_pqueue *pq = NULL;
    EXPECT_MISUSE(conc_pqueue_create(NULL, 8, 4, NULL), CONC_EINVAL, "conc_pqueue_create");
    EXPECT_MISUSE(conc_pqueue_create(&pq, 0, 4, NULL), CONC_EINVAL, "item_size is 0");
    EXPECT_MISUSE(conc_pqueue_create(&pq, 8, 0, NULL), CONC_EINVAL, "capacity is 0");
    EXPECT_MISUSE(conc_pqueue_create(&pq, 8, 4, &(conc_pqueue_opts){.name = "a/b"}), CONC_EINVAL,
                  "conc_pqueue_create");
    EXPECT_MISUSE(conc_pqueue_open(&pq, NULL, 8), CONC_EINVAL, "conc_pqueue_open");
    EXPECT_MISUSE(conc_pqueue_open(NULL, "x", 8), CONC_EINVAL, "NULL output");
    EXPECT_MISUSE(conc_pqueue_put(NULL, buf), CONC_EINVAL, "NULL queue");
    EXPECT_MISUSE(conc_pqueue_get_timed(NULL, buf, 0), CONC_EINVAL, "conc_pqueue_get_timed");
    EXPECT_MISUSE(conc_pqueue_size(NULL), CONC_EINVAL, "conc_pqueue_size");
    EXPECT_MISUSE(conc_pqueue_destroy(NULL), CONC_EINVAL, "conc_pqueue_destroy");
    assert_int_equal(conc_pqueue_create(&pq, 8, 4, NULL), 0);
    EXPECT_MISUSE(conc_pqueue_put(pq, NULL), CONC_EINVAL, "NULL item");
    EXPECT_MISUSE(conc_pqueue_get(pq, NULL), CONC_EINVAL, "NULL output");
    EXPECT_MISUSE(conc_pqueue_put_timed(pq, buf, -2), CONC_EINVAL, "negative timeout");
    EXPECT_MISUSE(conc_pqueue_get_timed(pq, buf, -2), CONC_EINVAL, "negative timeout");
    EXPECT_MISUSE(conc_pqueue_join_timed(pq, -2), CONC_EINVAL, "negative timeout");
    EXPECT_MISUSE(conc_pqueue_task_done(pq), CONC_ESTATE, "more times than items");
    assert_int_equal(conc_pqueue_destroy(pq), 0);

    /* debug */
    EXPECT_MISUSE(conc_debug_dump(-1), CONC_EINVAL, "conc_debug_dump");
    EXPECT_MISUSE(conc_debug_dump(1 << 20), CONC_EBADF, "write"); /* no such fd */
    EXPECT_MISUSE(conc_lockstat_print(-1, 0), CONC_EINVAL, "conc_lockstat_print");
    EXPECT_MISUSE(conc_watchdog_start(0), CONC_EINVAL, "threshold");
    assert_int_equal(conc_watchdog_start(CONC_SEC(60)), 0);
    EXPECT_MISUSE(conc_watchdog_start(CONC_SEC(60)), CONC_EBUSY, "running already");
    assert_int_equal(conc_watchdog_stop(), 0);
    EXPECT_MISUSE(conc_trace_begin(NULL), CONC_EINVAL, "conc_trace_begin");
    EXPECT_MISUSE(conc_trace_start(NULL, 0), CONC_EINVAL, "NULL path");
    EXPECT_MISUSE(conc_trace_stop(), CONC_EINVAL, "no trace is running");
    EXPECT_MISUSE(conc_lock_set_name(NULL, "x"), CONC_EINVAL, "conc_lock_set_name");
    EXPECT_MISUSE(conc_lockdep_set_mode((conc_lockdep_mode)9), CONC_EINVAL,
                  "conc_lockdep_set_mode");
    /* A lock order refused by lock-order checking: the hooks serve every
     * lock call, so the detail names the mistake, not a call. */
    conc_mutex ma, mb;
    assert_int_equal(conc_mutex_init(&ma, NULL), 0);
    assert_int_equal(conc_mutex_init(&mb, NULL), 0);
    assert_int_equal(conc_debug_set_reporter(misuse_swallow_report, NULL), 0);
    assert_int_equal(conc_lockdep_set_mode(CONC_LOCKDEP_ERROR), 0);
    assert_int_equal(conc_mutex_lock(&ma), 0);
    assert_int_equal(conc_mutex_lock(&mb), 0);
    assert_int_equal(conc_mutex_unlock(&mb), 0);
    assert_int_equal(conc_mutex_unlock(&ma), 0);
    assert_int_equal(conc_mutex_lock(&mb), 0);
    EXPECT_MISUSE(conc_mutex_lock(&ma), CONC_EDEADLK, "lock-order");
    EXPECT_MISUSE(conc_mutex_lock_timed(&ma, CONC_SEC(1)), CONC_EDEADLK, "lock-order");
    assert_int_equal(conc_mutex_unlock(&mb), 0);
    assert_int_equal(conc_lockdep_set_mode(CONC_LOCKDEP_OFF), 0);
    assert_int_equal(conc_debug_set_reporter(NULL, NULL), 0);
    assert_int_equal(conc_mutex_destroy(&ma), 0);
    assert_int_equal(conc_mutex_destroy(&mb), 0);
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
               cmocka_unit_test(every_module_names_its_misuse),
               cmocka_unit_test(once_init_and_destroy),
               cmocka_unit_test(tls_key_states),
               cmocka_unit_test(barrier_static_initialiser),
               cmocka_unit_test(queue_untimed_forms),
               cmocka_unit_test(future_result_timed_and_predicates),
               cmocka_unit_test(cond_predicate_error_ends_the_wait),
               cmocka_unit_test(queue_name_shows_in_the_dump))
