/* pool.h, "at exit": what exit() does to live pools, as Python's
 * interpreter does at its end — every pool is shut down (new submissions
 * get CONC_ESHUTDOWN, a pool created then is born shut down) and exit waits
 * for the tasks they hold, within conc_pool_set_exit_timeout's limit; a
 * pool it gave up on is named on stderr; the pool whose task called exit()
 * is not waited for, the others are; a forked child's exit leaves the
 * parent's pools alone.
 *
 * Each scenario runs in a child process that ends with exit(0). Its tasks
 * write one byte each to a pipe the parent reads after the child has ended;
 * its stderr goes to a second pipe; a task meant to block for good reads a
 * third pipe whose write end only the parent holds, and never writes. A
 * task that must still run when exit has begun waits until a probe pool
 * refuses work (exit shut it down), so nothing depends on timing. The
 * parent reaps the child with a generous deadline (conc_test_wait_child):
 * a child still alive then has hung, and fails the test. A failed check in
 * a child ends it with _exit and a code naming the check. */
#define _GNU_SOURCE
#include "test.h"

#include "exec/pool/pool_impl.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define CHILD_DEADLINE_S 30

enum child_failure {
    CHILD_CREATE = 10,
    CHILD_SUBMIT,
    CHILD_PROBE,
    CHILD_PROBE_HUNG,
    CHILD_LATE_POOL,
    CHILD_WRITE,
    CHILD_SET_TIMEOUT,
    CHILD_INHERITED,
    CHILD_FORK,
    CHILD_GRANDCHILD,
};

/* The pipes of one scenario: what the child's tasks write (bytes), its
 * stderr (err), and one nobody writes to (block: a read blocks for good). */
struct child_pipes {
    int bytes[2], err[2], block[2];
};

/* Set in the child before the scenario runs. */
static struct child_pipes *child;
static conc_pool *probe;

static conc_pool *child_pool(const char *name, int workers)
{
    conc_pool *p = NULL;
    conc_pool_opts o = {.max_workers = workers, .name = name};
    if (conc_pool_create(&p, &o) != 0)
        _exit(CHILD_CREATE);
    return p;
}

static void child_submit(conc_pool *p, conc_task_fn fn, void *arg)
{
    if (conc_pool_submit(p, fn, arg, NULL) != 0)
        _exit(CHILD_SUBMIT);
}

static void put_byte(char c)
{
    if (write(child->bytes[1], &c, 1) != 1)
        _exit(CHILD_WRITE);
}

/* Writes its byte. */
static int byte_task(void *arg, conc_result *out)
{
    (void)out;
    put_byte((char)(intptr_t)arg);
    return 0;
}

/* Blocks for good: nobody writes to the pipe. */
static int block_task(void *arg, conc_result *out)
{
    (void)out;
    char c;
    if (arg)
        conc_event_set(arg);
    while (read(child->block[0], &c, 1) < 0 && errno == EINTR)
        ;
    return 0;
}

/* Returns once exit has begun: the probe pool refuses work. */
static void await_exit(void)
{
    int64_t t0 = conc_now_ns();
    for (;;) {
        int rc = conc_pool_submit(probe, conc_test_noop_task, NULL, NULL);
        if (rc == CONC_ESHUTDOWN)
            return;
        if (rc != 0)
            _exit(CHILD_PROBE);
        if (conc_now_ns() - t0 > CONC_SEC(CHILD_DEADLINE_S))
            _exit(CHILD_PROBE_HUNG);
        conc_sleep(CONC_USEC(200));
    }
}

/* Runs once exit has begun: a pool created now is born shut down; then
 * writes its byte. */
static int after_exit_task(void *arg, conc_result *out)
{
    (void)out;
    await_exit();
    conc_pool *late = NULL;
    if (conc_pool_create(&late, NULL) != 0 ||
        conc_pool_submit(late, conc_test_noop_task, NULL, NULL) != CONC_ESHUTDOWN ||
        conc_pool_destroy(late) != 0)
        _exit(CHILD_LATE_POOL);
    put_byte((char)(intptr_t)arg);
    return 0;
}

/* Forks a child that runs scenario (which ends with exit) with its stderr
 * on the err pipe; waits for it; returns its exit status (-1: it hung and
 * was killed) and, in bytes/err (NUL-terminated, up to size - 1), what its
 * tasks wrote and what it printed on stderr. */
