/* Chapter "bugs": the classic concurrency bugs, each shown broken and then
 * fixed, each with the tool that finds it.
 *
 *   1. a race condition: two tellers empty one account with "if (balance >=
 *      1) balance -= 1". The racy version uses relaxed atomic loads and
 *      stores (as the locks chapter does): a race condition without a data
 *      race, so no undefined behaviour; examples/ex6_race_conditions has the
 *      plain-long version that ThreadSanitizer stops. Fixed under a mutex,
 *      it must balance exactly, which the chapter checks;
 *   2. a deadlock: two transfers lock two accounts in opposite orders. The
 *      lock-order checker (conc/debug.h, ERROR mode) must refuse the second
 *      order with CONC_EDEADLK — run after the first, so that the demo cannot
 *      hang either way; its report is shown without call stacks. Ordered
 *      transfers then run both ways at once: no report, no money lost;
 *   3. a livelock: two threads in lock step (a barrier per step stands in
 *      for the unlucky timing) each take their lock and trylock the other's;
 *      failing politely, they let go and try again, forever. A bound on the
 *      steps without progress calls it; random back-off must then finish;
 *   4. starvation: a thread hammering a mutex against one that wants it now
 *      and then: the worst wait on the default (barging) and the fair mutex,
 *      printed, never compared;
 *   5. a timeline: the parallelism chapter's three runs, traced into
 *      conc-tour-trace.json in the current directory.
 * Where the checker or the trace is not in this build the chapter says so.
 */
#define _GNU_SOURCE /* sched_setaffinity */
#include "tour.h"

#include <conc/conc.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define TRACE_FILE "conc-tour-trace.json"

/* Starts n threads on fn(arg + i * size), named; returns how many started. */
static int start_n(conc_thread **t, int n, conc_thread_fn fn, void *arg, size_t size,
                   const char *const *names, int *rc)
{
    for (int i = 0; i < n; i++) {
        conc_thread_opts opts = {.name = names[i]};
        *rc = conc_thread_create(&t[i], fn, (char *)arg + (size_t)i * size, &opts);
        if (*rc != 0)
            return i;
    }
    return n;
}

static void join_n(conc_thread **t, int n)
{
    for (int i = 0; i < n; i++) {
        conc_thread_join(t[i], NULL);
        conc_thread_destroy(t[i]);
    }
}

/* ============================================================ 1. the race */

#define OPENING 1000000L
#define RACY_FACTOR 20 /* the racy tellers are fast: a bigger account, so that they overlap */

struct bank {
    _Atomic long balance;
    conc_mutex lock;
    bool locked; /* the fixed version */
    conc_barrier start;
};

struct teller {
    struct bank *bank;
    long paid;
};

static int teller(void *arg)
{
    struct teller *t = arg;
    struct bank *b = t->bank;
    conc_barrier_wait(&b->start, NULL);
    for (bool more = true; more;) {
        if (b->locked)
            conc_mutex_lock(&b->lock);
        long v = atomic_load_explicit(&b->balance, memory_order_relaxed);
        more = v >= 1; /* check */
        if (more) {
            atomic_store_explicit(&b->balance, v - 1, memory_order_relaxed); /* act */
            t->paid++;
        }
        if (b->locked)
            conc_mutex_unlock(&b->lock);
    }
    return 0;
}

/* Two tellers empty an account of opening; *paid gets what they paid out. */
static int run_tellers(struct bank *b, bool locked, long opening, long *paid, long *balance)
{
    static const char *const names[] = {"teller-1", "teller-2"};
    struct teller t[2] = {{b, 0}, {b, 0}};
    conc_thread *th[2];
    b->locked = locked;
    atomic_store(&b->balance, opening);
    int rc = conc_barrier_init(&b->start, 2, NULL);
    if (rc != 0)
        return rc;
    int started = start_n(th, 2, teller, t, sizeof t[0], names, &rc);
    if (rc != 0)
        conc_barrier_abort(&b->start);
    join_n(th, started);
    conc_barrier_destroy(&b->start);
    *paid = t[0].paid + t[1].paid;
    *balance = atomic_load(&b->balance);
    return rc;
}

