/* Lock statistics (conc/debug.h): exact acquisition counts and a measured
 * wait and hold for a mutex contended between two threads, the recursive
 * mutex counted once per outer lock, the order of conc_lockstat_top and its
 * bounds, reset and off, the printed table (to a file and, through
 * CONC_LOCKSTAT=1, at exit in a child), and the fair mode of the mutex
 * against the default one under a lock hogger: the worst wait of the other
 * thread in each mode is printed, never asserted. */
#define _GNU_SOURCE
#include "test_impl.h"

#include "conc/debug.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void conc__lockstat_env(const char *value); /* diag.h: what CONC_LOCKSTAT does at load */

#define MAX_ROWS 64

/* ---- helpers ---- */

/* The row of lock in the current statistics; fails when it has none. */
static conc_lockstat stat_of(const void *lock)
{
    static conc_lockstat rows[MAX_ROWS];
    size_t n = conc_lockstat_top(rows, MAX_ROWS);
    for (size_t i = 0; i < n; i++)
        if (rows[i].lock == lock)
            return rows[i];
    fail_msg("no statistics for lock %p (%zu rows)", lock, n);
    conc_lockstat none = {0};
    return none;
}

static bool has_stat(const void *lock)
{
    static conc_lockstat rows[MAX_ROWS];
    size_t n = conc_lockstat_top(rows, MAX_ROWS);
    for (size_t i = 0; i < n; i++)
        if (rows[i].lock == lock)
            return true;
    return false;
}

static uint64_t hist_sum(const conc_lockstat *s)
{
    uint64_t sum = 0;
    for (int i = 0; i < CONC_LOCKSTAT_BUCKETS; i++)
        sum += s->wait_hist[i];
    return sum;
}

static void lock_n(conc_mutex *m, long n)
{
    for (long i = 0; i < n; i++) {
        assert_int_equal(conc_mutex_lock(m), 0);
        assert_int_equal(conc_mutex_unlock(m), 0);
    }
}

struct locker {
    conc_mutex *m;
    long n;
};

static void *locker_fn(void *arg)
{
    struct locker *l = arg;
    lock_n(l->m, l->n);
    return NULL;
}

/* Holds m until a thread waits for it, then `hold` longer, then lets go:
 * that thread's wait is at least `hold`. */
static void contend_once(conc_mutex *m, int64_t hold)
{
    assert_int_equal(conc_mutex_lock(m), 0);
    struct locker one = {m, 1};
    pthread_t t = conc_test_start(locker_fn, &one);
    CONC_TEST_POLL_UNTIL(conc_test_mutex_has_waiter(m));
    conc_sleep(hold);
    assert_int_equal(conc_mutex_unlock(m), 0);
    conc_test_join(t);
}

/* ---- counts ---- */

static void lockstat_counts_contended_mutex(void **state)
{
    (void)state;
    assert_int_equal(conc_lockstat_enable(true), 0);
    assert_int_equal(conc_lockstat_reset(), 0);
    conc_mutex m;
    assert_int_equal(conc_mutex_init(&m, NULL), 0);
    long n = conc_test_scaled(20000, 1000);
    /* One certain contended acquisition (>= 1 ms of wait and of hold)... */
    contend_once(&m, CONC_MSEC(1));
    /* ...then two threads hammering it. */
    struct locker l = {&m, n};
    pthread_t t = conc_test_start(locker_fn, &l);
    lock_n(&m, n);
    conc_test_join(t);
    conc_lockstat s = stat_of(&m);
    print_message("acquisitions %llu, contended %llu, wait total %.3f ms, max %.3f ms, hold max "
                  "%.3f ms\n",
                  (unsigned long long)s.acquisitions, (unsigned long long)s.contended,
                  (double)s.wait_total_ns / 1e6, (double)s.wait_max_ns / 1e6,
                  (double)s.hold_max_ns / 1e6);
    assert_int_equal(s.acquisitions, 2 + 2 * (uint64_t)n);
    assert_true(s.contended >= 1 && s.contended <= s.acquisitions);
    assert_true(s.wait_max_ns >= CONC_MSEC(1));
    assert_true(s.wait_total_ns >= s.wait_max_ns);
    assert_true(s.hold_max_ns >= CONC_MSEC(1));
    assert_int_equal(hist_sum(&s), s.contended);
    assert_string_equal(s.name, "");
    assert_int_equal(conc_mutex_destroy(&m), 0);
    assert_int_equal(conc_lockstat_enable(false), 0);
}

