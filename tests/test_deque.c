/* The work-stealing deque (src/deque.h), an internal module of the pool.
 *
 * Sequential: LIFO pop, FIFO steal, NULL when empty (and no retry reported
 * without a race), capacity 1, growth from capacity 2 to 100k items, the
 * index semantics of mark/pop_above, and 100k random operations checked
 * against an array model (size after every step).
 * Concurrent (stress): an owner pushing N unique items with interleaved pops
 * while 3 thieves steal; an owner pushing small rounds and popping each dry
 * while thieves race for the same items (the last-item race between the
 * owner's pop and a steal); an owner working above marks while thieves steal.
 * In each, every item is delivered exactly once (a per-item counter checked
 * at delivery and at the end) and the totals add up.
 * Bad input: log2 capacity above 40 is CONC_EINVAL. */
#include "test.h"

#include "exec/pool/deque.h"

#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- helpers ---- */

/* The deque is 64-byte aligned: allocate it so (UBSan checks alignment). */
static struct conc__deque *dq_new(unsigned log2)
{
    struct conc__deque *d = aligned_alloc(64, sizeof *d);
    assert_non_null(d);
    assert_int_equal(conc__deque_init(d, log2), 0);
    assert_int_equal(conc__deque_size(d), 0);
    return d;
}

static void dq_delete(struct conc__deque *d)
{
    conc__deque_free(d);
    free(d);
}

/* Items are the non-NULL pointers 1, 2, 3...: item(i) encodes index i. */
static void *item(long i)
{
    return (void *)(uintptr_t)(i + 1);
}

static long item_index(void *p)
{
    return (long)(uintptr_t)p - 1;
}

static int64_t capacity(struct conc__deque *d)
{
    return atomic_load(&d->buf)->mask + 1;
}

/* ---- sequential semantics ---- */

static void sequential_lifo_fifo_empty(void **state)
{
    (void)state;
    struct conc__deque *d = dq_new(3);
    bool retry = false;
    assert_null(conc__deque_pop(d));
    assert_null(conc__deque_steal(d, &retry));
    assert_false(retry); /* empty is not a lost race */
    assert_null(conc__deque_steal(d, NULL));

    for (long i = 0; i < 6; i++)
        assert_int_equal(conc__deque_push(d, item(i)), 0);
    assert_int_equal(conc__deque_size(d), 6);
    assert_ptr_equal(conc__deque_pop(d), item(5));           /* newest */
    assert_ptr_equal(conc__deque_steal(d, &retry), item(0)); /* oldest */
    assert_ptr_equal(conc__deque_pop(d), item(4));
    assert_ptr_equal(conc__deque_steal(d, NULL), item(1));
    assert_int_equal(conc__deque_size(d), 2);
    assert_ptr_equal(conc__deque_steal(d, &retry), item(2));
    assert_ptr_equal(conc__deque_pop(d), item(3)); /* the last item, by pop */
    assert_false(retry);
    assert_int_equal(conc__deque_size(d), 0);
    assert_null(conc__deque_pop(d));
    assert_null(conc__deque_steal(d, &retry));
    assert_false(retry);

    /* Usable again after running dry, and the last item goes to a steal. */
    assert_int_equal(conc__deque_push(d, item(7)), 0);
    assert_ptr_equal(conc__deque_steal(d, &retry), item(7));
    assert_null(conc__deque_pop(d));
    assert_int_equal(conc__deque_size(d), 0);
    dq_delete(d);
}

/* log2 0: a buffer of one slot, which must grow at the second push. */
static void capacity_one_grows(void **state)
{
    (void)state;
    struct conc__deque *d = dq_new(0);
    assert_int_equal(capacity(d), 1);
    for (long i = 0; i < 3; i++)
        assert_int_equal(conc__deque_push(d, item(i)), 0);
    assert_int_equal(capacity(d), 4);
    assert_ptr_equal(conc__deque_steal(d, NULL), item(0));
    assert_ptr_equal(conc__deque_pop(d), item(2));
    assert_ptr_equal(conc__deque_pop(d), item(1));
    assert_null(conc__deque_pop(d));
    dq_delete(d);
}

/* A model of the deque: m[lo..hi-1], oldest at lo. Model index k is deque
 * index base + k, so marks compare directly. */
#define MODEL_STEPS 100000

struct model {
    void *m[MODEL_STEPS];
    long lo, hi;
};

