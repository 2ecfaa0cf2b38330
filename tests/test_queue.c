/* conc_queue (include/conc/queue.h).
 *
 * Bad input: NULL handles and buffers, item size 0, unknown kinds, byte sizes
 * that overflow (EOVERFLOW) or pass CONC_QUEUE_MAX_BYTES (ENOMEM, with no
 * allocation tried: TSan's allocator aborts on one), bad timeouts and counts,
 * task_done too often, destroy while a thread is blocked.
 * Semantics of each kind (FIFO, LIFO, stable PRIORITY): order, timeouts,
 * snapshots, batches, growth with a wrapped ring, and random operations
 * checked against a sequential model. task_done/join. Python 3.13 shutdown:
 * put fails, get drains then fails, 16 blocked producers or consumers all
 * wake (latency printed), immediate shutdown discards and lowers the
 * unfinished count. Stress: P x C producers/consumers for P, C in {1,2,4,8}:
 * every item delivered exactly once, per-producer order kept per consumer.
 *
 * A thread is confirmed blocked through conc__queue_waiting (the waiter
 * records on the queue's wait core), never by sleeping. */
#include "test.h"

#include "queue/queue_impl.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

/* ---- helpers ---- */

static const conc_queue_kind all_kinds[] = {CONC_QUEUE_FIFO, CONC_QUEUE_LIFO, CONC_QUEUE_PRIORITY};
#define NKINDS 3

static const char *kind_name(conc_queue_kind k)
{
    return k == CONC_QUEUE_FIFO ? "fifo" : k == CONC_QUEUE_LIFO ? "lifo" : "priority";
}

static conc_queue *make_queue_opts(size_t item_size, conc_queue_opts o)
{
    conc_queue *q = NULL;
    assert_int_equal(conc_queue_create(&q, item_size, &o), 0);
    assert_non_null(q);
    return q;
}

static conc_queue *make_queue(conc_queue_kind kind, size_t capacity, size_t item_size)
{
    return make_queue_opts(item_size, (conc_queue_opts){.kind = kind, .capacity = capacity});
}

/* Every test ends with nobody waiting and a destroy that succeeds. */
static void destroy_queue(conc_queue *q)
{
    assert_int_equal(conc__queue_waiting(q, CONC__QW_GET), 0);
    assert_int_equal(conc__queue_waiting(q, CONC__QW_PUT), 0);
    assert_int_equal(conc__queue_waiting(q, CONC__QW_JOIN), 0);
    assert_int_equal(conc_queue_destroy(q), 0);
}

/* Whether exactly n threads are parked in q waiting for `want`; fails if not
 * and one of the nflags flags shows that a watched thread returned instead. */
static bool blocked_yet(conc_queue *q, enum conc__queue_want want, unsigned n,
                        atomic_int *const flags[], int nflags)
{
    if (conc__queue_waiting(q, want) == n)
        return true;
    for (int i = 0; i < nflags; i++)
        assert_int_equal(atomic_load(flags[i]), 0);
    return false;
}

/* Polls until exactly n threads are parked in q waiting for `want`; fails if
 * one of the nflags flags shows that a watched thread returned instead, or
 * after 30 s. The assertions that follow depend on this state, never on a
 * sleep. */
static void wait_blocked_unless(conc_queue *q, enum conc__queue_want want, unsigned n,
                                atomic_int *const flags[], int nflags)
{
    CONC_TEST_POLL_UNTIL_FOR(blocked_yet(q, want, n, flags, nflags), 30);
}

static void wait_blocked(conc_queue *q, enum conc__queue_want want, unsigned n)
{
    wait_blocked_unless(q, want, n, NULL, 0);
}

static int put64(conc_queue *q, uint64_t v, int64_t timeout)
{
    return conc_queue_put_timed(q, &v, timeout);
}

/* Takes one item that must be there. */
static uint64_t get64(conc_queue *q)
{
    uint64_t v = UINT64_MAX;
    assert_int_equal(conc_queue_get_timed(q, &v, 0), 0);
    return v;
}

/* Asserts a timed call took at least its timeout and at most 1 s more. */
static void check_waited(int64_t t0, int64_t timeout, const char *what)
{
    int64_t took = conc_now_ns() - t0;
    assert_true(took >= timeout);
    assert_true(took < timeout + CONC_SEC(1));
    print_message("%s(%lld us): returned after %.1f us\n", what, (long long)(timeout / 1000),
                  (double)took / 1e3);
}

/* ---- bad input ---- */

static void queue_create_bad_input_is_einval(void **state)
{
    (void)state;
    conc_queue *q = NULL;
    conc_queue_opts o = {0};
    assert_int_equal(conc_queue_create(NULL, 8, NULL), CONC_EINVAL);
    assert_int_equal(conc_queue_create(NULL, 8, &o), CONC_EINVAL);
    assert_int_equal(conc_queue_create(&q, 0, NULL), CONC_EINVAL);
    for (int k = 0; k < NKINDS; k++) {
        for (size_t cap = 0; cap <= 16; cap += 16) {
            o = (conc_queue_opts){.kind = all_kinds[k], .capacity = cap};
            assert_int_equal(conc_queue_create(&q, 0, &o), CONC_EINVAL);
        }
    }
    const int bad_kinds[] = {3, 4, 1000, -1, -2147483647 - 1};
    for (size_t i = 0; i < sizeof bad_kinds / sizeof bad_kinds[0]; i++) {
        o = (conc_queue_opts){.kind = (conc_queue_kind)bad_kinds[i], .capacity = 4};
        assert_int_equal(conc_queue_create(&q, 8, &o), CONC_EINVAL);
        o.capacity = 0;
        assert_int_equal(conc_queue_create(&q, 8, &o), CONC_EINVAL);
    }
    /* NULL opts is the default: an unbounded FIFO. */
    assert_int_equal(conc_queue_create(&q, sizeof(uint64_t), NULL), 0);
    for (uint64_t i = 0; i < 100; i++)
        assert_int_equal(put64(q, i, 0), 0);
    assert_int_equal(conc_queue_full(q), 0);
    for (uint64_t i = 0; i < 100; i++)
        assert_int_equal(get64(q), i);
    destroy_queue(q);
}

static void queue_create_size_overflow_is_eoverflow(void **state)
{
    (void)state;
    /* capacity x item size does not fit in a size_t. */
    const struct {
        size_t cap, item;
    } cases[] = {
        {SIZE_MAX, 2},        {SIZE_MAX / 2 + 1, 2}, {SIZE_MAX / 3 + 1, 3},
        {2, SIZE_MAX},        {SIZE_MAX / 4 + 1, 4}, {(size_t)1 << 32, (size_t)1 << 32},
        {SIZE_MAX, SIZE_MAX},
    };
    for (int k = 0; k < NKINDS; k++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            conc_queue *q = NULL;
            conc_queue_opts o = {.kind = all_kinds[k], .capacity = cases[i].cap};
            int rc = conc_queue_create(&q, cases[i].item, &o);
            if (rc != CONC_EOVERFLOW)
                print_message("%s capacity %zu x item %zu: %s\n", kind_name(all_kinds[k]),
                              cases[i].cap, cases[i].item, conc_err_name(rc));
            assert_int_equal(rc, CONC_EOVERFLOW);
        }
    }
}

/* Sizes that fit in a size_t (with room to spare for any per-item overhead)
 * but pass 2^47 bytes. ThreadSanitizer aborts on any attempt to allocate more
 * than 2^40 bytes (its TSAN_OPTIONS do not set allocator_may_return_null), so
 * passing there shows that the size check comes before any allocation. */
static void queue_create_above_max_bytes_is_enomem(void **state)
{
    (void)state;
    const struct {
        size_t cap, item;
    } cases[] = {
        {((size_t)1 << 44) + 1, 8},         /* 2^47 + 8 bytes */
        {((size_t)1 << 47) / 3 + 1, 3},     /* just above 2^47 */
        {(size_t)1 << 50, (size_t)1 << 10}, /* 2^60 */
        {(size_t)1 << 20, (size_t)1 << 40}, /* 2^60, large items */
        {(size_t)1 << 48, 1},
        {0, (size_t)1 << 48}, /* unbounded, but one item is already too big */
    };
    for (int k = 0; k < NKINDS; k++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            conc_queue *q = NULL;
            conc_queue_opts o = {.kind = all_kinds[k], .capacity = cases[i].cap};
            int rc = conc_queue_create(&q, cases[i].item, &o);
            if (rc != CONC_ENOMEM)
                print_message("%s capacity %zu x item %zu: %s\n", kind_name(all_kinds[k]),
                              cases[i].cap, cases[i].item, conc_err_name(rc));
            assert_int_equal(rc, CONC_ENOMEM);
        }
    }
    /* A large but reasonable queue still works: 2^20 items of 16 bytes. */
    conc_queue *q = make_queue(CONC_QUEUE_FIFO, (size_t)1 << 20, 16);
    char item[16] = "sixteen bytes..", out[16];
    assert_int_equal(conc_queue_put_timed(q, item, 0), 0);
    assert_int_equal(conc_queue_get_timed(q, out, 0), 0);
    assert_memory_equal(item, out, sizeof item);
    destroy_queue(q);
}

static void queue_null_arguments_are_einval(void **state)
{
    (void)state;
    conc_queue *q = make_queue(CONC_QUEUE_PRIORITY, 4, sizeof(uint64_t));
    uint64_t v = 7, out[4] = {0};
    int64_t key = 0;
    size_t n = 99;

    assert_int_equal(conc_queue_destroy(NULL), CONC_EINVAL);
    for (int f = 0; f < 2; f++) {
        int64_t t = f ? CONC_FOREVER : 0;
        assert_int_equal(conc_queue_put_timed(NULL, &v, t), CONC_EINVAL);
        assert_int_equal(conc_queue_put_timed(q, NULL, t), CONC_EINVAL);
        assert_int_equal(conc_queue_put_key_timed(NULL, &v, 1, t), CONC_EINVAL);
        assert_int_equal(conc_queue_put_key_timed(q, NULL, 1, t), CONC_EINVAL);
        assert_int_equal(conc_queue_get_timed(NULL, out, t), CONC_EINVAL);
        assert_int_equal(conc_queue_get_timed(q, NULL, t), CONC_EINVAL);
        assert_int_equal(conc_queue_get_key_timed(NULL, out, &key, t), CONC_EINVAL);
        assert_int_equal(conc_queue_get_key_timed(q, NULL, &key, t), CONC_EINVAL);
        assert_int_equal(conc_queue_get_key_timed(q, out, NULL, t), CONC_EINVAL);
        n = 99;
        assert_int_equal(conc_queue_put_many_timed(NULL, out, 2, &n, t), CONC_EINVAL);
        assert_int_equal(n, 0);
        n = 99;
        assert_int_equal(conc_queue_put_many_timed(q, NULL, 2, &n, t), CONC_EINVAL);
        assert_int_equal(n, 0);
        n = 99;
        assert_int_equal(conc_queue_get_many_timed(NULL, out, 2, &n, t), CONC_EINVAL);
        assert_int_equal(n, 0);
        n = 99;
        assert_int_equal(conc_queue_get_many_timed(q, NULL, 2, &n, t), CONC_EINVAL);
        assert_int_equal(n, 0);
        assert_int_equal(conc_queue_join_timed(NULL, t), CONC_EINVAL);
    }
    assert_int_equal(conc_queue_size(NULL), CONC_EINVAL);
    assert_int_equal(conc_queue_empty(NULL), CONC_EINVAL);
    assert_int_equal(conc_queue_full(NULL), CONC_EINVAL);
    assert_int_equal(conc_queue_task_done(NULL), CONC_EINVAL);
    assert_int_equal(conc_queue_shutdown(NULL, false), CONC_EINVAL);
    assert_int_equal(conc_queue_shutdown(NULL, true), CONC_EINVAL);

    /* None of it touched the queue; a get_key with no key pointer takes nothing. */
    assert_int_equal(conc_queue_size(q), 0);
    assert_int_equal(conc_queue_put_key_timed(q, &v, 3, 0), 0);
    assert_int_equal(conc_queue_get_key_timed(q, out, NULL, 0), CONC_EINVAL);
    assert_int_equal(conc_queue_get_timed(q, NULL, 0), CONC_EINVAL);
    assert_int_equal(conc_queue_size(q), 1);
    assert_int_equal(conc_queue_get_key_timed(q, out, &key, 0), 0);
    assert_int_equal(out[0], 7);
    assert_int_equal(key, 3);
    destroy_queue(q);
}