static int show_race(void)
{
    tour_paragraph("1. A race condition: the result depends on who gets there first. Two "
                   "tellers pay out of one account, 1 at a time, with if (balance >= 1) "
                   "balance -= 1. Between the check and the act the other teller may act: "
                   "both pass the check for the last unit, or both read the same balance and "
                   "both write back that balance less one: one payment never left the "
                   "account.");
    static struct bank b;
    int rc = conc_mutex_init(&b.lock, NULL);
    if (rc != 0)
        return rc;
    long opening[2] = {OPENING * RACY_FACTOR, OPENING}, paid[2], balance[2];
    for (int v = 0; v < 2 && rc == 0; v++) {
        tour_progress("two tellers emptying an account of %ld %s", opening[v],
                      v ? "under a mutex" : "without a lock");
        rc = run_tellers(&b, v == 1, opening[v], &paid[v], &balance[v]);
    }
    conc_mutex_destroy(&b.lock);
    if (rc != 0)
        return rc;
    tour_progress_done();
    printf("  %-18s %10s %10s %10s %8s\n", "two tellers", "account", "paid out", "too much",
           "balance");
    static const char *const how[] = {"without a lock", "under conc_mutex"};
    for (int v = 0; v < 2; v++)
        printf("  %-18s %10ld %10ld %10ld %8ld\n", how[v], opening[v], paid[v],
               paid[v] - opening[v], balance[v]);
    printf("\n");
    if (paid[0] != opening[0] || balance[0] != 0)
        printf("  Without a lock the bank paid out %ld more than there was (%.1f%%).\n",
               paid[0] - opening[0], 100.0 * (double)(paid[0] - opening[0]) / (double)opening[0]);
    else
        printf("  Without a lock the books balanced this time (lucky: the tellers did not\n"
               "  overlap). The race is still there.\n");
    printf("  With the check and the act under one lock they are one step: exact.\n"
           "  The tool: ThreadSanitizer, which finds data races. Here the balance is an\n"
           "  atomic, read and then written: a race condition without a data race, out\n"
           "  of TSan's sight. On a plain long it is both, and -fsanitize=thread stops\n"
           "  at the first racy access with both stacks: examples/ex6_race_conditions\n"
           "  race-broken (the test suite builds it so and checks the report).\n\n");
    /* The racy version can pay out more, never less (a stale write only raises
     * the balance); the locked one must be exact. */
    return paid[1] == opening[1] && balance[1] == 0 && paid[0] >= opening[0] && balance[0] <= 0
               ? 0
               : CONC_EIO;
}

/* ========================================================= 2. the deadlock */

#define TRANSFERS 20000

struct account {
    conc_mutex lock;
    int id; /* the lock order: lower id first */
    long balance;
};

struct transfers {
    struct account *from, *to;
    bool ordered;
    int times, rc;
};

static int transfer(struct account *from, struct account *to, bool ordered)
{
    bool swap = ordered && to->id < from->id;
    struct account *first = swap ? to : from, *second = swap ? from : to;
    int rc = conc_mutex_lock(&first->lock);
    if (rc != 0)
        return rc;
    if ((rc = conc_mutex_lock(&second->lock)) != 0) { /* EDEADLK: refused by the checker */
        conc_mutex_unlock(&first->lock);
        return rc;
    }
    from->balance--;
    to->balance++;
    conc_mutex_unlock(&second->lock);
    conc_mutex_unlock(&first->lock);
    return 0;
}

static int transfer_thread(void *arg)
{
    struct transfers *j = arg;
    for (int i = 0; i < j->times && j->rc == 0; i++)
        j->rc = transfer(j->from, j->to, j->ordered);
    return 0;
}

static char report[8192];

static void keep_report(const char *text, void *arg)
{
    (void)arg;
    size_t len = strlen(report);
    snprintf(report + len, sizeof report - len, "%s", text);
}

/* Copies the line [l, l + len) into out without "(mutex 0x...)", "(tid N)"
 * and a trailing ", here:" or ", at:" (whose stacks are cut). */
static void shorten(const char *l, int len, char *out, size_t size)
{
    size_t o = 0;
    for (int i = 0; i < len && o + 1 < size;) {
        if (l[i] == ' ' && (!strncmp(l + i, " (mutex 0x", 10) || !strncmp(l + i, " (tid ", 6))) {
            const char *close = memchr(l + i, ')', (size_t)(len - i));
            if (close) {
                i = (int)(close - l) + 1;
                continue;
            }
        }
        out[o++] = l[i++];
    }
    out[o] = 0;
    static const char *const tails[] = {", here:", ", at:"};
    for (int k = 0; k < 2; k++) {
        size_t tl = strlen(tails[k]);
        if (o >= tl && !strcmp(out + o - tl, tails[k]))
            out[o - tl] = 0;
    }
}

