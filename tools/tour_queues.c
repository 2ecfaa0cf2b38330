/* Chapter "queues": producers and consumers, and backpressure.
 *
 * NPROD producers each make an item every MAKE_US (a sleep: the "work") and
 * put it in a FIFO queue of CAPACITY; NCONS consumers get items and work on
 * each for ph->consume_ns (none, then SLOW_CONSUME_US). Two phases of PHASE_MS, each with a fresh
 * queue and fresh threads: fast consumers (no work: the queue stays near empty) and slow ones
 * (their combined rate is below the producers': the queue fills and puts wait for room, so the
 * producers slow to the consumers' rate). A put first tries with timeout 0; only when that finds
 * the queue full does the producer count a wait and block. The main thread samples the fill level
 * (conc_queue_size) and the number of blocked producers every SAMPLE_MS and
 * draws one column per COL_SAMPLES samples, their mean.
 *
 * The rates are the items put and finished by the end of the phase, over its
 * length. Checked, not just shown: every item id (seq * NPROD + producer) is
 * consumed exactly once; no fill level seen — by the sampler, by a producer
 * after its put, by a consumer after its get — exceeds CAPACITY; and the
 * producers are never more than CAPACITY + NCONS items ahead of the consumers
 * (what the queue holds plus one in each consumer's hands): the bound a
 * bounded queue promises. The sampler reads `produced` before `consumed`, so
 * a sampled lag is never more than the true lag at the first read. Speeds are
 * printed and compared, never checked.
 */
#include "tour.h"

#include <conc/conc.h>
#include <stdatomic.h>
#include <stdio.h>

#define NPROD 2
#define NCONS 2
#define CAPACITY 8
#define MAKE_US 500          /* per item, per producer: about 2 x 2000 items/s */
#define SLOW_CONSUME_US 2000 /* per item, per consumer: about 2 x 500 items/s */
#define PHASE_MS 600
#define SAMPLE_MS 2
#define COL_SAMPLES 5 /* one column per 10 ms */
#define NSAMPLES (PHASE_MS / SAMPLE_MS)
#define NCOLS (NSAMPLES / COL_SAMPLES)
#define MAX_SEQ 4096 /* items per producer at most: 1200 fit in a phase */

enum { FAST, SLOW, NPHASES };

struct phase {
    const char *name;
    int64_t consume_ns; /* a consumer's work per item */
    conc_queue *q;
    int64_t t0;
    _Atomic int64_t end; /* producers make no item after end */
    atomic_long produced, consumed;
    atomic_int blocked; /* producers now blocked in a put */
    atomic_int max_fill;
    atomic_int seen[NPROD * MAX_SEQ]; /* times each id was consumed */
    atomic_int bad_ids;
    /* What the main thread saw. */
    int fill[NSAMPLES], nblocked[NSAMPLES];
    long lag_max; /* produced - consumed, largest sampled */
    long produced_end, consumed_end;
    int64_t window_ns;
};

struct producer {
    struct phase *ph;
    int index;
    long made, waits;
    int64_t wait_ns, run_ns;
};

static void raise_max(atomic_int *max, int now)
{
    int m = atomic_load(max);
    while (now > m && !atomic_compare_exchange_weak(max, &m, now))
        ;
}

static void note_fill(struct phase *ph)
{
    raise_max(&ph->max_fill, (int)conc_queue_size(ph->q));
}

/* Puts id: tries without waiting first, so that a wait for room is seen. */
static int put_item(struct producer *p, long id)
{
    struct phase *ph = p->ph;
    int rc = conc_queue_put_timed(ph->q, &id, 0);
    if (rc != CONC_EFULL)
        return rc;
    p->waits++;
    atomic_fetch_add(&ph->blocked, 1);
    int64_t t0 = conc_now_ns();
    rc = conc_queue_put(ph->q, &id);
    p->wait_ns += conc_now_ns() - t0;
    atomic_fetch_sub(&ph->blocked, 1);
    return rc;
}

static int producer_main(void *arg)
{
    struct producer *p = arg;
    struct phase *ph = p->ph;
    int64_t t0 = conc_now_ns();
    while (conc_now_ns() < atomic_load(&ph->end) && p->made < MAX_SEQ) {
        conc_sleep(CONC_USEC(MAKE_US)); /* making the item */
        int rc = put_item(p, p->made * NPROD + p->index);
        if (rc != 0)
            return rc;
        p->made++;
        atomic_fetch_add(&ph->produced, 1);
        note_fill(ph);
    }
    p->run_ns = conc_now_ns() - t0;
    return 0;
}

