/* Queue cases: queue.spsc, queue.mpmc and queue.pingpong. Items are 8-byte
 * uint64_t, queues hold 1024 of them.
 *
 * Throughput (spsc, mpmc): producers put for a fixed time, then the last
 * producer to stop puts one end marker (0) per consumer; consumers get until
 * they see it, and the window closes when the last item is taken, so items/s
 * counts every item delivered. Producer p's k-th item is ((k << shift) | p) + 1
 * (shift = 1 with two producers): the run fails unless each consumer sees each
 * producer's items in increasing order and the count and sum of what the
 * consumers took equal those of what the producers put.
 *
 * Pingpong: thread A puts n to q1 and gets the answer from q2; thread B gets
 * from q1 and puts what it got to q2. The run fails unless every answer is
 * the n sent and B echoed exactly A's round trips. ns per round trip.
 *
 * Each implementation's loops are instantiated from one macro with its own
 * put and get inlined, so no row pays an indirect call the others do not.
 * The peers: a textbook ring (one pthread mutex, two condition variables),
 * GLib's GAsyncQueue (unbounded; it holds pointers and cannot hold NULL, so an
 * item v travels as GSIZE_TO_POINTER(v + 1)), and Concurrency Kit's ck_ring,
 * which only spins: it has no way to block, so its put and get retry with
 * ck_pr_stall() while the ring is full or empty (its ring of 1024 slots holds
 * 1023 items).
 */
#define _GNU_SOURCE
#include "bench.h"

#include <ck_ring.h>
#include <conc/conc.h>
#include <glib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CAPACITY 1024
#define UNUSED __attribute__((unused))

static _Atomic int stop_flag;

/* ---- the run: roles, threads, the timed window, the checks ---- */

enum role_kind { PRODUCER, CONSUMER, PINGER, PONGER };

struct run_shared {
    void *q1, *q2;  /* q2: pingpong's answer queue */
    int consumers;  /* end markers the last producer puts */
    unsigned shift; /* producer id bits in an item */
    _Atomic int producers_left;
};

struct role {
    struct run_shared *sh;
    enum role_kind kind;
    unsigned index;      /* producer id */
    uint64_t count, sum; /* items put or taken (pinger: round trips) */
    bool bad;            /* an item out of order, a wrong answer, a failed call */
    char pad[64];
};

static void bench_sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

struct driver_args {
    void *(*fn)(void *);
    struct role *roles;
    int threads;
};

static void *driver(void *arg)
{
    struct driver_args *d = arg;
    bench_run_threads(d->threads, d->fn, d->roles, sizeof *d->roles);
    return NULL;
}

/* Runs the roles for p->seconds, then lets them finish; wall ns and cpu%. */
static int64_t run_roles(const struct bench_params *p, struct bench_result *r, void *(*fn)(void *),
                         struct role *roles, int threads)
{
    struct driver_args d = {fn, roles, threads};
    pthread_t t;
    atomic_store(&stop_flag, 0);
    struct bench_window w;
    bench_window_start(&w);
    if (pthread_create(&t, NULL, driver, &d) != 0)
        return -1;
    bench_sleep_s(p->seconds);
    atomic_store(&stop_flag, 1);
    pthread_join(t, NULL);
    bench_window_stop(&w);
    r->cpu_pct = bench_window_cpu_pct(&w);
    return w.wall_ns;
}

/* Producers and consumers in roles[0..n): every item put was taken once. */
static int check_throughput(const struct role *roles, int n, int64_t wall, struct bench_result *r)
{
    uint64_t put = 0, put_sum = 0, got = 0, got_sum = 0;
    for (int i = 0; i < n; i++) {
        if (roles[i].bad) {
            fprintf(stderr, "queue failed: thread %d saw an item out of order or a call fail\n", i);
            return 1;
        }
        if (roles[i].kind == PRODUCER) {
            put += roles[i].count;
            put_sum += roles[i].sum;
        } else {
            got += roles[i].count;
            got_sum += roles[i].sum;
        }
    }
    if (put != got || put_sum != got_sum || put == 0 || wall <= 0) {
        fprintf(stderr, "queue failed: put %llu items (sum %llu), took %llu (sum %llu)\n",
                (unsigned long long)put, (unsigned long long)put_sum, (unsigned long long)got,
                (unsigned long long)got_sum);
        return 1;
    }
    r->value = (double)got * 1e9 / (double)wall;
    return 0;
}

