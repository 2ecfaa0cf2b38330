/* Chapter "processes": what a process buys over a thread, what it costs, a
 * pool of processes beside a pool of threads, and the system-wide lock that
 * survives its holder.
 *
 *   1. the cost: ROUNDS thread starts and joins against ROUNDS function
 *      starts in a child process (conc_process_start, through conc's fork
 *      server) and joins, each timed;
 *   2. isolation: a child that crashes (SIGSEGV) dies alone; the
 *      program reads -11 from the join and goes on (a thread doing the same
 *      would have taken the whole program down);
 *   3. the process pool beside the thread pool, both of one worker per CPU:
 *      a round trip (submit + result of a trivial task, checked) on each,
 *      timed; the same batch of prime-counting tasks (calibrated to about
 *      CPU_TARGET_MS on one thread) serially and on each pool, timed, every
 *      way finding the same primes; then a task that kills its own worker
 *      with SIGKILL: its future must answer CONC_EWORKERDIED with -9, the
 *      tasks around it their results, the dead worker must be replaced (the
 *      pids before and after are shown) and the next tasks served;
 *   4. the system-wide mutex: a child opens a named mutex by its name only
 *      (the fork server's child is a fresh image: it shares nothing with
 *      this program but the name), takes it, starts a transfer in a named
 *      shared record, and is killed; this program's lock answers
 *      CONC_EOWNERDEAD, repairs the record and marks the mutex consistent —
 *      where Python's multiprocessing.Lock would wait forever.
 */
#include "tour.h"

#include <conc/conc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define ROUNDS 20

static int return_at_once(void *arg)
{
    (void)arg;
    return 0;
}

static int child_returns(const void *arg, size_t size)
{
    (void)arg;
    (void)size;
    return 0;
}

static int child_crashes(const void *arg, size_t size)
{
    (void)arg;
    (void)size;
    raise(SIGSEGV); /* what a stray pointer does */
    return 1;
}

struct record {
    long a, b;
    int updating;
};

struct names {
    char mutex[64], record[64];
};

/* In the child: the named mutex and record by name; a transfer half done;
 * then it is killed (by itself: SIGKILL runs no cleanup). */
static int child_dies_holding(const void *arg, size_t size)
{
    (void)size;
    const struct names *n = arg;
    conc_named_mutex *m;
    conc_shm *shm;
    if (conc_named_mutex_open(&m, n->mutex) != 0 || conc_shm_open(&shm, n->record) != 0)
        return 1;
    struct record *r = conc_shm_addr(shm);
    conc_named_mutex_lock(m);
    r->updating = 1;
    r->a -= 30; /* out of a, not yet into b */
    raise(SIGKILL);
    return 1;
}

static int measure_cost(void)
{
    int64_t t0 = conc_now_ns();
    for (int i = 0; i < ROUNDS; i++) {
        conc_thread *t;
        if (conc_thread_create(&t, return_at_once, NULL, NULL) != 0)
            return 1;
        conc_thread_join(t, NULL);
        conc_thread_destroy(t);
    }
    int64_t thread_ns = (conc_now_ns() - t0) / ROUNDS;
    conc_process *p;
    if (conc_process_start(&p, child_returns, NULL, 0, NULL) != 0) /* starts the fork server */
        return 1;
    conc_process_join(p, NULL);
    conc_process_destroy(p);
    t0 = conc_now_ns();
    for (int i = 0; i < ROUNDS; i++) {
        int code = -1;
        if (conc_process_start(&p, child_returns, NULL, 0, NULL) != 0)
            return 1;
        conc_process_join(p, &code);
        conc_process_destroy(p);
        if (code != 0)
            return 1;
    }
    int64_t process_ns = (conc_now_ns() - t0) / ROUNDS;
    printf("  start and join, average of %d: a thread %.1f us, a process %.1f us (%.0fx)\n",
           ROUNDS, (double)thread_ns / 1e3, (double)process_ns / 1e3,
           (double)process_ns / (double)(thread_ns > 0 ? thread_ns : 1));
    return 0;
}