static void lockstat_rmutex_counts_outer_locks(void **state)
{
    (void)state;
    assert_int_equal(conc_lockstat_enable(true), 0);
    assert_int_equal(conc_lockstat_reset(), 0);
    conc_rmutex r;
    assert_int_equal(conc_rmutex_init(&r, NULL), 0);
    for (int round = 0; round < 5; round++) {
        for (int depth = 0; depth < 3; depth++)
            assert_int_equal(conc_rmutex_lock(&r), 0);
        for (int depth = 0; depth < 3; depth++)
            assert_int_equal(conc_rmutex_unlock(&r), 0);
    }
    conc_lockstat s = stat_of(&r);
    assert_int_equal(s.acquisitions, 5);
    assert_int_equal(s.contended, 0);
    assert_int_equal(s.wait_total_ns, 0);
    assert_int_equal(hist_sum(&s), 0);
    assert_int_equal(conc_rmutex_destroy(&r), 0);
    assert_int_equal(conc_lockstat_enable(false), 0);
}

/* ---- top ---- */

static void lockstat_top_orders_by_total_wait(void **state)
{
    (void)state;
    assert_int_equal(conc_lockstat_enable(true), 0);
    assert_int_equal(conc_lockstat_reset(), 0);
    conc_mutex slow, fast, calm;
    assert_int_equal(conc_mutex_init(&slow, NULL), 0);
    assert_int_equal(conc_mutex_init(&fast, NULL), 0);
    assert_int_equal(conc_mutex_init(&calm, NULL), 0);
    contend_once(&slow, CONC_MSEC(20));
    contend_once(&fast, CONC_USEC(200));
    lock_n(&calm, 100);
    conc_lockstat rows[MAX_ROWS];
    size_t n = conc_lockstat_top(rows, MAX_ROWS);
    assert_true(n >= 3);
    int at_slow = -1, at_fast = -1, at_calm = -1;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_true(rows[i - 1].wait_total_ns >= rows[i].wait_total_ns);
        at_slow = rows[i].lock == &slow ? (int)i : at_slow;
        at_fast = rows[i].lock == &fast ? (int)i : at_fast;
        at_calm = rows[i].lock == &calm ? (int)i : at_calm;
    }
    assert_true(at_slow >= 0 && at_fast >= 0 && at_calm >= 0);
    print_message("slow at %d (%.3f ms), fast at %d (%.3f ms), calm at %d\n", at_slow,
                  (double)rows[at_slow].wait_total_ns / 1e6, at_fast,
                  (double)rows[at_fast].wait_total_ns / 1e6, at_calm);
    assert_true(rows[at_slow].wait_total_ns >= CONC_MSEC(20));
    assert_true(at_slow < at_calm && at_fast < at_calm); /* calm never waited */
    assert_int_equal(rows[at_calm].acquisitions, 100);
    assert_int_equal(rows[at_calm].contended, 0);
    /* max bounds the copy, and the first row is the same. */
    conc_lockstat one[2];
    memset(one, 0xab, sizeof one);
    assert_int_equal(conc_lockstat_top(one, 1), 1);
    assert_ptr_equal(one[0].lock, rows[0].lock);
    assert_int_equal(one[1].acquisitions, 0xababababababababull); /* untouched */
    assert_int_equal(conc_lockstat_top(NULL, 4), 0);
    assert_int_equal(conc_lockstat_top(rows, 0), 0);
    assert_int_equal(conc_mutex_destroy(&slow), 0);
    assert_int_equal(conc_mutex_destroy(&fast), 0);
    assert_int_equal(conc_mutex_destroy(&calm), 0);
    assert_int_equal(conc_lockstat_enable(false), 0);
}

/* ---- reset and off ---- */

static void lockstat_reset_and_off(void **state)
{
    (void)state;
    conc_mutex m;
    assert_int_equal(conc_mutex_init(&m, NULL), 0);
    conc_lockstat rows[MAX_ROWS];
    assert_int_equal(conc_lockstat_top(rows, MAX_ROWS), 0); /* off: nothing */
    assert_int_equal(conc_lockstat_enable(true), 0);
    lock_n(&m, 7);
    assert_int_equal(stat_of(&m).acquisitions, 7);
    assert_int_equal(conc_lockstat_reset(), 0);
    assert_false(has_stat(&m));
    lock_n(&m, 5);
    assert_int_equal(stat_of(&m).acquisitions, 5);
    /* Off: not counted, and top answers nothing; the counts stay. */
    assert_int_equal(conc_lockstat_enable(false), 0);
    lock_n(&m, 3);
    assert_int_equal(conc_lockstat_top(rows, MAX_ROWS), 0);
    assert_int_equal(conc_lockstat_enable(true), 0);
    assert_int_equal(stat_of(&m).acquisitions, 5);
    assert_int_equal(conc_lockstat_enable(false), 0);
    assert_int_equal(conc_mutex_destroy(&m), 0);
}

