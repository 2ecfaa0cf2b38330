/* Linearizability of the bounded FIFO conc_queue, checked with lincheck.h
 * (Wing & Gong's search against a sequential bounded FIFO model).
 *
 * First the checker itself: it accepts hand-built linearizable histories
 * (sequential ones, overlapping ones with several valid orders, failures that
 * are legal only at one instant inside their interval), it rejects hand-built
 * non-linearizable ones (a value never put, a value got twice, a FIFO
 * violation, EEMPTY while an item was provably there, EFULL while there was
 * provably room, more items than the capacity), each next to a near twin it
 * accepts, and it agrees with a brute-force search over every order on
 * hundreds of small random histories. Then real histories: threads doing
 * random puts and gets with short timeouts on small bounded queues, every
 * history recorded with conc_now_ns stamps and checked. */
#include "test.h"

#include "conc/conc.h"
#include "lincheck.h"
#include "queue/queue_ring.h"

#include <string.h>

/* ---- hand-built histories ---- */

#define PUT(v, c, r) {.kind = LC_PUT, .ok = true, .value = (v), .call = (c), .ret = (r)}
#define PUT_FULL(v, c, r) {.kind = LC_PUT, .ok = false, .value = (v), .call = (c), .ret = (r)}
#define GET(v, c, r) {.kind = LC_GET, .ok = true, .value = (v), .call = (c), .ret = (r)}
#define GET_EMPTY(c, r) {.kind = LC_GET, .ok = false, .call = (c), .ret = (r)}
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Checks ops against a FIFO of capacity cap and asserts the verdict; an
 * accepted history's witness must also pass the independent replay. */
static void expect(const struct lc_op *ops, int n, size_t cap, int want)
{
    struct lc_report rep;
    int got = lc_check(ops, n, cap, &rep);
    if (got != want) {
        fprintf(stderr, "lc_check gave %d, expected %d (capacity %zu):\n", got, want, cap);
        lc_print(stderr, ops, n);
    }
    assert_int_equal(got, want);
    if (got == LC_LINEARIZABLE) {
        assert_int_equal(rep.order_len, n);
        assert_true(lc_verify_order(ops, n, cap, rep.order));
    }
}

#define ACCEPT(cap, ...)                                                     \
    do {                                                                     \
        const struct lc_op h_[] = {__VA_ARGS__};                             \
        expect(h_, COUNT(h_), (cap), LC_LINEARIZABLE);                       \
    } while (0)

#define REJECT(cap, ...)                                                     \
    do {                                                                     \
        const struct lc_op h_[] = {__VA_ARGS__};                             \
        expect(h_, COUNT(h_), (cap), LC_NOT_LINEARIZABLE);                   \
    } while (0)

static void accepts_sequential_history(void **state)
{
    (void)state;
    ACCEPT(2, PUT(1, 0, 1), PUT(2, 2, 3), PUT_FULL(3, 4, 5), GET(1, 6, 7), PUT(4, 8, 9),
           GET(2, 10, 11), GET(4, 12, 13), GET_EMPTY(14, 15), PUT(5, 16, 17));
    ACCEPT(0, PUT(1, 0, 1), PUT(2, 2, 3), PUT(3, 4, 5), GET(1, 6, 7)); /* unbounded */
    ACCEPT(1, GET_EMPTY(0, 1));
    expect(NULL, 0, 3, LC_LINEARIZABLE);
}

/* Two concurrent puts may take effect in either order: both outcomes pass. */
static void accepts_overlapping_puts_in_either_order(void **state)
{
    (void)state;
    ACCEPT(4, PUT(1, 0, 10), PUT(2, 1, 9), GET(1, 11, 12), GET(2, 13, 14));
    ACCEPT(4, PUT(1, 0, 10), PUT(2, 1, 9), GET(2, 11, 12), GET(1, 13, 14));
    /* Two concurrent gets may take the two items in either order. */
    ACCEPT(4, PUT(1, 0, 1), PUT(2, 2, 3), GET(2, 4, 10), GET(1, 5, 9));
}

/* A get called before the put of its value, but overlapping it, is legal. */
static void accepts_get_overlapping_its_put(void **state)
{
    (void)state;
    ACCEPT(1, GET(7, 0, 10), PUT(7, 5, 6));
    ACCEPT(1, GET(7, 0, 10), PUT(7, 5, 20));
}

/* A failed put needs the queue full at one instant of its interval, not at
 * its call or its return; a failed get likewise needs one empty instant. */
