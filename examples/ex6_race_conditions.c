/* ex6_race_conditions — the classic concurrency bugs, each broken and then
 * fixed, each with the tool that finds it.
 *
 *   race-broken      two tellers pay out of one account, 1 at a time: "if
 *                    (balance >= 1) balance -= 1" on a plain long. A check-
 *                    then-act race, and a data race: ThreadSanitizer finds it.
 *   race-fixed       the same under a conc_mutex: the check and the act are
 *                    one step, and the books balance exactly.
 *   deadlock         two transfers lock two accounts in opposite orders. The
 *                    lock-order checker (conc/debug.h) refuses the second
 *                    order before it can hang; locking in a fixed order fixes it.
 *   livelock-broken  two polite threads each take one lock, try the other,
 *                    and on failure let go and try again — forever. A progress
 *                    counter and a bound notice that nothing gets done.
 *   livelock-fixed   the same threads with randomized back-off: done.
 *   starvation       a thread hammering a mutex against one that wants it now
 *                    and then: the worst wait with the default mutex (which
 *                    lets a running thread barge ahead) and with a fair one.
 *
 * Build and run:  make && build/release/examples/ex6_race_conditions [MODE] [N]
 * With no MODE it runs everything but race-broken, and never hangs. N is the
 * account's opening balance in the race (default 1000000; 20000000 for
 * race-broken, whose tellers are fast: so that they overlap). The last line is
 * "ok", and the exit status 0, when every fixed version did its job (and the
 * broken livelock was caught).
 *
 * To watch ThreadSanitizer find the race, build this file together with the
 * library's sources, all instrumented:
 *   cc -std=gnu11 -g -O1 -fsanitize=thread -Iinclude \
 *      examples/ex6_race_conditions.c src/[a-z]*.c -o ex6-tsan
 *   ./ex6-tsan race-broken
 * It reports "WARNING: ThreadSanitizer: data race" at the first racy access,
 * with both threads' stacks; ./ex6-tsan race-fixed runs clean. (The test
 * suite builds the same, as ex6_race_tsan. Linked against a library built
 * without -fsanitize=thread, the mutex's synchronisation would be invisible
 * to TSan, and it would report the fixed version too.)
 *
 * Python has all four bugs too: the GIL makes one bytecode atomic, not a
 * check followed by an act.
 */
#define _GNU_SOURCE /* sched_setaffinity */
#include <conc/conc.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

/* Prints what went wrong when rc is an error; returns rc. */
static int check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", what, conc_strerror(rc));
        failures++;
    }
    return rc;
}

/* Starts n threads running fn(args[i]), with names; returns how many started. */
static int start_all(conc_thread **t, int n, conc_thread_fn fn, void *args, size_t size,
                     const char *const *names)
{
    for (int i = 0; i < n; i++) {
        conc_thread_opts opts = {.name = names ? names[i] : NULL};
        if (check(conc_thread_create(&t[i], fn, (char *)args + (size_t)i * size, &opts),
                  "thread start") != 0)
            return i;
    }
    return n;
}

static void join_all(conc_thread **t, int n)
{
    for (int i = 0; i < n; i++) {
        check(conc_thread_join(t[i], NULL), "join");
        conc_thread_destroy(t[i]);
    }
}

/* ================================================ 1. check-then-act race */

#define NTELLERS 2

static long opening_arg; /* N (argv[2]); 0: the mode's default */

/* The account. `volatile` only stops the compiler from keeping the balance
 * in a register for the whole loop (as it may in a data race, which is
 * undefined behaviour), so that the broken version fails as it would in a
 * bigger program. volatile is NOT synchronisation: every access to balance
 * in teller_broken is still a data race, and ThreadSanitizer says so. */
static volatile long balance;
static conc_mutex account_lock = CONC_MUTEX_INIT;
static conc_barrier race_start; /* both tellers begin at once */

struct teller {
    long paid; /* what this teller handed out */
};

/* BROKEN: between the check and the act the other teller can act too. Both
 * see balance >= 1 when 1 is left: both pay it out (an overdraft). Both read
 * the same balance and both store balance - 1: one payment never leaves the
 * account (money out of thin air). */
static int teller_broken(void *arg)
{
    struct teller *t = arg;
    conc_barrier_wait(&race_start, NULL);
    for (;;) {
        if (balance >= 1) { /* check */
            balance -= 1;   /* act: the check may no longer hold */
            t->paid += 1;
        } else {
            return 0;
        }
    }
}