/* Gets until the queue is shut down and empty. */
static int consumer_main(void *arg)
{
    struct phase *ph = arg;
    for (;;) {
        long id;
        int rc = conc_queue_get(ph->q, &id);
        if (rc == CONC_ESHUTDOWN)
            return 0;
        if (rc != 0)
            return rc;
        note_fill(ph);
        if (id >= 0 && id < NPROD * MAX_SEQ)
            atomic_fetch_add(&ph->seen[id], 1);
        else
            atomic_fetch_add(&ph->bad_ids, 1);
        if (ph->consume_ns)
            conc_sleep(ph->consume_ns); /* working on it */
        atomic_fetch_add(&ph->consumed, 1);
        rc = conc_queue_task_done(ph->q);
        if (rc != 0)
            return rc;
    }
}

/* Samples every SAMPLE_MS until the phase's end, on a fixed schedule. */
static void sample(struct phase *ph)
{
    for (int i = 0; i < NSAMPLES; i++) {
        int64_t wait = ph->t0 + CONC_MSEC((i + 1) * SAMPLE_MS) - conc_now_ns();
        if (wait > 0)
            conc_sleep(wait);
        long produced = atomic_load(&ph->produced); /* first: the lag is never overstated */
        long consumed = atomic_load(&ph->consumed);
        ph->fill[i] = (int)conc_queue_size(ph->q);
        ph->nblocked[i] = atomic_load(&ph->blocked);
        raise_max(&ph->max_fill, ph->fill[i]);
        ph->lag_max = produced - consumed > ph->lag_max ? produced - consumed : ph->lag_max;
        if (i % COL_SAMPLES == 0)
            tour_progress("%s consumers: %d in the queue, %d producers blocked", ph->name,
                          ph->fill[i], ph->nblocked[i]);
    }
    ph->produced_end = atomic_load(&ph->produced);
    ph->consumed_end = atomic_load(&ph->consumed);
    ph->window_ns = conc_now_ns() - ph->t0;
}

static int join_threads(conc_thread **t, int n, int rc)
{
    for (int i = 0; i < n; i++) {
        int status = 0;
        conc_thread_join(t[i], &status);
        conc_thread_destroy(t[i]);
        rc = rc ? rc : status;
    }
    return rc;
}

/* Starts n threads on fn(arg(i)); returns 0 or an error, *started set. */
static int start_threads(conc_thread **t, int n, conc_thread_fn fn, void *args, size_t size,
                         int *started)
{
    int rc = 0;
    for (*started = 0; *started < n && rc == 0;) {
        rc = conc_thread_create(&t[*started], fn, (char *)args + (size_t)*started * size, NULL);
        *started += rc == 0;
    }
    return rc;
}

/* One phase: start everything, watch, then drain and shut down cleanly. */
static int run_phase(struct phase *ph, struct producer *prod)
{
    conc_queue_opts opts = {.kind = CONC_QUEUE_FIFO, .capacity = CAPACITY};
    int rc = conc_queue_create(&ph->q, sizeof(long), &opts);
    if (rc != 0)
        return rc;
    conc_thread *pt[NPROD], *ct[NCONS];
    int np = 0, nc = 0;
    ph->t0 = conc_now_ns();
    atomic_store(&ph->end, ph->t0 + CONC_MSEC(PHASE_MS));
    for (int i = 0; i < NPROD; i++)
        prod[i] = (struct producer){.ph = ph, .index = i};
    rc = start_threads(ct, NCONS, consumer_main, ph, 0, &nc);
    if (rc == 0)
        rc = start_threads(pt, NPROD, producer_main, prod, sizeof prod[0], &np);
    if (rc == 0)
        sample(ph);
    else
        atomic_store(&ph->end, conc_now_ns()); /* started producers stop soon */
    rc = join_threads(pt, np, rc);
    /* Every item is in; join returns once the consumers finished them all. */
    int jrc = rc == 0 ? conc_queue_join_timed(ph->q, CONC_SEC(10)) : 0;
    conc_queue_shutdown(ph->q, jrc != 0 || rc != 0); /* consumers leave on ESHUTDOWN */
    rc = join_threads(ct, nc, rc ? rc : jrc);
    int drc = conc_queue_destroy(ph->q);
    return rc ? rc : drc;
}