static void accepts_failure_legal_at_one_instant(void **state)
{
    (void)state;
    /* Empty at 0 and at 10, full only between 2 and 3. */
    ACCEPT(1, PUT_FULL(9, 0, 10), PUT(1, 1, 2), GET(1, 3, 4));
    /* An item present at 2 and at 10, none only between 4 and 5. */
    ACCEPT(3, PUT(1, 0, 1), GET_EMPTY(2, 10), GET(1, 3, 4), PUT(2, 5, 6), GET(2, 11, 12));
}

/* The first orders tried fail late: the search must backtrack to c, a, b. */
static void accepts_history_needing_backtracking(void **state)
{
    (void)state;
    ACCEPT(3, PUT(1, 0, 10), PUT(2, 0, 10), PUT(3, 0, 10), PUT_FULL(4, 1, 9), GET(3, 11, 12),
           GET(1, 13, 14), GET(2, 15, 16), GET_EMPTY(17, 18));
}

static void rejects_get_of_value_never_put(void **state)
{
    (void)state;
    REJECT(2, PUT(1, 0, 1), GET(99, 2, 3));
    REJECT(2, PUT(1, 0, 10), GET(99, 2, 3), GET(1, 11, 12));
    /* The value of a failed put never went in. */
    REJECT(1, PUT(1, 0, 1), PUT_FULL(2, 2, 3), GET(1, 4, 5), GET(2, 6, 7));
    ACCEPT(1, PUT(1, 0, 1), PUT_FULL(2, 2, 3), GET(1, 4, 5), GET_EMPTY(6, 7));
}

static void rejects_value_got_twice(void **state)
{
    (void)state;
    REJECT(2, PUT(1, 0, 1), GET(1, 2, 3), GET(1, 4, 5));
    /* Even when the two gets overlap each other and the put. */
    REJECT(2, PUT(1, 0, 10), PUT(2, 0, 10), GET(1, 1, 9), GET(1, 2, 8));
    ACCEPT(2, PUT(1, 0, 10), PUT(2, 0, 10), GET(1, 1, 9), GET(2, 2, 8));
}

/* put a then put b (not overlapping), then get b before get a (not
 * overlapping): no order is legal. Let the puts overlap and it is. */
static void rejects_fifo_violation(void **state)
{
    (void)state;
    REJECT(4, PUT(1, 0, 1), PUT(2, 2, 3), GET(2, 4, 5), GET(1, 6, 7));
    ACCEPT(4, PUT(1, 0, 3), PUT(2, 2, 3), GET(2, 4, 5), GET(1, 6, 7));
    /* Or let the gets overlap. */
    ACCEPT(4, PUT(1, 0, 1), PUT(2, 2, 3), GET(2, 4, 7), GET(1, 6, 7));
    /* A violation three items deep, with threads overlapping elsewhere. */
    REJECT(4, PUT(1, 0, 1), PUT(2, 2, 3), PUT(3, 4, 5), GET(1, 6, 9), GET(3, 7, 8), GET(2, 10, 11));
}

/* An item is in the queue from before the get's call until after its return:
 * EEMPTY is illegal. Let the get overlap the item's removal and it is not. */
static void rejects_eempty_while_item_held(void **state)
{
    (void)state;
    REJECT(2, PUT(1, 0, 1), GET_EMPTY(2, 3), GET(1, 4, 5));
    REJECT(2, PUT(1, 0, 1), PUT(2, 2, 3), GET(1, 4, 6), GET_EMPTY(5, 7), GET(2, 8, 9));
    ACCEPT(2, PUT(1, 0, 1), PUT(2, 2, 3), GET(1, 4, 6), GET_EMPTY(5, 8), GET(2, 7, 9));
    ACCEPT(2, PUT(1, 0, 1), GET_EMPTY(2, 5), GET(1, 4, 6));
}

/* There is room from before the put's call until after its return: EFULL is
 * illegal. Let the put overlap a put that fills the queue and it is not. */
static void rejects_efull_while_room(void **state)
{
    (void)state;
    REJECT(2, PUT(1, 0, 1), PUT_FULL(2, 2, 3), GET(1, 4, 5));
    REJECT(0, PUT(1, 0, 1), PUT_FULL(2, 2, 3)); /* unbounded: never full */
    REJECT(2, PUT_FULL(2, 0, 1));               /* empty */
    ACCEPT(2, PUT(1, 0, 1), PUT_FULL(2, 2, 5), PUT(3, 4, 6), GET(1, 7, 8), GET(3, 9, 10));
}