/* The owner's pop in the model. The last item is taken by raising top (the
 * CAS that races the thieves), not by lowering bottom: lo moves, not hi. */
static void *model_pop(struct model *md)
{
    if (md->hi == md->lo)
        return NULL;
    if (md->hi - md->lo == 1)
        return md->m[md->lo++];
    return md->m[--md->hi];
}

static void model_step(struct conc__deque *d, struct model *md, uint64_t *rng, long step,
                       long *next, int64_t base, int64_t *mark)
{
    /* Alternate push-heavy and pop-heavy phases, so the size wanders far
     * (growth, wrapping) and back to empty (last-item paths). */
    unsigned push_pct = (step / 5000) % 2 ? 30 : 55;
    unsigned r = (unsigned)(conc_test_xorshift64s(rng) % 100);
    bool retry = false;
    if (r < push_pct) {
        assert_int_equal(conc__deque_push(d, item(*next)), 0);
        md->m[md->hi++] = item((*next)++);
    } else if (r < push_pct + 20) {
        assert_ptr_equal(conc__deque_pop(d), model_pop(md));
    } else if (r < push_pct + 38) {
        void *want = md->hi > md->lo ? md->m[md->lo++] : NULL;
        assert_ptr_equal(conc__deque_steal(d, &retry), want);
        assert_false(retry); /* one thread: no race to lose */
    } else if (r < push_pct + 45) {
        *mark = conc__deque_mark(d);
        assert_int_equal(*mark - base, md->hi);
    } else {
        bool above = md->hi - 1 >= *mark - base;
        void *want = above ? model_pop(md) : NULL;
        assert_ptr_equal(conc__deque_pop_above(d, *mark), want);
    }
    assert_int_equal(conc__deque_size(d), md->hi - md->lo);
}

static void sequential_random_model(void **state)
{
    (void)state;
    struct model *md = calloc(1, sizeof *md);
    assert_non_null(md);
    struct conc__deque *d = dq_new(0);
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    long next = 0;
    int64_t base = conc__deque_mark(d), mark = base;
    size_t max_size = 0;
    for (long step = 0; step < MODEL_STEPS; step++) {
        model_step(d, md, &rng, step, &next, base, &mark);
        if ((size_t)(md->hi - md->lo) > max_size)
            max_size = (size_t)(md->hi - md->lo);
    }
    /* Drain what is left, oldest first, through steals. */
    while (md->lo < md->hi)
        assert_ptr_equal(conc__deque_steal(d, NULL), md->m[md->lo++]);
    assert_null(conc__deque_pop(d));
    /* Growth only doubles when full: capacity < 2 * the largest size seen. */
    assert_true((size_t)capacity(d) < 2 * max_size);
    print_message("pushed %ld, largest size %zu, capacity %lld\n", next, max_size,
                  (long long)capacity(d));
    dq_delete(d);
    free(md);
}

/* ---- growth ---- */

