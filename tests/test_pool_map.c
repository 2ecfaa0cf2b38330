/* pool.h, conc_map: Python's Executor.map over an index range — results in
 * index order (or as they complete with unordered), every index run exactly
 * once for any chunksize, the bounded window of chunks in flight
 * (buffersize, default 2 x workers: counted by the map function with atomics
 * and checked at quiescent points), the first error delivered at its index
 * and CONC_ENOENT after it, timeouts, result buffers owned by the map, n == 0,
 * a huge n destroyed early (nothing materialised, bounded work), a map run
 * from inside a pool task, misuse codes, and a map whose pool shuts down
 * under it.
 *
 * "Quiescent" means the pool has no queued task and every worker is counted
 * asleep: since only conc_map_next submits, nothing more can start until the
 * next call, so a count read then is exact. */
#include "test.h"

#include "exec/future_impl.h"
#include "exec/pool/pool_impl.h"

#include <stdatomic.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

/* No task queued and all started workers but `busy` counted asleep. */
static bool pool_quiescent(conc_pool *p, int busy)
{
    if (conc__inbox_nonempty(&p->inbox))
        return false;
    int started = atomic_load(&p->started);
    for (int i = 0; i < started; i++)
        if (conc__deque_size(&p->workers[i].dq) != 0)
            return false;
    return atomic_load(&p->sleepers) == (uint32_t)(started - busy);
}

static void await_quiescent(conc_pool *p)
{
    CONC_TEST_POLL_UNTIL(pool_quiescent(p, 0));
}

/* Drains a map in order, checking index i has value i * 3 and status 0. */
static void drain_ordered(conc_map *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t index = SIZE_MAX;
        int status = 1;
        conc_result r;
        assert_int_equal(conc_map_next(m, &index, &status, &r), 0);
        assert_int_equal(index, i);
        assert_int_equal(status, 0);
        assert_int_equal(r.value, (int64_t)i * 3);
    }
    int status;
    assert_int_equal(conc_map_next(m, NULL, &status, NULL), CONC_ENOENT);
    assert_int_equal(conc_map_next_timed(m, NULL, &status, NULL, 0), CONC_ENOENT);
}

/* Counts calls per index; value = 3 * index. */
struct counted {
    _Atomic int *calls;
    size_t n;
};

static int counted_fn(void *arg, size_t i, conc_result *out)
{
    struct counted *c = arg;
    assert_true(i < c->n);
    atomic_fetch_add(&c->calls[i], 1);
    out->value = (int64_t)i * 3;
    return 0;
}

static int triple_fn(void *arg, size_t i, conc_result *out)
{
    (void)arg;
    out->value = (int64_t)i * 3;
    return 0;
}

/* ------------------------------------------------------------------ misuse */

static void map_bad_input_is_einval(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    conc_map *m = NULL;
    assert_int_equal(conc_map_create(NULL, p, triple_fn, NULL, 1, NULL), CONC_EINVAL);
    assert_int_equal(conc_map_create(&m, NULL, triple_fn, NULL, 1, NULL), CONC_EINVAL);
    assert_int_equal(conc_map_create(&m, p, NULL, NULL, 1, NULL), CONC_EINVAL);
    int status;
    assert_int_equal(conc_map_next_timed(NULL, NULL, &status, NULL, 0), CONC_EINVAL);
    assert_int_equal(conc_map_destroy(NULL), CONC_EINVAL);
    assert_int_equal(conc_map_create(&m, p, triple_fn, NULL, 3, NULL), 0);
    assert_int_equal(conc_map_next_timed(m, NULL, NULL, NULL, 0), CONC_EINVAL);
    assert_int_equal(conc_map_next_timed(m, NULL, &status, NULL, -2), CONC_EINVAL);
    assert_int_equal(conc_map_next_timed(m, NULL, &status, NULL, INT64_MIN), CONC_EINVAL);
    drain_ordered(m, 3); /* the misuse took nothing */
    assert_int_equal(conc_map_destroy(m), 0);
    conc_test_pool_free(p);
}

