/* The deadlock watchdog and dumps (conc/debug.h): a real AB/BA deadlock
 * between two threads found in a child process (which the test kills), the
 * same cycle found in-process between timed lockers that give up once it is
 * reported, no report for a long wait that is not a cycle, the argument
 * codes, dumps that show a blocked thread with its lock and holder and a
 * pool task running on a worker, and the dump on SIGQUIT. */
#define _GNU_SOURCE
#include "test_impl.h"

#include "conc/debug.h"
#include "queue/queue_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern _Atomic uint64_t conc__watchdog_scans; /* watchdog.c */

/* ---- helpers ---- */

/* Reports captured in memory (the reporter runs on the watchdog's and the
 * dumper's threads). */
static pthread_mutex_t captured_lock = PTHREAD_MUTEX_INITIALIZER;
static char captured[1 << 16];
static size_t captured_len;

static void capture(const char *text, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&captured_lock);
    size_t n = strlen(text);
    if (n > sizeof captured - 1 - captured_len)
        n = sizeof captured - 1 - captured_len;
    memcpy(captured + captured_len, text, n);
    captured_len += n;
    captured[captured_len] = 0;
    pthread_mutex_unlock(&captured_lock);
}

static bool captured_has(const char *s)
{
    pthread_mutex_lock(&captured_lock);
    bool found = strstr(captured, s) != NULL;
    pthread_mutex_unlock(&captured_lock);
    return found;
}

static void captured_clear(void)
{
    pthread_mutex_lock(&captured_lock);
    captured_len = 0;
    captured[0] = 0;
    pthread_mutex_unlock(&captured_lock);
}

/* What fn writes to a descriptor, as a string (a dump). */
static char *text_of(int (*fn)(int fd))
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(fn(fileno(f)), 0);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    char *text = calloc(1, (size_t)n + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return text;
}

static void addr_text(char *buf, size_t size, const void *p)
{
    snprintf(buf, size, "%p", p);
}

static conc_thread *start_named(const char *name, conc_thread_fn fn, void *arg)
{
    conc_thread *t;
    conc_thread_opts o = {.name = name};
    assert_int_equal(conc_thread_create(&t, fn, arg, &o), 0);
    return t;
}

static void join_thread(conc_thread *t)
{
    assert_int_equal(conc_thread_join(t, NULL), 0);
    assert_int_equal(conc_thread_destroy(t), 0);
}

/* ---- argument codes ---- */

static void watchdog_arguments_and_busy(void **state)
{
    (void)state;
    assert_int_equal(conc_watchdog_start(0), CONC_EINVAL);
    assert_int_equal(conc_watchdog_start(-5), CONC_EINVAL);
    assert_int_equal(conc_watchdog_stop(), 0); /* not running: nothing to do */
    assert_int_equal(conc_watchdog_start(CONC_SEC(1)), 0);
    assert_int_equal(conc_watchdog_start(CONC_SEC(1)), CONC_EBUSY);
    assert_int_equal(conc_watchdog_stop(), 0);
    assert_int_equal(conc_watchdog_stop(), 0);
    /* Restartable after a stop. */
    assert_int_equal(conc_watchdog_start(CONC_MSEC(100)), 0);
    assert_int_equal(conc_watchdog_stop(), 0);
    assert_int_equal(conc_watchdog_reports(), 0);
}

/* ---- a real deadlock, in a child process ---- */

static conc_mutex lock_a, lock_b;
static _Atomic int holding;

static int left_thread(void *arg)
{
    (void)arg;
    conc_mutex_lock(&lock_a);
    atomic_fetch_add(&holding, 1);
    while (atomic_load(&holding) < 2)
        conc_sleep(CONC_USEC(100));
    conc_mutex_lock(&lock_b); /* never returns: right holds b, waits for a */
    return 0;
}