static void queue_bad_timeouts_are_einval(void **state)
{
    (void)state;
    const int64_t bad[] = {-1, -2, -1000, INT64_MIN};
    conc_queue *q = make_queue(CONC_QUEUE_FIFO, 4, sizeof(uint64_t));
    uint64_t items[2] = {1, 2}, out[2];
    int64_t key;
    size_t n;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t t = bad[i];
        assert_int_equal(conc_queue_put_timed(q, items, t), CONC_EINVAL);
        assert_int_equal(conc_queue_put_key_timed(q, items, 1, t), CONC_EINVAL);
        n = 99;
        assert_int_equal(conc_queue_put_many_timed(q, items, 2, &n, t), CONC_EINVAL);
        assert_int_equal(n, 0);
        assert_int_equal(conc_queue_size(q), 0); /* nothing went in */
        /* With an item there, a get with a bad timeout must not take it. */
        assert_int_equal(put64(q, 5, 0), 0);
        assert_int_equal(conc_queue_get_timed(q, out, t), CONC_EINVAL);
        assert_int_equal(conc_queue_get_key_timed(q, out, &key, t), CONC_EINVAL);
        n = 99;
        assert_int_equal(conc_queue_get_many_timed(q, out, 2, &n, t), CONC_EINVAL);
        assert_int_equal(n, 0);
        assert_int_equal(conc_queue_join_timed(q, t), CONC_EINVAL);
        assert_int_equal(conc_queue_size(q), 1);
        assert_int_equal(get64(q), 5);
        assert_int_equal(conc_queue_task_done(q), 0);
    }
    destroy_queue(q);
}

static void queue_zero_counts_are_einval(void **state)
{
    (void)state;
    for (int k = 0; k < NKINDS; k++) {
        conc_queue *q = make_queue(all_kinds[k], 4, sizeof(uint64_t));
        uint64_t items[2] = {1, 2}, out[2];
        size_t n = 99;
        assert_int_equal(conc_queue_put_many_timed(q, items, 0, &n, 0), CONC_EINVAL);
        assert_int_equal(n, 0);
        assert_int_equal(conc_queue_put_many(q, items, 0, NULL), CONC_EINVAL);
        assert_int_equal(conc_queue_size(q), 0);
        assert_int_equal(conc_queue_put_many_timed(q, items, 2, NULL, 0), 0);
        n = 99;
        assert_int_equal(conc_queue_get_many_timed(q, out, 0, &n, 0), CONC_EINVAL);
        assert_int_equal(n, 0);
        assert_int_equal(conc_queue_get_many(q, out, 0, &n), CONC_EINVAL);
        assert_int_equal(conc_queue_size(q), 2); /* nothing taken */
        assert_int_equal(conc_queue_shutdown(q, true), 0);
        destroy_queue(q);
    }
}