/* FIXED: the check and the act happen under one lock, as one step. */
static int teller_fixed(void *arg)
{
    struct teller *t = arg;
    conc_barrier_wait(&race_start, NULL);
    for (;;) {
        conc_mutex_lock(&account_lock);
        bool ok = balance >= 1;
        if (ok) {
            balance -= 1;
            t->paid += 1;
        }
        conc_mutex_unlock(&account_lock);
        if (!ok)
            return 0;
    }
}

/* Two tellers empty an account of `opening`; prints what they paid out.
 * Returns true when the books balance: paid out == opening, balance 0. */
static bool run_tellers(conc_thread_fn fn, long opening, const char *title)
{
    printf("\n== %s ==\n", title);
    static const char *const names[NTELLERS] = {"teller-1", "teller-2"};
    struct teller tellers[NTELLERS] = {{0}};
    conc_thread *t[NTELLERS];
    balance = opening;
    if (check(conc_barrier_init(&race_start, NTELLERS, NULL), "barrier init") != 0)
        return false;
    int started = start_all(t, NTELLERS, fn, tellers, sizeof tellers[0], names);
    if (started < NTELLERS)
        conc_barrier_abort(&race_start);
    join_all(t, started);
    conc_barrier_destroy(&race_start);
    long paid = 0;
    for (int i = 0; i < NTELLERS; i++)
        paid += tellers[i].paid;
    printf("account of %ld, %d tellers paying out 1 at a time while balance >= 1\n", opening,
           NTELLERS);
    printf("paid out %ld (teller-1 %ld, teller-2 %ld), final balance %ld\n", paid, tellers[0].paid,
           tellers[1].paid, (long)balance);
    bool books = paid == opening && balance == 0;
    if (books)
        printf("the books balance\n");
    else
        printf("the books do NOT balance: %ld paid out of thin air%s\n", paid - opening,
               balance < 0 ? ", and the account is overdrawn" : "");
    return started == NTELLERS && books;
}

static void race_broken(void)
{
    if (!run_tellers(teller_broken, opening_arg ? opening_arg : 20000000,
                     "race-broken: check-then-act on a plain long"))
        printf("(a data race: build with -fsanitize=thread and TSan points at both lines)\n");
    else
        printf("lucky: nothing went wrong this time — the race is still there\n");
}

static void race_fixed(void)
{
    if (!run_tellers(teller_fixed, opening_arg ? opening_arg : 1000000,
                     "race-fixed: check and act under one conc_mutex"))
        failures++;
}

/* ================================================ 2. lock-order deadlock */

#define TRANSFERS 20000 /* per thread, in the fixed run */

struct account {
    conc_mutex lock;
    int id; /* the global lock order: lower id first */
    long balance;
};

static struct account alice = {.id = 1, .balance = 1000};
static struct account bob = {.id = 2, .balance = 1000};

struct transfer_job {
    struct account *from, *to;
    bool ordered; /* lock by id (fixed) or from-then-to (broken) */
    int times;
    int rc; /* the first error: CONC_EDEADLK when the checker refused */
};

/* BROKEN: locks the payer, then the payee. alice -> bob takes alice then
 * bob; bob -> alice takes bob then alice: run at the same moment, each holds
 * one lock and waits for the other's, forever. */
static int transfer(struct account *from, struct account *to, long amount, bool ordered)
{
    struct account *first = from, *second = to;
    if (ordered && to->id < from->id) { /* FIXED: every thread takes the lower id first */
        first = to;
        second = from;
    }
    int rc = conc_mutex_lock(&first->lock);
    if (rc != 0)
        return rc;
    rc = conc_mutex_lock(&second->lock); /* CONC_EDEADLK: the checker refused this order */
    if (rc != 0) {
        conc_mutex_unlock(&first->lock);
        return rc;
    }
    from->balance -= amount;
    to->balance += amount;
    conc_mutex_unlock(&second->lock);
    conc_mutex_unlock(&first->lock);
    return 0;
}

static int transfer_thread(void *arg)
{
    struct transfer_job *j = arg;
    for (int i = 0; i < j->times && j->rc == 0; i++)
        j->rc = transfer(j->from, j->to, 1, j->ordered);
    return 0;
}

/* The reporter: keeps the checker's report (it goes to stderr by default). */
static char report[8192];
static void keep_report(const char *text, void *arg)
{
    (void)arg;
    size_t len = strlen(report);
    snprintf(report + len, sizeof report - len, "%s", text);
}

