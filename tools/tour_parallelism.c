/* Chapter "parallelism": concurrency versus parallelism, measured.
 *
 * The same CPU-bound jobs (counting primes by trial division) run three
 * ways: one after another on one thread; on one thread each but all pinned to
 * a single core, so they take turns (concurrency without parallelism); and on
 * one thread each, free to spread over every core (parallelism). The wall
 * times, CPU times and the scheduler's involuntary switches tell them apart.
 *
 * tour_parallelism_trace (for the bugs chapter) runs the three ways again on
 * short jobs while recording a timeline: each way and each job a span, each
 * job thread named, so that the trace shows the jobs one after another, then
 * overlapping but stretched on one core, then side by side.
 */
#define _GNU_SOURCE
#include "tour.h"

#include <conc/conc.h>
#include <sched.h>
#include <stdio.h>
#include <sys/resource.h>

struct job {
    uint32_t lo, hi;
    int pin_cpu; /* -1: free */
    uint32_t primes;
};

/* The first CPU this process may run on: "one core" must be one it has. */
static int first_allowed_cpu(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set))
                return c;
    return 0;
}

static int run_job(void *arg)
{
    struct job *j = arg;
    if (j->pin_cpu >= 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(j->pin_cpu, &one);
        sched_setaffinity(0, sizeof one, &one);
    }
    conc_trace_begin("count primes"); /* a no-op unless tracing */
    j->primes = (uint32_t)tour_count_primes(j->lo, j->hi);
    conc_trace_end();
    return 0;
}

struct run_result {
    int64_t wall_ns, cpu_ns;
    long involuntary_switches;
    uint32_t primes;
};

static int64_t cpu_ns(struct rusage *ru, long *switches)
{
    *switches = ru->ru_nivcsw;
    return ((int64_t)ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) * 1000;
}

/* threads == 0: run the jobs one after another on the calling thread. */
static int run_jobs(struct job *jobs, int njobs, int threads, int pin_cpu, struct run_result *r)
{
    struct rusage ru0, ru1;
    long sw0, sw1;
    conc_thread *t[64];
    for (int i = 0; i < njobs; i++)
        jobs[i].pin_cpu = pin_cpu;
    getrusage(RUSAGE_SELF, &ru0);
    int64_t t0 = conc_now_ns();
    int rc = 0;
    if (threads == 0) {
        for (int i = 0; i < njobs; i++)
            run_job(&jobs[i]);
    } else {
        int started = 0;
        for (; started < njobs && rc == 0; started++) {
            char name[16];
            snprintf(name, sizeof name, "job %d", started);
            conc_thread_opts opts = {.name = name};
            rc = conc_thread_create(&t[started], run_job, &jobs[started], &opts);
        }
        if (rc != 0)
            started--;
        for (int i = 0; i < started; i++) {
            conc_thread_join(t[i], NULL);
            conc_thread_destroy(t[i]);
        }
    }
    r->wall_ns = conc_now_ns() - t0;
    getrusage(RUSAGE_SELF, &ru1);
    r->cpu_ns = cpu_ns(&ru1, &sw1) - cpu_ns(&ru0, &sw0);
    r->involuntary_switches = sw1 - sw0;
    r->primes = 0;
    for (int i = 0; i < njobs; i++)
        r->primes += jobs[i].primes;
    return rc;
}

static const char *const way_names[] = {"one thread, jobs in turn", "threads on 1 core",
                                        "threads on all cores"};

/* Two jobs a CPU (at least 4, at most 64), of about target_ns each. */
static int make_jobs(struct job *jobs, int64_t target_ns)
{
    int cpus = conc_cpu_count();
    int njobs = cpus < 2 ? 4 : 2 * cpus;
    if (njobs > 64)
        njobs = 64;
    const uint32_t base = 1000000;
    uint32_t span = tour_prime_span(base, target_ns, 100000000u);
    for (int i = 0; i < njobs; i++) {
        jobs[i].lo = base + (uint32_t)i * span;
        jobs[i].hi = jobs[i].lo + span;
    }
    return njobs;
}

int tour_parallelism_trace(const char *path, int job_ms, int *njobs)
{
    struct job jobs[64];
    *njobs = make_jobs(jobs, job_ms * CONC_NSEC_PER_MSEC);
    int rc = conc_trace_start(path, 0);
    if (rc != 0)
        return rc;
    struct run_result r;
    for (int m = 0; m < 3 && rc == 0; m++) {
        conc_trace_begin(way_names[m]);
        rc = run_jobs(jobs, *njobs, m == 0 ? 0 : *njobs, m == 1 ? first_allowed_cpu() : -1, &r);
        conc_trace_end();
    }
    int stop = conc_trace_stop();
    return rc ? rc : stop;
}

static int parallelism_run(void)
{
    tour_paragraph(
        "Concurrency is about structure: several tasks in progress at once, taking "
        "turns. Parallelism is about execution: several tasks running at the same "
        "instant, on different cores. Threads give you both in C — there is no global "
        "interpreter lock — but only if there are cores to spread over. Below, the same "
        "CPU-bound jobs (counting primes) run one after another, then on one thread "
        "each but all pinned to one core (concurrent: they interleave, the scheduler "
        "switching between them), then on one thread each across every core (parallel).");

    int cpus = conc_cpu_count();
    tour_progress("calibrating the job size");
    struct job jobs[64];
    int njobs = make_jobs(jobs, 60 * CONC_NSEC_PER_MSEC); /* ~60 ms a job */

    const char *const *names = way_names;
    struct run_result r[3];
    for (int m = 0; m < 3; m++) {
        tour_progress("measuring: %s [%d/3]", names[m], m + 1);
        int rc = run_jobs(jobs, njobs, m == 0 ? 0 : njobs, m == 1 ? first_allowed_cpu() : -1, &r[m]);
        if (rc != 0)
            return rc;
    }
    tour_progress_done();

    printf("  %d jobs of ~60 ms each; %d CPU%s usable\n\n", njobs, cpus, cpus == 1 ? "" : "s");
    printf("  %-26s %8s %9s %9s %9s %12s\n", "how", "threads", "wall ms", "CPU ms", "speed-up",
           "preemptions");
    for (int m = 0; m < 3; m++)
        printf("  %-26s %8d %9.1f %9.1f %8.2fx %12ld\n", names[m], m == 0 ? 1 : njobs,
               tour_ms(r[m].wall_ns), tour_ms(r[m].cpu_ns),
               (double)r[0].wall_ns / (double)r[m].wall_ns, r[m].involuntary_switches);
    bool same = r[0].primes == r[1].primes && r[1].primes == r[2].primes;
    printf("\n  every run found the same %u primes: %s\n", r[0].primes, same ? "yes" : "NO");
    printf("\n  On one core the threads only take turns: the wall time stays that of the\n"
           "  serial run, and the scheduler preempts them %ld times to interleave them.\n"
           "  Spread over %d cores they run at once: %.2fx faster than one after another.\n",
           r[1].involuntary_switches, cpus, (double)r[0].wall_ns / (double)r[2].wall_ns);
    return same ? 0 : CONC_EIO;
}

const struct tour_chapter tour_parallelism = {
    .name = "parallelism",
    .title = "Concurrency vs parallelism",
    .run = parallelism_run,
};