static void queue_task_done_too_often_is_estate(void **state)
{
    (void)state;
    conc_queue *q = make_queue(CONC_QUEUE_FIFO, 0, sizeof(uint64_t));
    assert_int_equal(conc_queue_task_done(q), CONC_ESTATE); /* nothing was put */
    assert_int_equal(conc_queue_join_timed(q, 0), 0);

    assert_int_equal(put64(q, 1, 0), 0);
    assert_int_equal(put64(q, 2, 0), 0);
    assert_int_equal(get64(q), 1);
    assert_int_equal(conc_queue_task_done(q), 0);
    /* As Python: the count is of items put, whether taken yet or not. */
    assert_int_equal(conc_queue_task_done(q), 0);
    assert_int_equal(conc_queue_task_done(q), CONC_ESTATE);
    assert_int_equal(conc_queue_task_done(q), CONC_ESTATE);
    assert_int_equal(conc_queue_join_timed(q, 0), 0);
    assert_int_equal(conc_queue_size(q), 1); /* the item is still there */

    /* The refused calls did not wrap the count: one new item is one task. */
    assert_int_equal(put64(q, 3, 0), 0);
    assert_int_equal(conc_queue_join_timed(q, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_queue_task_done(q), 0);
    assert_int_equal(conc_queue_join_timed(q, 0), 0);
    assert_int_equal(conc_queue_task_done(q), CONC_ESTATE);

    /* put_many counts every item it put. */
    uint64_t items[5] = {4, 5, 6, 7, 8};
    assert_int_equal(conc_queue_put_many_timed(q, items, 5, NULL, 0), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(conc_queue_join_timed(q, 0), CONC_ETIMEDOUT);
        assert_int_equal(conc_queue_task_done(q), 0);
    }
    assert_int_equal(conc_queue_join_timed(q, 0), 0);
    assert_int_equal(conc_queue_task_done(q), CONC_ESTATE);
    destroy_queue(q);
}

/* One blocked call: what it does, its result, when it returned. */
enum blocked_op {
    OP_GET,
    OP_GET_KEY,
    OP_GET_MANY,
    OP_GET_TIMED,
    OP_PUT,
    OP_PUT_KEY,
    OP_PUT_MANY,
    OP_PUT_TIMED,
    OP_JOIN
};

struct blocked {
    conc_queue *q;
    enum blocked_op op;
    int rc;
    size_t n;       /* put_many's done, get_many's got */
    int64_t ret_ns; /* when the call returned */
    atomic_int done;
};

static void *blocked_call(void *p)
{
    struct blocked *b = p;
    uint64_t items[4] = {901, 902, 903, 904}, out[4];
    int64_t key;
    b->n = 99;
    switch (b->op) {
    case OP_GET:
        b->rc = conc_queue_get(b->q, out);
        break;
    case OP_GET_KEY:
        b->rc = conc_queue_get_key(b->q, out, &key);
        break;
    case OP_GET_MANY:
        b->rc = conc_queue_get_many(b->q, out, 4, &b->n);
        break;
    case OP_GET_TIMED:
        b->rc = conc_queue_get_timed(b->q, out, CONC_SEC(120));
        break;
    case OP_PUT:
        b->rc = conc_queue_put(b->q, items);
        break;
    case OP_PUT_KEY:
        b->rc = conc_queue_put_key(b->q, items, -5);
        break;
    case OP_PUT_MANY:
        b->rc = conc_queue_put_many(b->q, items, 4, &b->n);
        break;
    case OP_PUT_TIMED:
        b->rc = conc_queue_put_timed(b->q, items, CONC_SEC(120));
        break;
    case OP_JOIN:
        b->rc = conc_queue_join(b->q);
        break;
    }
    b->ret_ns = conc_now_ns();
    atomic_store(&b->done, 1);
    return NULL;
}

static void queue_destroy_while_blocked_is_ebusy(void **state)
{
    (void)state;
    const enum blocked_op ops[] = {OP_GET, OP_PUT, OP_JOIN};
    const enum conc__queue_want wants[] = {CONC__QW_GET, CONC__QW_PUT, CONC__QW_JOIN};
    for (int i = 0; i < 3; i++) {
        conc_queue *q = make_queue(CONC_QUEUE_FIFO, 2, sizeof(uint64_t));
        if (ops[i] != OP_GET) { /* full, and two unfinished tasks */
            assert_int_equal(put64(q, 1, 0), 0);
            assert_int_equal(put64(q, 2, 0), 0);
        }
        struct blocked b = {.q = q, .op = ops[i], .rc = 1};
        pthread_t t = conc_test_start(blocked_call, &b);
        wait_blocked(q, wants[i], 1);
        assert_int_equal(conc_queue_destroy(q), CONC_EBUSY);
        assert_int_equal(conc_queue_destroy(q), CONC_EBUSY);
        /* The refused destroy left the queue whole. */
        assert_int_equal(conc_queue_size(q), ops[i] == OP_GET ? 0 : 2);
        assert_int_equal(atomic_load(&b.done), 0);
        /* Immediate shutdown wakes put/get with ESHUTDOWN and, by discarding
         * the two unfinished items, lets the join return 0. */
        assert_int_equal(conc_queue_shutdown(q, true), 0);
        conc_test_join(t);
        assert_int_equal(b.rc, ops[i] == OP_JOIN ? 0 : CONC_ESHUTDOWN);
        destroy_queue(q);
    }
}

/* ---- semantics per kind ---- */

static void queue_fifo_order(void **state)
{
    (void)state;
    for (size_t cap = 0; cap <= 5; cap += 5) {
        conc_queue *q = make_queue(CONC_QUEUE_FIFO, cap, sizeof(uint64_t));
        uint64_t v;
        int64_t key = 99;
        for (uint64_t i = 0; i < 5; i++) /* the key is ignored by a FIFO */
            assert_int_equal(conc_queue_put_key_timed(q, &i, (int64_t)(10 - i), 0), 0);
        for (uint64_t i = 0; i < 5; i++) {
            assert_int_equal(conc_queue_get_key_timed(q, &v, &key, 0), 0);
            assert_int_equal(v, i);
            assert_int_equal(key, 0);
        }
        /* Around the ring many times: puts and gets interleaved. */
        uint64_t next_put = 100, next_get = 100;
        for (int round = 0; round < 60; round++) {
            for (int j = 0; j < 1 + round % 4 && next_put - next_get < 5; j++)
                assert_int_equal(put64(q, next_put++, 0), 0);
            for (int j = 0; j < 1 + (round + 2) % 3 && next_get < next_put; j++)
                assert_int_equal(get64(q), next_get++);
        }
        while (next_get < next_put)
            assert_int_equal(get64(q), next_get++);
        assert_int_equal(conc_queue_empty(q), 1);
        destroy_queue(q);
    }
}

static void queue_lifo_order(void **state)
{
    (void)state;
    for (size_t cap = 0; cap <= 5; cap += 5) {
        conc_queue *q = make_queue(CONC_QUEUE_LIFO, cap, sizeof(uint64_t));
        uint64_t v;
        int64_t key = 99;
        for (uint64_t i = 0; i < 5; i++)
            assert_int_equal(conc_queue_put_key_timed(q, &i, (int64_t)i - 2, 0), 0);
        for (uint64_t i = 5; i-- > 0;) {
            assert_int_equal(conc_queue_get_key_timed(q, &v, &key, 0), 0);
            assert_int_equal(v, i);
            assert_int_equal(key, 0);
        }
        /* Interleaved: the newest is always first out. */
        assert_int_equal(put64(q, 1, 0), 0);
        assert_int_equal(put64(q, 2, 0), 0);
        assert_int_equal(get64(q), 2);
        assert_int_equal(put64(q, 3, 0), 0);
        assert_int_equal(put64(q, 4, 0), 0);
        assert_int_equal(get64(q), 4);
        assert_int_equal(get64(q), 3);
        assert_int_equal(put64(q, 5, 0), 0);
        assert_int_equal(get64(q), 5);
        assert_int_equal(get64(q), 1);
        assert_int_equal(conc_queue_empty(q), 1);
        destroy_queue(q);
    }
}

/* A 7-byte item: odd sizes must survive the PRIORITY entry layout. */
struct item7 {
    unsigned char b[7];
};

static struct item7 item7_of(uint32_t idx)
{
    struct item7 it;
    memcpy(it.b, &idx, 4);
    it.b[4] = (unsigned char)(idx * 7u);
    it.b[5] = 0xA5;
    it.b[6] = (unsigned char)~idx;
    return it;
}

static uint32_t item7_idx(struct item7 it)
{
    uint32_t idx;
    memcpy(&idx, it.b, 4);
    struct item7 want = item7_of(idx);
    assert_memory_equal(it.b, want.b, sizeof it.b);
    return idx;
}

static void queue_priority_lowest_key_first_ties_in_order(void **state)
{
    (void)state;
    const int64_t keys[] = {5, -3, 5, 0, INT64_MAX, INT64_MIN, -3, 0, 5, 2, INT64_MIN, 0, 0};
    const size_t n = sizeof keys / sizeof keys[0];
    for (size_t cap = 0; cap <= 16; cap += 16) {
        conc_queue *q = make_queue(CONC_QUEUE_PRIORITY, cap, sizeof(struct item7));
        /* Items 0..n-1 with those keys, plus item n put with no key (key 0). */
        for (uint32_t i = 0; i < n; i++) {
            struct item7 it = item7_of(i);
            assert_int_equal(conc_queue_put_key_timed(q, &it, keys[i], 0), 0);
        }
        struct item7 last = item7_of((uint32_t)n);
        assert_int_equal(conc_queue_put_timed(q, &last, 0), 0);
        /* Expected: the indices sorted by key, stably (insertion sort). */
        uint32_t order[32];
        int64_t okey[32];
        for (uint32_t i = 0; i <= n; i++) {
            int64_t k = i < n ? keys[i] : 0;
            size_t j = i;
            while (j > 0 && okey[j - 1] > k) {
                order[j] = order[j - 1];
                okey[j] = okey[j - 1];
                j--;
            }
            order[j] = i;
            okey[j] = k;
        }
        for (size_t i = 0; i <= n; i++) {
            struct item7 it;
            int64_t key;
            assert_int_equal(conc_queue_get_key_timed(q, &it, &key, 0), 0);
            assert_int_equal(item7_idx(it), order[i]);
            assert_true(key == okey[i]);
        }
        assert_int_equal(conc_queue_empty(q), 1);
        destroy_queue(q);
    }
}

static void queue_bounded_put_timeout_is_efull(void **state)
{
    (void)state;
    for (int k = 0; k < NKINDS; k++) {
        conc_queue *q = make_queue(all_kinds[k], 3, sizeof(uint64_t));
        for (uint64_t i = 0; i < 3; i++)
            assert_int_equal(conc_queue_put_key_timed(q, &i, (int64_t)i, 0), 0);
        uint64_t v = 77, many[2] = {78, 79};
        size_t done = 99;
        assert_int_equal(conc_queue_put_timed(q, &v, 0), CONC_EFULL);
        assert_int_equal(conc_queue_put_key_timed(q, &v, -100, 0), CONC_EFULL);
        assert_int_equal(conc_queue_put_many_timed(q, many, 2, &done, 0), CONC_EFULL);
        assert_int_equal(done, 0);
        int64_t t0 = conc_now_ns();
        assert_int_equal(conc_queue_put_timed(q, &v, CONC_MSEC(3)), CONC_EFULL);
        check_waited(t0, CONC_MSEC(3), "put on a full queue");
        t0 = conc_now_ns();
        assert_int_equal(conc_queue_put_many_timed(q, many, 2, &done, CONC_MSEC(2)), CONC_EFULL);
        check_waited(t0, CONC_MSEC(2), "put_many on a full queue");
        assert_int_equal(done, 0);
        assert_int_equal(conc_queue_full(q), 1);
        assert_int_equal(conc_queue_size(q), 3);
        /* The refused puts left the contents alone. */
        uint64_t seen = 0;
        for (int i = 0; i < 3; i++) {
            uint64_t x = get64(q);
            assert_true(x < 3);
            seen |= 1u << x;
        }
        assert_int_equal(seen, 7);
        assert_int_equal(conc_queue_put_timed(q, &v, 0), 0); /* room again */
        assert_int_equal(get64(q), 77);
        destroy_queue(q);
    }
}

static void queue_get_timeout_on_empty_is_eempty(void **state)
{
    (void)state;
    for (int k = 0; k < NKINDS; k++) {
        for (size_t cap = 0; cap <= 4; cap += 4) {
            conc_queue *q = make_queue(all_kinds[k], cap, sizeof(uint64_t));
            uint64_t out[2] = {5, 5};
            int64_t key;
            size_t got = 99;
            assert_int_equal(conc_queue_get_timed(q, out, 0), CONC_EEMPTY);
            assert_int_equal(conc_queue_get_key_timed(q, out, &key, 0), CONC_EEMPTY);
            assert_int_equal(conc_queue_get_many_timed(q, out, 2, &got, 0), CONC_EEMPTY);
            assert_int_equal(got, 0);
            int64_t t0 = conc_now_ns();
            assert_int_equal(conc_queue_get_timed(q, out, CONC_MSEC(3)), CONC_EEMPTY);
            check_waited(t0, CONC_MSEC(3), "get on an empty queue");
            t0 = conc_now_ns();
            assert_int_equal(conc_queue_get_many_timed(q, out, 2, &got, CONC_MSEC(2)), CONC_EEMPTY);
            check_waited(t0, CONC_MSEC(2), "get_many on an empty queue");
            assert_int_equal(got, 0);
            /* Drained: empty again after one item in and out. */
            assert_int_equal(put64(q, 1, 0), 0);
            assert_int_equal(get64(q), 1);
            assert_int_equal(conc_queue_get_timed(q, out, 0), CONC_EEMPTY);
            destroy_queue(q);
        }
    }
}

/* A get with a huge timeout (deadline past INT64_MAX) waits, then takes the
 * item put later; it must not see a wrapped, past deadline. */
static void queue_huge_timeout_waits(void **state)
{
    (void)state;
    conc_queue *q = make_queue(CONC_QUEUE_FIFO, 1, sizeof(uint64_t));
    uint64_t v = 11, out = 0;
    assert_int_equal(conc_queue_put_timed(q, &v, INT64_MAX), 0);
    assert_int_equal(conc_queue_get_timed(q, &out, INT64_MAX), 0);
    assert_int_equal(out, 11);
    struct blocked b = {.q = q, .op = OP_GET_TIMED, .rc = 1};
    pthread_t t = conc_test_start(blocked_call, &b);
    wait_blocked(q, CONC__QW_GET, 1);
    assert_int_equal(put64(q, 12, INT64_MAX), 0);
    conc_test_join(t);
    assert_int_equal(b.rc, 0);
    assert_int_equal(conc_queue_empty(q), 1);
    destroy_queue(q);
}

static void queue_snapshots_size_empty_full(void **state)
{
    (void)state;
    for (int k = 0; k < NKINDS; k++) {
        conc_queue *q = make_queue(all_kinds[k], 4, sizeof(uint64_t));
        assert_int_equal(conc_queue_size(q), 0);
        assert_int_equal(conc_queue_empty(q), 1);
        assert_int_equal(conc_queue_full(q), 0);
        for (uint64_t i = 1; i <= 4; i++) {
            assert_int_equal(put64(q, i, 0), 0);
            assert_int_equal(conc_queue_size(q), (int64_t)i);
            assert_int_equal(conc_queue_empty(q), 0);
            assert_int_equal(conc_queue_full(q), i == 4);
        }
        for (int64_t i = 3; i >= 0; i--) {
            (void)get64(q);
            assert_int_equal(conc_queue_size(q), i);
            assert_int_equal(conc_queue_empty(q), i == 0);
            assert_int_equal(conc_queue_full(q), 0);
        }
        destroy_queue(q);

        /* An unbounded queue is never full, however much it holds. */
        q = make_queue(all_kinds[k], 0, sizeof(uint64_t));
        assert_int_equal(conc_queue_full(q), 0);
        for (uint64_t i = 1; i <= 1000; i++) {
            assert_int_equal(put64(q, i, 0), 0);
            assert_int_equal(conc_queue_full(q), 0);
        }
        assert_int_equal(conc_queue_size(q), 1000);
        assert_int_equal(conc_queue_empty(q), 0);
        destroy_queue(q);
    }
}

/* The ring's peeks, which a spinning caller reads instead of trying:
 * can_put(n) holds exactly when the next n puts find room, can_get(n) when
 * the next n gets find an item, on every lap of the ring (sequence numbers
 * wrap the cells) and in every state from empty to full. */
static void check_ring_peeks(struct conc__qring *r, uint64_t count)
{
    for (uint64_t n = 1; n <= r->cap; n++) {
        assert_int_equal(conc__qring_can_put(r, n), n <= r->cap - count);
        assert_int_equal(conc__qring_can_get(r, n), n <= count);
    }
}

static void queue_ring_peeks_see_room_and_items(void **state)
{
    (void)state;
    struct conc__qring r;
    assert_int_equal(conc__qring_init(&r, 8, sizeof(uint64_t), false, false), 0);
    uint64_t next_in = 0, next_out = 0;
    for (int lap = 0; lap < 3; lap++) {
        for (uint64_t count = 0; count < r.cap; count++) {
            check_ring_peeks(&r, count);
            assert_true(conc__qring_put(&r, &next_in, false));
            next_in++;
        }
        check_ring_peeks(&r, r.cap);
        assert_false(conc__qring_put(&r, &next_in, true));
        for (uint64_t count = r.cap; count > 0; count--) {
            uint64_t v;
            assert_true(conc__qring_get(&r, &v, false));
            assert_int_equal(v, next_out++);
            check_ring_peeks(&r, count - 1);
        }
        /* Leave a part of the ring filled and drained, so the next lap
         * starts mid-ring. */
        for (int i = 0; i < 3; i++) {
            uint64_t v;
            assert_true(conc__qring_put(&r, &next_in, false));
            next_in++;
            assert_true(conc__qring_get(&r, &v, false));
            assert_int_equal(v, next_out++);
        }
    }
    conc__qring_free(&r);
}

/* put_many into a bounded queue puts what fits, reports it in *done, and
 * fails with EFULL at its deadline. */
static void queue_put_many_partial_progress(void **state)
{
    (void)state;
    uint64_t items[10];
    for (uint64_t i = 0; i < 10; i++)
        items[i] = i;
    for (int k = 0; k < NKINDS; k++) {
        conc_queue *q = make_queue(all_kinds[k], 4, sizeof(uint64_t));
        size_t done = 99;
        assert_int_equal(conc_queue_put_many_timed(q, items, 10, &done, 0), CONC_EFULL);
        assert_int_equal(done, 4);
        assert_int_equal(conc_queue_full(q), 1);
        /* Two taken: a timed put_many adds two more, then times out. */
        uint64_t a = get64(q), b = get64(q);
        if (all_kinds[k] == CONC_QUEUE_LIFO) {
            assert_int_equal(a, 3);
            assert_int_equal(b, 2);
        } else { /* FIFO; PRIORITY with equal keys is FIFO too */
            assert_int_equal(a, 0);
            assert_int_equal(b, 1);
        }
        int64_t t0 = conc_now_ns();
        assert_int_equal(conc_queue_put_many_timed(q, items + 4, 6, &done, CONC_MSEC(2)), CONC_EFULL);
        check_waited(t0, CONC_MSEC(2), "put_many, partly");
        assert_int_equal(done, 2);
        assert_int_equal(conc_queue_size(q), 4);
        /* What went in went in order, and nothing past it. */
        const uint64_t fifo[4] = {2, 3, 4, 5}, lifo[4] = {5, 4, 1, 0};
        for (int i = 0; i < 4; i++)
            assert_int_equal(get64(q), all_kinds[k] == CONC_QUEUE_LIFO ? lifo[i] : fifo[i]);
        /* done may be NULL; an unbounded queue takes all at once. */
        assert_int_equal(conc_queue_put_many_timed(q, items, 4, NULL, 0), 0);
        assert_int_equal(conc_queue_size(q), 4);
        destroy_queue(q);

        q = make_queue(all_kinds[k], 0, sizeof(uint64_t));
        assert_int_equal(conc_queue_put_many_timed(q, items, 10, &done, 0), 0);
        assert_int_equal(done, 10);
        destroy_queue(q);
    }
}

/* A blocking put_many of more items than the capacity finishes as a consumer
 * makes room; one cut off by shutdown reports what it put. */
struct many_putter {
    conc_queue *q;
    const uint64_t *items;
    size_t n, done;
    int rc;
    atomic_int finished;
};

static void *many_putter_run(void *p)
{
    struct many_putter *m = p;
    m->rc = conc_queue_put_many(m->q, m->items, m->n, &m->done);
    atomic_store(&m->finished, 1);
    return NULL;
}

static void queue_put_many_blocks_until_all_in(void **state)
{
    (void)state;
    uint64_t items[40];
    for (uint64_t i = 0; i < 40; i++)
        items[i] = 1000 + i;
    conc_queue *q = make_queue(CONC_QUEUE_FIFO, 4, sizeof(uint64_t));
    struct many_putter m = {.q = q, .items = items, .n = 40, .done = 99, .rc = 1};
    pthread_t t = conc_test_start(many_putter_run, &m);
    for (uint64_t i = 0; i < 40; i++) { /* one at a time, in order */
        uint64_t v = 0;
        assert_int_equal(conc_queue_get(q, &v), 0);
        assert_int_equal(v, 1000 + i);
    }
    conc_test_join(t);
    assert_int_equal(m.rc, 0);
    assert_int_equal(m.done, 40);

    /* Cut off: 4 go in, then it waits for room until the shutdown. */
    m = (struct many_putter){.q = q, .items = items, .n = 10, .done = 99, .rc = 1};
    t = conc_test_start(many_putter_run, &m);
    wait_blocked_unless(q, CONC__QW_PUT, 1, (atomic_int *const[]){&m.finished}, 1);
    assert_int_equal(conc_queue_size(q), 4);
    assert_int_equal(conc_queue_shutdown(q, false), 0);
    conc_test_join(t);
    assert_int_equal(m.rc, CONC_ESHUTDOWN);
    assert_int_equal(m.done, 4);
    for (uint64_t i = 0; i < 4; i++)
        assert_int_equal(get64(q), 1000 + i);
    destroy_queue(q);
}

struct many_getter {
    conc_queue *q;
    uint64_t out[8];
    size_t max, got;
    int rc;
    atomic_int finished;
};

static void *many_getter_run(void *p)
{
    struct many_getter *m = p;
    m->rc = conc_queue_get_many(m->q, m->out, m->max, &m->got);
    atomic_store(&m->finished, 1);
    return NULL;
}

static void queue_get_many_takes_up_to_max(void **state)
{
    (void)state;
    uint64_t items[5] = {0, 1, 2, 3, 4}, out[10];
    size_t got = 99;
    const uint64_t want[NKINDS][5] = {{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {3, 1, 4, 0, 2}};
    const int64_t keys[5] = {6, 2, 9, 1, 5}; /* PRIORITY order: items 3, 1, 4, 0, 2 */
    for (int k = 0; k < NKINDS; k++) {
        conc_queue *q = make_queue(all_kinds[k], 8, sizeof(uint64_t));
        for (int i = 0; i < 5; i++)
            assert_int_equal(conc_queue_put_key_timed(q, &items[i], keys[i], 0), 0);
        assert_int_equal(conc_queue_get_many_timed(q, out, 3, &got, 0), 0);
        assert_int_equal(got, 3);
        assert_int_equal(conc_queue_get_many(q, out + 3, 10, &got), 0);
        assert_int_equal(got, 2); /* fewer than max: what there is, at once */
        for (int i = 0; i < 5; i++)
            assert_int_equal(out[i], want[k][i]);
        assert_int_equal(conc_queue_get_many_timed(q, out, 10, &got, 0), CONC_EEMPTY);
        assert_int_equal(got, 0);
        destroy_queue(q);
    }

    /* Blocked on an empty queue, it returns with at least one, at most max. */
    conc_queue *q = make_queue(CONC_QUEUE_FIFO, 8, sizeof(uint64_t));
    struct many_getter m = {.q = q, .max = 8, .got = 99, .rc = 1};
    pthread_t t = conc_test_start(many_getter_run, &m);
    wait_blocked_unless(q, CONC__QW_GET, 1, (atomic_int *const[]){&m.finished}, 1);
    assert_int_equal(conc_queue_put_many_timed(q, items, 5, NULL, 0), 0);
    conc_test_join(t);
    assert_int_equal(m.rc, 0);
    assert_true(m.got >= 1 && m.got <= 5);
    for (size_t i = 0; i < m.got; i++)
        assert_int_equal(m.out[i], i);
    for (uint64_t i = m.got; i < 5; i++)
        assert_int_equal(get64(q), i);
    print_message("blocked get_many(max 8) after put_many(5) took %zu\n", m.got);

    /* And a blocked get_many wakes with ESHUTDOWN, having taken nothing. */
    m = (struct many_getter){.q = q, .max = 8, .got = 99, .rc = 1};
    t = conc_test_start(many_getter_run, &m);
    wait_blocked_unless(q, CONC__QW_GET, 1, (atomic_int *const[]){&m.finished}, 1);
    assert_int_equal(conc_queue_shutdown(q, false), 0);
    conc_test_join(t);
    assert_int_equal(m.rc, CONC_ESHUTDOWN);
    assert_int_equal(m.got, 0);
    destroy_queue(q);
}

/* No waiter is left asleep while the queue could serve it: a put_many of 8
 * wakes all 8 blocked consumers, a get_many of 8 all 8 blocked producers. The
 * waits are long but finite, so a missed wake fails rather than hangs. */
struct waker_case {
    conc_queue *q;
    uint64_t v;
    int rc;
};

static void *wake_getter(void *p)
{
    struct waker_case *w = p;
    w->rc = conc_queue_get_timed(w->q, &w->v, CONC_SEC(20));
    return NULL;
}

static void *wake_putter(void *p)
{
    struct waker_case *w = p;
    w->rc = conc_queue_put_timed(w->q, &w->v, CONC_SEC(20));
    return NULL;
}

static void queue_batches_wake_every_waiter(void **state)
{
    (void)state;
    for (int k = 0; k < NKINDS; k++) {
        conc_queue *q = make_queue(all_kinds[k], 8, sizeof(uint64_t));
        struct waker_case w[8];
        pthread_t t[8];
        uint64_t items[8], out[8], seen = 0;
        size_t n = 0;
        for (int i = 0; i < 8; i++) {
            w[i] = (struct waker_case){.q = q, .v = 99, .rc = 1};
            t[i] = conc_test_start(wake_getter, &w[i]);
            items[i] = (uint64_t)i;
        }
        wait_blocked(q, CONC__QW_GET, 8);
        assert_int_equal(conc_queue_put_many_timed(q, items, 8, &n, 0), 0);
        assert_int_equal(n, 8);
        for (int i = 0; i < 8; i++) {
            conc_test_join(t[i]);
            assert_int_equal(w[i].rc, 0);
            assert_true(w[i].v < 8);
            seen |= (uint64_t)1 << w[i].v;
        }
        assert_int_equal(seen, 0xFF); /* each consumer got a different item */

        /* Full, 8 producers waiting for room; one get_many makes room for all. */
        assert_int_equal(conc_queue_put_many_timed(q, items, 8, NULL, 0), 0);
        for (int i = 0; i < 8; i++) {
            w[i] = (struct waker_case){.q = q, .v = 100 + (uint64_t)i, .rc = 1};
            t[i] = conc_test_start(wake_putter, &w[i]);
        }
        wait_blocked(q, CONC__QW_PUT, 8);
        assert_int_equal(conc_queue_get_many_timed(q, out, 8, &n, 0), 0);
        assert_int_equal(n, 8);
        for (int i = 0; i < 8; i++) {
            conc_test_join(t[i]);
            assert_int_equal(w[i].rc, 0);
        }
        assert_int_equal(conc_queue_full(q), 1);
        seen = 0;
        for (int i = 0; i < 8; i++) {
            uint64_t v = get64(q);
            assert_true(v >= 100 && v < 108);
            seen |= (uint64_t)1 << (v - 100);
        }
        assert_int_equal(seen, 0xFF);
        destroy_queue(q);
    }
}

/* An unbounded queue grows past its first allocation many times and keeps
 * its order; the FIFO's ring wraps before each growth. */
static void queue_unbounded_grows_and_keeps_order(void **state)
{
    (void)state;
    conc_queue *q = make_queue(CONC_QUEUE_FIFO, 0, sizeof(uint64_t));
    uint64_t next_put = 0, next_get = 0;
    /* Move the head forward, then fill past the end so the ring wraps. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(put64(q, next_put++, 0), 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(get64(q), next_get++);
    /* Then keep the head moving while the count climbs into the thousands:
     * every growth happens with the ring wrapped somewhere. */
    while (next_put < 6000) {
        for (int i = 0; i < 37; i++)
            assert_int_equal(put64(q, next_put++, 0), 0);
        for (int i = 0; i < 23; i++)
            assert_int_equal(get64(q), next_get++);
    }
    assert_true(conc_queue_size(q) > 2000);
    while (next_get < next_put)
        assert_int_equal(get64(q), next_get++);
    assert_int_equal(conc_queue_empty(q), 1);
    destroy_queue(q);

    /* LIFO: a growing stack, popped part way now and then. */
    q = make_queue(CONC_QUEUE_LIFO, 0, sizeof(uint64_t));
    uint64_t top = 0; /* items 1..top are in, in order */
    while (top < 5000) {
        for (int i = 0; i < 31; i++)
            assert_int_equal(put64(q, ++top, 0), 0);
        for (int i = 0; i < 11; i++)
            assert_int_equal(get64(q), top--);
    }
    while (top > 0)
        assert_int_equal(get64(q), top--);
    assert_int_equal(conc_queue_empty(q), 1);
    destroy_queue(q);

    /* PRIORITY: 5000 items with 13 keys, drained in key, then insertion, order. */
    q = make_queue(CONC_QUEUE_PRIORITY, 0, sizeof(uint64_t));
    for (uint64_t i = 0; i < 5000; i++)
        assert_int_equal(conc_queue_put_key_timed(q, &i, (int64_t)((i * 7919) % 13), 0), 0);
    int64_t last_key = INT64_MIN;
    uint64_t last = 0;
    for (uint64_t i = 0; i < 5000; i++) {
        uint64_t v;
        int64_t key;
        assert_int_equal(conc_queue_get_key_timed(q, &v, &key, 0), 0);
        assert_true(key == (int64_t)((v * 7919) % 13));
        assert_true(key >= last_key);
        if (key == last_key)
            assert_true(v > last);
        last_key = key;
        last = v;
    }
    assert_int_equal(conc_queue_empty(q), 1);
    destroy_queue(q);
}

/* ---- random operations against a sequential model ---- */

struct model_entry {
    int64_t key;
    uint64_t seq, val;
};

struct model {
    conc_queue_kind kind;
    size_t cap; /* 0: unbounded */
    struct model_entry *e;
    size_t n, seq;
};

static void model_put(struct model *m, uint64_t val, int64_t key)
{
    m->e[m->n++] = (struct model_entry){m->kind == CONC_QUEUE_PRIORITY ? key : 0, m->seq++, val};
}

/* Removes the entry the kind says is next. */
static struct model_entry model_get(struct model *m)
{
    size_t best = 0;
    for (size_t i = 1; i < m->n; i++) {
        const struct model_entry *a = &m->e[i], *b = &m->e[best];
        bool better = m->kind == CONC_QUEUE_FIFO ? a->seq < b->seq
                      : m->kind == CONC_QUEUE_LIFO
                          ? a->seq > b->seq
                          : a->key < b->key || (a->key == b->key && a->seq < b->seq);
        if (better)
            best = i;
    }
    struct model_entry r = m->e[best];
    m->e[best] = m->e[--m->n];
    return r;
}

static size_t model_room(const struct model *m)
{
    return m->cap ? m->cap - m->n : SIZE_MAX;
}

static void model_run(conc_queue_kind kind, size_t cap, long ops, uint64_t seed)
{
    conc_queue *q = make_queue(kind, cap, sizeof(uint64_t));
    struct model m = {.kind = kind, .cap = cap};
    m.e = calloc((size_t)ops * 5 + 8, sizeof *m.e);
    assert_non_null(m.e);
    uint64_t next_val = 1, buf[5];
    for (long op = 0; op < ops; op++) {
        /* Fill for the first half, drain for the second: the unbounded queue
         * grows several times and shrinks back. */
        unsigned put_pct = op < ops / 2 ? 60 : 40;
        uint64_t r = conc_test_xorshift64s(&seed);
        int64_t key = (int64_t)(r >> 40) % 5 - 2;
        if ((r >> 8) % 97 == 0)
            key = (r >> 20) & 1 ? INT64_MAX : INT64_MIN;
        if (r % 100 < put_pct) {
            size_t n = (size_t)((r >> 16) % 5) + 1;
            for (size_t i = 0; i < n; i++)
                buf[i] = next_val + i;
            size_t fits = n < model_room(&m) ? n : model_room(&m);
            if ((r >> 24) % 3 == 0) { /* put_many (key 0) */
                size_t done = 99;
                int rc = conc_queue_put_many_timed(q, buf, n, &done, 0);
                assert_int_equal(rc, fits == n ? 0 : CONC_EFULL);
                assert_int_equal(done, fits);
                for (size_t i = 0; i < fits; i++)
                    model_put(&m, buf[i], 0);
                next_val += fits;
            } else {
                int rc = (r >> 24) % 3 == 1 ? conc_queue_put_timed(q, buf, 0)
                                            : conc_queue_put_key_timed(q, buf, key, 0);
                int64_t k = (r >> 24) % 3 == 1 ? 0 : key;
                assert_int_equal(rc, fits ? 0 : CONC_EFULL);
                if (fits) {
                    model_put(&m, buf[0], k);
                    next_val++;
                }
            }
        } else {
            size_t max = (size_t)((r >> 16) % 5) + 1, got = 99;
            size_t expect = max < m.n ? max : m.n;
            if ((r >> 24) % 2 == 0) {
                int rc = conc_queue_get_many_timed(q, buf, max, &got, 0);
                assert_int_equal(rc, expect ? 0 : CONC_EEMPTY);
                assert_int_equal(got, expect);
                for (size_t i = 0; i < expect; i++)
                    assert_int_equal(buf[i], model_get(&m).val);
            } else {
                int64_t k = 12345;
                int rc = conc_queue_get_key_timed(q, buf, &k, 0);
                assert_int_equal(rc, m.n ? 0 : CONC_EEMPTY);
                if (m.n) {
                    struct model_entry e = model_get(&m);
                    assert_int_equal(buf[0], e.val);
                    assert_true(k == e.key);
                }
            }
        }
        assert_int_equal(conc_queue_size(q), (int64_t)m.n);
        assert_int_equal(conc_queue_empty(q), m.n == 0);
        assert_int_equal(conc_queue_full(q), cap && m.n == cap);
    }
    while (m.n) {
        assert_int_equal(get64(q), model_get(&m).val);
    }
    assert_int_equal(conc_queue_empty(q), 1);
    free(m.e);
    destroy_queue(q);
}

static void queue_random_ops_match_model(void **state)
{
    (void)state;
    const size_t caps[] = {0, 1, 7, 64};
    long ops = conc_test_scaled(6000, 2000);
    for (int k = 0; k < NKINDS; k++)
        for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++)
            model_run(all_kinds[k], caps[c], ops, 0x9E3779B97F4A7C15ull + (uint64_t)(k * 8) + c);
}

/* ---- task_done / join ---- */

struct joiner {
    conc_queue *q;
    int64_t timeout;
    int rc;
    atomic_int *task_dones_started; /* by the main thread, read at return */
    int task_dones_seen;
    atomic_int finished;
};

static void *joiner_run(void *p)
{
    struct joiner *j = p;
    j->rc = conc_queue_join_timed(j->q, j->timeout);
    j->task_dones_seen = atomic_load(j->task_dones_started);
    atomic_store(&j->finished, 1);
    return NULL;
}

/* Calls task_done, counting the call as started first: a joiner that returns
 * and reads the count afterwards saw every task_done that could release it. */
static void counted_task_done(conc_queue *q, atomic_int *started)
{
    atomic_fetch_add(started, 1);
    assert_int_equal(conc_queue_task_done(q), 0);
}

static void queue_join_waits_for_last_task_done(void **state)
{
    (void)state;
    conc_queue *q = make_queue(CONC_QUEUE_FIFO, 0, sizeof(uint64_t));
    assert_int_equal(conc_queue_join_timed(q, 0), 0); /* nothing put: at once */
    assert_int_equal(conc_queue_join(q), 0);

    atomic_int started = 0;
    for (uint64_t i = 0; i < 3; i++)
        assert_int_equal(put64(q, i, 0), 0);
    struct joiner j[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        j[i] = (struct joiner){
            .q = q, .timeout = CONC_FOREVER, .rc = 1, .task_dones_started = &started};
        t[i] = conc_test_start(joiner_run, &j[i]);
    }
    wait_blocked(q, CONC__QW_JOIN, 3);
    /* All items consumed: still 3 unfinished tasks. */
    for (uint64_t i = 0; i < 3; i++)
        assert_int_equal(get64(q), i);
    for (int done = 0; done < 2; done++) {
        counted_task_done(q, &started);
        /* The joiners are still (or again) parked, none returned. */
        wait_blocked_unless(q, CONC__QW_JOIN, 3,
                            (atomic_int *const[]){&j[0].finished, &j[1].finished, &j[2].finished},
                            3);
    }
    counted_task_done(q, &started);
    for (int i = 0; i < 3; i++) {
        conc_test_join(t[i]);
        assert_int_equal(j[i].rc, 0);
        assert_int_equal(j[i].task_dones_seen, 3);
    }
    assert_int_equal(conc_queue_task_done(q), CONC_ESTATE);
    destroy_queue(q);
}

static void queue_join_timeout_while_tasks_remain(void **state)
{
    (void)state;
    conc_queue *q = make_queue(CONC_QUEUE_LIFO, 4, sizeof(uint64_t));
    assert_int_equal(put64(q, 1, 0), 0);
    assert_int_equal(put64(q, 2, 0), 0);
    assert_int_equal(conc_queue_join_timed(q, 0), CONC_ETIMEDOUT);
    int64_t t0 = conc_now_ns();
    assert_int_equal(conc_queue_join_timed(q, CONC_MSEC(3)), CONC_ETIMEDOUT);
    check_waited(t0, CONC_MSEC(3), "join with tasks left");
    (void)get64(q);
    (void)get64(q);
    assert_int_equal(conc_queue_join_timed(q, 0), CONC_ETIMEDOUT); /* taken, not done */
    assert_int_equal(conc_queue_task_done(q), 0);
    t0 = conc_now_ns();
    assert_int_equal(conc_queue_join_timed(q, CONC_MSEC(2)), CONC_ETIMEDOUT);
    check_waited(t0, CONC_MSEC(2), "join with one task left");
    assert_int_equal(conc_queue_task_done(q), 0);
    assert_int_equal(conc_queue_join_timed(q, 0), 0);
    assert_int_equal(conc_queue_join_timed(q, CONC_MSEC(2)), 0);
    destroy_queue(q);
}

/* ---- shutdown (Python 3.13) ---- */

static void queue_shutdown_put_fails_get_drains(void **state)
{
    (void)state;
    const uint64_t want[NKINDS][3] = {{10, 11, 12}, {12, 11, 10}, {11, 12, 10}};
    const int64_t keys[3] = {3, 1, 2};
    for (int k = 0; k < NKINDS; k++) {
        conc_queue *q = make_queue(all_kinds[k], 8, sizeof(uint64_t));
        for (uint64_t i = 0; i < 3; i++) {
            uint64_t v = 10 + i;
            assert_int_equal(conc_queue_put_key_timed(q, &v, keys[i], 0), 0);
        }
        assert_int_equal(conc_queue_shutdown(q, false), 0);
        uint64_t v = 99, items[2] = {98, 97}, out[4];
        size_t n = 99;
        assert_int_equal(conc_queue_put_timed(q, &v, 0), CONC_ESHUTDOWN);
        assert_int_equal(conc_queue_put(q, &v), CONC_ESHUTDOWN);
        assert_int_equal(conc_queue_put_key_timed(q, &v, 0, CONC_MSEC(10)), CONC_ESHUTDOWN);
        assert_int_equal(conc_queue_put_many(q, items, 2, &n), CONC_ESHUTDOWN);
        assert_int_equal(n, 0);
        assert_int_equal(conc_queue_size(q), 3);
        /* A second shutdown is allowed. */
        assert_int_equal(conc_queue_shutdown(q, false), 0);
        /* get still drains, in the kind's order, then fails. */
        assert_int_equal(conc_queue_get(q, &out[0]), 0);
        assert_int_equal(conc_queue_get_many(q, &out[1], 4, &n), 0);
        assert_int_equal(n, 2);
        for (int i = 0; i < 3; i++)
            assert_int_equal(out[i], want[k][i]);
        assert_int_equal(conc_queue_get_timed(q, out, 0), CONC_ESHUTDOWN);
        assert_int_equal(conc_queue_get(q, out), CONC_ESHUTDOWN);
        int64_t key;
        assert_int_equal(conc_queue_get_key_timed(q, out, &key, CONC_MSEC(10)), CONC_ESHUTDOWN);
        assert_int_equal(conc_queue_get_many(q, out, 4, &n), CONC_ESHUTDOWN);
        assert_int_equal(n, 0);
        /* Tasks still count after a plain shutdown. */
        assert_int_equal(conc_queue_join_timed(q, 0), CONC_ETIMEDOUT);
        for (int i = 0; i < 3; i++)
            assert_int_equal(conc_queue_task_done(q), 0);
        assert_int_equal(conc_queue_join(q), 0);
        assert_int_equal(conc_queue_task_done(q), CONC_ESTATE);
        destroy_queue(q);
    }
}

#define NBLOCKED 16

/* Starts NBLOCKED threads running ops[i % 4], waits until all are parked,
 * shuts the queue down, and checks every one woke with ESHUTDOWN, having put
 * or taken nothing. Prints the wake-up latencies. */
static void shutdown_wakes_all(conc_queue *q, const enum blocked_op ops[4],
                               enum conc__queue_want want, bool immediate, const char *what)
{
    struct blocked b[NBLOCKED];
    pthread_t t[NBLOCKED];
    for (int i = 0; i < NBLOCKED; i++) {
        b[i] = (struct blocked){.q = q, .op = ops[i % 4], .rc = 1};
        t[i] = conc_test_start(blocked_call, &b[i]);
    }
    atomic_int *flags[NBLOCKED];
    for (int i = 0; i < NBLOCKED; i++)
        flags[i] = &b[i].done;
    wait_blocked_unless(q, want, NBLOCKED, flags, NBLOCKED);
    int64_t t0 = conc_now_ns();
    assert_int_equal(conc_queue_shutdown(q, immediate), 0);
    int64_t max = 0, sum = 0;
    for (int i = 0; i < NBLOCKED; i++) {
        conc_test_join(t[i]);
        assert_int_equal(b[i].rc, CONC_ESHUTDOWN);
        if (b[i].op == OP_PUT_MANY || b[i].op == OP_GET_MANY)
            assert_int_equal(b[i].n, 0);
        int64_t lat = b[i].ret_ns - t0;
        assert_true(lat >= 0);
        max = lat > max ? lat : max;
        sum += lat;
    }
    print_message("%s: %d threads woken, latency mean %.1f us, max %.1f us\n", what, NBLOCKED,
                  (double)sum / NBLOCKED / 1e3, (double)max / 1e3);
}

static void queue_shutdown_wakes_16_blocked_producers(void **state)
{
    (void)state;
    const enum blocked_op ops[4] = {OP_PUT, OP_PUT_KEY, OP_PUT_MANY, OP_PUT_TIMED};
    for (int k = 0; k < NKINDS; k++) {
        for (int immediate = 0; immediate < 2; immediate++) {
            conc_queue *q = make_queue(all_kinds[k], 4, sizeof(uint64_t));
            for (uint64_t i = 0; i < 4; i++)
                assert_int_equal(put64(q, i, 0), 0);
            char what[64];
            snprintf(what, sizeof what, "%s full, %s shutdown", kind_name(all_kinds[k]),
                     immediate ? "immediate" : "plain");
            shutdown_wakes_all(q, ops, CONC__QW_PUT, immediate, what);
            /* None of the 16 got an item in; a plain shutdown kept the 4. */
            assert_int_equal(conc_queue_size(q), immediate ? 0 : 4);
            for (int i = 0; i < (immediate ? 0 : 4); i++)
                assert_true(get64(q) < 4);
            uint64_t v;
            assert_int_equal(conc_queue_get(q, &v), CONC_ESHUTDOWN);
            for (int i = 0; i < (immediate ? 0 : 4); i++)
                assert_int_equal(conc_queue_task_done(q), 0);
            assert_int_equal(conc_queue_join_timed(q, 0), 0);
            assert_int_equal(conc_queue_task_done(q), CONC_ESTATE);
            destroy_queue(q);
        }
    }
}

static void queue_shutdown_wakes_16_blocked_consumers(void **state)
{
    (void)state;
    const enum blocked_op ops[4] = {OP_GET, OP_GET_KEY, OP_GET_MANY, OP_GET_TIMED};
    for (int k = 0; k < NKINDS; k++) {
        for (int immediate = 0; immediate < 2; immediate++) {
            conc_queue *q = make_queue(all_kinds[k], immediate ? 0 : 8, sizeof(uint64_t));
            char what[64];
            snprintf(what, sizeof what, "%s empty, %s shutdown", kind_name(all_kinds[k]),
                     immediate ? "immediate" : "plain");
            shutdown_wakes_all(q, ops, CONC__QW_GET, immediate, what);
            uint64_t v = 5;
            assert_int_equal(conc_queue_put_timed(q, &v, 0), CONC_ESHUTDOWN);
            assert_int_equal(conc_queue_size(q), 0);
            assert_int_equal(conc_queue_join_timed(q, 0), 0);
            destroy_queue(q);
        }
    }
}

/* Immediate shutdown discards the queued items and lowers the unfinished
 * count by their number: join then waits for the items already taken. */
static void queue_shutdown_immediate_discards(void **state)
{
    (void)state;
    conc_queue *q = make_queue(CONC_QUEUE_FIFO, 8, sizeof(uint64_t));
    for (uint64_t i = 0; i < 5; i++)
        assert_int_equal(put64(q, i, 0), 0);
    assert_int_equal(get64(q), 0); /* two taken, not yet done */
    assert_int_equal(get64(q), 1);

    atomic_int started = 0;
    struct joiner j = {.q = q, .timeout = CONC_FOREVER, .rc = 1, .task_dones_started = &started};
    pthread_t t = conc_test_start(joiner_run, &j);
    wait_blocked_unless(q, CONC__QW_JOIN, 1, (atomic_int *const[]){&j.finished}, 1);
    assert_int_equal(conc_queue_shutdown(q, true), 0);
    assert_int_equal(conc_queue_size(q), 0);
    assert_int_equal(conc_queue_empty(q), 1);
    uint64_t v;
    assert_int_equal(conc_queue_get_timed(q, &v, 0), CONC_ESHUTDOWN);
    assert_int_equal(conc_queue_get(q, &v), CONC_ESHUTDOWN);
    /* The shutdown woke the joiner; two tasks are left, so it parks again. */
    wait_blocked_unless(q, CONC__QW_JOIN, 1, (atomic_int *const[]){&j.finished}, 1);
    counted_task_done(q, &started);
    wait_blocked_unless(q, CONC__QW_JOIN, 1, (atomic_int *const[]){&j.finished}, 1);
    assert_int_equal(conc_queue_join_timed(q, 0), CONC_ETIMEDOUT);
    counted_task_done(q, &started);
    conc_test_join(t);
    assert_int_equal(j.rc, 0);
    assert_int_equal(j.task_dones_seen, 2);
    /* The three discarded items are no longer tasks. */
    assert_int_equal(conc_queue_task_done(q), CONC_ESTATE);
    destroy_queue(q);

    /* A joiner whose tasks were all still queued is released by the discard. */
    q = make_queue(CONC_QUEUE_PRIORITY, 0, sizeof(uint64_t));
    for (uint64_t i = 0; i < 3; i++)
        assert_int_equal(put64(q, i, 0), 0);
    j = (struct joiner){.q = q, .timeout = CONC_FOREVER, .rc = 1, .task_dones_started = &started};
    t = conc_test_start(joiner_run, &j);
    wait_blocked_unless(q, CONC__QW_JOIN, 1, (atomic_int *const[]){&j.finished}, 1);
    assert_int_equal(conc_queue_shutdown(q, true), 0);
    conc_test_join(t);
    assert_int_equal(j.rc, 0);
    assert_int_equal(conc_queue_task_done(q), CONC_ESTATE);
    destroy_queue(q);

    /* An immediate shutdown after a plain one still discards. */
    q = make_queue(CONC_QUEUE_LIFO, 4, sizeof(uint64_t));
    for (uint64_t i = 0; i < 3; i++)
        assert_int_equal(put64(q, i, 0), 0);
    assert_int_equal(conc_queue_shutdown(q, false), 0);
    assert_int_equal(conc_queue_size(q), 3);
    assert_int_equal(conc_queue_join_timed(q, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_queue_shutdown(q, true), 0);
    assert_int_equal(conc_queue_size(q), 0);
    assert_int_equal(conc_queue_get_timed(q, &v, 0), CONC_ESHUTDOWN);
    assert_int_equal(conc_queue_join_timed(q, 0), 0);
    assert_int_equal(conc_queue_task_done(q), CONC_ESTATE);
    destroy_queue(q);
}

/* ---- stress ---- */

/* An item: producer id in the top bits, its sequence number below. */
#define SEQ_BITS 40
#define SEQ_MASK (((uint64_t)1 << SEQ_BITS) - 1)
#define MAXP 8
#define NKEYS 4

struct stress {
    conc_queue *q;
    conc_queue_kind kind;
    bool batches;   /* put_many / get_many instead of put / get */
    bool task_done; /* consumers call task_done after each item */
    int P, C;
    long per_producer;
    _Atomic unsigned char *seen; /* P x per_producer delivery counts */
    atomic_long consumed;
};

struct worker {
    struct stress *s;
    int id;
    uint64_t rng;
    long count, retries;
    long first, last; /* producers: the sequence numbers to put, [first, last) */
};

/* The key a PRIORITY item carries when put one at a time; put_many uses 0. */
static int64_t stress_key(const struct stress *s, uint64_t seq)
{
    if (s->kind != CONC_QUEUE_PRIORITY || s->batches)
        return 0;
    return (int64_t)((seq * 2654435761u) >> 7) % NKEYS;
}

/* A mix of waits: 0, 50 us, forever. A failed put/get is retried. */
static int64_t stress_timeout(struct worker *w)
{
    switch (conc_test_xorshift64s(&w->rng) % 3) {
    case 0:
        return 0;
    case 1:
        return CONC_USEC(50);
    default:
        return CONC_FOREVER;
    }
}

static void *stress_producer(void *p)
{
    struct worker *w = p;
    struct stress *s = w->s;
    uint64_t batch[8];
    for (long seq = w->first; seq < w->last;) {
        int64_t t = stress_timeout(w);
        if (s->batches) {
            size_t n = (size_t)(conc_test_xorshift64s(&w->rng) % 8) + 1, done = 99;
            if ((long)n > w->last - seq)
                n = (size_t)(w->last - seq);
            for (size_t i = 0; i < n; i++)
                batch[i] = ((uint64_t)w->id << SEQ_BITS) | (uint64_t)(seq + (long)i);
            int rc = conc_queue_put_many_timed(s->q, batch, n, &done, t);
            assert_true(rc == 0 || (rc == CONC_EFULL && t != CONC_FOREVER));
            assert_true(rc == 0 ? done == n : done < n);
            seq += (long)done;
            if (rc)
                w->retries++;
        } else {
            uint64_t v = ((uint64_t)w->id << SEQ_BITS) | (uint64_t)seq;
            int rc = conc_queue_put_key_timed(s->q, &v, stress_key(s, (uint64_t)seq), t);
            if (rc == 0) {
                seq++;
            } else {
                assert_int_equal(rc, CONC_EFULL);
                assert_true(t != CONC_FOREVER);
                w->retries++;
            }
        }
    }
    w->count = w->last - w->first;
    return NULL;
}

/* Checks one delivered item: exactly once overall, and for this consumer
 * increasing per producer (FIFO) or per producer and key (PRIORITY). */
static void stress_record(struct stress *s, int64_t last[MAXP][NKEYS], uint64_t v, int64_t key,
                          bool have_key)
{
    uint64_t p = v >> SEQ_BITS, seq = v & SEQ_MASK;
    assert_true(p < (uint64_t)s->P);
    assert_true(seq < (uint64_t)s->per_producer);
    int64_t want_key = stress_key(s, seq);
    if (have_key)
        assert_true(key == want_key);
    unsigned char before = atomic_fetch_add(&s->seen[p * (uint64_t)s->per_producer + seq], 1);
    assert_int_equal(before, 0); /* a duplicate */
    if (s->kind != CONC_QUEUE_LIFO) {
        assert_true((int64_t)seq > last[p][want_key]);
        last[p][want_key] = (int64_t)seq;
    }
    if (s->task_done) {
        atomic_fetch_add(&s->consumed, 1);
        assert_int_equal(conc_queue_task_done(s->q), 0);
    }
}

/* Takes items until the queue is shut down and drained. */
static void *stress_consumer(void *p)
{
    struct worker *w = p;
    struct stress *s = w->s;
    int64_t last[MAXP][NKEYS];
    for (int i = 0; i < MAXP; i++)
        for (int k = 0; k < NKEYS; k++)
            last[i][k] = -1;
    uint64_t buf[8];
    for (;;) {
        int64_t t = stress_timeout(w), key = 0;
        size_t got = 1;
        int rc;
        if (s->batches)
            rc = conc_queue_get_many_timed(s->q, buf, (size_t)(conc_test_xorshift64s(&w->rng) % 8) + 1, &got, t);
        else
            rc = conc_queue_get_key_timed(s->q, buf, &key, t);
        if (rc == CONC_ESHUTDOWN)
            break;
        if (rc == CONC_EEMPTY) {
            assert_true(t != CONC_FOREVER);
            w->retries++;
            continue;
        }
        assert_int_equal(rc, 0);
        assert_true(got >= 1 && got <= 8);
        for (size_t i = 0; i < got; i++)
            stress_record(s, last, buf[i], key, !s->batches);
        w->count += (long)got;
    }
    return NULL;
}

static void start_workers(struct worker *w, pthread_t *t, int n, void *(*fn)(void *))
{
    for (int i = 0; i < n; i++)
        t[i] = conc_test_start(fn, &w[i]);
}

static void join_workers(pthread_t *t, int n)
{
    for (int i = 0; i < n; i++)
        conc_test_join(t[i]);
}

/* Every item was delivered exactly once; prints the run. */
static void stress_check_all_seen(struct stress *s, struct worker *cons, double secs)
{
    long total = s->P * s->per_producer, sum = 0, retries = 0;
    for (long i = 0; i < total; i++)
        assert_int_equal(atomic_load(&s->seen[i]), 1);
    for (int i = 0; i < s->C; i++) {
        sum += cons[i].count;
        retries += cons[i].retries;
    }
    assert_int_equal(sum, total);
    print_message("%-8s %s P=%d C=%d: %ld items in %.3f s (%.2f M/s), %ld empty retries\n",
                  kind_name(s->kind), s->batches ? "batch " : "single", s->P, s->C, total, secs,
                  (double)total / secs / 1e6, retries);
}

/* P producers, C consumers on a queue of the given options; the producers
 * are joined, then the queue is shut down and the consumers drain it. */
static void stress_run(conc_queue_opts o, bool batches, int P, int C, long total)
{
    struct stress s = {.kind = o.kind, .batches = batches, .P = P, .C = C};
    s.q = make_queue_opts(sizeof(uint64_t), o);
    s.per_producer = total / P > 0 ? total / P : 1;
    s.seen = calloc((size_t)(P * s.per_producer), 1);
    assert_non_null(s.seen);
    struct worker prod[MAXP], cons[MAXP];
    pthread_t tp[MAXP], tc[MAXP];
    for (int i = 0; i < P; i++)
        prod[i] = (struct worker){.s = &s,
                                  .id = i,
                                  .rng = 0x1234567u + (uint64_t)i * 77,
                                  .first = 0,
                                  .last = s.per_producer};
    for (int i = 0; i < C; i++)
        cons[i] = (struct worker){.s = &s, .id = i, .rng = 0xABCDEFu + (uint64_t)i * 131};
    int64_t t0 = conc_now_ns();
    start_workers(cons, tc, C, stress_consumer);
    start_workers(prod, tp, P, stress_producer);
    join_workers(tp, P);
    assert_int_equal(conc_queue_shutdown(s.q, false), 0);
    join_workers(tc, C);
    double secs = (double)(conc_now_ns() - t0) / 1e9;
    stress_check_all_seen(&s, cons, secs);
    assert_int_equal(conc_queue_size(s.q), 0);
    free(s.seen);
    destroy_queue(s.q);
}

static const int counts[4] = {1, 2, 4, 8};

/* Items per P x C combination: 100k at scale 1 (about 0.1 s), and growing
 * with the square of the scale above 1, so that `make stress` (scale 10)
 * moves 10M items through every combination. */
static long stress_items(void)
{
    double scale = conc_test_scale();
    return scale > 1 ? (long)(100000 * scale * scale) : conc_test_scaled(100000, 2000);
}

/* P x C for the given producer counts and every consumer count. */
static void stress_combos(conc_queue_kind kind, bool batches, const int *ps, int nps, long total)
{
    for (int pi = 0; pi < nps; pi++) {
        for (int ci = 0; ci < 4; ci++) {
            int P = ps[pi], C = counts[ci];
            conc_queue_opts o = {.kind = kind, .capacity = 64};
            if (batches) { /* the promises, where they hold */
                o.single_producer = P == 1;
                o.single_consumer = C == 1;
            }
            stress_run(o, batches, P, C, total);
        }
    }
}

/* The 16 FIFO combinations, in two tests to keep each short. */
static void queue_stress_fifo_p1_p2_x_c(void **state)
{
    (void)state;
    stress_combos(CONC_QUEUE_FIFO, false, counts, 2, stress_items());
}

static void queue_stress_fifo_p4_p8_x_c(void **state)
{
    (void)state;
    stress_combos(CONC_QUEUE_FIFO, false, counts + 2, 2, stress_items());
}

/* put_many / get_many batches of 1..8, all 16 combinations. */
static void queue_stress_fifo_batches_p_x_c(void **state)
{
    (void)state;
    stress_combos(CONC_QUEUE_FIFO, true, counts, 4, stress_items());
}

/* LIFO and PRIORITY under concurrency: nothing lost or duplicated, and for
 * PRIORITY each consumer sees a producer's items of one key in order. */
static void queue_stress_lifo_priority_p_x_c(void **state)
{
    (void)state;
    const int combos[][2] = {{1, 1}, {1, 8}, {8, 1}, {2, 2}, {4, 4}, {8, 8}};
    long total = stress_items();
    for (int k = 1; k < NKINDS; k++) {
        for (size_t i = 0; i < sizeof combos / sizeof combos[0]; i++) {
            conc_queue_opts o = {.kind = all_kinds[k], .capacity = i % 2 ? 64 : 0};
            stress_run(o, i == 3, combos[i][0], combos[i][1], total);
        }
    }
}

/* PRIORITY: 4 producers fill an unbounded queue concurrently, then one
 * consumer drains it: keys never go down, and within a key each producer's
 * items come out in the order it put them. Then the same from one producer,
 * whose insertion order is fully known. */
struct prefill {
    conc_queue *q;
    int id;
    long n;
};

static int64_t drain_key(uint64_t seq)
{
    return (int64_t)((seq * 40503u) % 37) - 18; /* many ties, negative keys */
}

static void *prefill_run(void *p)
{
    struct prefill *f = p;
    for (long seq = 0; seq < f->n; seq++) {
        uint64_t v = ((uint64_t)f->id << SEQ_BITS) | (uint64_t)seq;
        assert_int_equal(conc_queue_put_key(f->q, &v, drain_key((uint64_t)seq)), 0);
    }
    return NULL;
}

static void drain_in_key_order(conc_queue *q, int P, long per)
{
    int64_t last_key = INT64_MIN, *last = malloc((size_t)P * 37 * sizeof *last);
    unsigned char *seen = calloc((size_t)(P * per), 1);
    assert_non_null(last);
    assert_non_null(seen);
    for (int i = 0; i < P * 37; i++)
        last[i] = -1;
    for (long i = 0; i < P * per; i++) {
        uint64_t v;
        int64_t key;
        assert_int_equal(conc_queue_get_key_timed(q, &v, &key, 0), 0);
        uint64_t p = v >> SEQ_BITS, seq = v & SEQ_MASK;
        assert_true(p < (uint64_t)P && seq < (uint64_t)per);
        assert_true(key == drain_key(seq));
        assert_true(key >= last_key);
        last_key = key;
        int64_t *l = &last[p * 37 + (uint64_t)(key + 18)];
        assert_true((int64_t)seq > *l);
        *l = (int64_t)seq;
        assert_int_equal(seen[p * (uint64_t)per + seq]++, 0);
    }
    assert_int_equal(conc_queue_empty(q), 1);
    free(seen);
    free(last);
}

static void queue_stress_priority_drain_order(void **state)
{
    (void)state;
    long total = conc_test_scaled(200000, 4000);
    for (int P = 4; P >= 1; P -= 3) {
        conc_queue *q = make_queue(CONC_QUEUE_PRIORITY, 0, sizeof(uint64_t));
        struct prefill f[4];
        for (int i = 0; i < P; i++)
            f[i] = (struct prefill){.q = q, .id = i, .n = total / P};
        int64_t t0 = conc_now_ns();
        conc_test_run_threads(P, prefill_run, f, sizeof f[0]);
        assert_int_equal(conc_queue_size(q), (total / P) * P);
        drain_in_key_order(q, P, total / P);
        print_message("priority: %d producer(s) filled %ld, drained in order, %.3f s\n", P,
                      (total / P) * P, (double)(conc_now_ns() - t0) / 1e9);
        destroy_queue(q);
    }
}

/* task_done / join under load: in each round producers put, consumers take
 * and task_done every item, and join returns only once all are consumed. */
static void queue_stress_task_done_join(void **state)
{
    (void)state;
    const int P = 4, C = 4, rounds = 10;
    long per_round = conc_test_scaled(20000, 400) / P * P;
    struct stress s = {.kind = CONC_QUEUE_FIFO, .task_done = true, .P = P, .C = C};
    s.q = make_queue(CONC_QUEUE_FIFO, 64, sizeof(uint64_t));
    s.per_producer = per_round / P * rounds;
    s.seen = calloc((size_t)(P * s.per_producer), 1);
    assert_non_null(s.seen);
    struct worker prod[MAXP], cons[MAXP];
    pthread_t tp[MAXP], tc[MAXP];
    for (int i = 0; i < C; i++)
        cons[i] = (struct worker){.s = &s, .id = i, .rng = 0x5151u + (uint64_t)i};
    int64_t t0 = conc_now_ns();
    start_workers(cons, tc, C, stress_consumer);
    for (int r = 0; r < rounds; r++) {
        long per = per_round / P;
        for (int i = 0; i < P; i++)
            prod[i] = (struct worker){.s = &s,
                                      .id = i,
                                      .rng = 0x77u + (uint64_t)(r * P + i),
                                      .first = r * per,
                                      .last = (r + 1) * per};
        start_workers(prod, tp, P, stress_producer);
        join_workers(tp, P);
        /* Every item of this round is put; join waits for its last task_done,
         * which comes after the consumer counted the item. */
        assert_int_equal(conc_queue_join(s.q), 0);
        assert_int_equal(atomic_load(&s.consumed), (r + 1) * per_round);
        assert_int_equal(conc_queue_size(s.q), 0);
        assert_int_equal(conc_queue_task_done(s.q), CONC_ESTATE);
    }
    assert_int_equal(conc_queue_shutdown(s.q, false), 0);
    join_workers(tc, C);
    stress_check_all_seen(&s, cons, (double)(conc_now_ns() - t0) / 1e9);
    free(s.seen);
    destroy_queue(s.q);
}

/* clang-format off: one cmocka_unit_test per line (CMake reads them). */
/* A put that found the queue open, held there (a test hook) while an
 * immediate shutdown empties the queue, then lets go: its item must not be
 * left in the closed queue. Either the put fails with CONC_ESHUTDOWN, or it
 * happened before the shutdown and the drain dropped its item: nothing to
 * get, nothing unfinished, join returns at once. For every kind of queue. */
struct held_put {
    conc_queue *q;
    _Atomic int held;    /* 1: the put is in the hook */
    _Atomic int release; /* 1: let it go on */
    int rc;
};

static struct held_put *held_put_now;

static void hold_put_after_check(conc_queue *q)
{
    struct held_put *h = held_put_now;
    if (!h || h->q != q)
        return;
    atomic_store(&h->held, 1);
    while (!atomic_load(&h->release))
        sched_yield();
}

static void *held_put_main(void *p)
{
    struct held_put *h = p;
    uint64_t v = 42;
    h->rc = conc_queue_put(h->q, &v);
    return NULL;
}

static void queue_put_racing_immediate_shutdown_leaves_nothing(void **state)
{
    (void)state;
    const struct {
        conc_queue_kind kind;
        size_t cap;
    } kinds[] = {{CONC_QUEUE_FIFO, 8}, {CONC_QUEUE_FIFO, 0}, {CONC_QUEUE_LIFO, 8},
                 {CONC_QUEUE_PRIORITY, 0}};
    conc__test_put_checked = hold_put_after_check;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        conc_queue *q = make_queue(kinds[i].kind, kinds[i].cap, sizeof(uint64_t));
        struct held_put h = {.q = q};
        held_put_now = &h;
        pthread_t t = conc_test_start(held_put_main, &h);
        CONC_TEST_POLL_UNTIL(atomic_load(&h.held) == 1);
        assert_int_equal(conc_queue_shutdown(q, true), 0);
        atomic_store(&h.release, 1);
        conc_test_join(t);
        held_put_now = NULL;
        assert_true(h.rc == 0 || h.rc == CONC_ESHUTDOWN);
        assert_int_equal(conc_queue_size(q), 0);
        uint64_t out;
        assert_int_equal(conc_queue_get_timed(q, &out, 0), CONC_ESHUTDOWN);
        assert_int_equal(conc_queue_join_timed(q, 0), 0); /* nothing unfinished */
        destroy_queue(q);
    }
    conc__test_put_checked = NULL;
}

/* The late drain of a put that landed after an immediate shutdown's drain
 * lowers the unfinished tasks: a joiner that went to sleep on the count the
 * landing raised must be woken by it, since the shutdown's own wake-up came
 * before. Forced: the put is held after its check while the queue shuts
 * down, then held again after its item landed until a joiner sleeps. */
struct late_drain {
    conc_queue *q;
    pthread_t joiner;
    int join_rc;
    conc_event joined;
};

static struct late_drain *late_drain_now;

static void *late_joiner_main(void *p)
{
    struct late_drain *d = p;
    /* 10 s: far beyond the wake-up, only a hang detector. */
    d->join_rc = conc_queue_join(d->q); /* untimed: only a wake-up ends it */
    conc_event_set(&d->joined);
    return NULL;
}

static void start_joiner_after_landing(conc_queue *q)
{
    struct late_drain *d = late_drain_now;
    if (!d || d->q != q)
        return;
    assert_int_equal(conc_queue_unfinished_tasks(q), 1); /* the item just landed */
    d->joiner = conc_test_start(late_joiner_main, d);
    /* Linked on the queue's wait list: past its last look at the count. */
    CONC_TEST_POLL_UNTIL(conc__queue_waiting(q, CONC__QW_JOIN) == 1);
}

static void queue_late_drain_wakes_joiners(void **state)
{
    (void)state;
    const size_t caps[] = {8, 0}; /* the lock-free ring, and the store */
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        conc_queue *q = make_queue(CONC_QUEUE_FIFO, caps[i], sizeof(uint64_t));
        struct held_put h = {.q = q};
        struct late_drain d = {.q = q, .join_rc = -1};
        assert_int_equal(conc_event_init(&d.joined, NULL), 0);
        held_put_now = &h;
        late_drain_now = &d;
        conc__test_put_checked = hold_put_after_check;
        conc__test_put_landed = start_joiner_after_landing;
        pthread_t t = conc_test_start(held_put_main, &h);
        CONC_TEST_POLL_UNTIL(atomic_load(&h.held) == 1);
        assert_int_equal(conc_queue_shutdown(q, true), 0); /* drains nothing yet */
        atomic_store(&h.release, 1);
        conc_test_join(t);
        /* A hang detector, not a timing: the wake-up is immediate. */
        if (conc_event_wait_timed(&d.joined, CONC_SEC(10)) != 0)
            fail_msg("the joiner still sleeps: the late drain did not wake it");
        conc_test_join(d.joiner);
        assert_int_equal(conc_event_destroy(&d.joined), 0);
        conc__test_put_checked = NULL;
        conc__test_put_landed = NULL;
        held_put_now = NULL;
        late_drain_now = NULL;
        assert_int_equal(h.rc, 0);         /* it counts as put before the shutdown */
        assert_int_equal(d.join_rc, 0);    /* woken by the late drain */
        assert_int_equal(conc_queue_unfinished_tasks(q), 0);
        assert_int_equal(conc_queue_size(q), 0);
        destroy_queue(q);
    }
}