/* Prints line after "  | ", wrapped at 78 columns, continued 4 further in. */
static void print_wrapped(const char *line)
{
    int indent = (int)strspn(line, " "), room = 74, keep = indent; /* keep: leading spaces */
    printf("  | ");
    while ((int)strlen(line) > room) {
        int cut = room;
        while (cut > keep && line[cut] != ' ')
            cut--;
        if (cut <= keep)
            break; /* one long word: leave it whole */
        printf("%.*s\n  | %*s", cut, line, indent + 4, "");
        line += cut + 1;
        room = 74 - indent - 4;
        keep = 0;
    }
    printf("%s\n", line);
}

/* The report without its call stacks and addresses. */
static void print_report(void)
{
    for (const char *l = report; *l;) {
        const char *nl = strchr(l, '\n');
        int len = nl ? (int)(nl - l) : (int)strlen(l);
        if (!(len > 7 && !strncmp(l, "      #", 7))) {
            char line[512];
            shorten(l, len, line, sizeof line);
            print_wrapped(line);
        }
        l += len + (nl != NULL);
    }
}

/* Runs the two transfer jobs, one after the other or at once. */
static void run_transfers(struct transfers *j, bool together)
{
    static const char *const names[] = {"alice-to-bob", "bob-to-alice"};
    conc_thread *t[2];
    int rc;
    if (together) {
        join_n(t, start_n(t, 2, transfer_thread, j, sizeof j[0], names, &rc));
        j[0].rc = j[0].rc ? j[0].rc : rc;
        return;
    }
    for (int i = 0; i < 2; i++) {
        join_n(t, start_n(t, 1, transfer_thread, &j[i], sizeof j[0], &names[i], &rc));
        j[i].rc = j[i].rc ? j[i].rc : rc;
    }
}

/* Broken, caught: returns 0 when the checker refused the second order. */
static int deadlock_caught(struct account *alice, struct account *bob)
{
    conc_lockdep_reset();
    int64_t reports = conc_lockdep_reports();
    report[0] = 0;
    conc_debug_set_reporter(keep_report, NULL);
    struct transfers j[2] = {{alice, bob, false, 1, 0}, {bob, alice, false, 1, 0}};
    run_transfers(j, false);
    conc_debug_set_reporter(NULL, NULL);
    printf("  alice-to-bob locks alice, then bob: %s\n", conc_err_name(j[0].rc));
    printf("  then bob-to-alice locks bob, then alice: %s, and the report:\n\n",
           conc_err_name(j[1].rc));
    print_report();
    bool ok = j[0].rc == 0 && j[1].rc == CONC_EDEADLK && conc_lockdep_reports() == reports + 1;
    conc_lockdep_reset();
    return ok ? 0 : CONC_EIO;
}

/* Fixed: both lock the lower id first, at the same time. */
static int deadlock_fixed(struct account *alice, struct account *bob, bool checked)
{
    int64_t reports = conc_lockdep_reports();
    long before = alice->balance + bob->balance;
    struct transfers j[2] = {{alice, bob, true, TRANSFERS, 0}, {bob, alice, true, TRANSFERS, 0}};
    tour_progress("%d ordered transfers each way, at once", TRANSFERS);
    run_transfers(j, true);
    tour_progress_done();
    bool ok = j[0].rc == 0 && j[1].rc == 0 && alice->balance + bob->balance == before;
    printf("\n  Fixed by one global order — every transfer locks the lower account id\n"
           "  first: %d transfers each way at the same time: %s, %s,\n  %s\n",
           TRANSFERS, conc_err_name(j[0].rc), conc_err_name(j[1].rc),
           checked ? (conc_lockdep_reports() == reports ? "and not one report from the checker."
                                                        : "but the checker reported again!")
                   : "with no checker here to confirm it.");
    printf("\n");
    return ok && (!checked || conc_lockdep_reports() == reports) ? 0 : CONC_EIO;
}