static int right_thread(void *arg)
{
    (void)arg;
    conc_mutex_lock(&lock_b);
    atomic_fetch_add(&holding, 1);
    while (atomic_load(&holding) < 2)
        conc_sleep(CONC_USEC(100));
    conc_mutex_lock(&lock_a);
    return 0;
}

static void pipe_reporter(const char *text, void *arg)
{
    int fd = *(int *)arg;
    size_t n = strlen(text);
    while (n > 0) {
        ssize_t k = write(fd, text, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            _exit(3);
        text += k;
        n -= (size_t)k;
    }
}

/* The child: the deadlock, watched; it stays deadlocked until killed. */
static void deadlock_child(int fd)
{
    static int report_fd;
    report_fd = fd;
    conc_debug_set_reporter(pipe_reporter, &report_fd);
    if (conc_watchdog_start(CONC_MSEC(50)) != 0)
        _exit(4);
    conc_thread *l, *r;
    conc_thread_opts lo = {.name = "dl-left"}, ro = {.name = "dl-right"};
    if (conc_thread_create(&l, left_thread, NULL, &lo) != 0 ||
        conc_thread_create(&r, right_thread, NULL, &ro) != 0)
        _exit(5);
    for (;;)
        pause();
}

static void watchdog_finds_deadlock_in_child(void **state)
{
    (void)state;
    assert_int_equal(conc_mutex_init(&lock_a, NULL), 0);
    assert_int_equal(conc_mutex_init(&lock_b, NULL), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        deadlock_child(fds[1]);
    }
    close(fds[1]);
    char a[32], b[32];
    addr_text(a, sizeof a, &lock_a);
    addr_text(b, sizeof b, &lock_b);
    /* Read until the report is whole (the reporter writes it at once, but
     * a pipe may hand it over in pieces), or EOF, or a generous ceiling. */
    static char text[1 << 16];
    size_t len = 0;
    int64_t deadline = conc_now_ns() + CONC_SEC(60);
    bool whole = false;
    while (!whole && conc_now_ns() < deadline && len < sizeof text - 1) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t k = read(fds[0], text + len, sizeof text - 1 - len);
        if (k <= 0)
            break; /* EOF: the child died */
        len += (size_t)k;
        text[len] = 0;
        whole = strstr(text, "\"dl-left\"") && strstr(text, "\"dl-right\"") && strstr(text, a) &&
                strstr(text, b) && strstr(text, "held by");
    }
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(fds[0]);
    print_message("child's report:\n%s", text);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_non_null(strstr(text, "deadlock"));
    assert_true(whole);
    assert_int_equal(conc_mutex_destroy(&lock_a), 0);
    assert_int_equal(conc_mutex_destroy(&lock_b), 0);
}

/* ---- the same cycle in-process, between timed lockers ---- */

struct timed_locker {
    conc_mutex *first, *second;
    _Atomic int *holding;
    int rounds; /* timed attempts made */
};

/* Holds first, then tries second in 200 ms attempts until the watchdog has
 * reported (then gives up) or it gets it. */
static int timed_locker_fn(void *arg)
{
    struct timed_locker *t = arg;
    assert_int_equal(conc_mutex_lock(t->first), 0);
    atomic_fetch_add(t->holding, 1);
    while (atomic_load(t->holding) < 2)
        conc_sleep(CONC_USEC(100));
    int64_t ceiling = conc_now_ns() + CONC_SEC(60);
    for (;;) {
        t->rounds++;
        int rc = conc_mutex_lock_timed(t->second, CONC_MSEC(200));
        if (rc == 0) {
            assert_int_equal(conc_mutex_unlock(t->second), 0);
            break;
        }
        assert_int_equal(rc, CONC_ETIMEDOUT);
        if (conc_watchdog_reports() > 0)
            break;
        assert_true(conc_now_ns() < ceiling);
    }
    assert_int_equal(conc_mutex_unlock(t->first), 0);
    return 0;
}