static void rejects_more_items_than_capacity(void **state)
{
    (void)state;
    REJECT(1, PUT(1, 0, 1), PUT(2, 2, 3));
    REJECT(2, PUT(1, 0, 1), PUT(2, 0, 1), PUT(3, 0, 1));
    ACCEPT(2, PUT(1, 0, 1), PUT(2, 0, 1), GET(1, 0, 1), PUT(3, 0, 1));
}

/* A get that returned before the put of its value was called. */
static void rejects_get_before_its_put(void **state)
{
    (void)state;
    REJECT(1, GET(7, 0, 1), PUT(7, 2, 3));
    ACCEPT(1, GET(7, 0, 2), PUT(7, 2, 3)); /* equal stamps: they may overlap */
}

static void rejects_malformed_history(void **state)
{
    (void)state;
    const struct lc_op dup[] = {PUT(1, 0, 1), PUT(1, 2, 3)};
    assert_int_equal(lc_check(dup, 2, 2, NULL), LC_BAD_HISTORY);
    const struct lc_op backwards[] = {PUT(1, 5, 4)};
    assert_int_equal(lc_check(backwards, 1, 2, NULL), LC_BAD_HISTORY);
    struct lc_op many[LC_MAX_OPS + 1];
    for (int i = 0; i < LC_MAX_OPS + 1; i++)
        many[i] = (struct lc_op)PUT((uint64_t)i, i, i);
    assert_int_equal(lc_check(many, LC_MAX_OPS + 1, 0, NULL), LC_BAD_HISTORY);
    /* Exactly LC_MAX_OPS is fine. */
    assert_int_equal(lc_check(many, LC_MAX_OPS, 0, NULL), LC_LINEARIZABLE);
}

/* k puts and k gets all overlapping one another: every op is a candidate at
 * every step, the worst shape for the search. */
static void all_overlapping(struct lc_op *h, int k)
{
    for (int i = 0; i < k; i++) {
        h[i] = (struct lc_op)PUT((uint64_t)i, 0, 100);
        h[k + i] = (struct lc_op)GET((uint64_t)i, 0, 100);
    }
}

/* Accepted: the search walks straight to a witness. Rejected (one item got
 * twice, another never): the memo bounds it for a dozen ops; for 32 the
 * state space explodes, and the search gives up with LC_TOO_MANY_STATES
 * instead of hanging. Real histories, a few threads each making its
 * operations in turn, stay at a few hundred states (see the stress test). */
static void wide_overlap_is_bounded(void **state)
{
    (void)state;
    struct lc_op h[32];
    struct lc_report rep;
    all_overlapping(h, 16);
    assert_int_equal(lc_check(h, 32, 4, &rep), LC_LINEARIZABLE);
    assert_true(lc_verify_order(h, 32, 4, rep.order));
    print_message("32 overlapping, accepted: %ld states\n", rep.states);

    all_overlapping(h, 6);
    h[11].value = 0;
    assert_int_equal(lc_check(h, 12, 4, &rep), LC_NOT_LINEARIZABLE);
    print_message("12 overlapping, rejected: %ld states\n", rep.states);

    all_overlapping(h, 16);
    h[31].value = 0;
    assert_int_equal(lc_check_bounded(h, 32, 4, 5000, &rep), LC_TOO_MANY_STATES);
    assert_int_equal(rep.states, 5000);
}

/* ---- cross-check against brute force on small random histories ---- */

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: deterministic, no shared state between threads */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static unsigned rng_below(uint64_t *s, unsigned n)
{
    return (unsigned)(rng_next(s) % n);
}

/* Tries every permutation (Heap's algorithm) with lc_verify_order. */
static bool brute_force(const struct lc_op *ops, int n, size_t cap)
{
    int order[LC_MAX_OPS], c[LC_MAX_OPS] = {0};
    for (int i = 0; i < n; i++)
        order[i] = i;
    if (lc_verify_order(ops, n, cap, order))
        return true;
    for (int i = 1; i < n;) {
        if (c[i] < i) {
            int j = i % 2 ? c[i] : 0, t = order[j];
            order[j] = order[i];
            order[i] = t;
            if (lc_verify_order(ops, n, cap, order))
                return true;
            c[i]++;
            i = 1;
        } else {
            c[i++] = 0;
        }
    }
    return false;
}

