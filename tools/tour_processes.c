/* Chapter "processes": what a process buys over a thread, what it costs, and
 * the system-wide lock that survives its holder.
 *
 *   1. the cost: ROUNDS thread starts and joins against ROUNDS function
 *      starts in a child process (conc_process_start, through conc's fork
 *      server) and joins, each timed;
 *   2. isolation: a child that crashes (SIGSEGV) dies alone; the
 *      program reads -11 from the join and goes on (a thread doing the same
 *      would have taken the whole program down);
 *   3. the system-wide mutex: a child opens a named mutex by its name only
 *      (the fork server's child is a fresh image: it shares nothing with
 *      this program but the name), takes it, starts a transfer in a named
 *      shared record, and is killed; this program's lock answers
 *      CONC_EOWNERDEAD, repairs the record and marks the mutex consistent —
 *      where Python's multiprocessing.Lock would wait forever.
 */
#include "tour.h"

#include <conc/conc.h>
#include <signal.h>
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
        "A system-wide mutex is opened by name from any process. Kill its holder, "
        "and the next locker is told (CONC_EOWNERDEAD), with the lock, so it can "
        "repair what the holder left half done.");
    return show_system_mutex();
}

const struct tour_chapter tour_processes = {"processes",
                                            "Processes: isolation, and a lock that survives "
                                            "its holder",
                                            run};