/* Prints the report without its call stacks (the lines "      #N ..."). */
static void print_report(void)
{
    bool cut = false;
    for (const char *l = report; *l;) {
        const char *nl = strchr(l, '\n');
        int len = nl ? (int)(nl - l) : (int)strlen(l);
        bool frame = len > 7 && !strncmp(l, "      #", 7);
        if (!frame)
            printf("  | %.*s\n", len, l);
        else if (!cut)
            printf("  |       (call stack)\n");
        cut = frame;
        l += len + (nl != NULL);
    }
}

/* Runs jobs[0..n) on one thread each, at once (together) or one after the other. */
static void run_transfers(struct transfer_job *jobs, int n, bool together)
{
    static const char *const names[] = {"alice-to-bob", "bob-to-alice"};
    conc_thread *t[2];
    if (together) {
        join_all(t, start_all(t, n, transfer_thread, jobs, sizeof jobs[0], names));
        return;
    }
    for (int i = 0; i < n; i++)
        join_all(t, start_all(t, 1, transfer_thread, &jobs[i], sizeof jobs[0], &names[i]));
}

/* The inversion, caught: alice -> bob runs first, then bob -> alice. One
 * after the other they cannot deadlock — and the checker still refuses the
 * second order, because at the same moment they would. */
static bool deadlock_caught(void)
{
    printf("1. broken: each transfer locks its payer, then its payee\n");
    int64_t reports = conc_lockdep_reports();
    struct transfer_job jobs[2] = {{&alice, &bob, false, 1, 0}, {&bob, &alice, false, 1, 0}};
    run_transfers(jobs, 2, false);
    printf("alice-to-bob: %s\nbob-to-alice: %s\n", conc_err_name(jobs[0].rc),
           conc_err_name(jobs[1].rc));
    if (report[0]) {
        printf("the lock-order checker's report (call stacks cut):\n");
        print_report();
    }
    return jobs[0].rc == 0 && jobs[1].rc == CONC_EDEADLK && conc_lockdep_reports() == reports + 1;
}

/* The fix: both threads lock the lower id first, at the same time, many times. */
static bool deadlock_fixed(void)
{
    printf("2. fixed: every transfer locks the lower account id first\n");
    long before = alice.balance + bob.balance;
    int64_t reports = conc_lockdep_reports();
    struct transfer_job jobs[2] = {{&alice, &bob, true, TRANSFERS, 0},
                                   {&bob, &alice, true, TRANSFERS, 0}};
    run_transfers(jobs, 2, true);
    printf("%d transfers each way at the same time: %s, %s; new reports: %llu\n", TRANSFERS,
           conc_err_name(jobs[0].rc), conc_err_name(jobs[1].rc),
           (unsigned long long)(conc_lockdep_reports() - reports));
    printf("money before %ld, after %ld\n", before, alice.balance + bob.balance);
    return jobs[0].rc == 0 && jobs[1].rc == 0 && conc_lockdep_reports() == reports &&
           alice.balance + bob.balance == before;
}

static void deadlock(void)
{
    printf("\n== deadlock: two locks taken in opposite orders ==\n");
    check(conc_mutex_init(&alice.lock, &(conc_mutex_opts){.name = "account alice"}), "init");
    check(conc_mutex_init(&bob.lock, &(conc_mutex_opts){.name = "account bob"}), "init");
    /* ERROR mode: the order that closes a cycle is reported and refused. */
    int rc = conc_lockdep_set_mode(CONC_LOCKDEP_ERROR);
    if (rc != 0) {
        printf("lock-order checking: not available in this build (%s)\n", conc_err_name(rc));
        printf("(the broken version is skipped: without the checker it could hang)\n");
    } else {
        conc_lockdep_reset();
        conc_debug_set_reporter(keep_report, NULL);
        if (!deadlock_caught()) {
            printf("FAILED: the checker did not refuse the inverted order\n");
            failures++;
        }
        conc_debug_set_reporter(NULL, NULL);
        conc_lockdep_reset();
    }
    if (!deadlock_fixed())
        failures++;
    conc_lockdep_set_mode(CONC_LOCKDEP_OFF);
    check(conc_mutex_destroy(&alice.lock), "destroy");
    check(conc_mutex_destroy(&bob.lock), "destroy");
}

/* ====================================================== 3. livelock */