static int run_child(void (*scenario)(void), char *bytes, char *err, size_t size)
{
    struct child_pipes pipes;
    assert_int_equal(pipe(pipes.bytes), 0);
    assert_int_equal(pipe(pipes.err), 0);
    assert_int_equal(pipe(pipes.block), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child = &pipes;
        close(pipes.bytes[0]);
        close(pipes.err[0]);
        close(pipes.block[1]);
        if (dup2(pipes.err[1], STDERR_FILENO) < 0)
            _exit(CHILD_WRITE);
        scenario();
        _exit(1); /* scenario returned instead of exiting */
    }
    close(pipes.bytes[1]);
    close(pipes.err[1]);
    close(pipes.block[0]);
    int status = conc_test_wait_child(pid, CHILD_DEADLINE_S);
    /* The child is gone, so are its write ends: read to the end. */
    int fds[2] = {pipes.bytes[0], pipes.err[0]};
    char *bufs[2] = {bytes, err};
    for (int k = 0; k < 2; k++) {
        size_t n = 0;
        ssize_t r;
        while (n < size - 1 && (r = read(fds[k], bufs[k] + n, size - 1 - n)) != 0) {
            if (r < 0 && errno == EINTR)
                continue;
            assert_true(r > 0);
            n += (size_t)r;
        }
        bufs[k][n] = 0;
        close(fds[k]);
    }
    close(pipes.block[1]);
    return status;
}

/* ------------------------------------------------------------- scenarios */

enum { N_TASKS = 64 };

/* One worker: a task that runs until exit has begun, then N_TASKS - 1
 * queued behind it. Exit must run them all. */
static void scenario_tasks_finish(void)
{
    probe = child_pool("probe", 1);
    conc_pool *p = child_pool("work", 1);
    child_submit(p, after_exit_task, (void *)(intptr_t)'a');
    for (int i = 1; i < N_TASKS; i++)
        child_submit(p, byte_task, (void *)(intptr_t)'a');
    exit(0);
}

/* Exit waits for the tasks submitted before it: all N_TASKS bytes come,
 * and nothing is said on stderr. */
static void exit_runs_queued_and_running_tasks(void **state)
{
    (void)state;
    char bytes[1024], err[1024];
    assert_int_equal(run_child(scenario_tasks_finish, bytes, err, sizeof bytes), 0);
    assert_int_equal(strlen(bytes), N_TASKS);
    assert_string_equal(err, "");
}

/* A 50 ms limit, a task blocked for good and two queued behind it. */
static void scenario_gives_up(void)
{
    if (conc_pool_set_exit_timeout(CONC_MSEC(50)) != 0)
        _exit(CHILD_SET_TIMEOUT);
    conc_pool *p = child_pool("stuck", 1);
    conc_event running;
    conc_event_init(&running, NULL);
    child_submit(p, block_task, &running);
    conc_event_wait(&running);
    child_submit(p, byte_task, (void *)(intptr_t)'q');
    child_submit(p, byte_task, (void *)(intptr_t)'q');
    exit(0);
}

/* Exit gives up after the limit (the child ends: a hang would be caught by
 * the deadline), names the pool and what it left on stderr in one line, and
 * the queued tasks never ran. */
static void exit_gives_up_after_timeout_and_says_so(void **state)
{
    (void)state;
    char bytes[1024], err[1024];
    assert_int_equal(run_child(scenario_gives_up, bytes, err, sizeof bytes), 0);
    print_message("%s", err);
    assert_string_equal(err, "conc: exit stopped waiting for pool \"stuck\" after 50 ms: 2 tasks "
                             "queued, 1 running\n");
    assert_string_equal(bytes, "");
}

/* exit() from a task of pool "exiting", whose other task is blocked for
 * good; pool "other" has a task that runs until exit has begun. No limit:
 * waiting for "exiting" would hang. */
static int exit_task(void *arg, conc_result *out)
{
    (void)out;
    conc_event_wait(arg); /* its sibling runs */
    exit(0);
}

static void scenario_exit_from_task(void)
{
    if (conc_pool_set_exit_timeout(CONC_FOREVER) != 0)
        _exit(CHILD_SET_TIMEOUT);
    probe = child_pool("probe", 1);
    conc_pool *exiting = child_pool("exiting", 2);
    conc_pool *other = child_pool("other", 1);
    conc_event running;
    conc_event_init(&running, NULL);
    child_submit(other, after_exit_task, (void *)(intptr_t)'o');
    child_submit(exiting, block_task, &running);
    child_submit(exiting, exit_task, &running);
    for (;;)
        pause(); /* the task's exit() ends the process */
}