static int show_isolation(void)
{
    conc_process *p;
    int code = 0;
    if (conc_process_start(&p, child_crashes, NULL, 0, NULL) != 0)
        return 1;
    conc_process_join(p, &code);
    conc_process_destroy(p);
    printf("  a child crashed: its exit code is %d (-%d: SIGSEGV); this program goes on\n",
           code, SIGSEGV);
    return code == -SIGSEGV ? 0 : 1;
}

/* ------------------------------------------- the process pool */

#define RT_ROUNDS 500     /* round trips timed on each pool */
#define NBLOCKS 32        /* the CPU-bound batch, in tasks */
#define CPU_TARGET_MS 150 /* the batch's length on one thread */
#define NCRASH 8          /* the tasks of the batch with a crash */
#define CRASH_AT 3        /* the one that kills its worker */
#define CRASH_WORKERS 2

/* The trivial task, for each pool: the argument + 1. */
static int plus_one_thread(void *arg, conc_result *out)
{
    out->value = (intptr_t)arg + 1;
    return 0;
}

static int plus_one_proc(const void *arg, size_t size, conc_result *out)
{
    int64_t x;
    if (size != sizeof x)
        return CONC_EINVAL;
    memcpy(&x, arg, sizeof x);
    out->value = x + 1;
    return 0;
}

/* Submits plus_one(i) to the thread pool tp, or else to the process pool pp. */
static int submit_plus_one(conc_pool *tp, conc_procpool *pp, int64_t i, conc_future **f)
{
    if (tp)
        return conc_pool_submit(tp, plus_one_thread, (void *)(intptr_t)i, f);
    return conc_procpool_submit(pp, plus_one_proc, &i, sizeof i, f);
}

/* Waits for f, releases it, and checks that it answered i + 1. */
static int check_plus_one(conc_future *f, int64_t i)
{
    conc_result r = {0};
    int rc = conc_future_result(f, &r);
    conc_future_release(f);
    if (rc == 0 && r.value != i + 1)
        rc = CONC_EIO;
    return rc;
}

/* The average of RT_ROUNDS submit + result, each checked, in *us. */
static int time_round_trips(conc_pool *tp, conc_procpool *pp, double *us)
{
    int rc = 0;
    int64_t t0 = 0;
    for (int i = -10; i < RT_ROUNDS && rc == 0; i++) { /* the first 10 warm up */
        conc_future *f;
        if (i == 0)
            t0 = conc_now_ns();
        rc = submit_plus_one(tp, pp, i, &f);
        if (rc == 0)
            rc = check_plus_one(f, i);
    }
    *us = (double)(conc_now_ns() - t0) / RT_ROUNDS / 1e3;
    return rc;
}

struct block {
    uint32_t lo, hi;
};

static struct block blocks[NBLOCKS];

static int block_on_thread(void *arg, conc_result *out)
{
    const struct block *b = arg;
    out->value = (int64_t)tour_count_primes(b->lo, b->hi);
    return 0;
}

/* The same in a worker process: the block comes as a copy, since the worker
 * is a fresh image of this program, where `blocks` is all zeros. */
static int block_in_process(const void *arg, size_t size, conc_result *out)
{
    struct block b;
    if (size != sizeof b)
        return CONC_EINVAL;
    memcpy(&b, arg, sizeof b);
    return block_on_thread(&b, out);
}

static void run_blocks_serially(int64_t *total, int64_t *ns)
{
    int64_t t0 = conc_now_ns();
    *total = 0;
    for (int i = 0; i < NBLOCKS; i++) {
        conc_result r = {0};
        block_on_thread(&blocks[i], &r);
        *total += r.value;
    }
    *ns = conc_now_ns() - t0;
}

/* Submits every block to the thread pool tp, or else to the process pool
 * pp, then collects them all: the primes in *total, the wall time in *ns. */