/* A real livelock needs unlucky timing: both threads reach for their locks
 * at the same moment, let go at the same moment, and again. Here a barrier
 * makes that timing certain — the two threads run in lock step, one attempt
 * per step — so that the broken version shows the livelock every time, and
 * the fix has to work even then. */
#define LIVELOCK_BOUND 10000 /* steps in a row without progress: a livelock */
#define WORK_EACH 1000       /* transfers each thread must make */
#define MAX_BACKOFF_LOG 4    /* back-off of up to 2^4 - 1 steps */

struct polite {
    conc_mutex *first, *second; /* its own lock, then the other's */
    bool randomized;            /* the back-off: none (broken) or random (fixed) */
    uint64_t rng;
    long retries; /* attempts that failed, then let go */
    long sat_out; /* steps it waited instead of trying */
    int id;
};

static conc_mutex lock_a, lock_b;
static conc_barrier step;
static _Atomic long work_done[2]; /* transfers made by each thread */
static long steps_taken;
static bool livelocked;

static uint64_t next_random(uint64_t *x) /* xorshift64 */
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* One step: maybe take my lock, meet the other thread, try its lock, meet
 * again (so that neither lets go before both have tried), then let go.
 * Returns true when this thread made a transfer. */
static bool polite_step(struct polite *p, bool trying)
{
    if (trying)
        conc_mutex_lock(p->first);
    conc_barrier_wait(&step, NULL);
    bool got = trying && conc_mutex_lock_timed(p->second, 0) == 0;
    if (got)
        atomic_fetch_add(&work_done[p->id], 1); /* the work that needs both locks */
    conc_barrier_wait(&step, NULL);
    if (got)
        conc_mutex_unlock(p->second);
    if (trying)
        conc_mutex_unlock(p->first); /* polite: let go, so that the other can go on */
    return got;
}

static int polite_thread(void *arg)
{
    struct polite *p = arg;
    long wait = 0, failed_in_a_row = 0, stalled = 0, last_total = 0;
    for (long s = 1;; s++) {
        bool mine_left = atomic_load(&work_done[p->id]) < WORK_EACH;
        bool trying = mine_left && wait == 0;
        if (mine_left && !trying) {
            wait--;
            p->sat_out++;
        }
        bool got = polite_step(p, trying);
        if (trying && !got) {
            p->retries++;
            failed_in_a_row++;
            /* Broken: try again at once, as the other thread does. Fixed: wait a
             * random number of steps, up to twice as many after each failure
             * (Ethernet's exponential back-off). */
            if (p->randomized) {
                long cap = failed_in_a_row < MAX_BACKOFF_LOG ? failed_in_a_row : MAX_BACKOFF_LOG;
                wait = (long)(next_random(&p->rng) % (1u << cap));
            }
        } else if (got) {
            failed_in_a_row = 0;
        }
        /* Both threads read the same counts here: they only change between
         * the two barriers of a step. */
        long a = atomic_load(&work_done[0]), b = atomic_load(&work_done[1]);
        stalled = a + b == last_total ? stalled + 1 : 0;
        last_total = a + b;
        if ((a >= WORK_EACH && b >= WORK_EACH) || stalled >= LIVELOCK_BOUND) {
            if (p->id == 0) {
                steps_taken = s;
                livelocked = stalled >= LIVELOCK_BOUND;
            }
            return 0;
        }
    }
}

/* Returns true when the run ended as expected: livelocked if broken, every
 * transfer made if fixed. */
static bool run_polite(bool randomized)
{
    static const char *const names[] = {"polite-a", "polite-b"};
    struct polite p[2] = {
        {&lock_a, &lock_b, randomized, 0x9e3779b97f4a7c15u ^ (uint64_t)conc_now_ns(), 0, 0, 0},
        {&lock_b, &lock_a, randomized, 0xbf58476d1ce4e5b9u + (uint64_t)conc_now_ns(), 0, 0, 1},
    };
    conc_thread *t[2];
    atomic_store(&work_done[0], 0);
    atomic_store(&work_done[1], 0);
    if (check(conc_barrier_init(&step, 2, NULL), "barrier init") != 0)
        return false;
    int64_t t0 = conc_now_ns();
    int started = start_all(t, 2, polite_thread, p, sizeof p[0], names);
    if (started < 2)
        conc_barrier_abort(&step);
    join_all(t, started);
    double ms = (double)(conc_now_ns() - t0) / 1e6;
    conc_barrier_destroy(&step);
    long a = atomic_load(&work_done[0]), b = atomic_load(&work_done[1]);
    printf("%ld steps in %.1f ms: transfers made %ld + %ld of %d + %d; failed attempts %ld + "
           "%ld; steps sat out %ld + %ld\n",
           steps_taken, ms, a, b, WORK_EACH, WORK_EACH, p[0].retries, p[1].retries, p[0].sat_out,
           p[1].sat_out);
    if (livelocked)
        printf("livelock: %d steps in a row without progress, %ld polite retries, both "
               "threads busy all along\n",
               LIVELOCK_BOUND, p[0].retries + p[1].retries);
    else
        printf("done: every transfer made\n");
    return started == 2 && (randomized ? !livelocked && a == WORK_EACH && b == WORK_EACH
                                       : livelocked && a + b == 0);
}

