/* Shared by every test: cmocka, the CONC_TEST_SCALE knob, small helpers.
 * Each test executable takes an optional test name (ctest passes one) and runs
 * only that test, so every test runs in its own process.
 *
 * Only public headers here; the helpers that read conc's private layouts
 * (wait queues, mutex words) are in test_impl.h. */
#ifndef CONC_TEST_H
#define CONC_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "conc/conc.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#define CONC_TEST_MAIN(...)                                                  \
    int main(int argc, char **argv)                                          \
    {                                                                        \
        const struct CMUnitTest tests[] = {__VA_ARGS__};                     \
        if (argc > 1)                                                        \
            cmocka_set_test_filter(argv[1]);                                 \
        return cmocka_run_group_tests(tests, conc_test_note_fds,             \
                                      conc_test_check_leftovers);            \
    }

/* ---- what a test may not leave behind: descriptors, zombies ----
 * Every test process notes its open descriptors before its tests and, after
 * them, fails (a group teardown error) if one more is open — but for the
 * two conc keeps on purpose, its connection to the fork server — or if a
 * child of its ended and was never reaped. */

/* The fork server connection's descriptors (forkserver.c), -1 if none. */
void conc__forkserver_fds(int fds[2]);

#define CONC_TEST_FD_MAX 1024
static bool conc_test_fds_before[CONC_TEST_FD_MAX];

/* Marks in open[] the descriptors open now. */
static inline void conc_test_open_fds(bool open[CONC_TEST_FD_MAX])
{
    memset(open, 0, CONC_TEST_FD_MAX);
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd != self && fd >= 0 && fd < CONC_TEST_FD_MAX)
            open[fd] = true;
    }
    closedir(d);
}

static inline int conc_test_note_fds(void **state)
{
    (void)state;
    conc_test_open_fds(conc_test_fds_before);
    return 0;
}

static inline int conc_test_check_leftovers(void **state)
{
    (void)state;
    int bad = 0;
    bool now[CONC_TEST_FD_MAX];
    conc_test_open_fds(now);
    int kept[2];
    conc__forkserver_fds(kept);
    for (int fd = 0; fd < CONC_TEST_FD_MAX; fd++) {
        if (!now[fd] || conc_test_fds_before[fd] || fd == kept[0] || fd == kept[1])
            continue;
        char path[64], target[256] = "?";
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, target, sizeof target - 1);
        target[n > 0 ? n : 1] = 0;
        fprintf(stderr, "leak: descriptor %d (%s) is still open after the tests\n", fd, target);
        bad = 1;
    }
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid != 0) {
        fprintf(stderr, "leak: child %d ended and was never reaped (a zombie)\n",
                (int)info.si_pid);
        bad = 1;
    }
    return bad;
}

/* CONC_TEST_SCALE sizes every stress test: about 0.1 under the sanitizers,
 * 1 in the optimised run, 10 and more in `make stress`. */
static inline double conc_test_scale(void)
{
    const char *s = getenv("CONC_TEST_SCALE");
    double v = s ? atof(s) : 1.0;
    return v > 0 ? v : 1.0;
}

/* n scaled by CONC_TEST_SCALE, at least `floor`. */
static inline long conc_test_scaled(long n, long floor)
{
    double v = (double)n * conc_test_scale();
    return v < (double)floor ? floor : (long)v;
}

/* ---- threads ---- */

/* Starts one pthread running fn(arg). */
static inline pthread_t conc_test_start(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fn, arg), 0);
    return t;
}

static inline void conc_test_join(pthread_t t)
{
    assert_int_equal(pthread_join(t, NULL), 0);
}

/* Starts n pthreads running fn(arg_i), arg_i = (char *)args + i * size. */
static inline void conc_test_run_threads(int n, void *(*fn)(void *), void *args, size_t size)
{
    pthread_t *t = calloc((size_t)n, sizeof *t);
    assert_non_null(t);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&t[i], NULL, fn, (char *)args + (size_t)i * size), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    free(t);
}

/* ---- waiting for a state, never sleeping and hoping ---- */

/* Polls until cond holds, failing after `secs` seconds: the ceiling only
 * catches a hang, nothing asserted depends on how long the poll takes. */