static int run_blocks(conc_pool *tp, conc_procpool *pp, int64_t *total, int64_t *ns)
{
    conc_future *fs[NBLOCKS];
    int n, rc = 0;
    int64_t t0 = conc_now_ns();
    for (n = 0; n < NBLOCKS; n++) {
        rc = tp ? conc_pool_submit(tp, block_on_thread, &blocks[n], &fs[n])
                : conc_procpool_submit(pp, block_in_process, &blocks[n], sizeof blocks[n], &fs[n]);
        if (rc != 0)
            break;
    }
    *total = 0;
    for (int i = 0; i < n; i++) {
        conc_result r = {0};
        int st = conc_future_result(fs[i], &r);
        rc = rc ? rc : st;
        *total += r.value;
        conc_future_release(fs[i]);
    }
    *ns = conc_now_ns() - t0;
    return rc;
}

/* Cuts a batch of about CPU_TARGET_MS on one thread into NBLOCKS blocks. */
static void make_blocks(void)
{
    uint32_t lo = 1000000;
    uint32_t span = tour_prime_span(lo, CONC_MSEC(CPU_TARGET_MS), 100000000u) / NBLOCKS;
    span = span ? span : 1;
    for (int i = 0; i < NBLOCKS; i++)
        blocks[i] = (struct block){lo + (uint32_t)i * span, lo + (uint32_t)(i + 1) * span};
}

static void print_speed_ups(const int64_t *ns, const int64_t *total, int workers, int cpus)
{
    static const char *const how[] = {"serially, this thread", "thread pool", "process pool"};
    printf("  %d tasks counting the primes in [%u, %u), %d CPU%s usable:\n", NBLOCKS, blocks[0].lo,
           blocks[NBLOCKS - 1].hi, cpus, cpus == 1 ? "" : "s");
    printf("  %-28s %9s %9s\n", "", "wall ms", "speed-up");
    for (int i = 0; i < 3; i++) {
        char label[64];
        snprintf(label, sizeof label, i ? "%s, %d workers" : "%s", how[i], workers);
        printf("  %-28s %9.1f %8.2fx\n", label, tour_ms(ns[i]), (double)ns[0] / (double)ns[i]);
    }
    printf("  every way found the same %lld primes: %s\n", (long long)total[0],
           total[1] == total[0] && total[2] == total[0] ? "yes" : "NO");
}

/* The round trip, then the batch serially and on each pool. */
static int show_pools_side_by_side(int cpus)
{
    conc_pool *tp;
    conc_procpool *pp;
    int rc = conc_pool_create(&tp, NULL); /* both: one worker per CPU */
    if (rc != 0)
        return rc;
    int64_t t0 = conc_now_ns();
    if ((rc = conc_procpool_create(&pp, NULL)) != 0) {
        conc_pool_destroy(tp);
        return rc;
    }
    int64_t start_ns = conc_now_ns() - t0, ns[3] = {0}, total[3] = {0};
    double rt_us[2] = {0};
    tour_progress("round trips on each pool");
    rc = time_round_trips(tp, NULL, &rt_us[0]);
    rc = rc ? rc : time_round_trips(NULL, pp, &rt_us[1]);
    tour_progress("calibrating the job size");
    make_blocks();
    tour_progress("counting primes serially, on threads, on processes");
    run_blocks_serially(&total[0], &ns[0]);
    rc = rc ? rc : run_blocks(tp, NULL, &total[1], &ns[1]);
    rc = rc ? rc : run_blocks(NULL, pp, &total[2], &ns[2]);
    int workers = (int)conc_procpool_workers(pp);
    conc_pool_destroy(tp);
    conc_procpool_destroy(pp);
    if (rc != 0)
        return rc;
    tour_progress_done();
    printf("  the process pool started its %d workers, once: %.1f ms\n", workers,
           tour_ms(start_ns));
    printf("  no-op submit + result (mean of %d): thread pool %.1f us, process pool %.1f us\n\n",
           RT_ROUNDS, rt_us[0], rt_us[1]);
    print_speed_ups(ns, total, workers, cpus);
    double up = (double)ns[0] / (double)(ns[1] > ns[2] ? ns[1] : ns[2]);
    if (cpus < 2)
        printf("  This process may use 1 CPU: neither pool can speed anything up here.\n");
    else if (up < 1.3)
        printf("  Other programs were using the cores while we measured: on a quiet machine\n"
               "  both pools come near %dx.\n",
               cpus);
    printf("  In C, threads compute on every core: no processes are needed for speed\n"
           "  (Python needs them to get past the GIL). What processes buy is isolation.\n\n");
    return total[1] == total[0] && total[2] == total[0] ? 0 : CONC_EIO;
}