/* A random history of n ops: a legal sequential run of a FIFO of capacity
 * cap at instants 10, 20, ..., each op's interval widened at random around
 * its instant (so linearizable), then, half the time, one outcome or value
 * changed (often making it unlinearizable). */
static void random_history(uint64_t *s, struct lc_op *h, int n, size_t cap)
{
    uint64_t queue[LC_MAX_OPS];
    int head = 0, tail = 0, next_value = 1;
    for (int i = 0; i < n; i++) {
        int64_t at = 10 * (i + 1);
        int64_t call = at - rng_below(s, 25), ret = at + rng_below(s, 25);
        bool full = tail - head >= (int)cap;
        if (rng_below(s, 2)) {
            uint64_t v = (uint64_t)next_value++;
            h[i] = (struct lc_op)PUT(v, call, ret);
            h[i].ok = !full;
            if (!full)
                queue[tail++] = v;
        } else {
            h[i] = (struct lc_op)GET(0, call, ret);
            h[i].ok = tail > head;
            if (h[i].ok)
                h[i].value = queue[head++];
        }
    }
    if (rng_below(s, 2)) {
        struct lc_op *op = &h[rng_below(s, (unsigned)n)];
        if (op->kind == LC_GET && op->ok && rng_below(s, 2))
            op->value = 1 + rng_below(s, (unsigned)next_value); /* maybe never put */
        else
            op->ok = !op->ok;
    }
}

static void agrees_with_brute_force(void **state)
{
    (void)state;
    uint64_t s = 42;
    long rounds = conc_test_scaled(600, 200), yes = 0, no = 0;
    for (long r = 0; r < rounds; r++) {
        struct lc_op h[8];
        int n = 3 + (int)rng_below(&s, 5); /* 3..7 ops */
        size_t cap = 1 + rng_below(&s, 3);
        random_history(&s, h, n, cap);
        bool want = brute_force(h, n, cap);
        expect(h, n, cap, want ? LC_LINEARIZABLE : LC_NOT_LINEARIZABLE);
        want ? yes++ : no++;
    }
    print_message("%ld linearizable, %ld not\n", yes, no);
    /* The generator must have exercised both verdicts. */
    assert_true(yes > rounds / 10 && no > rounds / 10);
}

/* ---- real histories from conc_queue ---- */

#define NTHREADS 4

struct lin_shared {
    pthread_barrier_t start, end;
    conc_queue *q; /* the round's queue, set before `start` */
    int active;    /* threads taking part this round (3 or 4) */
    int ops;       /* operations each of them makes */
    bool stop;
};

struct lin_worker {
    struct lin_shared *sh;
    int id;
    uint64_t rng;
    struct lc_log log;
};

/* 0 (no wait), tiny, a few µs, now and then long enough to park. */
static int64_t pick_timeout(uint64_t *s)
{
    static const int64_t t[] = {
        0, 0, 0, CONC_NSEC_PER_USEC / 2, CONC_USEC(1), CONC_USEC(3), CONC_USEC(5), CONC_USEC(50)};
    return t[rng_below(s, COUNT(t))];
}

static void worker_round(struct lin_worker *w)
{
    conc_queue *q = w->sh->q;
    for (int k = 0; k < w->sh->ops; k++) {
        int64_t timeout = pick_timeout(&w->rng);
        if (rng_below(&w->rng, 2)) {
            uint64_t v = (uint64_t)(w->id + 1) << 16 | (uint64_t)k; /* unique in the history */
            struct lc_op *op = lc_log_call(&w->log, LC_PUT, v);
            int rc = conc_queue_put_timed(q, &v, timeout);
            lc_log_return(op, rc == 0, 0);
            assert_true(rc == 0 || rc == CONC_EFULL);
        } else {
            uint64_t out = 0;
            struct lc_op *op = lc_log_call(&w->log, LC_GET, 0);
            int rc = conc_queue_get_timed(q, &out, timeout);
            lc_log_return(op, rc == 0, out);
            assert_true(rc == 0 || rc == CONC_EEMPTY);
        }
    }
}

static void *lin_worker_main(void *p)
{
    struct lin_worker *w = p;
    for (;;) {
        pthread_barrier_wait(&w->sh->start);
        if (w->sh->stop)
            return NULL;
        w->log.n = 0;
        if (w->id < w->sh->active)
            worker_round(w);
        pthread_barrier_wait(&w->sh->end);
    }
}