/* Python 3.13's is_shutdown and unfinished_tasks: puts raise the count,
 * task_done lowers it, an immediate shutdown drops what is queued. */
static void queue_is_shutdown_and_unfinished_tasks(void **state)
{
    (void)state;
    assert_int_equal(conc_queue_is_shutdown(NULL), CONC_EINVAL);
    assert_int_equal(conc_queue_unfinished_tasks(NULL), CONC_EINVAL);
    const conc_queue_kind kinds[] = {CONC_QUEUE_FIFO, CONC_QUEUE_LIFO, CONC_QUEUE_PRIORITY};
    for (size_t k = 0; k < 3; k++) {
        conc_queue *q = make_queue(kinds[k], 8, sizeof(uint64_t));
        assert_int_equal(conc_queue_is_shutdown(q), 0);
        assert_int_equal(conc_queue_unfinished_tasks(q), 0);
        for (uint64_t v = 0; v < 5; v++)
            assert_int_equal(conc_queue_put_timed(q, &v, 0), 0);
        assert_int_equal(conc_queue_unfinished_tasks(q), 5);
        uint64_t out;
        assert_int_equal(conc_queue_get_timed(q, &out, 0), 0);
        assert_int_equal(conc_queue_unfinished_tasks(q), 5); /* taken, not done */
        assert_int_equal(conc_queue_task_done(q), 0);
        assert_int_equal(conc_queue_unfinished_tasks(q), 4);
        assert_int_equal(conc_queue_shutdown(q, false), 0);
        assert_int_equal(conc_queue_is_shutdown(q), 1);
        assert_int_equal(conc_queue_unfinished_tasks(q), 4); /* still to get */
        assert_int_equal(conc_queue_get_timed(q, &out, 0), 0);
        assert_int_equal(conc_queue_shutdown(q, true), 0);
        assert_int_equal(conc_queue_unfinished_tasks(q), 1); /* the one taken */
        assert_int_equal(conc_queue_task_done(q), 0);
        assert_int_equal(conc_queue_unfinished_tasks(q), 0);
        assert_int_equal(conc_queue_is_shutdown(q), 1);
        destroy_queue(q);
    }
}