static int show_deadlock(void)
{
    tour_paragraph("2. A deadlock: threads waiting for each other in a circle. A transfer "
                   "locks the payer's account, then the payee's: alice-to-bob holds alice and "
                   "wants bob while bob-to-alice holds bob and wants alice — both wait forever. "
                   "It needs the two to overlap, so tests rarely see it. The tool: the "
                   "lock-order checker records every \"held A, then took B\" and refuses the "
                   "first order that closes a cycle, before it can hang. Here the two run one "
                   "after the other, which can never hang — and the checker still catches it.");
    static struct account alice = {.id = 1, .balance = 1000}, bob = {.id = 2, .balance = 1000};
    int rc = conc_mutex_init(&alice.lock, &(conc_mutex_opts){.name = "account alice"});
    if (rc == 0)
        rc = conc_mutex_init(&bob.lock, &(conc_mutex_opts){.name = "account bob"});
    if (rc != 0)
        return rc;
    int mode = conc_lockdep_set_mode(CONC_LOCKDEP_ERROR);
    if (mode != 0)
        printf("  lock-order checking: not available in this build (%s)\n", conc_err_name(mode));
    else
        rc = deadlock_caught(&alice, &bob);
    if (rc == 0)
        rc = deadlock_fixed(&alice, &bob, mode == 0);
    if (mode == 0)
        conc_lockdep_set_mode(CONC_LOCKDEP_OFF);
    conc_mutex_destroy(&alice.lock);
    conc_mutex_destroy(&bob.lock);
    return rc;
}

/* ========================================================= 3. the livelock */

#define LIVELOCK_BOUND 10000 /* steps in a row without progress */
#define WORK_EACH 1000
#define MAX_BACKOFF_LOG 4

struct polite {
    conc_mutex *mine, *theirs;
    bool randomized;
    int id;
    uint64_t rng;
    long failed;
};

static struct {
    conc_mutex a, b;
    conc_barrier step;
    _Atomic long made[2];
    long steps;
    bool livelocked;
} ll;

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* One step in lock step: take mine (if trying), meet, trylock theirs, meet
 * (neither lets go before both tried), let go. */
static bool polite_step(struct polite *p, bool trying)
{
    if (trying)
        conc_mutex_lock(p->mine);
    conc_barrier_wait(&ll.step, NULL);
    bool got = trying && conc_mutex_lock_timed(p->theirs, 0) == 0;
    if (got)
        atomic_fetch_add(&ll.made[p->id], 1);
    conc_barrier_wait(&ll.step, NULL);
    if (got)
        conc_mutex_unlock(p->theirs);
    if (trying)
        conc_mutex_unlock(p->mine);
    return got;
}

static int polite_thread(void *arg)
{
    struct polite *p = arg;
    long wait = 0, in_a_row = 0, stalled = 0, last = 0;
    for (long s = 1;; s++) {
        bool left = atomic_load(&ll.made[p->id]) < WORK_EACH;
        bool trying = left && wait == 0;
        if (left && !trying)
            wait--; /* backing off: sits this step out */
        bool got = polite_step(p, trying);
        if (trying && !got) {
            p->failed++;
            in_a_row++;
            if (p->randomized) { /* wait 0 .. 2^k - 1 steps, k growing with the failures */
                long k = in_a_row < MAX_BACKOFF_LOG ? in_a_row : MAX_BACKOFF_LOG;
                wait = (long)(xorshift(&p->rng) % (1u << k));
            }
        } else if (got) {
            in_a_row = 0;
        }
        /* Both threads see the same counts here: they change only between
         * the two meetings of a step. */
        long a = atomic_load(&ll.made[0]), b = atomic_load(&ll.made[1]);
        stalled = a + b == last ? stalled + 1 : 0;
        last = a + b;
        if ((a >= WORK_EACH && b >= WORK_EACH) || stalled >= LIVELOCK_BOUND) {
            if (p->id == 0) {
                ll.steps = s;
                ll.livelocked = stalled >= LIVELOCK_BOUND;
            }
            return 0;
        }
    }
}

static int run_polite(bool randomized, long *failed, int64_t *ns)
{
    static const char *const names[] = {"polite-a", "polite-b"};
    uint64_t seed = (uint64_t)conc_now_ns() | 1;
    struct polite p[2] = {{&ll.a, &ll.b, randomized, 0, seed * 0x9e3779b97f4a7c15u | 1, 0},
                          {&ll.b, &ll.a, randomized, 1, seed * 0xbf58476d1ce4e5b9u | 1, 0}};
    conc_thread *t[2];
    atomic_store(&ll.made[0], 0);
    atomic_store(&ll.made[1], 0);
    int rc = conc_barrier_init(&ll.step, 2, NULL);
    if (rc != 0)
        return rc;
    int64_t t0 = conc_now_ns();
    int started = start_n(t, 2, polite_thread, p, sizeof p[0], names, &rc);
    if (rc != 0)
        conc_barrier_abort(&ll.step);
    join_n(t, started);
    *ns = conc_now_ns() - t0;
    conc_barrier_destroy(&ll.step);
    *failed = p[0].failed + p[1].failed;
    return rc;
}