static void watchdog_reports_timed_cycle_in_process(void **state)
{
    (void)state;
    conc_mutex m1, m2;
    assert_int_equal(conc_mutex_init(&m1, NULL), 0);
    assert_int_equal(conc_mutex_init(&m2, NULL), 0);
    captured_clear();
    assert_int_equal(conc_debug_set_reporter(capture, NULL), 0);
    assert_int_equal(conc_watchdog_start(CONC_MSEC(20)), 0);
    _Atomic int both = 0;
    struct timed_locker x = {&m1, &m2, &both, 0}, y = {&m2, &m1, &both, 0};
    conc_thread *tx = start_named("cyc-x", timed_locker_fn, &x);
    conc_thread *ty = start_named("cyc-y", timed_locker_fn, &y);
    join_thread(tx);
    join_thread(ty);
    assert_int_equal(conc_watchdog_stop(), 0);
    assert_int_equal(conc_debug_set_reporter(NULL, NULL), 0);
    char a1[32], a2[32];
    addr_text(a1, sizeof a1, &m1);
    addr_text(a2, sizeof a2, &m2);
    print_message("reports %llu after %d + %d attempts:\n%s",
                  (unsigned long long)conc_watchdog_reports(), x.rounds, y.rounds, captured);
    assert_true(conc_watchdog_reports() >= 1);
    assert_true(captured_has("deadlock"));
    assert_true(captured_has("thread \"cyc-x\""));
    assert_true(captured_has("thread \"cyc-y\""));
    assert_true(captured_has(a1));
    assert_true(captured_has(a2));
    assert_int_equal(conc_mutex_destroy(&m1), 0);
    assert_int_equal(conc_mutex_destroy(&m2), 0);
}

/* ---- a long wait that is no cycle ---- */

static int lock_once_fn(void *arg)
{
    assert_int_equal(conc_mutex_lock(arg), 0);
    assert_int_equal(conc_mutex_unlock(arg), 0);
    return 0;
}

static void watchdog_silent_on_long_wait_without_cycle(void **state)
{
    (void)state;
    conc_mutex m;
    assert_int_equal(conc_mutex_init(&m, NULL), 0);
    captured_clear();
    assert_int_equal(conc_debug_set_reporter(capture, NULL), 0);
    assert_int_equal(conc_watchdog_start(CONC_MSEC(5)), 0);
    assert_int_equal(conc_mutex_lock(&m), 0);
    conc_thread *t = start_named("long-waiter", lock_once_fn, &m);
    CONC_TEST_POLL_UNTIL(conc_test_mutex_has_waiter(&m));
    /* Blocked past the threshold, and the watchdog has looked several
     * times since: the holder waits for nothing, so there is no cycle. */
    int64_t blocked_at = conc_now_ns();
    CONC_TEST_POLL_UNTIL(conc_now_ns() - blocked_at > CONC_MSEC(20));
    uint64_t scans = atomic_load(&conc__watchdog_scans);
    CONC_TEST_POLL_UNTIL(atomic_load(&conc__watchdog_scans) >= scans + 3);
    assert_int_equal(conc_watchdog_reports(), 0);
    assert_false(captured_has("deadlock"));
    assert_int_equal(conc_mutex_unlock(&m), 0);
    join_thread(t);
    assert_int_equal(conc_watchdog_stop(), 0);
    assert_int_equal(conc_debug_set_reporter(NULL, NULL), 0);
    assert_int_equal(conc_mutex_destroy(&m), 0);
}

/* ---- dumps ---- */

static int dump_to(int fd)
{
    return conc_debug_dump(fd);
}

