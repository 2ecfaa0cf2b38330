/* conc_parallel_for and conc_parallel_reduce (pool.h): every index exactly
 * once, pieces no larger than the grain, nesting without deadlock, the
 * first failure returned, reductions in range order, bad input. */
#include "test.h"

#include <stdatomic.h>

/* ---- every index once ---- */

struct marks {
    _Atomic unsigned char *seen;
    size_t grain;            /* the largest piece allowed; 0: unchecked */
    _Atomic size_t pieces, biggest;
    _Atomic int bad;
};

static int mark_range(void *arg, size_t begin, size_t end)
{
    struct marks *m = arg;
    if (begin >= end || (m->grain && end - begin > m->grain))
        atomic_store(&m->bad, 1);
    size_t len = end - begin, big = atomic_load(&m->biggest);
    while (len > big && !atomic_compare_exchange_weak(&m->biggest, &big, len))
        ;
    for (size_t i = begin; i < end; i++)
        atomic_fetch_add(&m->seen[i], 1);
    atomic_fetch_add(&m->pieces, 1);
    return 0;
}

static void check_once(struct marks *m, size_t lo, size_t hi, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned want = i >= lo && i < hi;
        if (atomic_load(&m->seen[i]) != want)
            fail_msg("index %zu seen %u times, want %u", i, (unsigned)atomic_load(&m->seen[i]),
                     want);
    }
    assert_int_equal(atomic_load(&m->bad), 0);
}

static void parallel_for_covers_every_index_once(void **state)
{
    (void)state;
    const size_t n = (size_t)conc_test_scaled(200000, 5000);
    const size_t grains[] = {0, 1, 7, 1024, n, n * 2};
    const size_t workers[] = {1, 2, 4};
    for (int sched = CONC_FOR_SPLIT; sched <= CONC_FOR_DYNAMIC; sched++)
    for (size_t w = 0; w < sizeof workers / sizeof *workers; w++) {
        conc_pool *p = conc_test_pool_new((int)workers[w]);
        for (size_t g = 0; g < sizeof grains / sizeof *grains; g++) {
            if (grains[g] == 1 && n > 20000)
                continue; /* a task per index: covered by the small ranges below */
            struct marks m = {.seen = calloc(n, 1), .grain = grains[g]};
            assert_non_null(m.seen);
            /* An offset range, so begin is not always 0. */
            size_t lo = n / 10, hi = n - n / 7;
            assert_int_equal(conc_parallel_for(p, lo, hi, mark_range, &m,
                                               &(conc_for_opts){.grain = grains[g],
                                                                .schedule = sched}),
                             0);
            check_once(&m, lo, hi, n);
            if (grains[g] == 0) /* automatic: pieces, not one per index nor one in all */
                assert_true(atomic_load(&m.pieces) > 1 && atomic_load(&m.biggest) < hi - lo);
            free(m.seen);
        }
        /* Small ranges, grain 1: a task per index. */
        for (size_t len = 0; len < 40; len++) {
            struct marks m = {.seen = calloc(64, 1), .grain = 1};
            assert_int_equal(conc_parallel_for(p, 3, 3 + len, mark_range, &m,
                                               &(conc_for_opts){.grain = 1, .schedule = sched}),
                             0);
            check_once(&m, 3, 3 + len, 64);
            assert_int_equal(atomic_load(&m.pieces), len);
            free(m.seen);
        }
        conc_test_pool_free(p);
    }
}

/* ---- nested: a parallel for inside a pool task, on one worker ---- */

struct outer {
    conc_pool *p;
    struct marks *m;
    size_t rows, cols;
};

static int inner_row(void *arg, size_t begin, size_t end)
{
    return mark_range(arg, begin, end);
}