/* ---- the printed table ---- */

static char *read_all(int fd)
{
    static char buf[1 << 16];
    size_t len = 0;
    for (;;) {
        ssize_t k = read(fd, buf + len, sizeof buf - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    buf[len] = 0;
    return buf;
}

/* The acquisitions column of lock's row in a printed table; -1: no row. */
static long long printed_acquisitions(const char *text, const void *lock)
{
    char addr[32];
    snprintf(addr, sizeof addr, "%p", lock);
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, addr, strlen(addr)) != 0 || line[strlen(addr)] != ' ')
            continue;
        long long acq = -1;
        /* lock, name, kind, acquired */
        if (sscanf(line, "%*s %*s %*s %lld", &acq) == 1)
            return acq;
    }
    return -1;
}

static void lockstat_print_table(void **state)
{
    (void)state;
    assert_int_equal(conc_lockstat_print(-1, 10), CONC_EINVAL);
    assert_int_equal(conc_lockstat_enable(true), 0);
    assert_int_equal(conc_lockstat_reset(), 0);
    conc_mutex m;
    assert_int_equal(conc_mutex_init(&m, NULL), 0);
    contend_once(&m, CONC_USEC(300));
    lock_n(&m, 41);
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(conc_lockstat_print(fileno(f), 5), 0);
    rewind(f);
    char *text = read_all(fileno(f));
    fclose(f);
    print_message("%s", text);
    assert_non_null(strstr(text, "conc lockstat:"));
    assert_non_null(strstr(text, "wait max us"));
    assert_int_equal(printed_acquisitions(text, &m), 43);
    assert_non_null(strstr(text, "    waits: ")); /* its histogram line */
    /* A closed descriptor is the write's error. */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    close(fds[0]);
    close(fds[1]);
    assert_int_equal(conc_lockstat_print(fds[1], 5), CONC_EBADF);
    assert_int_equal(conc_lockstat_enable(false), 0);
    f = tmpfile();
    assert_non_null(f);
    assert_int_equal(conc_lockstat_print(fileno(f), 5), 0);
    rewind(f);
    assert_non_null(strstr(read_all(fileno(f)), "conc lockstat: off"));
    fclose(f);
    assert_int_equal(conc_mutex_destroy(&m), 0);
}

/* CONC_LOCKSTAT=1: the table on standard error at exit (in a child, whose
 * standard error is our pipe). */
static void lockstat_env_prints_at_exit(void **state)
{
    (void)state;
    static conc_mutex m;
    assert_int_equal(conc_mutex_init(&m, NULL), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        conc__lockstat_env("1");
        for (int i = 0; i < 9; i++) {
            conc_mutex_lock(&m);
            conc_mutex_unlock(&m);
        }
        exit(0);
    }
    close(fds[1]);
    char *text = read_all(fds[0]);
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    print_message("%s", text);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_non_null(strstr(text, "conc lockstat:"));
    assert_int_equal(printed_acquisitions(text, &m), 9);
    assert_int_equal(conc_mutex_destroy(&m), 0);
}

/* ---- fair mode against the default under a lock hogger ---- */

struct hog {
    conc_mutex *m;
    int64_t hold, cap_until;
    _Atomic bool stop;
    _Atomic uint64_t count;
};

/* Takes the lock again at once after each release, holding it `hold`
 * each time, until told to stop or past its cap (so that a starved victim
 * gets through in the end). */
static void *hog_fn(void *arg)
{
    struct hog *h = arg;
    while (!atomic_load(&h->stop) && conc_now_ns() < h->cap_until) {
        assert_int_equal(conc_mutex_lock(h->m), 0);
        atomic_fetch_add(&h->count, 1);
        int64_t until = conc_now_ns() + h->hold;
        while (conc_now_ns() < until)
            ;
        assert_int_equal(conc_mutex_unlock(h->m), 0);
    }
    return NULL;
}

struct victim {
    conc_mutex *m;
    int attempts;
    int64_t worst;
    _Atomic uint64_t count;
};