static void dump_shows_blocked_thread_and_holder(void **state)
{
    (void)state;
    conc_mutex m;
    assert_int_equal(conc_mutex_init(&m, NULL), 0);
    /* A long threshold: tracking on, no watchdog report. */
    assert_int_equal(conc_watchdog_start(CONC_SEC(600)), 0);
    assert_int_equal(conc_mutex_lock(&m), 0);
    conc_thread *t = start_named("dump-waiter", lock_once_fn, &m);
    CONC_TEST_POLL_UNTIL(conc_test_mutex_has_waiter(&m));
    char *text = text_of(dump_to);
    print_message("%s", text);
    char addr[32], holder[64], waits[96];
    addr_text(addr, sizeof addr, &m);
    snprintf(holder, sizeof holder, "held by thread \"");
    snprintf(waits, sizeof waits, "for mutex %s", addr);
    assert_non_null(strstr(text, "lock waits tracked"));
    const char *waiter = strstr(text, "thread \"dump-waiter\"");
    assert_non_null(waiter);
    /* Its entry (up to the next thread) names the lock and its holder, us. */
    const char *next = strstr(waiter + 1, "\nthread \"");
    char *entry = strndup(waiter, next ? (size_t)(next - waiter) : strlen(waiter));
    assert_non_null(entry);
    assert_non_null(strstr(entry, "[conc thread]"));
    assert_non_null(strstr(entry, waits));
    assert_non_null(strstr(entry, holder));
    char me[32];
    snprintf(me, sizeof me, "(tid %d)", (int)getpid());
    assert_non_null(strstr(strstr(entry, holder), me));
    /* And our own entry says we hold it. */
    char held[64];
    snprintf(held, sizeof held, "holds mutex %s", addr);
    assert_non_null(strstr(text, held));
    free(entry);
    free(text);
    assert_int_equal(conc_mutex_unlock(&m), 0);
    join_thread(t);
    assert_int_equal(conc_watchdog_stop(), 0);
    assert_int_equal(conc_mutex_destroy(&m), 0);
}

struct blocked_task {
    _Atomic bool running;
    conc_event release;
};

static int blocked_task_fn(void *arg, conc_result *out)
{
    (void)out;
    struct blocked_task *b = arg;
    atomic_store(&b->running, true);
    return conc_event_wait(&b->release);
}

static void dump_shows_running_task_untracked(void **state)
{
    (void)state;
    struct blocked_task b = {0};
    assert_int_equal(conc_event_init(&b.release, NULL), 0);
    conc_pool *p;
    conc_pool_opts o = {.max_workers = 1, .name = "dumppool"};
    assert_int_equal(conc_pool_create(&p, &o), 0);
    conc_future *f;
    assert_int_equal(conc_pool_submit(p, blocked_task_fn, &b, &f), 0);
    CONC_TEST_POLL_UNTIL(atomic_load(&b.running));
    char *text = text_of(dump_to);
    print_message("%s", text);
    char task[64];
    snprintf(task, sizeof task, "running task %p", (void *)f);
    assert_non_null(strstr(text, "not tracked"));
    const char *worker = strstr(text, "thread \"dumppool-0\"");
    assert_non_null(worker);
    assert_non_null(strstr(worker, task));
    free(text);
    assert_int_equal(conc_event_set(&b.release), 0);
    assert_int_equal(conc_future_wait(f), 0);
    assert_int_equal(conc_future_release(f), 0);
    assert_int_equal(conc_pool_destroy(p), 0);
    assert_int_equal(conc_event_destroy(&b.release), 0);
}

static int nothing_fn(void *arg, conc_result *out)
{
    (void)arg, (void)out;
    return 0;
}

/* A pool whose one worker is busy: the dump lists the pool and the three
 * tasks submitted behind the busy one, waiting to run. */
