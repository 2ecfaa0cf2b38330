/* conc_process (conc/process.h): programs started with their streams, exit
 * codes in Python's convention, join with a timeout, terminate and kill, a
 * program that does not exist reported by the start itself, a child that
 * dies with its SIGKILLed parent but not with the thread that started it,
 * and bad input. The children are /bin/sh one-liners: what they print or
 * how they end is the behaviour checked. */
#define _GNU_SOURCE
#include "test.h"

#include <conc/process.h>
#include <conc/sync.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEC 1000000000LL

/* Runs `sh -c script` with opts, joins it, returns its exit code. */
static int run_sh(const char *script, const conc_process_opts *opts)
{
    char *argv[] = {"sh", "-c", (char *)script, NULL};
    conc_process *p;
    assert_int_equal(conc_process_spawn(&p, "sh", argv, NULL, opts), 0);
    int code = 12345;
    assert_int_equal(conc_process_join(p, &code), 0);
    assert_int_equal(conc_process_is_alive(p), 0);
    assert_int_equal(conc_process_destroy(p), 0);
    return code;
}

/* Reads fd to its end into buf (NUL-terminated). */
static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        assert_true(r >= 0);
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
    return n;
}

static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Exit codes as Python's returncode: the status, or -signum. */
static void process_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(run_sh("exit 0", NULL), 0);
    assert_int_equal(run_sh("exit 7", NULL), 7);
    assert_int_equal(run_sh("exit 255", NULL), 255);
    assert_int_equal(run_sh("kill -KILL $$", NULL), -SIGKILL);
    assert_int_equal(run_sh("kill -SEGV $$", NULL), -SIGSEGV);
    assert_int_equal(run_sh("kill -TERM $$", NULL), -SIGTERM);
}

/* A program that cannot start is an error from spawn, not an exit of 127. */
static void process_missing_program_is_enoent(void **state)
{
    (void)state;
    char *argv[] = {"x", NULL};
    conc_process *p = (conc_process *)&p;
    assert_int_equal(conc_process_spawn(&p, "/nonexistent/conc-no-such-program", argv, NULL, NULL),
                     CONC_ENOENT);
    assert_null(p);
    assert_int_equal(conc_process_spawn(&p, "conc-no-such-program-in-path", argv, NULL, NULL),
                     CONC_ENOENT);
    /* Not executable: a file without its x bit. */
    char path[] = "/tmp/conc-test-noexec-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "#!/bin/sh\n", 10), 10);
    close(fd);
    assert_int_equal(conc_process_spawn(&p, path, argv, NULL, NULL), CONC_EACCES);
    unlink(path);
    /* A working directory that does not exist. */
    char *sh[] = {"sh", "-c", "exit 0", NULL};
    assert_int_equal(
        conc_process_spawn(&p, "sh", sh, NULL, &(conc_process_opts){.cwd = "/nonexistent/dir"}),
        CONC_ENOENT);
}