static int show_livelock(void)
{
    tour_paragraph("3. A livelock: threads busy without getting anywhere. Two threads each "
                   "need both locks; each takes its own and tries the other's with a trylock, "
                   "and when that fails it politely lets go and tries again — at the same "
                   "moment as the other, every time. Nothing blocks, so no deadlock checker "
                   "sees it; the CPU is busy and no work gets done. Below they run in lock "
                   "step (a barrier per attempt stands in for the unlucky timing). The tool: a "
                   "progress counter and a bound — too many steps with no progress is a "
                   "livelock. The fix: back off for a random time (as Ethernet does), or take "
                   "the locks in one order.");
    int rc = conc_mutex_init(&ll.a, NULL);
    if (rc == 0)
        rc = conc_mutex_init(&ll.b, NULL);
    if (rc != 0)
        return rc;
    static const char *const how[] = {"retry at once", "random back-off"};
    long steps[2], made[2], failed[2];
    bool livelocked[2];
    int64_t ns[2];
    for (int v = 0; v < 2 && rc == 0; v++) {
        tour_progress("two polite threads, %s", how[v]);
        rc = run_polite(v == 1, &failed[v], &ns[v]);
        steps[v] = ll.steps;
        livelocked[v] = ll.livelocked;
        made[v] = atomic_load(&ll.made[0]) + atomic_load(&ll.made[1]);
    }
    conc_mutex_destroy(&ll.a);
    conc_mutex_destroy(&ll.b);
    if (rc != 0)
        return rc;
    tour_progress_done();
    printf("  %-16s %6s %10s %13s %7s\n", "on failure", "steps", "transfers", "failed tries", "ms");
    for (int v = 0; v < 2; v++)
        printf("  %-16s %6ld %5ld/%-4d %13ld %7.1f  %s\n", how[v], steps[v], made[v], 2 * WORK_EACH,
               failed[v], tour_ms(ns[v]), livelocked[v] ? "LIVELOCK" : "done");
    printf("\n  Retrying at once, both threads were busy for %d steps in a row and made\n"
           "  nothing: the bound calls that a livelock. Random back-off soon lets one of\n"
           "  them go alone, and the work gets done.\n\n",
           LIVELOCK_BOUND);
    return livelocked[0] && made[0] == 0 && !livelocked[1] && made[1] == 2 * WORK_EACH ? 0
                                                                                       : CONC_EIO;
}

/* ======================================================= 4. starvation */

#define NEEDS 20
#define GIVE_UP_NS CONC_MSEC(50)
#define HOLD_NS 2000

struct starve {
    conc_mutex lock;
    conc_event hammering; /* set once the hammer holds the lock */
    _Atomic bool stop;
    long hammered;
    int gave_up;
    int64_t worst_ns;
};

/* The nth CPU this process may use gets the calling thread: the hammer and
 * the waiter each on its own core, as on any multi-core machine. */
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

static int hammer(void *arg)
{
    struct starve *s = arg;
    pin_to(0);
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        conc_mutex_lock(&s->lock);
        if (s->hammered == 0)
            conc_event_set(&s->hammering);
        for (int64_t until = conc_now_ns() + HOLD_NS; conc_now_ns() < until;)
            ;
        s->hammered++;
        conc_mutex_unlock(&s->lock); /* ... and at once again */
    }
    return 0;
}

static int occasional(void *arg)
{
    struct starve *s = arg;
    pin_to(1);
    conc_event_wait(&s->hammering);
    for (int i = 0; i < NEEDS; i++) {
        conc_sleep(CONC_MSEC(1));
        int64_t t0 = conc_now_ns();
        int rc = conc_mutex_lock_timed(&s->lock, GIVE_UP_NS);
        int64_t waited = conc_now_ns() - t0;
        if (rc == 0)
            conc_mutex_unlock(&s->lock);
        else
            s->gave_up++;
        s->worst_ns = waited > s->worst_ns ? waited : s->worst_ns;
    }
    atomic_store(&s->stop, true);
    return 0;
}