static void *victim_fn(void *arg)
{
    struct victim *v = arg;
    for (int i = 0; i < v->attempts; i++) {
        int64_t t0 = conc_now_ns();
        assert_int_equal(conc_mutex_lock(v->m), 0);
        int64_t waited = conc_now_ns() - t0;
        v->worst = waited > v->worst ? waited : v->worst;
        atomic_fetch_add(&v->count, 1);
        assert_int_equal(conc_mutex_unlock(v->m), 0);
        conc_sleep(CONC_USEC(200));
    }
    return NULL;
}

/* Runs the hogger against a victim on a mutex of the given mode; returns
 * the victim's worst wait, checks the statistics' invariants. */
static int64_t hogged_worst_wait(bool fair, conc_lockstat *out)
{
    /* One lock per mode, at its own address (statistics are per address). */
    static conc_mutex locks[2];
    conc_mutex *m = &locks[fair];
    conc_mutex_opts o = {.fair = fair};
    assert_int_equal(conc_mutex_init(m, &o), 0);
    struct hog h = {.m = m, .hold = CONC_USEC(50), .cap_until = conc_now_ns() + CONC_MSEC(300)};
    struct victim v = {.m = m, .attempts = 20};
    /* The victim's first attempt surely contends: we hold the lock until it
     * waits, then hand over to the hogger and the victim together. */
    assert_int_equal(conc_mutex_lock(m), 0);
    pthread_t vt = conc_test_start(victim_fn, &v);
    CONC_TEST_POLL_UNTIL(conc_test_mutex_has_waiter(m));
    pthread_t ht = conc_test_start(hog_fn, &h);
    assert_int_equal(conc_mutex_unlock(m), 0);
    conc_test_join(vt);
    atomic_store(&h.stop, true);
    conc_test_join(ht);
    conc_lockstat s = stat_of(m);
    assert_int_equal(s.acquisitions, 1 + atomic_load(&h.count) + atomic_load(&v.count));
    assert_int_equal(atomic_load(&v.count), (uint64_t)v.attempts);
    assert_true(s.contended >= 1);
    assert_int_equal(hist_sum(&s), s.contended);
    assert_true(s.wait_max_ns >= s.wait_total_ns / (int64_t)s.contended);
    print_message("  %-7s hogger %llu acquisitions, victim %llu\n", fair ? "fair" : "default",
                  (unsigned long long)atomic_load(&h.count), (unsigned long long)atomic_load(&v.count));
    *out = s;
    assert_int_equal(conc_mutex_destroy(m), 0);
    return v.worst;
}

static void print_hist(const char *mode, const conc_lockstat *s)
{
    char line[512];
    size_t len = 0;
    for (int i = 0; i < CONC_LOCKSTAT_BUCKETS; i++)
        if (s->wait_hist[i])
            len += (size_t)snprintf(line + len, sizeof line - len, " <2^%d:%llu", i + 10,
                                    (unsigned long long)s->wait_hist[i]);
    line[len] = 0;
    print_message("  %-7s contended %llu of %llu, wait max %.3f ms; histogram (ns):%s\n", mode,
                  (unsigned long long)s->contended, (unsigned long long)s->acquisitions,
                  (double)s->wait_max_ns / 1e6, line);
}

static void lockstat_fair_mode_bounds_worst_wait_timing(void **state)
{
    (void)state;
    assert_int_equal(conc_lockstat_enable(true), 0);
    assert_int_equal(conc_lockstat_reset(), 0);
    conc_lockstat barging, fair;
    int64_t worst_default = hogged_worst_wait(false, &barging);
    int64_t worst_fair = hogged_worst_wait(true, &fair);
    print_message("victim's worst wait against a hogger (50 us holds, capped at 300 ms): "
                  "default %.3f ms, fair %.3f ms\n",
                  (double)worst_default / 1e6, (double)worst_fair / 1e6);
    print_hist("default", &barging);
    print_hist("fair", &fair);
    assert_int_equal(conc_lockstat_enable(false), 0);
}

CONC_TEST_MAIN(
    cmocka_unit_test(lockstat_counts_contended_mutex),
    cmocka_unit_test(lockstat_rmutex_counts_outer_locks),
    cmocka_unit_test(lockstat_top_orders_by_total_wait),
    cmocka_unit_test(lockstat_reset_and_off),
    cmocka_unit_test(lockstat_print_table),
    cmocka_unit_test(lockstat_env_prints_at_exit),
    cmocka_unit_test(lockstat_fair_mode_bounds_worst_wait_timing),
)