/* The process ends (the pool of the exiting task is not waited for), after
 * the other pool's task has run (that pool is). */
static void exit_from_a_task_does_not_wait_for_its_pool(void **state)
{
    (void)state;
    char bytes[1024], err[1024];
    assert_int_equal(run_child(scenario_exit_from_task, bytes, err, sizeof bytes), 0);
    assert_string_equal(bytes, "o");
    assert_string_equal(err, "");
}

/* A pool with a task blocked for good and one queued behind it, inherited
 * by a grandchild: there it answers CONC_EBROKEN, a pool of the
 * grandchild's own runs its tasks before the grandchild's exit ends, and
 * that exit (with no limit) leaves the inherited pool alone: it neither
 * waits for it nor reports it (it would see a task running and one queued).
 * The child itself exits without waiting (limit 0). */
static void grandchild(conc_pool *inherited)
{
    if (conc_pool_set_exit_timeout(CONC_FOREVER) != 0)
        _exit(CHILD_SET_TIMEOUT);
    if (conc_pool_submit(inherited, conc_test_noop_task, NULL, NULL) != CONC_EBROKEN ||
        conc_pool_enumerate_workers(inherited, NULL, 0) != CONC_EBROKEN ||
        conc_pool_destroy(inherited) != CONC_EBROKEN)
        _exit(CHILD_INHERITED);
    probe = child_pool("probe", 1);
    conc_pool *own = child_pool("own", 2);
    child_submit(own, after_exit_task, (void *)(intptr_t)'g');
    child_submit(own, byte_task, (void *)(intptr_t)'g');
    exit(0);
}

static void scenario_fork_child(void)
{
    if (conc_pool_set_exit_timeout(0) != 0)
        _exit(CHILD_SET_TIMEOUT);
    conc_pool *p = child_pool("inherited", 1);
    conc_event running;
    conc_event_init(&running, NULL);
    /* Blocked in read(), so not inside malloc at the fork (AddressSanitizer's
     * allocator takes no lock around it). */
    child_submit(p, block_task, &running);
    conc_event_wait(&running);
    child_submit(p, byte_task, (void *)(intptr_t)'x');
    pid_t pid = fork();
    if (pid < 0)
        _exit(CHILD_FORK);
    if (pid == 0)
        grandchild(p);
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        _exit(CHILD_GRANDCHILD);
    if (WEXITSTATUS(st) != 0)
        _exit(WEXITSTATUS(st));
    exit(0);
}

static void exit_in_forked_child_skips_inherited_pools(void **state)
{
    (void)state;
    char bytes[1024], err[1024];
    assert_int_equal(run_child(scenario_fork_child, bytes, err, sizeof bytes), 0);
    assert_string_equal(bytes, "gg");
    /* Nothing from conc; LeakSanitizer may note the worker that stayed in
     * the parent. */
    if (strstr(err, "conc:"))
        fail_msg("%s", err);
}

/* conc_pool_set_exit_timeout: negative is CONC_EINVAL; 0, a time and
 * CONC_FOREVER are taken. */
static void exit_timeout_bad_input_is_einval(void **state)
{
    (void)state;
    assert_int_equal(conc_pool_set_exit_timeout(-1), CONC_EINVAL);
    assert_int_equal(conc_pool_set_exit_timeout(-2), CONC_EINVAL);
    assert_int_equal(conc_pool_set_exit_timeout(INT64_MIN), CONC_EINVAL);
    assert_int_equal(conc_pool_set_exit_timeout(0), 0);
    assert_int_equal(conc_pool_set_exit_timeout(CONC_MSEC(1)), 0);
    assert_int_equal(conc_pool_set_exit_timeout(CONC_FOREVER), 0);
    assert_int_equal(conc_pool_set_exit_timeout(CONC_SEC(10)), 0);
}

CONC_TEST_MAIN(cmocka_unit_test(exit_runs_queued_and_running_tasks),
               cmocka_unit_test(exit_gives_up_after_timeout_and_says_so),
               cmocka_unit_test(exit_from_a_task_does_not_wait_for_its_pool),
               cmocka_unit_test(exit_in_forked_child_skips_inherited_pools),
               cmocka_unit_test(exit_timeout_bad_input_is_einval))