#define CONC_TEST_POLL_UNTIL_FOR(cond, secs) CONC_TEST_POLL_(cond, #cond, secs)

/* Polls until cond holds, failing after 10 s. */
#define CONC_TEST_POLL_UNTIL(cond) CONC_TEST_POLL_(cond, #cond, 10)

#define CONC_TEST_POLL_(cond, text, secs)                                      \
    do {                                                                       \
        struct timespec poll_pause_ = {0, 100 * 1000}, poll_t0_, poll_now_;    \
        clock_gettime(CLOCK_MONOTONIC, &poll_t0_);                             \
        while (!(cond)) {                                                      \
            clock_gettime(CLOCK_MONOTONIC, &poll_now_);                        \
            if (poll_now_.tv_sec - poll_t0_.tv_sec >= (secs))                  \
                fail_msg("timed out polling for: %s", text);                   \
            nanosleep(&poll_pause_, NULL);                                     \
        }                                                                      \
    } while (0)

/* Polls *count until it equals n, failing after 10 s: how a test knows that
 * n threads are blocked inside a primitive (a count the wait core keeps),
 * never by sleeping and hoping. */
static inline void conc_test_await_count(_Atomic uint32_t *count, uint32_t n)
{
    CONC_TEST_POLL_UNTIL(atomic_load(count) == n);
}

/* ---- the kernel's view of our threads (/proc/self/task/<tid>) ---- */

static inline pid_t conc_test_tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

/* The scheduler state of one of our threads ('R', 'S', 'D', ...); 0 once it
 * has exited. */
static inline char conc_test_thread_state(pid_t tid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    assert_non_null(p);
    return p[1] == ' ' ? p[2] : 0;
}

/* Whether the kernel has thread tid asleep ('S') inside a futex wait, on the
 * word at addr unless addr is NULL, and (untimed) with no timeout: read from
 * its syscall file (the number, then the arguments: the futex's address
 * first, the timeout fourth). Where the kernel offers no syscall file, its
 * wchan must name a futex wait instead, and neither the address nor the
 * timeout can be checked; where it offers neither, the sleep is all there
 * is to see. */
static inline bool conc_test_futex_sleep_(pid_t tid, const void *addr, bool untimed)
{
    if (conc_test_thread_state(tid) != 'S')
        return false;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    FILE *f = fopen(path, "r");
    if (f) {
        long nr = -1;
        unsigned long arg[4] = {0};
        int got = fscanf(f, "%ld %lx %lx %lx %lx", &nr, &arg[0], &arg[1], &arg[2], &arg[3]);
        fclose(f);
        /* "running" (it woke between the two reads) fails the scan */
        return got == 5 && nr == SYS_futex && (!addr || arg[0] == (unsigned long)(uintptr_t)addr) &&
               (!untimed || arg[3] == 0);
    }
    snprintf(path, sizeof path, "/proc/self/task/%d/wchan", (int)tid);
    if (!(f = fopen(path, "r")))
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return n == 0 || strcmp(buf, "0") == 0 || strstr(buf, "futex") != NULL;
}

/* Thread tid is asleep in a futex wait (on addr, unless NULL). */
static inline bool conc_test_thread_in_futex_wait(pid_t tid, const void *addr)
{
    return conc_test_futex_sleep_(tid, addr, false);
}

/* The same, with no timeout: only a futex wake (or a signal) ends it. */
static inline bool conc_test_thread_in_untimed_futex_wait(pid_t tid, const void *addr)
{
    return conc_test_futex_sleep_(tid, addr, true);
}

/* The OS name of thread tid (its comm), without the newline. */
static inline void conc_test_read_comm(long tid, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/comm", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    assert_true(n > 0);
    buf[n] = 0;
    buf[strcspn(buf, "\n")] = 0;
}

/* ---- deterministic random numbers (a failing sequence can be replayed) ---- */