struct lin_stats {
    long histories, ops, ok_puts, efull, ok_gets, eempty, overlaps, max_states, max_ops;
    int64_t check_ns;
};

/* Pairs of ops from different threads whose intervals overlap. */
static long count_overlaps(const struct lc_op *h, int n)
{
    long c = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            c += h[i].thread != h[j].thread && h[i].call <= h[j].ret && h[j].call <= h[i].ret;
    return c;
}

static void tally(struct lin_stats *st, const struct lc_op *h, int n)
{
    st->histories++;
    st->ops += n;
    st->max_ops = n > st->max_ops ? n : st->max_ops;
    for (int i = 0; i < n; i++) {
        if (h[i].kind == LC_PUT)
            h[i].ok ? st->ok_puts++ : st->efull++;
        else
            h[i].ok ? st->ok_gets++ : st->eempty++;
    }
    st->overlaps += count_overlaps(h, n);
}

/* Checks one recorded history, then the same history with one item got twice
 * (never legal): the checker must tell them apart on real-shaped histories
 * too. */
static void check_history(struct lin_stats *st, struct lc_op *h, int n, size_t cap)
{
    struct lc_report rep;
    int64_t t0 = conc_now_ns();
    int r = lc_check(h, n, cap, &rep);
    st->check_ns += conc_now_ns() - t0;
    st->max_states = rep.states > st->max_states ? rep.states : st->max_states;
    if (r != LC_LINEARIZABLE) {
        fprintf(stderr, "history %ld (capacity %zu) gave %d; longest legal prefix %d ops:\n",
                st->histories, cap, r, rep.order_len);
        lc_print(stderr, h, n);
    }
    assert_int_equal(r, LC_LINEARIZABLE);
    assert_true(lc_verify_order(h, n, cap, rep.order));
    int first = -1;
    for (int i = 0; i < n; i++) {
        if (h[i].kind != LC_GET || !h[i].ok)
            continue;
        if (first < 0) {
            first = i;
            continue;
        }
        uint64_t saved = h[i].value;
        h[i].value = h[first].value;
        assert_int_equal(lc_check(h, n, cap, NULL), LC_NOT_LINEARIZABLE);
        h[i].value = saved;
        break;
    }
    tally(st, h, n);
}

/* After the workers stop: takes what is left, as more recorded gets, so the
 * history also says the items still queued are the right ones. */
static void drain(conc_queue *q, struct lc_log *log)
{
    for (;;) {
        uint64_t out = 0;
        struct lc_op *op = lc_log_call(log, LC_GET, 0);
        int rc = conc_queue_get_timed(q, &out, 0);
        lc_log_return(op, rc == 0, out);
        if (rc == CONC_EEMPTY)
            return;
        assert_int_equal(rc, 0);
    }
}

/* The worker threads, kept across rounds so that each round starts them
 * together from a barrier. */
struct lin_pool {
    struct lin_shared sh;
    struct lin_worker w[NTHREADS];
    pthread_t t[NTHREADS];
};

static void pool_start(struct lin_pool *p)
{
    memset(p, 0, sizeof *p);
    assert_int_equal(pthread_barrier_init(&p->sh.start, NULL, NTHREADS + 1), 0);
    assert_int_equal(pthread_barrier_init(&p->sh.end, NULL, NTHREADS + 1), 0);
    for (int i = 0; i < NTHREADS; i++) {
        p->w[i].sh = &p->sh;
        p->w[i].id = i;
        p->w[i].rng = 1000 + (uint64_t)i;
        p->w[i].log.thread = i;
        assert_int_equal(pthread_create(&p->t[i], NULL, lin_worker_main, &p->w[i]), 0);
    }
}

static void pool_stop(struct lin_pool *p)
{
    p->sh.stop = true;
    pthread_barrier_wait(&p->sh.start);
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_join(p->t[i], NULL), 0);
    assert_int_equal(pthread_barrier_destroy(&p->sh.start), 0);
    assert_int_equal(pthread_barrier_destroy(&p->sh.end), 0);
}

/* One round: a fresh queue of this kind and a capacity of 1 to 4, 3 or 4
 * threads making 27 or 28 random operations, then the drain. Fills h and
 * returns the number of ops; *cap receives the capacity. */