/* n == 0 yields nothing and runs nothing. */
static void map_n0_yields_nothing(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(2);
    _Atomic int calls[1] = {0};
    struct counted c = {calls, 1};
    for (int unordered = 0; unordered <= 1; unordered++) {
        conc_map *m = NULL;
        conc_map_opts o = {.unordered = unordered};
        assert_int_equal(conc_map_create(&m, p, counted_fn, &c, 0, &o), 0);
        int status = 7;
        size_t index = 7;
        assert_int_equal(conc_map_next(m, &index, &status, NULL), CONC_ENOENT);
        assert_int_equal(conc_map_next_timed(m, &index, &status, NULL, 0), CONC_ENOENT);
        assert_int_equal(conc_map_destroy(m), 0);
    }
    conc_test_pool_free(p);
    assert_int_equal(atomic_load(&calls[0]), 0);
}

/* ------------------------------------------------------ order, chunks */

static void map_ordered_every_index_once(void **state)
{
    (void)state;
    enum { N = 1000 };
    const size_t chunks[] = {0, 1, 7, 64, 999, 1000, 5000};
    const size_t buffers[] = {0, 1, 3, 50};
    conc_pool *p = conc_test_pool_new(3);
    static _Atomic int calls[N];
    struct counted c = {calls, N};
    for (size_t a = 0; a < sizeof chunks / sizeof chunks[0]; a++) {
        for (size_t b = 0; b < sizeof buffers / sizeof buffers[0]; b++) {
            for (size_t i = 0; i < N; i++)
                atomic_store(&calls[i], 0);
            conc_map *m = NULL;
            conc_map_opts o = {.chunksize = chunks[a], .buffersize = buffers[b]};
            assert_int_equal(conc_map_create(&m, p, counted_fn, &c, N, &o), 0);
            drain_ordered(m, N);
            assert_int_equal(conc_map_destroy(m), 0);
            for (size_t i = 0; i < N; i++)
                assert_int_equal(atomic_load(&calls[i]), 1);
        }
    }
    conc_test_pool_free(p);
}

static void map_unordered_every_index_once(void **state)
{
    (void)state;
    enum { N = 1000 };
    const size_t chunks[] = {1, 13, 1000};
    conc_pool *p = conc_test_pool_new(4);
    static _Atomic int calls[N];
    struct counted c = {calls, N};
    for (size_t a = 0; a < sizeof chunks / sizeof chunks[0]; a++) {
        for (size_t i = 0; i < N; i++)
            atomic_store(&calls[i], 0);
        conc_map *m = NULL;
        conc_map_opts o = {.chunksize = chunks[a], .buffersize = 5, .unordered = true};
        assert_int_equal(conc_map_create(&m, p, counted_fn, &c, N, &o), 0);
        static bool seen[N];
        memset(seen, 0, sizeof seen);
        for (size_t k = 0; k < N; k++) {
            size_t index = SIZE_MAX;
            int status = 1;
            conc_result r;
            assert_int_equal(conc_map_next(m, &index, &status, &r), 0);
            assert_true(index < N);
            assert_false(seen[index]);
            seen[index] = true;
            assert_int_equal(status, 0);
            assert_int_equal(r.value, (int64_t)index * 3);
        }
        int status;
        assert_int_equal(conc_map_next(m, NULL, &status, NULL), CONC_ENOENT);
        assert_int_equal(conc_map_destroy(m), 0);
        for (size_t i = 0; i < N; i++)
            assert_int_equal(atomic_load(&calls[i]), 1);
    }
    conc_test_pool_free(p);
}

/* Index 0 is held by an event: unordered hands out index 1 first; ordered
 * times out (0 and a deadline) and then delivers 0 first. */
struct held0 {
    conc_event go;
    _Atomic bool started; /* index 0 is running */
};

static int held0_fn(void *arg, size_t i, conc_result *out)
{
    struct held0 *h = arg;
    if (i == 0) {
        atomic_store(&h->started, true);
        assert_int_equal(conc_event_wait(&h->go), 0);
    }
    out->value = (int64_t)i * 3;
    return 0;
}