/* Marsaglia's xorshift32 (13, 17, 5). */
static inline uint32_t conc_test_xorshift32(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* xorshift64* (12, 25, 27). */
static inline uint64_t conc_test_xorshift64s(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* ---- pools and tasks ---- */

/* A pool of `workers` threads (0: conc_cpu_count()) with an unbounded
 * submission queue. */
static inline conc_pool *conc_test_pool_new(int workers)
{
    conc_pool *p = NULL;
    conc_pool_opts o = {.max_workers = workers};
    assert_int_equal(conc_pool_create(&p, &o), 0);
    assert_non_null(p);
    return p;
}

/* The same with room for `capacity` queued tasks (0: unbounded). */
static inline conc_pool *conc_test_pool_new_bounded(int workers, size_t capacity)
{
    conc_pool *p = NULL;
    conc_pool_opts o = {.max_workers = workers, .queue_capacity = capacity};
    assert_int_equal(conc_pool_create(&p, &o), 0);
    assert_non_null(p);
    return p;
}

static inline void conc_test_pool_free(conc_pool *p)
{
    assert_int_equal(conc_pool_destroy(p), 0);
}

/* Drops the test's reference to f. */
static inline void conc_test_release(conc_future *f)
{
    assert_int_equal(conc_future_release(f), 0);
}

static inline conc_future *conc_test_submit(conc_pool *p, conc_task_fn fn, void *arg)
{
    conc_future *f = NULL;
    assert_int_equal(conc_pool_submit(p, fn, arg, &f), 0);
    return f;
}

/* Does nothing; returns 0. */
static inline int conc_test_noop_task(void *arg, conc_result *out)
{
    (void)arg;
    (void)out;
    return 0;
}

/* Counts a run in the _Atomic int arg points at; returns 0. */
static inline int conc_test_count_task(void *arg, conc_result *out)
{
    (void)out;
    atomic_fetch_add((_Atomic int *)arg, 1);
    return 0;
}

/* A task held RUNNING until the test opens the gate: it sets `started`,
 * waits for `go`, then returns `ret` with `value` as its result, having noted
 * its thread, its runs, whether cancellation was requested by then, and
 * (last) that it ended. */
struct conc_test_gate {
    conc_event started, go;
    _Atomic int runs;
    _Atomic pthread_t thread; /* the thread that ran it */
    _Atomic bool saw_cancel;  /* conc_cancel_requested() once let go */
    _Atomic bool ended;
    int ret;
    int64_t value;
};

static inline void conc_test_gate_init(struct conc_test_gate *g, int ret, int64_t value)
{
    memset(g, 0, sizeof *g);
    assert_int_equal(conc_event_init(&g->started, NULL), 0);
    assert_int_equal(conc_event_init(&g->go, NULL), 0);
    g->ret = ret;
    g->value = value;
}

static inline void conc_test_gate_destroy(struct conc_test_gate *g)
{
    assert_int_equal(conc_event_destroy(&g->started), 0);
    assert_int_equal(conc_event_destroy(&g->go), 0);
}

/* Runs on a pool worker: a cmocka assertion there would longjmp across
 * threads (an abort, with no message), so what fails is printed and
 * returned as the task's status, for the test thread to see. */
static inline int conc_test_gated_task(void *arg, conc_result *out)
{
    struct conc_test_gate *g = arg;
    atomic_store(&g->thread, pthread_self());
    atomic_fetch_add(&g->runs, 1);
    int rc = conc_event_set(&g->started);
    if (rc == 0)
        rc = conc_event_wait(&g->go);
    if (rc != 0) {
        fprintf(stderr, "gated task: its gate's event failed: %s (%s), runs %d\n",
                conc_err_name(rc), conc_error_detail(), atomic_load(&g->runs));
        atomic_store(&g->ended, true);
        return rc;
    }
    atomic_store(&g->saw_cancel, conc_cancel_requested());
    out->value = g->value;
    atomic_store(&g->ended, true);
    return g->ret;
}

/* Submits a gated task and returns once it runs. */
static inline conc_future *conc_test_submit_running(conc_pool *p, struct conc_test_gate *g)
{
    conc_future *f = conc_test_submit(p, conc_test_gated_task, g);
    assert_int_equal(conc_event_wait(&g->started), 0);
    assert_true(conc_future_running(f));
    return f;
}

/* Holds one of p's workers in a gated task (status 0, value 1) until
 * conc_test_gate_open; the caller releases the future and destroys g. */
static inline conc_future *conc_test_hold_worker(conc_pool *p, struct conc_test_gate *g)
{
    conc_test_gate_init(g, 0, 1);
    return conc_test_submit_running(p, g);
}

static inline void conc_test_gate_open(struct conc_test_gate *g)
{
    assert_int_equal(conc_event_set(&g->go), 0);
}

/* ---- child processes ---- */

/* Waits up to `seconds` for the child pid: its exit status, 128 + the
 * signal that ended it, or -1 when it did not end in time (it is killed
 * and reaped then). */
static inline int conc_test_wait_child(pid_t pid, int seconds)
{
    struct timespec t0, now, pause = {0, 200 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        assert_int_equal(r, 0);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= seconds) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        nanosleep(&pause, NULL);
    }
}

/* Forks a child that runs fn(arg) and exits with its result (a child
 * checks with plain ifs, never cmocka's asserts, and reports through its
 * exit status). The child dies with its parent (PR_SET_PDEATHSIG), so an
 * aborted test leaves nothing running. */
static inline pid_t conc_test_fork(int (*fn)(void *), void *arg)
{
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(99);
        _exit(fn(arg));
    }
    return pid;
}