/* Join times out while the child runs; terminate then ends it. */
static void process_join_timeout_then_terminate(void **state)
{
    (void)state;
    char *argv[] = {"sleep", "30", NULL};
    conc_process *p;
    assert_int_equal(conc_process_spawn(&p, "sleep", argv, NULL, NULL), 0);
    assert_true(conc_process_pid(p) > 0);
    int code = 12345;
    assert_int_equal(conc_process_join_timed(p, &code, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_process_join_timed(p, &code, SEC / 20), CONC_ETIMEDOUT);
    assert_int_equal(code, 12345);
    assert_int_equal(conc_process_is_alive(p), 1);
    assert_int_equal(conc_process_destroy(p), CONC_EBUSY);
    assert_int_equal(conc_process_terminate(p), 0);
    assert_int_equal(conc_process_join(p, &code), 0);
    assert_int_equal(code, -SIGTERM);
    /* Joining again gives the same code; signalling an ended child is no error. */
    code = 0;
    assert_int_equal(conc_process_join_timed(p, &code, 0), 0);
    assert_int_equal(code, -SIGTERM);
    assert_int_equal(conc_process_kill(p), 0);
    assert_int_equal(conc_process_destroy(p), 0);
}

/* stdin and stdout through pipes, stderr to /dev/null; no descriptor left. */
static void process_stdio_pipes(void **state)
{
    (void)state;
    int fds_before = count_open_fds();
    char *argv[] = {"sh", "-c", "read x; echo \"got $x\"; echo noise >&2", NULL};
    conc_process_opts o = {.stdio = {{CONC_STDIO_PIPE}, {CONC_STDIO_PIPE}, {CONC_STDIO_NULL}}};
    conc_process *p;
    assert_int_equal(conc_process_spawn(&p, "sh", argv, NULL, &o), 0);
    assert_int_equal(conc_process_stdio_fd(p, 2), CONC_EBADF);
    int in = conc_process_stdio_fd(p, 0);
    assert_true(in > 2);
    assert_int_equal(write(in, "hello\n", 6), 6);
    assert_int_equal(conc_process_close_stdio(p, 0), 0);
    assert_int_equal(conc_process_stdio_fd(p, 0), CONC_EBADF);
    char buf[256];
    read_all(conc_process_stdio_fd(p, 1), buf, sizeof buf);
    assert_string_equal(buf, "got hello\n");
    int code;
    assert_int_equal(conc_process_join(p, &code), 0);
    assert_int_equal(code, 0);
    assert_int_equal(conc_process_destroy(p), 0);
    assert_int_equal(count_open_fds(), fds_before);
}

/* stdout to a file, a working directory, an environment of our own, a
 * caller's descriptor as stdout. */
static void process_file_cwd_env_fd(void **state)
{
    (void)state;
    char path[] = "/tmp/conc-test-out-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char *env[] = {"CONC_TEST_VAR=sesame", "PATH=/usr/bin:/bin", NULL};
    char *argv[] = {"sh", "-c", "pwd; echo \"$CONC_TEST_VAR\"", NULL};
    conc_process *p;
    conc_process_opts o = {.stdio = {{0}, {CONC_STDIO_FILE, path, 0}, {0}}, .cwd = "/"};
    assert_int_equal(conc_process_spawn(&p, "sh", argv, env, &o), 0);
    int code;
    assert_int_equal(conc_process_join(p, &code), 0);
    assert_int_equal(code, 0);
    assert_int_equal(conc_process_destroy(p), 0);
    char buf[256];
    read_all(fd, buf, sizeof buf);
    assert_string_equal(buf, "/\nsesame\n");
    /* The caller's fd (here at offset 0 again, truncated) as stdout. */
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    char *echo[] = {"sh", "-c", "echo via-fd", NULL};
    o = (conc_process_opts){.stdio = {{0}, {CONC_STDIO_FD, NULL, fd}, {0}}};
    assert_int_equal(conc_process_spawn(&p, "sh", echo, NULL, &o), 0);
    assert_int_equal(conc_process_join(p, &code), 0);
    assert_int_equal(conc_process_destroy(p), 0);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    read_all(fd, buf, sizeof buf);
    assert_string_equal(buf, "via-fd\n");
    close(fd);
    unlink(path);
}

/* ---- a child dies with its parent, not with the thread that started it ---- */

/* How a child ends when its parent dies: killed by its death signal, or —
 * if the parent died before the child had armed that signal — by its own
 * check right after arming it (exit 127, before it runs anything). */
static bool died_with_parent(int status)
{
    if (WIFSIGNALED(status))
        return WTERMSIG(status) == SIGKILL;
    return WIFEXITED(status) && WEXITSTATUS(status) == 127;
}

/* Waits up to 10 s for pid — an orphan of a killed parent, ours as the
 * subreaper — to end, reaping the other orphans on the way (a fork server),
 * and checks that it died with its parent. */
static void assert_orphan_died_with_parent(pid_t pid)
{
    for (int64_t waited = 0; waited < 10 * SEC; waited += 1000000) {
        int status;
        pid_t r = waitpid(-1, &status, WNOHANG);
        if (r == pid) {
            assert_true(died_with_parent(status));
            while (waitpid(-1, &status, WNOHANG) > 0) /* the server, if it is done */
                ;
            return;
        }
        if (r <= 0)
            usleep(1000);
    }
    fail_msg("child %d still alive", (int)pid);
}

/* The test makes itself the subreaper, so the orphaned grandchild becomes
 * its child and can be waited for. A middle process starts a child that
 * would run for 30 s (start() gives its pid), tells us that pid, and is
 * SIGKILLed: the child must die with it. */
static void check_child_dies_with_killed_parent(pid_t (*start)(void))
{
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    int ends[2];
    assert_int_equal(pipe(ends), 0);
    pid_t middle = fork();
    assert_true(middle >= 0);
    if (middle == 0) {
        pid_t child = start();
        if (child <= 0 || write(ends[1], &child, sizeof child) != sizeof child)
            _exit(1);
        pause();
        _exit(0);
    }
    pid_t child = 0;
    assert_int_equal(read(ends[0], &child, sizeof child), sizeof child);
    close(ends[0]);
    close(ends[1]);
    assert_int_equal(kill(middle, SIGKILL), 0);
    int status;
    assert_int_equal(waitpid(middle, &status, 0), middle);
    /* The child (and a fork server) were the middle's: now ours to reap. */
    assert_orphan_died_with_parent(child);
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
}

static pid_t spawn_sleeper(void)
{
    char *argv[] = {"sleep", "30", NULL};
    conc_process *p;
    return conc_process_spawn(&p, "sleep", argv, NULL, NULL) == 0 ? (pid_t)conc_process_pid(p) : 0;
}

static void process_child_dies_with_killed_parent(void **state)
{
    (void)state;
    check_child_dies_with_killed_parent(spawn_sleeper);
}

struct spawned {
    conc_process *p;
    pid_t tid;
};

static void *spawn_from_thread(void *arg)
{
    struct spawned *s = arg;
    char *argv[] = {"sleep", "30", NULL};
    s->tid = gettid();
    assert_int_equal(conc_process_spawn(&s->p, "sleep", argv, NULL, NULL), 0);
    return NULL;
}

/* Started from a thread that then ends: the child lives on. */
static void process_outlives_the_thread_that_started_it(void **state)
{
    (void)state;
    struct spawned s = {0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, spawn_from_thread, &s), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    /* The kernel sends a death signal while the thread exits; its entry in
     * /proc goes after that. */
    char task[64];
    snprintf(task, sizeof task, "/proc/self/task/%d", (int)s.tid);
    for (int i = 0; i < 10000 && access(task, F_OK) == 0; i++)
        usleep(100);
    assert_int_not_equal(access(task, F_OK), 0);
    int code = 0;
    assert_int_equal(conc_process_join_timed(s.p, &code, SEC / 10), CONC_ETIMEDOUT);
    assert_int_equal(conc_process_is_alive(s.p), 1);
    assert_int_equal(conc_process_kill(s.p), 0);
    assert_int_equal(conc_process_join(s.p, &code), 0);
    assert_int_equal(code, -SIGKILL);
    assert_int_equal(conc_process_destroy(s.p), 0);
}

/* Several children at once, started from several threads, all joined. */
static void *spawn_some(void *arg)
{
    int *codes = arg;
    for (int i = 0; i < 8; i++) {
        char script[32];
        snprintf(script, sizeof script, "exit %d", codes[i]);
        char *argv[] = {"sh", "-c", script, NULL};
        conc_process *p;
        assert_int_equal(conc_process_spawn(&p, "sh", argv, NULL, NULL), 0);
        int code = -1;
        assert_int_equal(conc_process_join(p, &code), 0);
        assert_int_equal(code, codes[i]);
        assert_int_equal(conc_process_destroy(p), 0);
    }
    return NULL;
}

static void process_spawn_from_many_threads(void **state)
{
    (void)state;
    int codes[4][8];
    pthread_t t[4];
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < 8; i++)
            codes[k][i] = k * 8 + i;
        assert_int_equal(pthread_create(&t[k], NULL, spawn_some, codes[k]), 0);
    }
    for (int k = 0; k < 4; k++)
        assert_int_equal(pthread_join(t[k], NULL), 0);
}