/* The ids each producer made were each consumed once; nothing else was. */
static bool exactly_once(struct phase *ph, const struct producer *prod)
{
    bool ok = atomic_load(&ph->bad_ids) == 0;
    long made = 0;
    for (int p = 0; p < NPROD; p++) {
        made += prod[p].made;
        for (long s = 0; s < MAX_SEQ; s++)
            ok = ok && atomic_load(&ph->seen[s * NPROD + p]) == (s < prod[p].made ? 1 : 0);
    }
    return ok && atomic_load(&ph->consumed) == made;
}

/* One character per column: the mean of its samples, out of `full`. */
static void sparkline(const char *label, const int *samples, int full)
{
    static const char *const bars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
    printf("    %-8s ", label);
    for (int c = 0; c < NCOLS; c++) {
        int sum = 0;
        for (int i = 0; i < COL_SAMPLES; i++)
            sum += samples[c * COL_SAMPLES + i];
        double mean = (double)sum / COL_SAMPLES;
        int level = (int)(mean * 7.0 / full + 0.5);
        printf("%s", mean > full ? "!" : bars[level > 7 ? 7 : level]);
    }
    printf("\n");
}

struct figures {
    double put_rate, done_rate, fill_mean, full_pct, wait_pct, wait_time_pct;
    long puts, waits;
};

static struct figures figures_of(const struct phase *ph, const struct producer *prod)
{
    struct figures f = {0};
    double secs = (double)ph->window_ns / 1e9;
    f.put_rate = (double)ph->produced_end / secs;
    f.done_rate = (double)ph->consumed_end / secs;
    int sum = 0, full = 0;
    for (int i = 0; i < NSAMPLES; i++) {
        sum += ph->fill[i];
        full += ph->fill[i] == CAPACITY;
    }
    f.fill_mean = (double)sum / NSAMPLES;
    f.full_pct = 100.0 * full / NSAMPLES;
    int64_t wait_ns = 0, run_ns = 0;
    for (int p = 0; p < NPROD; p++) {
        f.puts += prod[p].made;
        f.waits += prod[p].waits;
        wait_ns += prod[p].wait_ns;
        run_ns += prod[p].run_ns;
    }
    f.wait_pct = 100.0 * (double)f.waits / (double)(f.puts ? f.puts : 1);
    f.wait_time_pct = 100.0 * (double)wait_ns / (double)(run_ns ? run_ns : 1);
    return f;
}

static void draw(const struct phase *ph)
{
    for (int k = 0; k < NPHASES; k++) {
        printf("  %s consumers\n", ph[k].name);
        sparkline("queue", ph[k].fill, CAPACITY);
        sparkline("blocked", ph[k].nblocked, NPROD);
    }
    char end[16];
    snprintf(end, sizeof end, "%d ms", PHASE_MS);
    printf("    %-8s %-*s%*s\n", "", NCOLS / 2, "0 ms", NCOLS - NCOLS / 2, end);
}

static void table(const struct phase *ph, const struct figures *f)
{
    printf("\n  %-34s %10s %10s\n", "", "fast", "slow");
    printf("  %-34s %10.0f %10.0f\n", "items put per second", f[FAST].put_rate, f[SLOW].put_rate);
    printf("  %-34s %10.0f %10.0f\n", "items finished per second", f[FAST].done_rate,
           f[SLOW].done_rate);
    char label[40];
    snprintf(label, sizeof label, "mean queue fill (of %d)", CAPACITY);
    printf("  %-34s %10.2f %10.2f\n", label, f[FAST].fill_mean, f[SLOW].fill_mean);
    printf("  %-34s %9.0f%% %9.0f%%\n", "samples with the queue full", f[FAST].full_pct,
           f[SLOW].full_pct);
    printf("  %-34s %10d %10d\n", "largest fill seen", atomic_load(&ph[FAST].max_fill),
           atomic_load(&ph[SLOW].max_fill));
    printf("  %-34s %10ld %10ld\n", "puts", f[FAST].puts, f[SLOW].puts);
    printf("  %-34s %10ld %10ld\n", "puts that waited for room", f[FAST].waits, f[SLOW].waits);
    printf("  %-34s %9.0f%% %9.0f%%\n", "producer time spent waiting", f[FAST].wait_time_pct,
           f[SLOW].wait_time_pct);
    printf("  %-34s %10ld %10ld\n", "most items put and not finished", ph[FAST].lag_max,
           ph[SLOW].lag_max);
}

