/* Chapter "semaphores": a semaphore of 3 lets at most 3 threads in.
 *
 * 8 threads arrive STAGGER_MS apart and each keeps visiting for ACTIVE_MS:
 * acquire, hold the "resource" 1-4 ms, release. Each counts itself in and out
 * of an atomic `inside` counter (after acquire, before release, so inside
 * never exceeds the holders) and raises a shared high-water mark; the main
 * thread samples inside and waiting every SAMPLE_MS and draws them, so the
 * crowd is seen building up and draining away. A high-water mark above SLOTS
 * would be a broken semaphore: the chapter fails then. The semaphore is
 * bounded (Python's BoundedSemaphore), so an extra release would be refused,
 * and it must read SLOTS again at the end.
 */
#include "tour.h"

#include <conc/conc.h>
#include <stdatomic.h>
#include <stdio.h>

#define SLOTS 3
#define NTHREADS 8
#define STAGGER_MS 30
#define ACTIVE_MS 330
#define RUN_MS 600 /* the last thread leaves at 7 * 30 + 330 = 540 ms */
#define SAMPLE_MS 10
#define NSAMPLES (RUN_MS / SAMPLE_MS)

struct gate {
    conc_sem sem;
    atomic_int inside, waiting, high_water;
    atomic_llong held_ns; /* total time spent inside */
    int64_t t0;           /* when the run started */
};

struct visitor {
    struct gate *g;
    unsigned seed;
    int64_t arrive_ns, leave_ns; /* after g->t0 */
    long acquisitions;
};

static void raise_high_water(struct gate *g, int now)
{
    int hw = atomic_load(&g->high_water);
    while (now > hw && !atomic_compare_exchange_weak(&g->high_water, &hw, now))
        ;
}

/* One visit: wait for a slot, hold it 1-4 ms, leave. */
static int visit(struct visitor *v)
{
    struct gate *g = v->g;
    atomic_fetch_add(&g->waiting, 1);
    int rc = conc_sem_acquire(&g->sem);
    atomic_fetch_sub(&g->waiting, 1);
    if (rc != 0)
        return rc;
    int64_t t0 = conc_now_ns();
    raise_high_water(g, atomic_fetch_add(&g->inside, 1) + 1);
    v->seed = v->seed * 1103515245u + 12345u;
    conc_sleep(CONC_MSEC(1 + (v->seed >> 16) % 4));
    atomic_fetch_sub(&g->inside, 1);
    atomic_fetch_add(&g->held_ns, conc_now_ns() - t0);
    v->acquisitions++;
    return conc_sem_release(&g->sem);
}