/* roles[0] the pinger, roles[1] the ponger. */
static int check_pingpong(const struct role *roles, int64_t wall, struct bench_result *r)
{
    if (roles[0].bad || roles[1].bad || roles[0].count != roles[1].count || roles[0].count == 0 ||
        wall <= 0) {
        fprintf(stderr, "queue failed: %llu round trips, %llu echoes%s\n",
                (unsigned long long)roles[0].count, (unsigned long long)roles[1].count,
                roles[0].bad || roles[1].bad ? ", a wrong answer or a failed call" : "");
        return 1;
    }
    r->value = (double)wall / (double)roles[0].count;
    return 0;
}

static int stopped(void)
{
    return atomic_load_explicit(&stop_flag, memory_order_relaxed);
}

/* One implementation: TYPE *CREATE(void), DESTROY(TYPE *) -> 0 on success,
 * bool PUT(TYPE *, uint64_t), bool GET(TYPE *, uint64_t *). PUT and GET block
 * (or spin) until done; false only on a failed call. */
#define QUEUE_BENCH(NAME, TYPE, CREATE, DESTROY, PUT, GET)                                         \
    static void NAME##_produce(struct role *ro)                                                    \
    {                                                                                              \
        struct run_shared *sh = ro->sh;                                                            \
        TYPE *q = sh->q1;                                                                          \
        uint64_t seq = 0, sum = 0;                                                                 \
        while (!stopped()) {                                                                       \
            uint64_t v = ((seq << sh->shift) | ro->index) + 1;                                     \
            if (!PUT(q, v)) {                                                                      \
                ro->bad = true;                                                                    \
                break;                                                                             \
            }                                                                                      \
            sum += v;                                                                              \
            seq++;                                                                                 \
        }                                                                                          \
        ro->count = seq;                                                                           \
        ro->sum = sum;                                                                             \
        /* The last one out: every item is in, so the markers come after all. */                   \
        if (atomic_fetch_sub(&sh->producers_left, 1) == 1)                                         \
            for (int c = 0; c < sh->consumers; c++)                                                \
                if (!PUT(q, 0))                                                                    \
                    ro->bad = true;                                                                \
    }                                                                                              \
    static void NAME##_consume(struct role *ro)                                                    \
    {                                                                                              \
        TYPE *q = ro->sh->q1;                                                                      \
        uint64_t mask = ((uint64_t)1 << ro->sh->shift) - 1, last[2] = {0, 0};                      \
        uint64_t n = 0, sum = 0;                                                                   \
        for (;;) {                                                                                 \
            uint64_t v;                                                                            \
            if (!GET(q, &v)) {                                                                     \
                ro->bad = true;                                                                    \
                break;                                                                             \
            }                                                                                      \
            if (v == 0)                                                                            \
                break;                                                                             \
            uint64_t from = (v - 1) & mask;                                                        \
            if (v <= last[from])                                                                   \
                ro->bad = true;                                                                    \
            last[from] = v;                                                                        \
            n++;                                                                                   \
            sum += v;                                                                              \
        }                                                                                          \
        ro->count = n;                                                                             \
        ro->sum = sum;                                                                             \
    }                                                                                              \
    static void NAME##_ping(struct role *ro)                                                       \
    {                                                                                              \
        TYPE *q1 = ro->sh->q1, *q2 = ro->sh->q2;                                                   \
        uint64_t n = 1;                                                                            \
        while (!stopped()) {                                                                       \
            uint64_t answer;                                                                       \
            if (!PUT(q1, n) || !GET(q2, &answer) || answer != n) {                                 \
                ro->bad = true;                                                                    \
                break;                                                                             \
            }                                                                                      \
            n++;                                                                                   \
        }                                                                                          \
        ro->count = n - 1;                                                                         \
        if (!PUT(q1, 0))                                                                           \
            ro->bad = true;                                                                        \
    }                                                                                              \
    static void NAME##_pong(struct role *ro)                                                       \
    {                                                                                              \
        TYPE *q1 = ro->sh->q1, *q2 = ro->sh->q2;                                                   \
        uint64_t n = 0;                                                                            \
        for (;;) {                                                                                 \
            uint64_t v;                                                                            \
            if (!GET(q1, &v)) {                                                                    \
                ro->bad = true;                                                                    \
                break;                                                                             \
            }                                                                                      \
            if (v == 0)                                                                            \
                break;                                                                             \
            if (!PUT(q2, v)) {                                                                     \
                ro->bad = true;                                                                    \
                break;                                                                             \
            }                                                                                      \
            n++;                                                                                   \
        }                                                                                          \
        ro->count = n;                                                                             \
    }                                                                                              \
    static void *NAME##_thread(void *arg)                                                          \
    {                                                                                              \
        struct role *ro = arg;                                                                     \
        switch (ro->kind) {                                                                        \
        case PRODUCER:                                                                             \
            NAME##_produce(ro);                                                                    \
            break;                                                                                 \
        case CONSUMER:                                                                             \
            NAME##_consume(ro);                                                                    \
            break;                                                                                 \
        case PINGER:                                                                               \
            NAME##_ping(ro);                                                                       \
            break;                                                                                 \
        case PONGER:                                                                               \
            NAME##_pong(ro);                                                                       \
            break;                                                                                 \
        }                                                                                          \
        return NULL;                                                                               \
    }                                                                                              \
    UNUSED static int NAME##_throughput(const struct bench_params *p, struct bench_result *r,      \
                                        int producers, int consumers)                              \
    {                                                                                              \
        struct run_shared sh = {.q1 = CREATE(), .consumers = consumers, .shift = producers > 1};   \
        atomic_store(&sh.producers_left, producers);                                               \
        if (!sh.q1)                                                                                \
            return 1;                                                                              \
        struct role roles[4] = {0};                                                                \
        int n = producers + consumers;                                                             \
        for (int i = 0; i < n; i++)                                                                \
            roles[i] = (struct role){                                                              \
                .sh = &sh, .kind = i < producers ? PRODUCER : CONSUMER, .index = (unsigned)i};     \
        int64_t wall = run_roles(p, r, NAME##_thread, roles, n);                                   \
        int rc = check_throughput(roles, n, wall, r);                                              \
        return DESTROY((TYPE *)sh.q1) != 0 ? 1 : rc;                                               \
    }                                                                                              \
    UNUSED static int NAME##_spsc(const struct bench_params *p, struct bench_result *r)            \
    {                                                                                              \
        return NAME##_throughput(p, r, 1, 1);                                                      \
    }                                                                                              \
    UNUSED static int NAME##_mpmc(const struct bench_params *p, struct bench_result *r)            \
    {                                                                                              \
        return NAME##_throughput(p, r, 2, 2);                                                      \
    }                                                                                              \
    UNUSED static int NAME##_pingpong(const struct bench_params *p, struct bench_result *r)        \
    {                                                                                              \
        struct run_shared sh = {.q1 = CREATE(), .q2 = CREATE()};                                   \
        if (!sh.q1 || !sh.q2)                                                                      \
            return 1;                                                                              \
        struct role roles[2] = {{.sh = &sh, .kind = PINGER}, {.sh = &sh, .kind = PONGER}};         \
        int64_t wall = run_roles(p, r, NAME##_thread, roles, 2);                                   \
        int rc = check_pingpong(roles, wall, r);                                                   \
        int d1 = DESTROY((TYPE *)sh.q1), d2 = DESTROY((TYPE *)sh.q2);                              \
        return d1 || d2 ? 1 : rc;                                                                  \
    }

/* ---- conc ---- */

static conc_queue *cq_create(const conc_queue_opts *o)
{
    conc_queue *q;
    return conc_queue_create(&q, sizeof(uint64_t), o) == 0 ? q : NULL;
}
static conc_queue *cq_create_default(void)
{
    return cq_create(&(conc_queue_opts){.capacity = CAPACITY});
}
static conc_queue *cq_create_spsc(void)
{
    return cq_create(
        &(conc_queue_opts){.capacity = CAPACITY, .single_producer = true, .single_consumer = true});
}
static inline bool cq_put(conc_queue *q, uint64_t v)
{
    return conc_queue_put(q, &v) == 0;
}
static inline bool cq_get(conc_queue *q, uint64_t *v)
{
    return conc_queue_get(q, v) == 0;
}

QUEUE_BENCH(cq, conc_queue, cq_create_default, conc_queue_destroy, cq_put, cq_get)

/* ---- placement: the default queue wherever malloc would put it ----
 *
 * The spsc run on PLACE_COUNT queues created one after another, each after a
 * padding allocation PLACE_STEP bytes longer than the last, so malloc's
 * blocks for queue k land k * PLACE_STEP bytes further along: 64 placements
 * across a page. A queue whose speed depends on where its memory lands
 * (false sharing through an alignment it did not choose, 4K aliasing between
 * the producer's and the consumer's lines) is slow at some placements in
 * every round.
 *
 * Only the placement may vary. One producer and one consumer thread, started
 * once, go through the queues in turn, a slice of time each (the producer
 * puts numbered items, then an end marker; the consumer checks each item and
 * moves on at the marker), so no slice pays for threads that start on one
 * CPU and spread later. The host of a virtual machine changes its speed for
 * seconds at a time (the same queue measured 20 and 40 M items/s a few
 * seconds apart), so each placement's slice comes between two on a
 * reference queue (created before the pads): a placement's figure is its
 * rate over the mean of theirs, the median of PLACE_ROUNDS rounds. Each row is a sweep of its own (the harness measures every row in
 * a process of its own) and reports its slowest or its fastest placement as
 * a percentage of the reference. */
#define PLACE_COUNT 64
#define PLACE_STEP 64
#define PLACE_ROUNDS 5
#define PLACE_SLICE 40 /* slices per p->seconds */

struct place_slice {
    int64_t start_ns, end_ns; /* the producer's first put, the consumer's marker */
    uint64_t put, got;
};

struct place_sweep {
    conc_queue *reference, *queues[PLACE_COUNT];
    int64_t slice_ns;
    /* [round][k][0]: the reference's slice before placement k's, [1]: k's;
     * [round][PLACE_COUNT][0]: the reference's slice after the last */
    struct place_slice slices[PLACE_ROUNDS][PLACE_COUNT + 1][2];
    _Atomic bool bad;
};

static conc_queue *place_queue(struct place_sweep *sw, int k, int which)
{
    return which == 0 ? sw->reference : sw->queues[k];
}

/* Whether slot (k, which) is in a round: the reference, then each placement,
 * then the reference again. */
static bool place_slot(int k, int which)
{
    return k < PLACE_COUNT || which == 0;
}

static void *place_producer(void *arg)
{
    struct place_sweep *sw = arg;
    for (int round = 0; round < PLACE_ROUNDS; round++)
        for (int k = 0; k <= PLACE_COUNT; k++)
            for (int which = 0; which < 2 && place_slot(k, which); which++) {
                conc_queue *q = place_queue(sw, k, which);
                struct place_slice *sl = &sw->slices[round][k][which];
                int64_t t0 = bench_now_ns(), until = t0 + sw->slice_ns;
                uint64_t v = 1;
                while ((v & 1023) != 0 || bench_now_ns() < until) {
                    if (!cq_put(q, v))
                        atomic_store(&sw->bad, true);
                    v++;
                }
                sl->start_ns = t0;
                sl->put = v - 1;
                if (!cq_put(q, 0))
                    atomic_store(&sw->bad, true);
            }
    return NULL;
}

static void *place_consumer(void *arg)
{
    struct place_sweep *sw = arg;
    for (int round = 0; round < PLACE_ROUNDS; round++)
        for (int k = 0; k <= PLACE_COUNT; k++)
            for (int which = 0; which < 2 && place_slot(k, which); which++) {
                conc_queue *q = place_queue(sw, k, which);
                uint64_t v, expect = 1;
                while (cq_get(q, &v) && v != 0) {
                    if (v != expect)
                        atomic_store(&sw->bad, true);
                    expect++;
                }
                sw->slices[round][k][which].end_ns = bench_now_ns();
                sw->slices[round][k][which].got = expect - 1;
            }
    return NULL;
}

static int place_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double place_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, place_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A slice's items a second; 0 if it lost or invented an item. */
static double place_rate(const struct place_slice *sl)
{
    int64_t ns = sl->end_ns - sl->start_ns;
    if (sl->put != sl->got || ns <= 0) {
        fprintf(stderr, "queue.spsc.placement: a slice put %llu items, took %llu\n",
                (unsigned long long)sl->put, (unsigned long long)sl->got);
        return 0;
    }
    return (double)sl->got * 1e9 / (double)ns;
}

/* Measures every placement: the slowest and the fastest as a fraction of
 * the reference; 0, or 1 if anything failed. */
static int place_measure(struct place_sweep *sw, double *slowest, double *fastest)
{
    pthread_t producer, consumer;
    if (pthread_create(&consumer, NULL, place_consumer, sw) != 0 ||
        pthread_create(&producer, NULL, place_producer, sw) != 0) {
        perror("pthread_create");
        exit(1);
    }
    pthread_join(producer, NULL);
    pthread_join(consumer, NULL);
    if (atomic_load(&sw->bad)) {
        fprintf(stderr, "queue.spsc.placement: an item out of order or a call failed\n");
        return 1;
    }
    double lo = 1, hi = 1;
    for (int k = 0; k < PLACE_COUNT; k++) {
        double ratios[PLACE_ROUNDS];
        for (int round = 0; round < PLACE_ROUNDS; round++) {
            double before = place_rate(&sw->slices[round][k][0]);
            double rate = place_rate(&sw->slices[round][k][1]);
            double after = place_rate(&sw->slices[round][k + 1][0]);
            if (before <= 0 || rate <= 0 || after <= 0)
                return 1;
            ratios[round] = 2 * rate / (before + after);
        }
        double ratio = place_median(ratios, PLACE_ROUNDS);
        lo = k == 0 || ratio < lo ? ratio : lo;
        hi = k == 0 || ratio > hi ? ratio : hi;
    }
    *slowest = lo;
    *fastest = hi;
    return 0;
}

static int cq_placement_sweep(const struct bench_params *p, struct bench_result *r, bool fastest)
{
    struct place_sweep *sw = calloc(1, sizeof *sw);
    void *pads[PLACE_COUNT] = {0};
    int rc = sw && (sw->reference = cq_create_default()) ? 0 : 1;
    for (int k = 0; k < PLACE_COUNT && rc == 0; k++) {
        pads[k] = malloc((size_t)(k + 1) * PLACE_STEP - 16); /* glibc adds 16 bytes of header */
        sw->queues[k] = cq_create_default();
        if (!pads[k] || !sw->queues[k])
            rc = 1;
    }
    if (rc == 0) {
        sw->slice_ns = (int64_t)(p->seconds * 1e9) / PLACE_SLICE;
        double lo = 0, hi = 0;
        rc = place_measure(sw, &lo, &hi);
        r->value = 100 * (fastest ? hi : lo);
        r->cpu_pct = -1;
        r->fair = -1;
    }
    for (int k = 0; sw && k < PLACE_COUNT; k++) {
        if (sw->queues[k] && conc_queue_destroy(sw->queues[k]) != 0)
            rc = 1;
        free(pads[k]);
    }
    if (sw && sw->reference && conc_queue_destroy(sw->reference) != 0)
        rc = 1;
    free(sw);
    return rc;
}

static int cq_placement_slowest(const struct bench_params *p, struct bench_result *r)
{
    return cq_placement_sweep(p, r, false);
}

static int cq_placement_fastest(const struct bench_params *p, struct bench_result *r)
{
    return cq_placement_sweep(p, r, true);
}

QUEUE_BENCH(cqsp, conc_queue, cq_create_spsc, conc_queue_destroy, cq_put, cq_get)

/* ---- the textbook ring: one mutex, two condition variables ---- */

struct tb_ring {
    pthread_mutex_t m;
    pthread_cond_t not_full, not_empty;
    size_t head, count;
    uint64_t slots[CAPACITY];
};

static struct tb_ring *tb_create(void)
{
    struct tb_ring *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    pthread_mutex_init(&q->m, NULL);
    pthread_cond_init(&q->not_full, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    return q;
}
static int tb_destroy(struct tb_ring *q)
{
    int rc = pthread_mutex_destroy(&q->m) | pthread_cond_destroy(&q->not_full) |
             pthread_cond_destroy(&q->not_empty);
    free(q);
    return rc;
}
static inline bool tb_put(struct tb_ring *q, uint64_t v)
{
    pthread_mutex_lock(&q->m);
    while (q->count == CAPACITY)
        pthread_cond_wait(&q->not_full, &q->m);
    q->slots[(q->head + q->count) % CAPACITY] = v;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->m);
    return true;
}
static inline bool tb_get(struct tb_ring *q, uint64_t *v)
{
    pthread_mutex_lock(&q->m);
    while (q->count == 0)
        pthread_cond_wait(&q->not_empty, &q->m);
    *v = q->slots[q->head];
    q->head = (q->head + 1) % CAPACITY;
    q->count--;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->m);
    return true;
}

QUEUE_BENCH(tb, struct tb_ring, tb_create, tb_destroy, tb_put, tb_get)

/* ---- GLib's GAsyncQueue (unbounded) ---- */

static GAsyncQueue *glib_create(void)
{
    return g_async_queue_new();
}
static int glib_destroy(GAsyncQueue *q)
{
    int left = g_async_queue_length(q);
    g_async_queue_unref(q);
    return left != 0;
}
static inline bool glib_put(GAsyncQueue *q, uint64_t v)
{
    g_async_queue_push(q, GSIZE_TO_POINTER(v + 1));
    return true;
}
static inline bool glib_get(GAsyncQueue *q, uint64_t *v)
{
    *v = GPOINTER_TO_SIZE(g_async_queue_pop(q)) - 1;
    return true;
}

QUEUE_BENCH(glib, GAsyncQueue, glib_create, glib_destroy, glib_put, glib_get)

/* ---- Concurrency Kit's ck_ring: spins, cannot block ---- */

struct ck_q {
    ck_ring_t ring;
    ck_ring_buffer_t buf[CAPACITY];
};

static struct ck_q *ck_create(void)
{
    struct ck_q *q = aligned_alloc(64, sizeof(struct ck_q));
    if (q)
        ck_ring_init(&q->ring, CAPACITY);
    return q;
}
static int ck_destroy(struct ck_q *q)
{
    unsigned left = ck_ring_size(&q->ring);
    free(q);
    return left != 0;
}
static inline bool ck_put_spsc(struct ck_q *q, uint64_t v)
{
    while (!ck_ring_enqueue_spsc(&q->ring, q->buf, (void *)(uintptr_t)v))
        ck_pr_stall();
    return true;
}
static inline bool ck_get_spsc(struct ck_q *q, uint64_t *v)
{
    void *x;
    while (!ck_ring_dequeue_spsc(&q->ring, q->buf, &x))
        ck_pr_stall();
    *v = (uintptr_t)x;
    return true;
}
static inline bool ck_put_mpmc(struct ck_q *q, uint64_t v)
{
    while (!ck_ring_enqueue_mpmc(&q->ring, q->buf, (void *)(uintptr_t)v))
        ck_pr_stall();
    return true;
}
static inline bool ck_get_mpmc(struct ck_q *q, uint64_t *v)
{
    void *x;
    while (!ck_ring_dequeue_mpmc(&q->ring, q->buf, &x))
        ck_pr_stall();
    *v = (uintptr_t)x;
    return true;
}

QUEUE_BENCH(ckspsc, struct ck_q, ck_create, ck_destroy, ck_put_spsc, ck_get_spsc)
QUEUE_BENCH(ckmpmc, struct ck_q, ck_create, ck_destroy, ck_put_mpmc, ck_get_mpmc)

/* ---- the cases ---- */

/* clang-format off */
#define PYTHON {"python", NULL}
#define PYTHON_MP {"python:mp", NULL}
#define END {0}

static const struct bench_impl spsc_impls[] = {
    {"conc", cq_spsc}, {"conc:spsc", cqsp_spsc}, {"textbook", tb_spsc}, {"glib", glib_spsc},
    {"ck", ckspsc_spsc}, PYTHON, PYTHON_MP, END};
static const struct bench_impl placement_impls[] = {
    {"conc:slowest", cq_placement_slowest}, {"conc:fastest", cq_placement_fastest}, END};
static const struct bench_impl mpmc_impls[] = {
    {"conc", cq_mpmc}, {"textbook", tb_mpmc}, {"glib", glib_mpmc}, {"ck", ckmpmc_mpmc}, PYTHON,
    END};
static const struct bench_impl pingpong_impls[] = {
    {"conc", cq_pingpong}, {"textbook", tb_pingpong}, {"glib", glib_pingpong}, PYTHON, END};
/* clang-format on */

const struct bench_case bench_queue_spsc = {
    "queue.spsc", "items/s",
    "1 producer, 1 consumer, 8-byte items, capacity 1024, blocking put/get, fixed time; every "
    "item checked. ck only spins (it cannot block); glib is unbounded; python:mp is two processes",
    2, spsc_impls};
const struct bench_case bench_queue_spsc_placement = {
    "queue.spsc.placement", "% of ref",
    "queue.spsc's default queue created at 64 placements across a page (a padding allocation "
    "moves malloc's next blocks 64 bytes more each time), one producer and one consumer going "
    "through them, each placement's slice paired with one on a reference queue; the slowest and "
    "the fastest placement, in % of the reference's items/s (median of 5 rounds)",
    2, placement_impls};
const struct bench_case bench_queue_mpmc = {
    "queue.mpmc", "items/s",
    "2 producers, 2 consumers, 8-byte items, capacity 1024, blocking put/get, fixed time; every "
    "item checked. ck only spins (it cannot block); glib is unbounded",
    4, mpmc_impls};
const struct bench_case bench_queue_pingpong = {
    "queue.pingpong", "ns/op",
    "two threads bounce an item through two queues of capacity 1024 (ns per round trip); every "
    "answer checked",
    2, pingpong_impls};