static void livelock(bool randomized)
{
    printf("\n== livelock-%s: two threads take one lock each, trylock the other, and on "
           "failure let go and %s ==\n",
           randomized ? "fixed" : "broken",
           randomized ? "wait a random number of steps" : "try again at once");
    check(conc_mutex_init(&lock_a, NULL), "init");
    check(conc_mutex_init(&lock_b, NULL), "init");
    if (!run_polite(randomized))
        failures++;
    check(conc_mutex_destroy(&lock_a), "destroy");
    check(conc_mutex_destroy(&lock_b), "destroy");
}

/* ===================================================== 4. starvation */

#define NEEDS 40            /* how many times the occasional thread wants the lock */
#define NAP_NS CONC_MSEC(1) /* between its attempts */
#define GIVE_UP_NS CONC_MSEC(100)
#define HOLD_NS 2000 /* the hammering thread's critical section */

struct starve {
    conc_mutex lock;
    conc_event hammering; /* set once the hammer holds the lock: the contest is on */
    _Atomic bool stop;
    long hammered;    /* the hammer's acquisitions */
    int got, gave_up; /* the occasional thread's */
    int64_t worst_ns, total_ns;
};

/* Pins the calling thread to the nth CPU it may use (none: stays free). */
static void pin_to(int nth)
{
    cpu_set_t mine, one;
    if (sched_getaffinity(0, sizeof mine, &mine) != 0)
        return;
    for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &mine) && seen++ == nth) {
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            sched_setaffinity(0, sizeof one, &one);
            return;
        }
    }
}

/* Locks, works HOLD_NS, unlocks, and at once locks again. */
static int hammer(void *arg)
{
    struct starve *s = arg;
    pin_to(0);
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        conc_mutex_lock(&s->lock);
        if (s->hammered == 0)
            conc_event_set(&s->hammering);
        int64_t until = conc_now_ns() + HOLD_NS;
        while (conc_now_ns() < until)
            ;
        s->hammered++;
        conc_mutex_unlock(&s->lock);
    }
    return 0;
}

/* Wants the lock now and then; measures each wait, gives up after GIVE_UP_NS. */
static int occasional(void *arg)
{
    struct starve *s = arg;
    pin_to(1);
    conc_event_wait(&s->hammering);
    for (int i = 0; i < NEEDS; i++) {
        conc_sleep(NAP_NS);
        int64_t t0 = conc_now_ns();
        int rc = conc_mutex_lock_timed(&s->lock, GIVE_UP_NS);
        int64_t waited = conc_now_ns() - t0;
        if (rc == 0) {
            s->got++;
            conc_mutex_unlock(&s->lock);
        } else {
            s->gave_up++;
        }
        s->total_ns += waited;
        s->worst_ns = waited > s->worst_ns ? waited : s->worst_ns;
    }
    atomic_store(&s->stop, true);
    return 0;
}

/* What the lock statistics saw of lock (named name), or "". */
static void lockstat_line(const conc_mutex *lock, const char *name, char *line, size_t size)
{
    conc_lockstat top[16];
    size_t n = conc_lockstat_top(top, 16);
    line[0] = 0;
    for (size_t i = 0; i < n; i++)
        if (top[i].lock == lock || !strcmp(top[i].name, name))
            snprintf(line, size, "%llu of %llu acquisitions waited, the longest %.3f ms",
                     (unsigned long long)top[i].contended, (unsigned long long)top[i].acquisitions,
                     (double)top[i].wait_max_ns / 1e6);
}

/* Runs the hammer against the occasional thread on a default or fair mutex;
 * *worst_ns gets the occasional thread's longest wait. Returns true when
 * every one of its attempts came to an end (got it or gave up). */