static int outer_rows(void *arg, size_t begin, size_t end)
{
    struct outer *o = arg;
    for (size_t r = begin; r < end; r++) {
        /* Inner loops alternate the schedules. */
        int rc = conc_parallel_for(o->p, r * o->cols, (r + 1) * o->cols, inner_row, o->m,
                                   &(conc_for_opts){.grain = 16,
                                                    .schedule = r % 2 ? CONC_FOR_DYNAMIC
                                                                      : CONC_FOR_SPLIT});
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void parallel_for_nests_without_deadlock(void **state)
{
    (void)state;
    const size_t workers[] = {1, 2};
    for (size_t w = 0; w < 2; w++) {
        conc_pool *p = conc_test_pool_new((int)workers[w]);
        struct marks m = {.seen = calloc(64 * 100, 1)};
        struct outer o = {p, &m, 64, 100};
        assert_int_equal(conc_parallel_for(p, 0, o.rows, outer_rows, &o,
                                           &(conc_for_opts){.grain = 1}),
                         0);
        check_once(&m, 0, o.rows * o.cols, o.rows * o.cols);
        free(m.seen);
        conc_test_pool_free(p);
    }
}

/* ---- the first failure ---- */

static int fail_at_500(void *arg, size_t begin, size_t end)
{
    _Atomic size_t *ran = arg;
    atomic_fetch_add(ran, end - begin);
    return begin <= 500 && 500 < end ? CONC_EIO : 0;
}

static void parallel_for_returns_the_first_failure(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(2);
    for (int sched = CONC_FOR_SPLIT; sched <= CONC_FOR_DYNAMIC; sched++) {
        _Atomic size_t ran = 0;
        assert_int_equal(conc_parallel_for(p, 0, 100000, fail_at_500, (void *)&ran,
                                           &(conc_for_opts){.grain = 100, .schedule = sched}),
                         CONC_EIO);
        assert_true(atomic_load(&ran) >= 100 && atomic_load(&ran) <= 100000);
    }
    conc_test_pool_free(p);
}

/* ---- reduce: a sum, and a join that is associative only ---- */

static int sum_range(void *arg, size_t begin, size_t end, void *acc)
{
    (void)arg;
    uint64_t *s = acc;
    for (size_t i = begin; i < end; i++)
        *s += i * i;
    return 0;
}

static void sum_join(void *arg, void *acc, const void *other)
{
    (void)arg;
    *(uint64_t *)acc += *(const uint64_t *)other;
}

/* An ordered "concatenation": the first and last index of the folded range
 * and a running hash that depends on order (h = h * K + x is associative
 * under (h1, len1) . (h2, len2) = (h1 * K^len2 + h2, len1 + len2) — not
 * commutative, so a join out of order gives a different value). */
struct span {
    uint64_t hash, pow; /* pow = K^len */
    size_t first, last, len;
    int64_t pad[8];     /* larger than the inline accumulator: takes malloc */
};

#define K 1000003ull

static int span_range(void *arg, size_t begin, size_t end, void *acc)
{
    (void)arg;
    struct span *s = acc;
    for (size_t i = begin; i < end; i++) {
        if (s->len == 0)
            s->first = i;
        s->last = i;
        s->hash = s->hash * K + i;
        s->pow *= K;
        s->len++;
    }
    return 0;
}

static void span_join(void *arg, void *acc, const void *other)
{
    (void)arg;
    struct span *a = acc;
    const struct span *b = other;
    if (b->len == 0)
        return;
    if (a->len == 0) {
        *a = *b;
        return;
    }
    if (b->first != a->last + 1)
        a->len = SIZE_MAX; /* out of order: poison */
    a->hash = a->hash * b->pow + b->hash;
    a->pow *= b->pow;
    a->last = b->last;
    if (a->len != SIZE_MAX)
        a->len += b->len;
}

static void parallel_reduce_sums_and_keeps_range_order(void **state)
{
    (void)state;
    const size_t n = (size_t)conc_test_scaled(300000, 3000);
    uint64_t want = 0;
    struct span serial = {.pow = 1};
    for (size_t i = 0; i < n; i++)
        want += i * i;
    span_range(NULL, 0, n, &serial);
    const size_t workers[] = {1, 2, 3};
    for (size_t w = 0; w < 3; w++) {
        conc_pool *p = conc_test_pool_new((int)workers[w]);
        const size_t grains[] = {0, 3, 1000};
        for (size_t g = 0; g < 3; g++) {
            uint64_t zero = 0, sum = 12345;
            assert_int_equal(conc_parallel_reduce(p, 0, n, &zero, sizeof zero, sum_range,
                                                  sum_join, NULL,
                                                  &(conc_for_opts){.grain = grains[g]}, &sum),
                             0);
            assert_true(sum == want);
            struct span identity = {.pow = 1}, got;
            assert_int_equal(conc_parallel_reduce(p, 0, n, &identity, sizeof identity,
                                                  span_range, span_join, NULL,
                                                  &(conc_for_opts){.grain = grains[g]}, &got),
                             0);
            assert_true(got.len == n && got.first == 0 && got.last == n - 1);
            assert_true(got.hash == serial.hash);
        }
        /* An empty range gives the identity. */
        uint64_t zero = 0, sum = 99;
        assert_int_equal(conc_parallel_reduce(p, 5, 5, &zero, sizeof zero, sum_range, sum_join,
                                              NULL, NULL, &sum),
                         0);
        assert_true(sum == 0);
        conc_test_pool_free(p);
    }
}

/* ---- bad input ---- */

static void parallel_for_bad_input(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    struct marks m = {.seen = calloc(8, 1)};
    assert_int_equal(conc_parallel_for(NULL, 0, 1, mark_range, &m, NULL), CONC_EINVAL);
    assert_int_equal(conc_parallel_for(p, 0, 1, NULL, &m, NULL), CONC_EINVAL);
    assert_int_equal(conc_parallel_for(p, 5, 4, mark_range, &m, NULL), CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "end is below begin"));
    assert_int_equal(conc_parallel_for(p, 0, 1, mark_range, &m,
                                       &(conc_for_opts){.reserved_ = {1}}),
                     CONC_EINVAL);
    assert_int_equal(conc_parallel_for(p, 0, 1, mark_range, &m,
                                       &(conc_for_opts){.schedule = (conc_for_schedule)7}),
                     CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "unknown schedule"));
    uint64_t zero = 0, sum;
    assert_int_equal(conc_parallel_reduce(p, 0, 1, NULL, 8, sum_range, sum_join, NULL, NULL, &sum),
                     CONC_EINVAL);
    assert_int_equal(conc_parallel_reduce(p, 0, 1, &zero, 0, sum_range, sum_join, NULL, NULL, &sum),
                     CONC_EINVAL);
    assert_int_equal(conc_parallel_reduce(p, 0, 1, &zero, 8, NULL, sum_join, NULL, NULL, &sum),
                     CONC_EINVAL);
    assert_int_equal(conc_parallel_reduce(p, 0, 1, &zero, 8, sum_range, NULL, NULL, NULL, &sum),
                     CONC_EINVAL);
    assert_int_equal(conc_parallel_reduce(p, 0, 1, &zero, 8, sum_range, sum_join, NULL, NULL, NULL),
                     CONC_EINVAL);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(atomic_load(&m.seen[i]), 0);
    /* After shutdown the pool refuses the work. */
    assert_int_equal(conc_pool_shutdown(p, false), 0);
    assert_int_equal(conc_parallel_for(p, 0, 8, mark_range, &m, NULL), CONC_ESHUTDOWN);
    assert_int_equal(conc_parallel_for(p, 0, 8, mark_range, &m,
                                       &(conc_for_opts){.schedule = CONC_FOR_DYNAMIC}),
                     CONC_ESHUTDOWN);
    free(m.seen);
    conc_test_pool_free(p);
}

CONC_TEST_MAIN(cmocka_unit_test(parallel_for_covers_every_index_once),
               cmocka_unit_test(parallel_for_nests_without_deadlock),
               cmocka_unit_test(parallel_for_returns_the_first_failure),
               cmocka_unit_test(parallel_reduce_sums_and_keeps_range_order),
               cmocka_unit_test(parallel_for_bad_input))