static void dump_lists_pools_and_queued_tasks(void **state)
{
    (void)state;
    struct blocked_task b = {0};
    assert_int_equal(conc_event_init(&b.release, NULL), 0);
    conc_pool *p;
    conc_pool_opts o = {.max_workers = 1, .name = "queuedpool"};
    assert_int_equal(conc_pool_create(&p, &o), 0);
    conc_future *busy, *queued[3];
    assert_int_equal(conc_pool_submit(p, blocked_task_fn, &b, &busy), 0);
    CONC_TEST_POLL_UNTIL(atomic_load(&b.running));
    for (int i = 0; i < 3; i++)
        assert_int_equal(conc_pool_submit(p, nothing_fn, NULL, &queued[i]), 0);
    char *text = text_of(dump_to);
    print_message("%s", text);
    const char *line = strstr(text, "pool \"queuedpool\": 1 of 1 worker started, running;");
    assert_non_null(line);
    assert_non_null(strstr(line, "waiting to run: 3 submitted, 0 in the workers' deques"));
    free(text);
    assert_int_equal(conc_event_set(&b.release), 0);
    assert_int_equal(conc_future_wait(busy), 0);
    assert_int_equal(conc_future_release(busy), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(conc_future_wait(queued[i]), 0);
        assert_int_equal(conc_future_release(queued[i]), 0);
    }
    assert_int_equal(conc_pool_destroy(p), 0);
    text = text_of(dump_to); /* a destroyed pool is no longer listed */
    assert_null(strstr(text, "\"queuedpool\""));
    free(text);
    assert_int_equal(conc_event_destroy(&b.release), 0);
}

/* A thread blocked in a queue's get, with no diagnostic on: the dump says
 * what it sleeps on — the wait queue inside that queue (wait.h). */
static int getter_fn(void *arg)
{
    long item;
    return conc_queue_get(arg, &item) == CONC_ESHUTDOWN ? 0 : -1;
}