static bool run_starve(bool fair, int64_t *worst_ns)
{
    static struct starve s;
    memset(&s, 0, sizeof s);
    conc_lockstat_reset();
    const char *name = fair ? "hammered, fair" : "hammered, default";
    conc_mutex_opts lock_opts = {.fair = fair, .name = name};
    if (check(conc_mutex_init(&s.lock, &lock_opts), "init") != 0)
        return false;
    static const char *const names[] = {"hammer", "occasional"};
    conc_thread_fn fns[2] = {hammer, occasional};
    conc_thread *t[2];
    int started = 0;
    int64_t t0 = conc_now_ns();
    for (; started < 2; started++) {
        conc_thread_opts opts = {.name = names[started]};
        if (check(conc_thread_create(&t[started], fns[started], &s, &opts), "start") != 0)
            break;
    }
    if (started < 2)
        atomic_store(&s.stop, true); /* the occasional thread did not start: stop the hammer */
    join_all(t, started);
    double ms = (double)(conc_now_ns() - t0) / 1e6;
    printf("%-8s worst wait %8.3f ms, mean %7.3f ms; %d of %d got it, %d gave up after %lld "
           "ms; the hammer locked it %ld times (%.0f a ms)\n",
           fair ? "fair:" : "default:", (double)s.worst_ns / 1e6, (double)s.total_ns / 1e6 / NEEDS,
           s.got, NEEDS, s.gave_up, (long long)(GIVE_UP_NS / CONC_NSEC_PER_MSEC), s.hammered,
           (double)s.hammered / ms);
    char line[160];
    lockstat_line(&s.lock, name, line, sizeof line);
    if (line[0])
        printf("          lock statistics: %s\n", line);
    check(conc_mutex_destroy(&s.lock), "destroy");
    check(conc_event_destroy(&s.hammering), "destroy");
    *worst_ns = s.worst_ns;
    return started == 2 && s.got + s.gave_up == NEEDS;
}

static void starvation(void)
{
    printf("\n== starvation: one thread hammers a mutex (holding it %d us at a time), another "
           "wants it %d times, 1 ms apart ==\n",
           HOLD_NS / 1000, NEEDS);
    /* The tool: lock statistics count each lock's waits and keep the longest. */
    int rc = conc_lockstat_enable(true);
    if (rc != 0)
        printf("lock statistics: not available in this build (%s)\n", conc_err_name(rc));
    int64_t worst[2] = {0, 0};
    if (!run_starve(false, &worst[0]) || !run_starve(true, &worst[1]))
        failures++;
    if (rc == 0)
        conc_lockstat_enable(false);
    /* Printed, never checked: the timing depends on what else runs. */
    if (worst[0] > 2 * worst[1])
        printf("the default mutex lets the running hammer take the lock back before the woken "
               "waiter gets to run; fair mode hands it to the longest waiter, and the hammer "
               "waits its turn\n");
    else
        printf("this time the default mutex did not starve the waiter (other programs on the "
               "cores change the timing): run it again\n");
}

/* ======================================================================= */

struct mode {
    const char *name;
    void (*run)(void);
    bool safe; /* run when no mode is given */
};

static void livelock_broken(void)
{
    livelock(false);
}
static void livelock_fixed(void)
{
    livelock(true);
}

static const struct mode modes[] = {
    {"race-broken", race_broken, false},
    {"race-fixed", race_fixed, true},
    {"deadlock", deadlock, true},
    {"livelock-broken", livelock_broken, true},
    {"livelock-fixed", livelock_fixed, true},
    {"starvation", starvation, true},
};
#define NMODES (int)(sizeof modes / sizeof modes[0])

int main(int argc, char **argv)
{
    const char *want = argc > 1 ? argv[1] : "all";
    if (argc > 2)
        opening_arg = atol(argv[2]);
    bool known = !strcmp(want, "all");
    for (int i = 0; i < NMODES; i++)
        known |= !strcmp(want, modes[i].name);
    if (!known || opening_arg < 0 || (argc > 2 && opening_arg == 0)) {
        fprintf(stderr, "usage: %s [all", argv[0]);
        for (int i = 0; i < NMODES; i++)
            fprintf(stderr, " | %s", modes[i].name);
        fprintf(stderr, "] [the race's opening balance]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* a report on stderr lands where it happened */
    for (int i = 0; i < NMODES; i++)
        if (!strcmp(want, modes[i].name) || (!strcmp(want, "all") && modes[i].safe))
            modes[i].run();
    printf("\n%s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