static int visitor_main(void *arg)
{
    struct visitor *v = arg;
    int64_t until_arrival = v->g->t0 + v->arrive_ns - conc_now_ns();
    if (until_arrival > 0)
        conc_sleep(until_arrival);
    while (conc_now_ns() - v->g->t0 < v->leave_ns) {
        int rc = visit(v);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* One character per sample: a bar as high as the count, out of `full`. */
static void sparkline(const char *label, const int *samples, int full)
{
    static const char *const bars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
    printf("  %-8s ", label);
    for (int i = 0; i < NSAMPLES; i++) {
        int level = samples[i] <= 0 ? 0 : (samples[i] * 7 + full - 1) / full;
        printf("%s", samples[i] > full ? "!" : bars[level > 7 ? 7 : level]);
    }
    printf("\n");
}

static void sample(struct gate *g, int *inside, int *waiting)
{
    for (int i = 0; i < NSAMPLES; i++) {
        conc_sleep(CONC_MSEC(SAMPLE_MS));
        inside[i] = atomic_load(&g->inside);
        waiting[i] = atomic_load(&g->waiting);
        tour_progress("8 threads, a semaphore of 3: %d inside, %d waiting", inside[i], waiting[i]);
    }
}

static int run_visitors(struct gate *g, struct visitor *v, int *inside, int *waiting,
                        int64_t *wall_ns)
{
    conc_thread *t[NTHREADS];
    int started = 0, rc = 0, status;
    g->t0 = conc_now_ns();
    for (; started < NTHREADS && rc == 0; started++)
        rc = conc_thread_create(&t[started], visitor_main, &v[started], NULL);
    if (rc != 0)
        started--;
    else
        sample(g, inside, waiting);
    for (int i = 0; i < started; i++) {
        conc_thread_join(t[i], &status);
        conc_thread_destroy(t[i]);
        rc = rc ? rc : status;
    }
    *wall_ns = conc_now_ns() - g->t0;
    return rc;
}

static void report(const struct gate *g, const struct visitor *v, const int *inside,
                   const int *waiting, int64_t wall_ns)
{
    long total = 0, lo = v[0].acquisitions, hi = v[0].acquisitions;
    for (int i = 0; i < NTHREADS; i++) {
        total += v[i].acquisitions;
        lo = v[i].acquisitions < lo ? v[i].acquisitions : lo;
        hi = v[i].acquisitions > hi ? v[i].acquisitions : hi;
    }
    printf("  threads inside (full bar: %d) and waiting (full bar: %d), sampled every %d ms:\n\n",
           SLOTS, NTHREADS - SLOTS, SAMPLE_MS);
    sparkline("inside", inside, SLOTS);
    sparkline("waiting", waiting, NTHREADS - SLOTS);
    char end[16];
    snprintf(end, sizeof end, "%d ms", RUN_MS);
    printf("  %-8s %-*s%*s\n", "", NSAMPLES / 2, "0 ms", NSAMPLES - NSAMPLES / 2, end);
    int most_waiting = 0;
    for (int i = 0; i < NSAMPLES; i++)
        most_waiting = waiting[i] > most_waiting ? waiting[i] : most_waiting;
    double held = (double)atomic_load(&g->held_ns);
    printf("\n  %-30s %8d\n", "most threads inside at once", atomic_load(&g->high_water));
    printf("  %-30s %8d\n", "most seen waiting", most_waiting);
    printf("  %-30s %8ld  (per thread %ld to %ld)\n", "acquisitions", total, lo, hi);
    printf("  %-30s %8.2f\n", "mean time held, ms", held / (double)(total ? total : 1) / 1e6);
    printf("  %-30s %7.0f%%  (of %d slots x %.0f ms)\n", "slot time used",
           100.0 * held / ((double)SLOTS * (double)wall_ns), SLOTS, tour_ms(wall_ns));
    printf("\n  Never more than %d inside, though up to %d more waited at the door;\n"
           "  as threads arrive the inside count climbs to %d and stays there until\n"
           "  fewer than %d want in.\n",
           atomic_load(&g->high_water), most_waiting, SLOTS, SLOTS);
}

static int semaphores_run(void)
{
    tour_paragraph("A semaphore is a counter of free slots: acquire takes one, waiting while "
                   "none is left; release gives it back. A semaphore of 1 is a lock; a semaphore "
                   "of N limits how many threads use something at once — connections to a "
                   "database, downloads in flight, a pool of buffers. Below, 8 threads keep "
                   "asking for a resource guarded by a semaphore of 3 and hold it 1 to 4 ms "
                   "each time; they arrive one by one and later leave one by one, and the main "
                   "thread watches how many are inside and how many wait.");
    static struct gate g;
    struct visitor v[NTHREADS];
    int inside[NSAMPLES] = {0}, waiting[NSAMPLES] = {0};
    int rc = conc_sem_init(&g.sem, SLOTS, &(conc_sem_opts){.bound = SLOTS});
    if (rc != 0)
        return rc;
    for (int i = 0; i < NTHREADS; i++)
        v[i] = (struct visitor){.g = &g,
                                .seed = 7u * (unsigned)i + 1u,
                                .arrive_ns = CONC_MSEC(i * STAGGER_MS),
                                .leave_ns = CONC_MSEC(i * STAGGER_MS + ACTIVE_MS)};
    int64_t wall_ns;
    rc = run_visitors(&g, v, inside, waiting, &wall_ns);
    int end_value = conc_sem_value(&g.sem);
    int drc = conc_sem_destroy(&g.sem);
    if (rc != 0)
        return rc;
    tour_progress_done();
    report(&g, v, inside, waiting, wall_ns);
    bool ok = atomic_load(&g.high_water) >= 1 && atomic_load(&g.high_water) <= SLOTS;
    for (int i = 0; i < NSAMPLES; i++)
        ok = ok && inside[i] <= SLOTS;
    printf("  At the end the semaphore reads %d again: every slot came back.\n", end_value);
    return ok && end_value == SLOTS && drc == 0 ? 0 : CONC_EIO;
}

const struct tour_chapter tour_semaphores = {
    .name = "semaphores",
    .title = "Semaphores: at most N at a time",
    .run = semaphores_run,
};