/* Waits at most 10 s for the child; kills it and fails if it is late, fails
 * unless it exited with status 0. */
static inline void conc_test_reap(pid_t pid)
{
    int rc = conc_test_wait_child(pid, 10);
    if (rc < 0)
        fail_msg("child %d did not finish within 10 s: killed", (int)pid);
    if (rc >= 128)
        fail_msg("child %d killed by signal %d", (int)pid, rc - 128);
    if (rc != 0)
        fail_msg("child %d exited with status %d", (int)pid, rc);
}

/* In a child: report the failed check and return 1 (the exit status). */
#define CONC_TEST_CHILD_CHECK(c)                                              \
    do {                                                                      \
        if (!(c)) {                                                           \
            fprintf(stderr, "child %d: check failed at %s:%d: %s\n",          \
                    (int)getpid(), __FILE__, __LINE__, #c);                   \
            return 1;                                                         \
        }                                                                     \
    } while (0)

/* ---- processes: shared memory names, a process asleep ---- */

/* The prefix of every named segment the tests make: the build folder's
 * (CONC_TEST_SHM_PREFIX, tests/CMakeLists.txt), so that the leak check after
 * the suite finds what a test left. */
static inline const char *conc_test_shm_prefix(void)
{
    const char *p = getenv("CONC_TEST_SHM_PREFIX");
    return p && *p ? p : "conc-test-";
}

/* Fails if a segment of this process (its names begin with the prefix and
 * the pid) is left in /dev/shm; each one found is removed, so that one
 * failure does not spill into other tests. */
static inline void conc_test_assert_no_segment_left(void)
{
    char mine[256];
    snprintf(mine, sizeof mine, "%s%d-", conc_test_shm_prefix(), (int)getpid());
    DIR *d = opendir("/dev/shm");
    assert_non_null(d);
    int left = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, mine, strlen(mine)) == 0) {
            print_error("left in /dev/shm: %s\n", e->d_name);
            conc_shm_unlink_name(e->d_name);
            left++;
        }
    }
    closedir(d);
    assert_int_equal(left, 0);
}

/* Whether process pid is asleep in a futex wait: its syscall file, or where
 * the kernel hides that, its state. */
static inline bool conc_test_in_futex_wait(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
    FILE *f = fopen(path, "r");
    long nr = -1;
    if (f) {
        int got = fscanf(f, "%ld", &nr);
        fclose(f);
        if (got == 1)
            return nr == SYS_futex;
    }
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r")))
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'S';
}

/* ---- failures nobody read (conc_set_unhandled_hook) ---- */

struct conc_test_unhandled {
    _Atomic int calls;
    _Atomic int status;
    char kind[16], name[64];
};

static inline void conc_test_unhandled_hook(const conc_unhandled *u, void *arg)
{
    struct conc_test_unhandled *c = arg;
    snprintf(c->kind, sizeof c->kind, "%s", u->kind);
    snprintf(c->name, sizeof c->name, "%s", u->name ? u->name : "");
    atomic_store(&c->status, u->status);
    atomic_fetch_add(&c->calls, 1);
}

#endif