static int run_starve(struct starve *s, bool fair, int64_t *ns)
{
    static const char *const names[] = {"hammer", "occasional"};
    memset(s, 0, sizeof *s);
    int rc = conc_mutex_init(&s->lock, &(conc_mutex_opts){.fair = fair});
    if (rc != 0)
        return rc;
    conc_thread *t[2];
    int64_t t0 = conc_now_ns();
    int started = 0;
    conc_thread_fn fns[2] = {hammer, occasional};
    for (; started < 2 && rc == 0; started++) {
        conc_thread_opts opts = {.name = names[started]};
        rc = conc_thread_create(&t[started], fns[started], s, &opts);
    }
    if (rc != 0) {
        started--;
        atomic_store(&s->stop, true);
    }
    join_n(t, started);
    *ns = conc_now_ns() - t0;
    conc_mutex_destroy(&s->lock);
    conc_event_destroy(&s->hammering);
    return rc;
}

static int show_starvation(void)
{
    tour_paragraph("4. Starvation: a thread that could go on never gets its turn. A default "
                   "mutex lets whoever is running take it (barging): fast, because the lock "
                   "never waits for a sleeper to wake up. But a thread that relocks at once "
                   "can win it back every time before the woken waiter runs. A fair mutex "
                   "hands it to the longest waiter instead. Below, one thread hammers a mutex "
                   "(2 us inside, then at once again) while another, on another core, wants it "
                   "every millisecond. The tool: measure each wait and keep the worst (lock "
                   "statistics, CONC_LOCKSTAT=1, do it for every lock).");
    static struct starve s[2];
    int64_t ns[2];
    int rc = 0;
    for (int v = 0; v < 2 && rc == 0; v++) {
        tour_progress("a hammered %s mutex", v ? "fair" : "default");
        rc = run_starve(&s[v], v == 1, &ns[v]);
    }
    if (rc != 0)
        return rc;
    tour_progress_done();
    printf("  %-14s %16s %10s %20s\n", "mutex", "worst wait ms", "gave up", "hammer locks a ms");
    static const char *const how[] = {"default", "fair"};
    for (int v = 0; v < 2; v++)
        printf("  %-14s %16.3f %6d/%-3d %20.0f\n", how[v], tour_ms(s[v].worst_ns), s[v].gave_up,
               NEEDS, (double)s[v].hammered / tour_ms(ns[v]));
    printf("\n  (A wait gives up after %lld ms.) ", (long long)(GIVE_UP_NS / CONC_NSEC_PER_MSEC));
    if (s[0].worst_ns > 2 * s[1].worst_ns)
        printf("The default mutex kept the occasional thread\n  waiting %.0fx longer at worst; "
               "the fair one bounds every wait, at a cost in\n  throughput when it is "
               "contended.\n\n",
               (double)s[0].worst_ns / (double)(s[1].worst_ns ? s[1].worst_ns : 1));
    else
        printf("This time the default mutex did not starve the\n  waiter (other programs on the "
               "cores change the timing); run the chapter again.\n\n");
    return 0;
}

/* ========================================================= 5. a timeline */

static void show_trace(void)
{
    tour_paragraph("5. Seeing it: a timeline of who ran and who waited when shows most of "
                   "these at a glance. conc records one (CONC_TRACE=file.json, or "
                   "conc_trace_start) in the Chrome trace format.");
    int njobs = 0;
    tour_progress("tracing the parallelism chapter's three runs");
    int rc = tour_parallelism_trace(TRACE_FILE, 15, &njobs);
    tour_progress_done();
    if (rc == CONC_ENOSYS)
        printf("  timeline traces: not available in this build\n");
    else if (rc != 0)
        printf("  no timeline written: %s\n", conc_strerror(rc));
    else
        printf("  wrote %s: the parallelism chapter's three runs of %d jobs.\n"
               "  Open it at https://ui.perfetto.dev (Open trace file) or in chrome://tracing.\n",
               TRACE_FILE, njobs);
}

static int bugs_run(void)
{
    tour_paragraph("Four bugs come with concurrency, and tests rarely catch them: they need an "
                   "unlucky timing. Each has a tool that finds it without the luck. Each is "
                   "shown broken, then fixed (examples/ex6_race_conditions has them all).");
    int rc = show_race();
    int rc2 = show_deadlock();
    int rc3 = show_livelock();
    int rc4 = show_starvation();
    show_trace();
    return rc ? rc : rc2 ? rc2 : rc3 ? rc3 : rc4;
}

const struct tour_chapter tour_bugs = {
    .name = "bugs",
    .title = "The classic bugs: races, deadlock, livelock, starvation",
    .run = bugs_run,
};