static void growth_100k_from_capacity_2(void **state)
{
    (void)state;
    enum { N = 100000 };
    struct conc__deque *d = dq_new(1);
    assert_int_equal(capacity(d), 2);
    unsigned char *seen = calloc(N, 1);
    assert_non_null(seen);
    for (long i = 0; i < N; i++)
        assert_int_equal(conc__deque_push(d, item(i)), 0);
    assert_int_equal(conc__deque_size(d), N);
    assert_int_equal(capacity(d), 131072); /* the power of two above N */
    assert_non_null(d->retired);           /* the old buffers are kept */
    /* Alternate pop and steal: each end keeps its order, and they meet. */
    for (long k = 0; k < N / 2; k++) {
        void *p = conc__deque_pop(d), *s = conc__deque_steal(d, NULL);
        assert_ptr_equal(p, item(N - 1 - k));
        assert_ptr_equal(s, item(k));
        seen[item_index(p)]++;
        seen[item_index(s)]++;
    }
    for (long i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    assert_null(conc__deque_pop(d));
    assert_null(conc__deque_steal(d, NULL));
    assert_int_equal(conc__deque_size(d), 0);
    free(seen);
    dq_delete(d);
}

/* ---- mark and pop_above ---- */

static void pop_above_mark_semantics(void **state)
{
    (void)state;
    struct conc__deque *d = dq_new(1);
    bool retry = false;
    /* Nothing above the mark: the items below stay. */
    assert_int_equal(conc__deque_push(d, item(0)), 0);
    assert_int_equal(conc__deque_push(d, item(1)), 0);
    int64_t m = conc__deque_mark(d);
    assert_null(conc__deque_pop_above(d, m));
    assert_int_equal(conc__deque_size(d), 2);
    /* Items pushed after the mark come back, newest first, then NULL. */
    assert_int_equal(conc__deque_push(d, item(2)), 0);
    assert_int_equal(conc__deque_push(d, item(3)), 0);
    assert_int_equal(conc__deque_mark(d), m + 2);
    assert_ptr_equal(conc__deque_pop_above(d, m), item(3));
    assert_ptr_equal(conc__deque_pop_above(d, m), item(2));
    assert_null(conc__deque_pop_above(d, m));
    assert_int_equal(conc__deque_size(d), 2);
    assert_ptr_equal(conc__deque_pop(d), item(1)); /* a plain pop still gets it */

    /* Stolen items above the mark are not returned again. */
    m = conc__deque_mark(d); /* item 0 below */
    for (long i = 4; i < 7; i++)
        assert_int_equal(conc__deque_push(d, item(i)), 0);
    assert_ptr_equal(conc__deque_steal(d, &retry), item(0)); /* below the mark */
    assert_ptr_equal(conc__deque_steal(d, &retry), item(4)); /* above it */
    assert_ptr_equal(conc__deque_pop_above(d, m), item(6));
    assert_ptr_equal(conc__deque_pop_above(d, m), item(5));
    assert_null(conc__deque_pop_above(d, m)); /* item 4 was stolen */
    assert_int_equal(conc__deque_size(d), 0);

    /* Everything above the mark stolen, nothing below: NULL everywhere. */
    m = conc__deque_mark(d);
    assert_int_equal(conc__deque_push(d, item(7)), 0);
    assert_ptr_equal(conc__deque_steal(d, &retry), item(7));
    assert_null(conc__deque_pop_above(d, m));
    assert_null(conc__deque_pop(d));
    assert_null(conc__deque_steal(d, &retry));
    assert_false(retry);

    /* The index decides, not the time of the push: popping an item that is
     * not the last lowers bottom, so the next push reuses an index below
     * the mark, and pop_above(m) leaves it. */
    assert_int_equal(conc__deque_push(d, item(8)), 0);
    assert_int_equal(conc__deque_push(d, item(9)), 0);
    m = conc__deque_mark(d);
    assert_ptr_equal(conc__deque_pop(d), item(9));
    assert_int_equal(conc__deque_mark(d), m - 1);
    assert_int_equal(conc__deque_push(d, item(10)), 0);
    assert_int_equal(conc__deque_mark(d), m);
    assert_null(conc__deque_pop_above(d, m));
    assert_ptr_equal(conc__deque_pop_above(d, m - 1), item(10));
    /* Popping the last item raises top instead (the CAS that races the
     * thieves): bottom, and so the mark, stay where they were. */
    m = conc__deque_mark(d);
    assert_ptr_equal(conc__deque_pop(d), item(8));
    assert_int_equal(conc__deque_mark(d), m);
    assert_int_equal(conc__deque_size(d), 0);
    dq_delete(d);
}

/* ---- concurrency ---- */

#define NTHIEVES 3

struct stress {
    struct conc__deque *d;
    long n;
    _Atomic uint8_t *seen; /* deliveries per item */
    long *payload;         /* plain memory the owner writes before each push */
    _Atomic bool done;     /* the owner has pushed everything and run dry */
    _Atomic long delivered;
};

struct thief {
    struct stress *s;
    long stolen, lost_races;
};

/* What the owner writes for item i before pushing it. */
static long payload_of(long i)
{
    return i * 7 + 3;
}

/* The owner's push: the item's payload is written first, with plain stores,
 * as a pool writes a task before pushing it. */
static void owner_push(struct stress *s, long i)
{
    s->payload[i] = payload_of(i);
    assert_int_equal(conc__deque_push(s->d, item(i)), 0);
}

/* Counts one delivery of p; a second delivery of any item fails at once.
 * The payload must be visible to whoever took the item (a plain read: TSan
 * reports it if the deque's push -> steal edge is missing). */
static void deliver(struct stress *s, void *p)
{
    long i = item_index(p);
    assert_true(i >= 0 && i < s->n);
    assert_int_equal(s->payload[i], payload_of(i));
    s->payload[i] = -1;
    assert_int_equal(atomic_fetch_add_explicit(&s->seen[i], 1, memory_order_relaxed), 0);
    atomic_fetch_add_explicit(&s->delivered, 1, memory_order_relaxed);
}

static void *thief_main(void *arg)
{
    struct thief *th = arg;
    struct stress *s = th->s;
    unsigned idle = 0;
    while (!atomic_load_explicit(&s->done, memory_order_acquire)) {
        bool retry = false;
        void *p = conc__deque_steal(s->d, &retry);
        if (p) {
            deliver(s, p);
            th->stolen++;
            idle = 0;
        } else if (retry) {
            th->lost_races++;
        } else if (++idle % 64 == 0) {
            sched_yield(); /* 2 CPUs, 4 threads: let the owner run */
        } else {
            conc__cpu_relax();
        }
    }
    /* The owner ran dry before setting done, and pushes no more. */
    bool retry = false;
    assert_null(conc__deque_steal(s->d, &retry));
    assert_false(retry);
    return NULL;
}

static void stress_setup(struct stress *s, struct thief *th, pthread_t *t, long n)
{
    s->d = dq_new(1); /* capacity 2: the owner grows it under the thieves */
    s->n = n;
    s->seen = calloc((size_t)n, sizeof *s->seen);
    assert_non_null(s->seen);
    s->payload = calloc((size_t)n, sizeof *s->payload);
    assert_non_null(s->payload);
    atomic_init(&s->done, false);
    atomic_init(&s->delivered, 0);
    for (int i = 0; i < NTHIEVES; i++) {
        th[i] = (struct thief){.s = s};
        t[i] = conc_test_start(thief_main, &th[i]);
    }
}

/* Ends a stress run: the owner has run dry; checks each item once. */
static void stress_finish(struct stress *s, struct thief *th, pthread_t *t, long popped)
{
    assert_null(conc__deque_pop(s->d));
    assert_int_equal(conc__deque_size(s->d), 0);
    atomic_store_explicit(&s->done, true, memory_order_release);
    long stolen = 0, lost = 0;
    for (int i = 0; i < NTHIEVES; i++) {
        conc_test_join(t[i]);
        stolen += th[i].stolen;
        lost += th[i].lost_races;
    }
    for (long i = 0; i < s->n; i++)
        assert_int_equal(atomic_load(&s->seen[i]), 1);
    assert_int_equal(popped + stolen, s->n);
    assert_int_equal(atomic_load(&s->delivered), s->n);
    print_message("n %ld: popped %ld, stolen %ld, lost races %ld, capacity %lld\n", s->n, popped,
                  stolen, lost, (long long)capacity(s->d));
    dq_delete(s->d);
    free((void *)s->seen);
    free(s->payload);
}

/* Pops one item and delivers it; returns whether there was one. */
static bool owner_pop(struct stress *s, void *(*pop)(struct conc__deque *), long *popped)
{
    void *p = pop(s->d);
    if (!p)
        return false;
    deliver(s, p);
    (*popped)++;
    return true;
}

static void *plain_pop(struct conc__deque *d)
{
    return conc__deque_pop(d);
}

/* The owner pushes N items, popping one after about a quarter of the pushes
 * and a burst now and then, while 3 thieves steal. */
static void stress_push_pop_steal(void **state)
{
    (void)state;
    struct stress s;
    struct thief th[NTHIEVES];
    pthread_t t[NTHIEVES];
    stress_setup(&s, th, t, conc_test_scaled(2000000, 20000));
    uint64_t rng = 12345;
    long popped = 0;
    for (long i = 0; i < s.n; i++) {
        owner_push(&s, i);
        uint64_t r = conc_test_xorshift64s(&rng);
        if (r % 4 == 0)
            owner_pop(&s, plain_pop, &popped);
        if (r % 4096 == 1)
            for (int k = 0; k < 64 && owner_pop(&s, plain_pop, &popped); k++)
                ;
    }
    while (owner_pop(&s, plain_pop, &popped))
        ;
    stress_finish(&s, th, t, popped);
}

/* Rounds of 1 to 4 pushes (now and then 256), each popped dry at once while
 * the thieves steal the same items: the last item (top == bottom - 1) is
 * raced for by the owner's pop and the thieves' steals, and must go to
 * exactly one. After a pop returned NULL the deque is empty and stays so. */
static void stress_last_item_race(void **state)
{
    (void)state;
    struct stress s;
    struct thief th[NTHIEVES];
    pthread_t t[NTHIEVES];
    stress_setup(&s, th, t, conc_test_scaled(2000000, 20000));
    long popped = 0, next = 0, rounds = 0, rounds_lost = 0;
    uint64_t rng = 777;
    while (next < s.n) {
        /* Mostly 1 to 4 items (the last-item race each round); every 1024th
         * round a long run, popped dry while the thieves work from the top. */
        long k = rounds % 1024 == 1023 ? 256 : 1 + rounds % 4, before = popped;
        rounds++;
        if (k > s.n - next)
            k = s.n - next;
        for (long j = 0; j < k; j++)
            owner_push(&s, next++);
        /* A short, varying pause gives the thieves a chance to be inside a
         * steal when the owner reaches the last item (coverage only). */
        for (unsigned spin = (unsigned)(conc_test_xorshift64s(&rng) % 64); spin; spin--)
            conc__cpu_relax();
        while (owner_pop(&s, plain_pop, &popped))
            ;
        assert_int_equal(conc__deque_size(s.d), 0);
        rounds_lost += popped - before < k;
    }
    print_message("%ld rounds, %ld with an item stolen\n", rounds, rounds_lost);
    stress_finish(&s, th, t, popped);
}

/* The owner's isolation pattern under thieves: push a parent item, mark,
 * push a subtree of 1 to 8 items, pop_above the mark until NULL (never an
 * item below it), then pop the parent if still there. */
static int64_t *push_pos; /* deque index of each item at its push */
static int64_t cur_mark;

static void *pop_above_checked(struct conc__deque *d)
{
    void *p = conc__deque_pop_above(d, cur_mark);
    if (p)
        assert_true(push_pos[item_index(p)] >= cur_mark);
    return p;
}

static void stress_pop_above_with_thieves(void **state)
{
    (void)state;
    struct stress s;
    struct thief th[NTHIEVES];
    pthread_t t[NTHIEVES];
    long n = conc_test_scaled(1000000, 10000);
    push_pos = calloc((size_t)n, sizeof *push_pos);
    assert_non_null(push_pos);
    stress_setup(&s, th, t, n);
    long popped = 0, next = 0;
    while (next < n) {
        push_pos[next] = conc__deque_mark(s.d);
        owner_push(&s, next++);
        cur_mark = conc__deque_mark(s.d);
        long k = 1 + next % 8;
        for (long j = 0; j < k && next < n; j++) {
            push_pos[next] = conc__deque_mark(s.d);
            owner_push(&s, next++);
        }
        while (owner_pop(&s, pop_above_checked, &popped))
            ;
        /* Nothing above the mark is left: bottom is back at the mark at
         * most, or (the last item went by CAS) the deque is empty. */
        assert_true(conc__deque_mark(s.d) <= cur_mark || conc__deque_size(s.d) == 0);
        owner_pop(&s, plain_pop, &popped); /* the parent, unless stolen */
    }
    while (owner_pop(&s, plain_pop, &popped))
        ;
    stress_finish(&s, th, t, popped);
    free(push_pos);
}

/* ---- bad input ---- */

static void bad_input_log2_over_40(void **state)
{
    (void)state;
    struct conc__deque *d = aligned_alloc(64, sizeof *d);
    assert_non_null(d);
    assert_int_equal(conc__deque_init(d, 41), CONC_EINVAL);
    assert_int_equal(conc__deque_init(d, 64), CONC_EINVAL);
    assert_int_equal(conc__deque_init(d, UINT_MAX), CONC_EINVAL);
    free(d);
}

/* clang-format off */
CONC_TEST_MAIN(
    cmocka_unit_test(sequential_lifo_fifo_empty),
    cmocka_unit_test(capacity_one_grows),
    cmocka_unit_test(sequential_random_model),
    cmocka_unit_test(growth_100k_from_capacity_2),
    cmocka_unit_test(pop_above_mark_semantics),
    cmocka_unit_test(stress_push_pop_steal),
    cmocka_unit_test(stress_last_item_race),
    cmocka_unit_test(stress_pop_above_with_thieves),
    cmocka_unit_test(bad_input_log2_over_40))
/* clang-format on */