static int record_round(struct lin_pool *p, conc_queue_kind kind, long round, struct lc_op *h,
                        size_t *cap)
{
    struct lin_shared *sh = &p->sh;
    *cap = 1 + (size_t)(round % 4);
    conc_queue_opts opts = {.kind = kind, .capacity = *cap};
    assert_int_equal(conc_queue_create(&sh->q, sizeof(uint64_t), &opts), 0);
    sh->active = round / 4 % 2 ? 3 : 4;
    sh->ops = sh->active == 3 ? 9 : 7;
    pthread_barrier_wait(&sh->start);
    pthread_barrier_wait(&sh->end);
    struct lc_log logs[NTHREADS + 1];
    logs[NTHREADS] = (struct lc_log){.thread = NTHREADS};
    drain(sh->q, &logs[NTHREADS]);
    assert_int_equal(conc_queue_destroy(sh->q), 0);
    for (int t = 0; t < NTHREADS; t++)
        logs[t] = p->w[t].log;
    int n = lc_merge(logs, NTHREADS + 1, h, LC_MAX_OPS);
    assert_true(n > 0);
    return n;
}

static void queue_histories_linearizable_stress(void **state)
{
    (void)state;
    struct lin_pool p;
    struct lin_stats st = {0};
    long rounds = conc_test_scaled(2000, 40);
    int64_t t0 = conc_now_ns();
    pool_start(&p);
    for (long r = 0; r < rounds; r++) {
        struct lc_op h[LC_MAX_OPS];
        size_t cap;
        int n = record_round(&p, CONC_QUEUE_FIFO, r, h, &cap);
        check_history(&st, h, n, cap);
    }
    pool_stop(&p);
    print_message("%ld histories (%ld ops, up to %ld each) in %.1f ms, checking %.1f ms, "
                  "up to %ld states\n",
                  st.histories, st.ops, st.max_ops, (double)(conc_now_ns() - t0) / 1e6,
                  (double)st.check_ns / 1e6, st.max_states);
    print_message("puts %ld ok / %ld EFULL, gets %ld ok / %ld EEMPTY, %ld overlapping pairs\n",
                  st.ok_puts, st.efull, st.ok_gets, st.eempty, st.overlaps);
    assert_int_equal(st.histories, rounds);
    /* Both kinds of failure were recorded and checked, not only successes. */
    assert_true(st.efull > 0 && st.eempty > 0 && st.ok_gets > 0);
}

/* The control: the same recording of a LIFO queue, checked as a FIFO. Every
 * verdict must be definite and some histories must be rejected — with
 * capacity 2 to 4 and each thread putting and getting in turn, a LIFO soon
 * returns a newer item while an older one provably waits. This shows the
 * recorder and checker catch a wrong order in real concurrent histories,
 * not only in hand-built ones. */
static void lifo_histories_rejected_stress(void **state)
{
    (void)state;
    struct lin_pool p;
    long rounds = conc_test_scaled(200, 40), rejected = 0;
    pool_start(&p);
    for (long r = 0; r < rounds; r++) {
        struct lc_op h[LC_MAX_OPS];
        size_t cap;
        int n = record_round(&p, CONC_QUEUE_LIFO, r, h, &cap);
        int v = lc_check(h, n, cap, NULL);
        assert_true(v == LC_LINEARIZABLE || v == LC_NOT_LINEARIZABLE);
        rejected += v == LC_NOT_LINEARIZABLE;
    }
    pool_stop(&p);
    print_message("%ld of %ld LIFO histories rejected\n", rejected, rounds);
    assert_true(rejected > 0);
}

/* ------------------------------------------------------ the planted bug
 *
 * Vyukov's ring has a classic flaw: a get that finds the next cell claimed by
 * a put which has not yet published its item answers "empty", although a
 * later put may already have completed. conc's ring waits for the claimed
 * cell when its answer is reported (exact); its inexact try, used only inside
 * blocking waits, skips that check. Reporting the inexact answer to a caller
 * is the planted bug. The ring's test hook holds producer 1 between its claim
 * and its publication, which forces the bad schedule every time: producer 2
 * then puts and returns, and a get runs. */

static struct {
    conc_event claimed, release;
    _Atomic bool armed;
} held;

static void hold_first_put(struct conc__qring *r, uint64_t pos)
{
    (void)r;
    if (pos != 0 || !atomic_exchange(&held.armed, false))
        return;
    conc_event_set(&held.claimed);
    conc_event_wait(&held.release);
}

struct ring_call {
    struct conc__qring *r;
    bool exact;
    struct lc_op op;
};