static void map_unordered_yields_completion_order(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(2);
    struct held0 h;
    assert_int_equal(conc_event_init(&h.go, NULL), 0);
    conc_map *m = NULL;
    conc_map_opts o = {.buffersize = 2, .unordered = true};
    assert_int_equal(conc_map_create(&m, p, held0_fn, &h, 2, &o), 0);
    size_t index;
    int status;
    assert_int_equal(conc_map_next(m, &index, &status, NULL), 0);
    assert_int_equal(index, 1);
    assert_int_equal(conc_map_next_timed(m, &index, &status, NULL, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_event_set(&h.go), 0);
    assert_int_equal(conc_map_next(m, &index, &status, NULL), 0);
    assert_int_equal(index, 0);
    assert_int_equal(conc_map_next(m, &index, &status, NULL), CONC_ENOENT);
    assert_int_equal(conc_map_destroy(m), 0);
    conc_test_pool_free(p);
    assert_int_equal(conc_event_destroy(&h.go), 0);
}

static void map_next_timeout(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(2);
    struct held0 h;
    assert_int_equal(conc_event_init(&h.go, NULL), 0);
    conc_map *m = NULL;
    assert_int_equal(conc_map_create(&m, p, held0_fn, &h, 5, NULL), 0);
    size_t index = 99;
    int status = 99;
    assert_int_equal(conc_map_next_timed(m, &index, &status, NULL, 0), CONC_ETIMEDOUT);
    int64_t t0 = conc_now_ns();
    assert_int_equal(conc_map_next_timed(m, &index, &status, NULL, CONC_MSEC(20)), CONC_ETIMEDOUT);
    int64_t took = conc_now_ns() - t0;
    assert_true(took >= CONC_MSEC(20));
    assert_true(took < CONC_MSEC(20) + CONC_SEC(1));
    print_message("map_next timed out after %.3f ms (timeout 20 ms)\n", (double)took / 1e6);
    assert_int_equal(conc_event_set(&h.go), 0);
    /* Nothing was lost to the timeouts: 0..4 in order. */
    for (size_t i = 0; i < 5; i++) {
        conc_result r;
        assert_int_equal(conc_map_next(m, &index, &status, &r), 0);
        assert_int_equal(index, i);
        assert_int_equal(r.value, (int64_t)i * 3);
    }
    assert_int_equal(conc_map_next(m, &index, &status, NULL), CONC_ENOENT);
    assert_int_equal(conc_map_destroy(m), 0);
    conc_test_pool_free(p);
    assert_int_equal(conc_event_destroy(&h.go), 0);
}

/* ------------------------------------------------------------- window */

struct window {
    size_t n, cs, bufsize;
    _Atomic long started;  /* chunks whose first index began */
    _Atomic long running;  /* chunks between their first and last index */
    _Atomic long max_running;
    _Atomic long consumed; /* chunks whose last index the caller received */
    _Atomic long calls;
};

static bool chunk_last(struct window *w, size_t i)
{
    return i % w->cs == w->cs - 1 || i == w->n - 1;
}

static int window_fn(void *arg, size_t i, conc_result *out)
{
    struct window *w = arg;
    atomic_fetch_add(&w->calls, 1);
    if (i % w->cs == 0) {
        long s = atomic_fetch_add(&w->started, 1) + 1;
        long r = atomic_fetch_add(&w->running, 1) + 1;
        long mx = atomic_load(&w->max_running);
        while (r > mx && !atomic_compare_exchange_weak(&w->max_running, &mx, r))
            ;
        /* Submitted chunks: those handed out (incl. the one being handed out
         * now, counted once the caller has its last index) + the window. */
        assert_true(s - atomic_load(&w->consumed) <= (long)w->bufsize + 1);
    }
    if (chunk_last(w, i))
        atomic_fetch_sub(&w->running, 1);
    out->value = (int64_t)i * 3;
    return 0;
}

static void check_window(conc_pool *p, size_t n, size_t cs, size_t bufsize)
{
    struct window w = {.n = n, .cs = cs, .bufsize = bufsize};
    conc_map *m = NULL;
    conc_map_opts o = {.chunksize = cs, .buffersize = bufsize};
    assert_int_equal(conc_map_create(&m, p, window_fn, &w, n, &o), 0);
    await_quiescent(p);
    assert_true(atomic_load(&w.started) <= (long)bufsize); /* nothing handed out yet */
    for (size_t i = 0; i < n; i++) {
        size_t index;
        int status;
        conc_result r;
        assert_int_equal(conc_map_next(m, &index, &status, &r), 0);
        assert_int_equal(index, i);
        assert_int_equal(r.value, (int64_t)i * 3);
        if (chunk_last(&w, i))
            atomic_fetch_add(&w.consumed, 1);
        if (i % 7 == 0) {
            await_quiescent(p);
            /* At rest: a partly handed-out chunk is done and out of the
             * window; with chunksize 1 there is none. */
            long unconsumed = atomic_load(&w.started) - atomic_load(&w.consumed);
            assert_true(unconsumed <= (long)bufsize + (cs > 1 ? 1 : 0));
        }
    }
    int status;
    assert_int_equal(conc_map_next(m, NULL, &status, NULL), CONC_ENOENT);
    assert_int_equal(conc_map_destroy(m), 0);
    assert_true(atomic_load(&w.max_running) <= (long)bufsize);
    assert_int_equal(atomic_load(&w.calls), (long)n);
    print_message("chunksize %zu, buffersize %zu: at most %ld chunks ran at once\n", cs, bufsize,
                  atomic_load(&w.max_running));
}

/* More workers than the window: the window, not the pool, bounds the chunks
 * in flight. */
static void map_window_bounds_chunks_in_flight(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(8);
    check_window(p, 200, 1, 3);
    check_window(p, 200, 3, 4);
    check_window(p, 100, 1, 1);
    check_window(p, 301, 10, 2);
    conc_test_pool_free(p);
}

/* Chunks that block until released: with 8 workers and a window of 3,
 * exactly 3 start, and no fourth while they hold; released, the whole map
 * runs with never more than 3 at once. */
struct blocking {
    conc_event go;
    _Atomic long running, max_running, calls;
};

static int blocking_fn(void *arg, size_t i, conc_result *out)
{
    struct blocking *b = arg;
    atomic_fetch_add(&b->calls, 1); /* first: running == 3 implies calls >= 3 */
    long r = atomic_fetch_add(&b->running, 1) + 1;
    long mx = atomic_load(&b->max_running);
    while (r > mx && !atomic_compare_exchange_weak(&b->max_running, &mx, r))
        ;
    assert_int_equal(conc_event_wait(&b->go), 0);
    atomic_fetch_sub(&b->running, 1);
    out->value = (int64_t)i;
    return 0;
}

static void map_window_holds_blocked_chunks(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(8);
    for (int unordered = 0; unordered <= 1; unordered++) {
        struct blocking b = {0};
        assert_int_equal(conc_event_init(&b.go, NULL), 0);
        conc_map *m = NULL;
        conc_map_opts o = {.buffersize = 3, .unordered = unordered};
        assert_int_equal(conc_map_create(&m, p, blocking_fn, &b, 100, &o), 0);
        CONC_TEST_POLL_UNTIL(atomic_load(&b.running) == 3);
        /* Three workers hold a chunk each, nothing is queued, the others
         * started (if any) sleep: no fourth chunk exists to start. */
        CONC_TEST_POLL_UNTIL(pool_quiescent(p, 3));
        assert_int_equal(atomic_load(&b.calls), 3);
        size_t index;
        int status;
        assert_int_equal(conc_map_next_timed(m, &index, &status, NULL, 0), CONC_ETIMEDOUT);
        assert_int_equal(atomic_load(&b.calls), 3);
        assert_int_equal(conc_event_set(&b.go), 0);
        long sum = 0;
        while (conc_map_next(m, &index, &status, NULL) == 0)
            sum += (long)index;
        assert_int_equal(sum, 99 * 100 / 2);
        assert_int_equal(conc_map_destroy(m), 0);
        assert_int_equal(atomic_load(&b.calls), 100);
        assert_int_equal(atomic_load(&b.max_running), 3);
        assert_int_equal(conc_event_destroy(&b.go), 0);
    }
    conc_test_pool_free(p);
}

/* buffersize 0: 2 x max_workers. */
static void map_default_window_is_twice_workers(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(3);
    struct window w = {.n = 1000, .cs = 1, .bufsize = 6};
    conc_map *m = NULL;
    assert_int_equal(conc_map_create(&m, p, window_fn, &w, w.n, NULL), 0);
    await_quiescent(p);
    assert_true(atomic_load(&w.started) <= 6);
    assert_true(atomic_load(&w.started) >= 1);
    assert_int_equal(conc_map_destroy(m), 0);
    assert_true(atomic_load(&w.calls) <= 6);
    conc_test_pool_free(p);
}

/* ----------------------------------------------------------- first error */

struct failing {
    size_t n, bad;
    int bad_status;
    _Atomic int *calls;
};

static int failing_fn(void *arg, size_t i, conc_result *out)
{
    struct failing *f = arg;
    atomic_fetch_add(&f->calls[i], 1);
    out->value = (int64_t)i * 3;
    return i == f->bad ? f->bad_status : 0;
}

static void map_first_error_ordered(void **state)
{
    (void)state;
    enum { N = 100 };
    const size_t chunks[] = {1, 10, 7};
    const size_t buffers[] = {1, 4};
    conc_pool *p = conc_test_pool_new(3);
    static _Atomic int calls[N];
    for (size_t a = 0; a < 3; a++) {
        for (size_t b = 0; b < 2; b++) {
            for (size_t i = 0; i < N; i++)
                atomic_store(&calls[i], 0);
            struct failing f = {N, 37, -77, calls};
            conc_map *m = NULL;
            conc_map_opts o = {.chunksize = chunks[a], .buffersize = buffers[b]};
            assert_int_equal(conc_map_create(&m, p, failing_fn, &f, N, &o), 0);
            size_t index;
            int status;
            for (size_t i = 0; i <= 37; i++) {
                assert_int_equal(conc_map_next(m, &index, &status, NULL), 0);
                assert_int_equal(index, i);
                assert_int_equal(status, i == 37 ? -77 : 0);
            }
            for (int k = 0; k < 3; k++)
                assert_int_equal(conc_map_next(m, &index, &status, NULL), CONC_ENOENT);
            assert_int_equal(conc_map_destroy(m), 0);
            /* It stopped submitting: bounded work past the error. */
            long total = 0;
            for (size_t i = 0; i < N; i++) {
                assert_true(atomic_load(&calls[i]) <= 1);
                total += atomic_load(&calls[i]);
            }
            assert_true(total <= 38 + (long)((buffers[b] + 1) * chunks[a]));
        }
    }
    conc_test_pool_free(p);
}

static void map_first_error_unordered(void **state)
{
    (void)state;
    enum { N = 100 };
    conc_pool *p = conc_test_pool_new(3);
    static _Atomic int calls[N];
    for (size_t cs = 1; cs <= 10; cs += 9) {
        for (size_t i = 0; i < N; i++)
            atomic_store(&calls[i], 0);
        struct failing f = {N, 37, -77, calls};
        conc_map *m = NULL;
        conc_map_opts o = {.chunksize = cs, .buffersize = 3, .unordered = true};
        assert_int_equal(conc_map_create(&m, p, failing_fn, &f, N, &o), 0);
        bool seen[N] = {false};
        size_t index;
        int status, rc;
        size_t got = 0;
        while ((rc = conc_map_next(m, &index, &status, NULL)) == 0) {
            assert_true(index < N);
            assert_false(seen[index]);
            seen[index] = true;
            got++;
            if (status != 0) {
                assert_int_equal(index, 37);
                assert_int_equal(status, -77);
                break;
            }
        }
        assert_int_equal(rc, 0); /* ended by the error, not by running out */
        assert_true(seen[37]);
        assert_true(got <= N);
        for (int k = 0; k < 3; k++)
            assert_int_equal(conc_map_next(m, &index, &status, NULL), CONC_ENOENT);
        assert_int_equal(conc_map_destroy(m), 0);
    }
    conc_test_pool_free(p);
}

/* ----------------------------------------------------------- result buffers */

static _Atomic long map_frees;

static void map_free(void *data)
{
    atomic_fetch_add(&map_frees, 1);
    free(data);
}

static int buffer_fn(void *arg, size_t i, conc_result *out)
{
    atomic_fetch_add((_Atomic long *)arg, 1);
    out->data = malloc(32);
    assert_non_null(out->data);
    out->len = (size_t)snprintf(out->data, 32, "item %zu", i) + 1;
    out->free_fn = map_free;
    return 0;
}

/* The map owns its results: each valid when handed out, each freed exactly
 * once (ASan checks the reads and the frees), by the map. */
static void map_result_buffers_owned_by_map(void **state)
{
    (void)state;
    enum { N = 300 };
    conc_pool *p = conc_test_pool_new(2);
    for (int unordered = 0; unordered <= 1; unordered++) {
        atomic_store(&map_frees, 0);
        _Atomic long calls = 0;
        conc_map *m = NULL;
        conc_map_opts o = {.chunksize = 4, .buffersize = 3, .unordered = unordered};
        assert_int_equal(conc_map_create(&m, p, buffer_fn, &calls, N, &o), 0);
        for (size_t k = 0; k < N / 2; k++) {
            size_t index;
            int status;
            conc_result r;
            assert_int_equal(conc_map_next(m, &index, &status, &r), 0);
            char want[32];
            snprintf(want, sizeof want, "item %zu", index);
            assert_string_equal(r.data, want);
            assert_int_equal(r.len, strlen(want) + 1);
        }
        assert_int_equal(conc_map_destroy(m), 0); /* early: frees what was made */
        assert_int_equal(atomic_load(&map_frees), atomic_load(&calls));
        assert_true(atomic_load(&calls) >= N / 2);
    }
    conc_test_pool_free(p);
}

/* --------------------------------------------------------------- huge n */

/* n = SIZE_MAX / 2 destroyed after a few results: the index range is never
 * materialised, and only a window's worth of work is done. */
static void map_huge_n_early_destroy(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(2);
    const size_t n = SIZE_MAX / 2;
    const size_t chunks[] = {1, 1000};
    for (int unordered = 0; unordered <= 1; unordered++) {
        for (size_t a = 0; a < 2; a++) {
            struct window w = {.n = n, .cs = chunks[a], .bufsize = 4};
            conc_map *m = NULL;
            conc_map_opts o = {.chunksize = chunks[a], .buffersize = 4, .unordered = unordered};
            int64_t t0 = conc_now_ns();
            assert_int_equal(conc_map_create(&m, p, window_fn, &w, n, &o), 0);
            for (size_t i = 0; i < 10; i++) {
                size_t index;
                int status;
                conc_result r;
                assert_int_equal(conc_map_next(m, &index, &status, &r), 0);
                assert_int_equal(status, 0);
                assert_int_equal(r.value, (int64_t)index * 3);
                if (!unordered)
                    assert_int_equal(index, i);
                assert_true(index < 10 * chunks[a] + 5 * chunks[a]);
                if (chunk_last(&w, index))
                    atomic_fetch_add(&w.consumed, 1);
            }
            assert_int_equal(conc_map_destroy(m), 0);
            long calls = atomic_load(&w.calls);
            print_message("huge map (chunksize %zu%s): %ld calls, %.2f ms\n", chunks[a],
                          unordered ? ", unordered" : "", calls, (double)(conc_now_ns() - t0) / 1e6);
            /* At most the chunks handed out plus the window, plus one. */
            assert_true(calls <= (long)((10 + 4 + 1) * chunks[a]));
        }
    }
    conc_test_pool_free(p);
}

/* A chunk too big to allocate is CONC_ENOMEM, not a crash. (TSan's
 * allocator aborts on such a request instead of returning NULL.) */
static void map_chunk_too_big_is_enomem(void **state)
{
    (void)state;
#if CONC__TSAN
    skip();
#endif
    conc_pool *p = conc_test_pool_new(1);
    conc_map *m = (conc_map *)(uintptr_t)1;
    conc_map_opts o = {.chunksize = SIZE_MAX};
    assert_int_equal(conc_map_create(&m, p, triple_fn, NULL, SIZE_MAX / 2, &o), CONC_ENOMEM);
    o = (conc_map_opts){.buffersize = SIZE_MAX / 4};
    assert_int_equal(conc_map_create(&m, p, triple_fn, NULL, 10, &o), CONC_ENOMEM);
    conc_test_pool_free(p);
}

/* ------------------------------------------------------ inside a pool task */

struct inner_map {
    conc_pool *p;
    bool unordered;
    long sum;
    int end_rc;
};

static int inner_map_task(void *arg, conc_result *out)
{
    (void)out;
    struct inner_map *im = arg;
    conc_map *m = NULL;
    conc_map_opts o = {.chunksize = 3, .buffersize = 2, .unordered = im->unordered};
    assert_int_equal(conc_map_create(&m, im->p, triple_fn, NULL, 100, &o), 0);
    size_t index;
    int status;
    conc_result r;
    size_t expect = 0;
    while ((im->end_rc = conc_map_next(m, &index, &status, &r)) == 0) {
        assert_int_equal(status, 0);
        if (!im->unordered)
            assert_int_equal(index, expect++);
        im->sum += r.value;
    }
    assert_int_equal(conc_map_destroy(m), 0);
    return 0;
}

/* On one worker the map's chunks can only run because its waits help. */
static void map_from_task_one_worker(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    for (int unordered = 0; unordered <= 1; unordered++) {
        struct inner_map im = {p, unordered, 0, 1};
        conc_future *f = NULL;
        assert_int_equal(conc_pool_submit(p, inner_map_task, &im, &f), 0);
        assert_int_equal(conc_future_result(f, NULL), 0);
        assert_int_equal(conc_future_release(f), 0);
        assert_int_equal(im.end_rc, CONC_ENOENT);
        assert_int_equal(im.sum, 3 * (99 * 100 / 2));
    }
    conc_test_pool_free(p);
}

/* ------------------------------------------------------------ shutdown */

static void map_on_shut_down_pool_is_eshutdown(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    assert_int_equal(conc_pool_shutdown(p, false), 0);
    conc_map *m = NULL;
    assert_int_equal(conc_map_create(&m, p, triple_fn, NULL, 10, NULL), CONC_ESHUTDOWN);
    conc_test_pool_free(p);
}

/* The pool shuts down under a running map (pool.h): the chunks already in
 * flight are handed out first, then the first index not submitted comes with
 * CONC_ESHUTDOWN, then CONC_ENOENT. With cancel_futures the queued chunks are
 * cancelled: the first of them reports CONC_ECANCELED, where the map stops.
 * One worker, a window of 3, index 0 held until after the shutdown. */
static void check_shutdown_mid_map(bool cancel)
{
    conc_pool *p = conc_test_pool_new(1);
    struct held0 h;
    assert_int_equal(conc_event_init(&h.go, NULL), 0);
    conc_map *m = NULL;
    conc_map_opts o = {.buffersize = 3};
    atomic_store(&h.started, false);
    assert_int_equal(conc_map_create(&m, p, held0_fn, &h, 10, &o), 0);
    CONC_TEST_POLL_UNTIL(atomic_load(&h.started)); /* index 0 runs: only 1 and 2 are queued */
    assert_int_equal(conc_pool_shutdown_timed(p, cancel, 0), 0);
    assert_int_equal(conc_event_set(&h.go), 0);
    /* index -> status expected, in order, then CONC_ENOENT. */
    const int want_plain[] = {0, 0, 0, CONC_ESHUTDOWN};
    const int want_cancel[] = {0, CONC_ECANCELED};
    const int *want = cancel ? want_cancel : want_plain;
    size_t nwant = cancel ? 2 : 4;
    size_t index;
    int status;
    for (size_t k = 0; k < nwant; k++) {
        int rc = conc_map_next(m, &index, &status, NULL);
        if (rc != 0)
            fail_msg("cancel_futures=%d: call %zu returned %s, want index %zu with %s", cancel, k,
                     conc_err_name(rc), k, conc_err_name(want[k]));
        assert_int_equal(index, k);
        assert_int_equal(status, want[k]);
    }
    for (int k = 0; k < 3; k++)
        assert_int_equal(conc_map_next(m, &index, &status, NULL), CONC_ENOENT);
    assert_int_equal(conc_map_destroy(m), 0);
    conc_test_pool_free(p);
    assert_int_equal(conc_event_destroy(&h.go), 0);
}

static void map_pool_shutdown_mid_map(void **state)
{
    (void)state;
    check_shutdown_mid_map(false);
    check_shutdown_mid_map(true);
}

/* ------------------------------------------------------------------ stress */

/* Ordered and unordered maps of many tiny items with assorted chunk and
 * window sizes, two at a time from two threads on one pool. */
struct map_job {
    conc_pool *p;
    size_t n;
    int seed;
};

static void *map_job_thread(void *arg)
{
    struct map_job *j = arg;
    for (int round = 0; round < 6; round++) {
        size_t cs = (size_t)((j->seed * 7 + round * 13) % 50);
        size_t bs = (size_t)((j->seed * 3 + round * 5) % 9);
        bool unordered = (round + j->seed) % 2;
        conc_map *m = NULL;
        conc_map_opts o = {.chunksize = cs, .buffersize = bs, .unordered = unordered};
        assert_int_equal(conc_map_create(&m, j->p, triple_fn, NULL, j->n, &o), 0);
        uint64_t sum = 0, count = 0;
        size_t index;
        int status;
        conc_result r;
        size_t expect = 0;
        while (conc_map_next(m, &index, &status, &r) == 0) {
            assert_int_equal(status, 0);
            assert_int_equal(r.value, (int64_t)index * 3);
            if (!unordered)
                assert_int_equal(index, expect++);
            sum += index;
            count++;
        }
        assert_int_equal(count, j->n);
        assert_int_equal(sum, (uint64_t)j->n * (j->n - 1) / 2);
        assert_int_equal(conc_map_destroy(m), 0);
    }
    return NULL;
}

static void map_concurrent_maps_stress(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(4);
    size_t n = (size_t)conc_test_scaled(50000, 2000);
    struct map_job jobs[2] = {{p, n, 1}, {p, n, 2}};
    conc_test_run_threads(2, map_job_thread, jobs, sizeof jobs[0]);
    conc_test_pool_free(p);
}

CONC_TEST_MAIN(
    cmocka_unit_test(map_bad_input_is_einval),
    cmocka_unit_test(map_n0_yields_nothing),
    cmocka_unit_test(map_ordered_every_index_once),
    cmocka_unit_test(map_unordered_every_index_once),
    cmocka_unit_test(map_unordered_yields_completion_order),
    cmocka_unit_test(map_next_timeout),
    cmocka_unit_test(map_window_bounds_chunks_in_flight),
    cmocka_unit_test(map_window_holds_blocked_chunks),
    cmocka_unit_test(map_default_window_is_twice_workers),
    cmocka_unit_test(map_first_error_ordered),
    cmocka_unit_test(map_first_error_unordered),
    cmocka_unit_test(map_result_buffers_owned_by_map),
    cmocka_unit_test(map_huge_n_early_destroy),
    cmocka_unit_test(map_chunk_too_big_is_enomem),
    cmocka_unit_test(map_from_task_one_worker),
    cmocka_unit_test(map_on_shut_down_pool_is_eshutdown),
    cmocka_unit_test(map_pool_shutdown_mid_map),
    cmocka_unit_test(map_concurrent_maps_stress))