static void process_bad_input(void **state)
{
    (void)state;
    char *argv[] = {"sh", "-c", "exit 0", NULL};
    char *empty[] = {NULL};
    conc_process *p;
    assert_int_equal(conc_process_spawn(NULL, "sh", argv, NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_process_spawn(&p, NULL, argv, NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_process_spawn(&p, "", argv, NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_process_spawn(&p, "sh", NULL, NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_process_spawn(&p, "sh", empty, NULL, NULL), CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "argv"));
    conc_process_opts o = {.stdio = {{CONC_STDIO_FILE, NULL, 0}}};
    assert_int_equal(conc_process_spawn(&p, "sh", argv, NULL, &o), CONC_EINVAL);
    o = (conc_process_opts){.stdio = {{0}, {CONC_STDIO_FD, NULL, -1}}};
    assert_int_equal(conc_process_spawn(&p, "sh", argv, NULL, &o), CONC_EINVAL);
    o = (conc_process_opts){.reserved_ = {1}};
    assert_int_equal(conc_process_spawn(&p, "sh", argv, NULL, &o), CONC_EINVAL);
    assert_int_equal(conc_process_join(NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_process_is_alive(NULL), CONC_EINVAL);
    assert_int_equal(conc_process_pid(NULL), CONC_EINVAL);
    assert_int_equal(conc_process_kill(NULL), CONC_EINVAL);
    assert_int_equal(conc_process_terminate(NULL), CONC_EINVAL);
    assert_int_equal(conc_process_destroy(NULL), 0);
    assert_int_equal(conc_process_spawn(&p, "sh", argv, NULL, NULL), 0);
    assert_int_equal(conc_process_join_timed(p, NULL, -5), CONC_EINVAL);
    assert_int_equal(conc_process_stdio_fd(p, 3), CONC_EINVAL);
    assert_int_equal(conc_process_join(p, NULL), 0);
    assert_int_equal(conc_process_destroy(p), 0);
}

/* ---- functions started in a child (through the fork server) ---- */

/* Returns the exit code the argument asks for, after checking its bytes:
 * arg = {code, n, then n bytes of pattern}. 99: the bytes were wrong. */
struct fn_arg {
    int code; /* >= 0: exit with it; -1: SIGKILL itself; -2: abort; -3: sleep 30 s */
    int n;
    unsigned char bytes[1000];
};

static int fn_checked(const void *arg, size_t size)
{
    const struct fn_arg *a = arg;
    if (size != sizeof *a)
        return 98;
    for (int i = 0; i < a->n; i++)
        if (a->bytes[i] != (unsigned char)(i * 7 + 1))
            return 99;
    if (a->code == -1)
        raise(SIGKILL);
    if (a->code == -2)
        abort();
    if (a->code == -3)
        sleep(30);
    return a->code;
}

static conc_process *start_fn(int code)
{
    struct fn_arg a = {code, (int)sizeof a.bytes, {0}};
    for (int i = 0; i < a.n; i++)
        a.bytes[i] = (unsigned char)(i * 7 + 1);
    conc_process *p;
    assert_int_equal(conc_process_start(&p, fn_checked, &a, sizeof a, NULL), 0);
    assert_true(conc_process_pid(p) > 0);
    return p;
}

static int join_fn(conc_process *p)
{
    int code = 12345;
    assert_int_equal(conc_process_join(p, &code), 0);
    assert_int_equal(conc_process_is_alive(p), 0);
    assert_int_equal(conc_process_destroy(p), 0);
    return code;
}

/* The argument's bytes arrive; the exit code is the return value, or
 * -signum; a timed join times out while it runs. */
static void process_start_function_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(join_fn(start_fn(0)), 0);
    assert_int_equal(join_fn(start_fn(42)), 42);
    assert_int_equal(join_fn(start_fn(-1)), -SIGKILL);
    assert_int_equal(join_fn(start_fn(-2)), -SIGABRT);
    conc_process *p = start_fn(-3);
    int code = 12345;
    assert_int_equal(conc_process_join_timed(p, &code, SEC / 20), CONC_ETIMEDOUT);
    assert_int_equal(conc_process_is_alive(p), 1);
    assert_int_equal(conc_process_destroy(p), CONC_EBUSY);
    assert_int_equal(conc_process_terminate(p), 0);
    assert_int_equal(join_fn(p), -SIGTERM);
    /* Many at once, joined in reverse: statuses reach the right handles. */
    conc_process *many[16];
    for (int i = 0; i < 16; i++)
        many[i] = start_fn(i);
    for (int i = 16; i-- > 0;)
        assert_int_equal(join_fn(many[i]), i);
}

/* The child starts as a fresh program: what the parent changed since is
 * not there. */
static int counter_at_start = 5;

static int fn_report_counter(const void *arg, size_t size)
{
    (void)arg;
    (void)size;
    return counter_at_start;
}

static void process_start_function_runs_in_a_fresh_image(void **state)
{
    (void)state;
    counter_at_start = 77;
    conc_process *p;
    assert_int_equal(conc_process_start(&p, fn_report_counter, NULL, 0, NULL), 0);
    assert_int_equal(join_fn(p), 5);
    counter_at_start = 5;
}

/* Started from a program that runs busy threads — one holding a conc
 * mutex throughout, one allocating nonstop — many times: never hangs (the
 * children never see those locks). */
struct busy {
    _Atomic bool stop;
    conc_mutex m;
};

static void *busy_locker(void *arg)
{
    struct busy *b = arg;
    conc_mutex_lock(&b->m);
    while (!atomic_load(&b->stop))
        usleep(100);
    conc_mutex_unlock(&b->m);
    return NULL;
}

static void *busy_malloc(void *arg)
{
    struct busy *b = arg;
    while (!atomic_load(&b->stop)) {
        void *x = malloc(64 + (size_t)(rand() % 4096));
        free(x);
    }
    return NULL;
}

static void process_start_from_threaded_program(void **state)
{
    (void)state;
    struct busy b = {0};
    assert_int_equal(conc_mutex_init(&b.m, NULL), 0);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, i == 0 ? busy_locker : busy_malloc, &b), 0);
    int rounds = 40 * conc_test_scale();
    for (int i = 0; i < rounds; i++)
        assert_int_equal(join_fn(start_fn(i % 200)), i % 200);
    atomic_store(&b.stop, true);
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(conc_mutex_destroy(&b.m), 0);
}

/* A function's child dies with the program that started it. */
static pid_t start_sleeper(void)
{
    struct fn_arg a = {-3, 0, {0}};
    conc_process *p;
    return conc_process_start(&p, fn_checked, &a, sizeof a, NULL) == 0
               ? (pid_t)conc_process_pid(p)
               : 0;
}

static void process_start_child_dies_with_killed_parent(void **state)
{
    (void)state;
    check_child_dies_with_killed_parent(start_sleeper);
}

static void *start_from_thread(void *arg)
{
    struct spawned *s = arg;
    s->tid = gettid();
    s->p = start_fn(-3);
    return NULL;
}

/* Started (and the server too) from a thread that then ends: both live on. */
static void process_start_outlives_the_thread_that_started_it(void **state)
{
    (void)state;
    pid_t middle = fork(); /* a process of its own, so the first start is from a thread */
    assert_true(middle >= 0);
    if (middle == 0) {
        struct spawned s = {0};
        pthread_t t;
        if (pthread_create(&t, NULL, start_from_thread, &s) != 0 || pthread_join(t, NULL) != 0)
            _exit(1);
        char task[64];
        snprintf(task, sizeof task, "/proc/self/task/%d", (int)s.tid);
        for (int i = 0; i < 10000 && access(task, F_OK) == 0; i++)
            usleep(100);
        int code = 0;
        if (conc_process_join_timed(s.p, &code, SEC / 10) != CONC_ETIMEDOUT)
            _exit(2);
        if (conc_process_kill(s.p) != 0 || conc_process_join(s.p, &code) != 0 || code != -SIGKILL)
            _exit(3);
        _exit(conc_process_destroy(s.p) == 0 ? 0 : 4);
    }
    int status;
    assert_int_equal(waitpid(middle, &status, 0), middle);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* The fork server never joins an MPI job the program belongs to: its
 * environment (its children's) has no OMPI_* or PMIX_* variable; the rest
 * of the program's environment is there. */
static int fn_env_scrubbed(const void *arg, size_t size)
{
    (void)arg;
    (void)size;
    if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK"))
        return 1;
    const char *kept = getenv("CONC_TEST_KEPT");
    return kept && strcmp(kept, "yes") == 0 ? 0 : 2;
}

/* In a fresh child of the test, so that its first start starts a server
 * of its own, which takes the environment it starts with. */
static int scrub_check(void *arg)
{
    (void)arg;
    CONC_TEST_CHILD_CHECK(setenv("OMPI_COMM_WORLD_SIZE", "4", 1) == 0);
    CONC_TEST_CHILD_CHECK(setenv("PMIX_RANK", "0", 1) == 0);
    CONC_TEST_CHILD_CHECK(setenv("CONC_TEST_KEPT", "yes", 1) == 0);
    conc_process *p;
    CONC_TEST_CHILD_CHECK(conc_process_start(&p, fn_env_scrubbed, NULL, 0, NULL) == 0);
    int code = -1;
    CONC_TEST_CHILD_CHECK(conc_process_join(p, &code) == 0);
    CONC_TEST_CHILD_CHECK(conc_process_destroy(p) == 0);
    return code;
}

static void process_start_scrubs_mpi_variables(void **state)
{
    (void)state;
    conc_test_reap(conc_test_fork(scrub_check, NULL));
}

/* The fork server: the child of this process named conc-forkserver. */
static pid_t find_fork_server(void)
{
    char path[64], comm[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int pid, server = 0;
    while (!server && fscanf(f, "%d", &pid) == 1) {
        snprintf(path, sizeof path, "/proc/%d/comm", pid);
        FILE *c = fopen(path, "r");
        if (c && fgets(comm, sizeof comm, c) && strncmp(comm, "conc-forkserver", 15) == 0)
            server = pid;
        if (c)
            fclose(c);
    }
    fclose(f);
    return server;
}

/* A fork server killed under a running child: the child dies with it, its
 * join says the status is lost, its handle can be freed, and the next
 * start brings a new server. */
static void process_start_survives_a_killed_fork_server(void **state)
{
    (void)state;
    conc_process *p = start_fn(-3);
    pid_t server = find_fork_server();
    assert_true(server > 0);
    assert_int_equal(kill(server, SIGKILL), 0);
    int code = 12345;
    assert_int_equal(conc_process_join(p, &code), CONC_EBROKEN);
    assert_int_equal(code, 12345);
    assert_int_equal(conc_process_is_alive(p), 0); /* it died with the server */
    assert_int_equal(conc_process_join_timed(p, &code, 0), CONC_EBROKEN);
    assert_int_equal(conc_process_destroy(p), 0);
    assert_int_equal(join_fn(start_fn(9)), 9);
    pid_t again = find_fork_server();
    assert_true(again > 0 && again != server);
    /* The dead server was reaped: no zombie child is left behind. */
    assert_int_equal(waitpid(server, NULL, WNOHANG), -1);
}

/* ---- registered functions ---- */

static int fn_forty_two(const void *arg, size_t size)
{
    (void)arg;
    return (int)size + 40;
}

CONC_PROCESS_FN(forty_two, fn_forty_two)
CONC_PROCESS_FN(checked, fn_checked)

static void process_start_named_function(void **state)
{
    (void)state;
    assert_ptr_equal(conc_process_fn_lookup("forty_two"), fn_forty_two);
    assert_ptr_equal(conc_process_fn_lookup("checked"), fn_checked);
    assert_null(conc_process_fn_lookup("no_such_function"));
    assert_null(conc_process_fn_lookup(NULL));
    conc_process *p;
    assert_int_equal(conc_process_start_named(&p, "forty_two", "ab", 2, NULL), 0);
    assert_int_equal(join_fn(p), 42);
    struct fn_arg a = {7, 3, {1, 8, 15}};
    assert_int_equal(conc_process_start_named(&p, "checked", &a, sizeof a, NULL), 0);
    assert_int_equal(join_fn(p), 7);
    assert_int_equal(conc_process_start_named(&p, "no_such_function", NULL, 0, NULL), CONC_ENOENT);
    assert_null(p);
    assert_int_equal(conc_process_start_named(&p, NULL, NULL, 0, NULL), CONC_EINVAL);
}

static int not_code;

static void process_start_bad_input(void **state)
{
    (void)state;
    conc_process *p;
    struct fn_arg a = {0};
    assert_int_equal(conc_process_start(NULL, fn_checked, &a, sizeof a, NULL), CONC_EINVAL);
    assert_int_equal(conc_process_start(&p, NULL, &a, sizeof a, NULL), CONC_EINVAL);
    assert_int_equal(conc_process_start(&p, fn_checked, NULL, 4, NULL), CONC_EINVAL);
    assert_int_equal(conc_process_start(&p, fn_checked, &a, sizeof a, &(conc_process_opts){0}),
                     CONC_EINVAL);
    static unsigned char big[CONC_PROCESS_ARG_MAX + 1];
    assert_int_equal(conc_process_start(&p, fn_checked, big, sizeof big, NULL), CONC_EOVERFLOW);
    /* Not code: the address of a variable. */
    assert_int_equal(conc_process_start(&p, (conc_process_fn)(void *)&not_code, NULL, 0, NULL),
                     CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "not in the code"));
}

CONC_TEST_MAIN(cmocka_unit_test(process_exit_codes),
               cmocka_unit_test(process_missing_program_is_enoent),
               cmocka_unit_test(process_join_timeout_then_terminate),
               cmocka_unit_test(process_stdio_pipes),
               cmocka_unit_test(process_file_cwd_env_fd),
               cmocka_unit_test(process_child_dies_with_killed_parent),
               cmocka_unit_test(process_outlives_the_thread_that_started_it),
               cmocka_unit_test(process_spawn_from_many_threads),
               cmocka_unit_test(process_bad_input),
               cmocka_unit_test(process_start_function_exit_codes),
               cmocka_unit_test(process_start_function_runs_in_a_fresh_image),
               cmocka_unit_test(process_start_from_threaded_program),
               cmocka_unit_test(process_start_child_dies_with_killed_parent),
               cmocka_unit_test(process_start_outlives_the_thread_that_started_it),
               cmocka_unit_test(process_start_bad_input),
               cmocka_unit_test(process_start_named_function),
               cmocka_unit_test(process_start_scrubs_mpi_variables),
               cmocka_unit_test(process_start_survives_a_killed_fork_server))