/* Kills the worker process it runs in, as a stray pointer or an abort()
 * would; SIGKILL runs no handler at all, not even a sanitizer's. */
static int kills_its_worker(const void *arg, size_t size, conc_result *out)
{
    (void)arg;
    (void)size;
    (void)out;
    raise(SIGKILL);
    return 0;
}

/* The pool starts a dead worker's replacement from its own thread, just
 * after it failed the future: waits (5 s at most) until every worker is
 * there again and fills pids; returns how many there are. */
static int64_t pids_once_replaced(conc_procpool *pp, int64_t *pids)
{
    int64_t n, deadline = conc_now_ns() + CONC_SEC(5);
    while ((n = conc_procpool_worker_pids(pp, pids, CRASH_WORKERS)) < CRASH_WORKERS &&
           conc_now_ns() < deadline)
        conc_sleep(CONC_MSEC(1));
    return n;
}

/* Submits NCRASH tasks, the one at CRASH_AT kills its worker; prints what
 * its future answered; returns how many of the others were right in *right. */
static int run_batch_with_crash(conc_procpool *pp, int *right)
{
    conc_future *fs[NCRASH];
    int n, rc = 0;
    for (n = 0; n < NCRASH; n++) {
        rc = n == CRASH_AT ? conc_procpool_submit(pp, kills_its_worker, NULL, 0, &fs[n])
                           : submit_plus_one(NULL, pp, n, &fs[n]);
        if (rc != 0)
            break;
    }
    *right = 0;
    for (int i = 0; i < n; i++) {
        if (i != CRASH_AT) {
            *right += check_plus_one(fs[i], i) == 0;
            continue;
        }
        conc_result r = {0};
        int st = conc_future_result(fs[i], &r);
        conc_future_release(fs[i]);
        printf("    task %d: %s, value %lld (the worker's exit code: -%d is SIGKILL)\n", i,
               conc_err_name(st), (long long)r.value, SIGKILL);
        if (rc == 0 && (st != CONC_EWORKERDIED || r.value != -SIGKILL))
            rc = CONC_EIO;
    }
    return rc;
}

static void print_pids(const char *what, const int64_t *pids, int64_t n)
{
    printf("%s", what);
    for (int64_t i = 0; i < n; i++)
        printf(" %lld", (long long)pids[i]);
}

static int show_crashed_worker(void)
{
    conc_procpool *pp;
    int rc = conc_procpool_create(&pp, &(conc_procpool_opts){.max_workers = CRASH_WORKERS});
    if (rc != 0)
        return rc;
    int64_t before[CRASH_WORKERS], after[CRASH_WORKERS];
    int64_t nbefore = conc_procpool_worker_pids(pp, before, CRASH_WORKERS);
    printf("  a process pool of %d workers runs %d tasks (each returns i + 1); task %d\n"
           "  kills its own worker with SIGKILL:\n",
           CRASH_WORKERS, NCRASH, CRASH_AT);
    int right = 0, next = 0;
    rc = run_batch_with_crash(pp, &right);
    printf("    the %d others: %d right results\n", NCRASH - 1, right);
    int64_t nafter = pids_once_replaced(pp, after);
    print_pids("    workers before:", before, nbefore);
    print_pids("; after:", after, nafter);
    printf("\n");
    for (int i = 0; i < nbefore && i < nafter; i++)
        if (before[i] != after[i])
            printf("    (worker %lld died; %lld took its place)\n", (long long)before[i],
                   (long long)after[i]);
    for (int i = 0; i < NCRASH && rc == 0; i++) {
        conc_future *f;
        rc = submit_plus_one(NULL, pp, 100 + i, &f);
        next += rc == 0 && check_plus_one(f, 100 + i) == 0;
    }
    printf("    the next %d tasks: %d right results\n", NCRASH, next);
    conc_procpool_destroy(pp);
    printf("  Python's ProcessPoolExecutor is broken for good by such a crash: every\n"
           "  pending future raises BrokenProcessPool, and it takes no more work.\n");
    if (rc == 0 && (right != NCRASH - 1 || next != NCRASH || nafter != CRASH_WORKERS))
        rc = CONC_EIO;
    return rc;
}