static void dump_shows_what_a_blocked_thread_sleeps_on(void **state)
{
    (void)state;
    conc_queue *q;
    assert_int_equal(conc_queue_create(&q, sizeof(long), &(conc_queue_opts){.capacity = 4}), 0);
    conc_thread *t;
    conc_thread_opts to = {.name = "blocked-getter"};
    assert_int_equal(conc_thread_create(&t, getter_fn, q, &to), 0);
    CONC_TEST_POLL_UNTIL(conc__queue_waiting(q, CONC__QW_GET) == 1);
    /* Counted as waiting a moment before it parks: poll the dump. */
    char expect[128];
    snprintf(expect, sizeof expect, "sleeping on %p", (void *)&q->wq);
    char *text = NULL;
    for (int i = 0; i < 1000; i++) {
        free(text);
        text = text_of(dump_to);
        const char *getter = strstr(text, "thread \"blocked-getter\"");
        if (getter && strstr(getter, expect))
            break;
        conc_sleep(CONC_MSEC(1));
    }
    print_message("%s", text);
    const char *getter = strstr(text, "thread \"blocked-getter\"");
    assert_non_null(getter);
    assert_non_null(strstr(getter, expect));
    free(text);
    assert_int_equal(conc_queue_shutdown(q, false), 0);
    int status = -1;
    assert_int_equal(conc_thread_join(t, &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(conc_thread_destroy(t), 0);
    assert_int_equal(conc_queue_destroy(q), 0);
}

static void dump_bad_descriptors(void **state)
{
    (void)state;
    assert_int_equal(conc_debug_dump(-1), CONC_EINVAL);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    close(fds[0]);
    close(fds[1]);
    assert_int_equal(conc_debug_dump(fds[1]), CONC_EBADF);
}

static void dump_on_sigquit(void **state)
{
    (void)state;
    captured_clear();
    assert_non_null(conc_thread_self()); /* adopted: registered, shows in dumps */
    assert_int_equal(conc_debug_set_reporter(capture, NULL), 0);
    struct sigaction before;
    assert_int_equal(sigaction(SIGQUIT, NULL, &before), 0);
    assert_int_equal(conc_debug_dump_on_sigquit(true), 0);
    assert_int_equal(conc_debug_dump_on_sigquit(true), 0); /* already on */
    assert_int_equal(kill(getpid(), SIGQUIT), 0);
    CONC_TEST_POLL_UNTIL(captured_has("conc dump: pid"));
    char me[32];
    snprintf(me, sizeof me, "(tid %d)", (int)getpid());
    assert_true(captured_has(me));
    assert_int_equal(conc_debug_dump_on_sigquit(false), 0);
    assert_int_equal(conc_debug_dump_on_sigquit(false), 0);
    struct sigaction after;
    assert_int_equal(sigaction(SIGQUIT, NULL, &after), 0);
    assert_ptr_equal(after.sa_handler, before.sa_handler);
    assert_int_equal(conc_debug_set_reporter(NULL, NULL), 0);
}

/* ---- fork ---- */

static int idle_fn(void *arg)
{
    return conc_event_wait(arg);
}

static int dump_count_threads(void)
{
    FILE *f = tmpfile();
    if (!f || conc_debug_dump(fileno(f)) != 0)
        return -1;
    rewind(f);
    char line[256] = "";
    int n = -1;
    if (fgets(line, sizeof line, f))
        sscanf(line, "conc dump: pid %*d, %d thread", &n);
    fclose(f);
    return n;
}

/* The child's diagnostics start afresh: the parent's watchdog, trace and
 * threads are not its own. Returns a failure number, 0 when all is well. */
static int forked_child_checks(void)
{
    if (dump_count_threads() != 1)
        return 10; /* only the forking thread is left */
    if (conc_watchdog_start(CONC_SEC(1)) != 0 || conc_watchdog_stop() != 0)
        return 11;
    if (conc_trace_start("/dev/null", 4) != 0 || conc_trace_stop() != 0)
        return 12;
    return 0;
}

static void diagnostics_survive_fork(void **state)
{
    (void)state;
#if CONC__TSAN && !defined(__clang__)
    /* The parent has threads running at the fork, and the child starts
     * threads of its own: gcc's TSan cannot (clang's can, with
     * die_after_fork=0, which tests/CMakeLists.txt sets). */
    print_message("skipped under gcc's ThreadSanitizer: threads started after a multi-threaded fork\n");
    skip();
#endif
    assert_non_null(conc_thread_self());
    char path[] = "/tmp/conc-fork-trace-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    conc_event stop;
    assert_int_equal(conc_event_init(&stop, NULL), 0);
    assert_int_equal(conc_watchdog_start(CONC_SEC(1)), 0);
    assert_int_equal(conc_trace_start(path, 0), 0);
    conc_thread *t = start_named("fork-bystander", idle_fn, &stop);
    CONC_TEST_POLL_UNTIL(dump_count_threads() == 2); /* it registers as it starts */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(forked_child_checks());
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The parent's own go on. */
    assert_int_equal(conc_event_set(&stop), 0);
    join_thread(t);
    assert_int_equal(conc_trace_stop(), 0);
    assert_int_equal(conc_watchdog_stop(), 0);
    assert_int_equal(conc_event_destroy(&stop), 0);
    /* The parent's trace (test_trace parses traces; here: it was written). */
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char body[1 << 16];
    body[fread(body, 1, sizeof body - 1, f)] = 0;
    fclose(f);
    assert_non_null(strstr(body, "\"traceEvents\":["));
    assert_non_null(strstr(body, "\"fork-bystander\""));
    unlink(path);
}

CONC_TEST_MAIN(
    cmocka_unit_test(watchdog_arguments_and_busy),
    cmocka_unit_test(watchdog_finds_deadlock_in_child),
    cmocka_unit_test(watchdog_reports_timed_cycle_in_process),
    cmocka_unit_test(watchdog_silent_on_long_wait_without_cycle),
    cmocka_unit_test(dump_shows_blocked_thread_and_holder),
    cmocka_unit_test(dump_shows_running_task_untracked),
    cmocka_unit_test(dump_shows_what_a_blocked_thread_sleeps_on),
    cmocka_unit_test(dump_lists_pools_and_queued_tasks),
    cmocka_unit_test(dump_bad_descriptors),
    cmocka_unit_test(dump_on_sigquit),
    cmocka_unit_test(diagnostics_survive_fork),
)