static void conclude(const struct phase *ph, const struct figures *f)
{
    const struct figures *a = &f[FAST], *b = &f[SLOW];
    printf("\n  With fast consumers the queue held %.2f items on average and %ld of %ld\n"
           "  puts waited for room: the producers ran at their own pace, %.0f items/s.\n",
           a->fill_mean, a->waits, a->puts, a->put_rate);
    printf("  With slow consumers (at most %.0f items/s between them) the queue was full\n"
           "  in %.0f%% of the samples and %.0f%% of the puts waited for room",
           NCONS * 1e6 / SLOW_CONSUME_US, b->full_pct, b->wait_pct);
    if (b->put_rate < 0.8 * a->put_rate)
        printf(": the producers\n  slowed from %.0f to %.0f items/s, the %.0f items/s the "
               "consumers took.\n",
               a->put_rate, b->put_rate, b->done_rate);
    else
        printf(", yet the\n  producers kept %.0f of their %.0f items/s (a busy machine?).\n",
               b->put_rate, a->put_rate);
    long lag = ph[SLOW].lag_max > ph[FAST].lag_max ? ph[SLOW].lag_max : ph[FAST].lag_max;
    printf("  That is backpressure: the producers got at most %ld items ahead of the\n"
           "  consumers (the limit: %d in the queue + 1 in each consumer's hands = %d)",
           lag, CAPACITY, CAPACITY + NCONS);
    double growth = a->put_rate - b->done_rate;
    if (growth > 0)
        printf(";\n  an unbounded queue would instead have grown by about %.0f items a second.\n",
               growth);
    else
        printf(".\n");
}

static int queues_run(void)
{
    tour_paragraph("The lost update of the locks chapter came from threads sharing memory. "
                   "A queue lets them share nothing instead: a producer puts an item in, a "
                   "consumer takes it out, and from then on only that consumer touches it; all "
                   "the locking happens inside the queue. A bounded queue also gives "
                   "backpressure: when the consumers fall behind, the queue fills, put waits for "
                   "room, and the producers slow to the consumers' pace instead of piling up work "
                   "without limit. Below, 2 producers each make an item every 0.5 ms and put it "
                   "in a queue of 8; 2 consumers take the items, first as fast as they can, then "
                   "spending 2 ms on each. The main thread watches how full the queue is and how "
                   "many producers wait.");
    static struct phase ph[NPHASES];
    static struct producer prod[NPHASES][NPROD];
    ph[FAST].name = "fast"; /* ph is static: everything else starts at zero */
    ph[SLOW].name = "slow";
    ph[SLOW].consume_ns = CONC_USEC(SLOW_CONSUME_US);
    bool once = true, bounded = true;
    for (int k = 0; k < NPHASES; k++) {
        int rc = run_phase(&ph[k], prod[k]);
        if (rc != 0)
            return rc;
        once = once && exactly_once(&ph[k], prod[k]);
        bounded = bounded && atomic_load(&ph[k].max_fill) <= CAPACITY &&
                  ph[k].lag_max <= CAPACITY + NCONS;
    }
    tour_progress_done();
    struct figures f[NPHASES] = {figures_of(&ph[FAST], prod[FAST]),
                                 figures_of(&ph[SLOW], prod[SLOW])};
    printf("  queue fill (full bar: %d items) and producers blocked in put (full bar: %d),\n"
           "  each column the mean over %d ms:\n\n",
           CAPACITY, NPROD, SAMPLE_MS * COL_SAMPLES);
    draw(ph);
    table(ph, f);
    conclude(ph, f);
    if (once)
        printf("  Each of the %ld items was consumed exactly once.\n", f[FAST].puts + f[SLOW].puts);
    else
        printf("  BROKEN: some item was lost, or consumed twice.\n");
    if (!bounded)
        printf("  BROKEN: the queue held more than %d items, or the producers got more than %d "
               "ahead.\n",
               CAPACITY, CAPACITY + NCONS);
    return once && bounded ? 0 : CONC_EIO;
}

const struct tour_chapter tour_queues = {
    .name = "queues",
    .title = "Queues: hand data over instead of sharing it",
    .run = queues_run,
};