/* ------------------------------------------- the system-wide mutex */

static int show_system_mutex(void)
{
    struct names n;
    snprintf(n.mutex, sizeof n.mutex, "tour-%d", (int)getpid());
    snprintf(n.record, sizeof n.record, "tour-%d-record", (int)getpid());
    conc_named_mutex *m;
    conc_shm *shm;
    if (conc_named_mutex_open(&m, n.mutex) != 0 ||
        conc_shm_create(&shm, sizeof(struct record), &(conc_shm_opts){.name = n.record}) != 0)
        return 1;
    struct record *r = conc_shm_addr(shm);
    r->a = 100;
    r->b = 0;
    conc_process *p;
    int code = 0, rc = 1;
    if (conc_process_start(&p, child_dies_holding, &n, sizeof n, NULL) == 0) {
        conc_process_join(p, &code);
        conc_process_destroy(p);
        printf("  a child took the mutex \"%s\" by its name, moved 30 out of account a,\n"
               "  and was killed (exit code %d) before it put them into b\n",
               n.mutex, code);
        int lock = conc_named_mutex_lock_timed(m, 5 * CONC_NSEC_PER_SEC);
        printf("  our lock answers %s: we hold it, and know the record may be torn\n"
               "  (a=%ld, b=%ld)\n",
               conc_err_name(lock), r->a, r->b);
        if (lock == CONC_EOWNERDEAD) {
            if (r->updating) {
                r->b += 30;
                r->updating = 0;
            }
            conc_named_mutex_consistent(m);
            conc_named_mutex_unlock(m);
            printf("  repaired (a=%ld, b=%ld, total %ld) and marked consistent;\n"
                   "  a multiprocessing.Lock would have stayed locked forever\n",
                   r->a, r->b, r->a + r->b);
            rc = r->a + r->b == 100 ? 0 : 1;
        }
    }
    conc_named_mutex_close(m);
    conc_named_mutex_unlink(n.mutex);
    conc_shm_destroy(shm); /* the creator's destroy removes the record's name */
    return rc;
}

static int run(void)
{
    tour_paragraph(
        "A process is a program of its own: its own memory, so nothing is shared by "
        "accident and a crash stays inside; and it can be killed. That costs more "
        "than a thread to start. conc starts a function in a child through a fork "
        "server (as Python's forkserver), safe from a program that runs threads.");
    if (measure_cost() != 0 || show_isolation() != 0)
        return 1;
    printf("\n");
    tour_paragraph(
        "A pool of processes pays for the starts once, as a pool of threads does: "
        "conc_procpool is Python's ProcessPoolExecutor, and its futures are the thread "
        "pool's. A task gets a copy of its argument bytes and hands its result back by "
        "value, through memory shared with the workers.");
    int rc = show_pools_side_by_side((int)conc_cpu_count());
    if (rc == 0)
        rc = show_crashed_worker();
    if (rc != 0)
        return rc;
    printf("\n");
    tour_paragraph(
        "A system-wide mutex is opened by name from any process. Kill its holder, "
        "and the next locker is told (CONC_EOWNERDEAD), with the lock, so it can "
        "repair what the holder left half done.");
    return show_system_mutex();
}

const struct tour_chapter tour_processes = {"processes",
                                            "Processes: isolation, and a lock that survives "
                                            "its holder",
                                            run};