CONC_TEST_MAIN(cmocka_unit_test(queue_is_shutdown_and_unfinished_tasks),
               cmocka_unit_test(queue_put_racing_immediate_shutdown_leaves_nothing),
               cmocka_unit_test(queue_late_drain_wakes_joiners),
               cmocka_unit_test(queue_create_bad_input_is_einval),
               cmocka_unit_test(queue_create_size_overflow_is_eoverflow),
               cmocka_unit_test(queue_create_above_max_bytes_is_enomem),
               cmocka_unit_test(queue_null_arguments_are_einval),
               cmocka_unit_test(queue_bad_timeouts_are_einval),
               cmocka_unit_test(queue_zero_counts_are_einval),
               cmocka_unit_test(queue_task_done_too_often_is_estate),
               cmocka_unit_test(queue_destroy_while_blocked_is_ebusy),
               cmocka_unit_test(queue_fifo_order), cmocka_unit_test(queue_lifo_order),
               cmocka_unit_test(queue_priority_lowest_key_first_ties_in_order),
               cmocka_unit_test(queue_bounded_put_timeout_is_efull),
               cmocka_unit_test(queue_get_timeout_on_empty_is_eempty),
               cmocka_unit_test(queue_huge_timeout_waits),
               cmocka_unit_test(queue_snapshots_size_empty_full),
               cmocka_unit_test(queue_ring_peeks_see_room_and_items),
               cmocka_unit_test(queue_put_many_partial_progress),
               cmocka_unit_test(queue_put_many_blocks_until_all_in),
               cmocka_unit_test(queue_get_many_takes_up_to_max),
               cmocka_unit_test(queue_batches_wake_every_waiter),
               cmocka_unit_test(queue_unbounded_grows_and_keeps_order),
               cmocka_unit_test(queue_random_ops_match_model),
               cmocka_unit_test(queue_join_waits_for_last_task_done),
               cmocka_unit_test(queue_join_timeout_while_tasks_remain),
               cmocka_unit_test(queue_shutdown_put_fails_get_drains),
               cmocka_unit_test(queue_shutdown_wakes_16_blocked_producers),
               cmocka_unit_test(queue_shutdown_wakes_16_blocked_consumers),
               cmocka_unit_test(queue_shutdown_immediate_discards),
               cmocka_unit_test(queue_stress_fifo_p1_p2_x_c),
               cmocka_unit_test(queue_stress_fifo_p4_p8_x_c),
               cmocka_unit_test(queue_stress_fifo_batches_p_x_c),
               cmocka_unit_test(queue_stress_lifo_priority_p_x_c),
               cmocka_unit_test(queue_stress_priority_drain_order),
               cmocka_unit_test(queue_stress_task_done_join))
/* clang-format on */