static void *ring_put_main(void *arg)
{
    struct ring_call *c = arg;
    c->op.kind = LC_PUT;
    c->op.call = conc_now_ns();
    c->op.ok = conc__qring_put(c->r, &c->op.value, true);
    c->op.ret = conc_now_ns();
    return NULL;
}

static void *ring_get_main(void *arg)
{
    struct ring_call *c = arg;
    c->op.kind = LC_GET;
    c->op.call = conc_now_ns();
    c->op.ok = conc__qring_get(c->r, &c->op.value, c->exact);
    c->op.ret = conc_now_ns();
    return NULL;
}

/* Runs the forced schedule; the get reports its answer exactly or not. */
static int planted_schedule(bool exact)
{
    struct conc__qring r;
    assert_int_equal(conc__qring_init(&r, 4, sizeof(uint64_t), false, false), 0);
    assert_int_equal(conc_event_init(&held.claimed, NULL), 0);
    assert_int_equal(conc_event_init(&held.release, NULL), 0);
    atomic_store(&held.armed, true);
    conc__test_ring_put_claimed = hold_first_put;
    struct ring_call p1 = {&r, true, {.value = 1}}, p2 = {&r, true, {.value = 2}};
    struct ring_call get = {&r, exact, {0}};
    pthread_t t1 = conc_test_start(ring_put_main, &p1);
    assert_int_equal(conc_event_wait_timed(&held.claimed, CONC_SEC(10)), 0); /* p1 holds cell 0 */
    ring_put_main(&p2);                                                /* p2 completes */
    pthread_t tg = conc_test_start(ring_get_main, &get);
    if (!exact)
        conc_test_join(tg); /* the inexact get answers at once, p1 still held */
    conc_event_set(&held.release);
    conc_test_join(t1);
    if (exact)
        conc_test_join(tg); /* the exact get waited for p1's item */
    conc__test_ring_put_claimed = NULL;
    struct lc_op ops[3] = {p1.op, p2.op, get.op};
    struct lc_report rep;
    int verdict = lc_check(ops, 3, 4, &rep);
    print_message("%s get: %s%s -> %s\n", exact ? "exact" : "inexact (planted bug)",
                  get.op.ok ? "got " : "EEMPTY", get.op.ok ? (get.op.value == 1 ? "1" : "2") : "",
                  verdict == LC_LINEARIZABLE ? "linearizable" : "NOT linearizable");
    assert_int_equal(conc_event_destroy(&held.claimed), 0);
    assert_int_equal(conc_event_destroy(&held.release), 0);
    conc__qring_free(&r);
    return verdict;
}

/* The planted bug is caught, by a forced schedule, not by luck. */
static void checker_catches_planted_ring_bug(void **state)
{
    (void)state;
    assert_int_equal(planted_schedule(false), LC_NOT_LINEARIZABLE);
}

/* The same schedule with the ring's exact answer: the get waits for p1's
 * item, which comes first, and the history is linearizable. */
static void exact_ring_passes_the_planted_schedule(void **state)
{
    (void)state;
    assert_int_equal(planted_schedule(true), LC_LINEARIZABLE);
}

CONC_TEST_MAIN(
    cmocka_unit_test(accepts_sequential_history),
    cmocka_unit_test(accepts_overlapping_puts_in_either_order),
    cmocka_unit_test(accepts_get_overlapping_its_put),
    cmocka_unit_test(accepts_failure_legal_at_one_instant),
    cmocka_unit_test(accepts_history_needing_backtracking),
    cmocka_unit_test(rejects_get_of_value_never_put),
    cmocka_unit_test(rejects_value_got_twice),
    cmocka_unit_test(rejects_fifo_violation),
    cmocka_unit_test(rejects_eempty_while_item_held),
    cmocka_unit_test(rejects_efull_while_room),
    cmocka_unit_test(rejects_more_items_than_capacity),
    cmocka_unit_test(rejects_get_before_its_put),
    cmocka_unit_test(rejects_malformed_history),
    cmocka_unit_test(wide_overlap_is_bounded),
    cmocka_unit_test(agrees_with_brute_force),
    cmocka_unit_test(queue_histories_linearizable_stress),
    cmocka_unit_test(lifo_histories_rejected_stress),
    cmocka_unit_test(checker_catches_planted_ring_bug),
    cmocka_unit_test(exact_ring_passes_the_planted_schedule)
)
