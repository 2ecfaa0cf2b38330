/* Process cases: process.spawn_join, process.spawn_program and pqueue.spsc.
 *
 * spawn_join: start a function in a child that returns at once, and join
 * it. conc's row goes through its fork server (conc_process_start: the
 * child is forked by the server, its status relayed back); `fork` is the
 * textbook fork + _exit + waitpid from the measuring process itself (which
 * a threaded program cannot safely do); `posix_spawn` runs /bin/true.
 *
 * spawn_program: start /bin/true and join it: conc_process_spawn against
 * posix_spawn + waitpid.
 *
 * pqueue.spsc: a producer process puts numbered 8-byte items for a fixed
 * time, a consumer process (forked) gets them; the consumer checks the
 * order and reports the count and sum through a pipe. `pipe`: the same
 * over a plain pipe, 8-byte writes and reads.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <conc/conc.h>
#include <errno.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long spawn_rounds(const struct bench_params *p)
{
    return p->quick ? 100 : 500;
}

#define ROUNDS_BENCH(NAME, BODY) BENCH_ROUNDS(NAME, spawn_rounds(p), BODY)

static int noop_fn(const void *arg, size_t size)
{
    (void)arg;
    (void)size;
    return 0;
}

/* The first start also starts the fork server: once, before the window. */
static int conc_start_join_once(void)
{
    conc_process *pr;
    int code = -1;
    if (conc_process_start(&pr, noop_fn, NULL, 0, NULL) != 0 || conc_process_join(pr, &code) != 0)
        return 1;
    conc_process_destroy(pr);
    return code != 0;
}

ROUNDS_BENCH(conc_spawn_join_rounds, {
    if (conc_start_join_once() != 0)
        return 1;
})

static int conc_spawn_join_measure(const struct bench_params *p, struct bench_result *r)
{
    if (conc_start_join_once() != 0) /* the server's start is not a round */
        return 1;
    return conc_spawn_join_rounds(p, r);
}

ROUNDS_BENCH(fork_spawn_join, {
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0)
        _exit(0);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;
})

static char *true_argv[] = {"true", NULL};

ROUNDS_BENCH(posix_spawn_true, {
    pid_t pid;
    if (posix_spawn(&pid, "/bin/true", NULL, NULL, true_argv, environ) != 0)
        return 1;
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;
})

ROUNDS_BENCH(conc_spawn_true, {
    conc_process *pr;
    int code = -1;
    if (conc_process_spawn(&pr, "/bin/true", true_argv, NULL, NULL) != 0 ||
        conc_process_join(pr, &code) != 0 || code != 0)
        return 1;
    conc_process_destroy(pr);
})

/* ---- pqueue.spsc ---- */

struct spsc_ends {
    void *ctx;
    int (*put)(void *ctx, uint64_t v);
    int (*get)(void *ctx, uint64_t *v);
};

/* Consumer (a forked child): gets until the 0 marker, checks order, sends
 * {count, sum, bad} to report_fd. */
static void spsc_consume(struct spsc_ends *e, int report_fd)
{
    uint64_t v, expect = 1, sum = 0, bad = 0;
    for (;;) {
        if (e->get(e->ctx, &v) != 0) {
            bad = 1;
            break;
        }
        if (v == 0)
            break;
        bad |= v != expect;
        expect++;
        sum += v;
    }
    uint64_t rep[3] = {expect - 1, sum, bad};
    _exit(write(report_fd, rep, sizeof rep) == sizeof rep ? 0 : 1);
}

static int spsc_run(const struct bench_params *p, struct bench_result *r, struct spsc_ends *e)
{
    int rep[2];
    if (pipe(rep) != 0)
        return 1;
    struct bench_window w;
    bench_window_start(&w);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        close(rep[0]);
        spsc_consume(e, rep[1]);
    }
    close(rep[1]);
    int64_t until = bench_now_ns() + (int64_t)(p->seconds * 1e9);
    uint64_t v = 1, sum = 0;
    while ((v & 1023) != 0 || bench_now_ns() < until) {
        if (e->put(e->ctx, v) != 0)
            return 1;
        sum += v++;
    }
    if (e->put(e->ctx, 0) != 0)
        return 1;
    uint64_t got[3];
    ssize_t n = read(rep[0], got, sizeof got);
    int status;
    waitpid(pid, &status, 0);
    bench_window_stop(&w);
    close(rep[0]);
    if (n != sizeof got || got[0] != v - 1 || got[1] != sum || got[2] != 0 ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "pqueue.spsc: put %llu items, the consumer took %llu (bad %llu)\n",
                (unsigned long long)(v - 1), (unsigned long long)got[0],
                (unsigned long long)got[2]);
        return 1;
    }
    r->value = (double)(v - 1) * 1e9 / (double)w.wall_ns;
    r->cpu_pct = -1; /* the child's CPU is not the process's */
    return 0;
}

static int pq_put(void *ctx, uint64_t v)
{
    return conc_pqueue_put(ctx, &v);
}

static int pq_get(void *ctx, uint64_t *v)
{
    return conc_pqueue_get(ctx, v);
}

static int conc_pqueue_spsc(const struct bench_params *p, struct bench_result *r)
{
    conc_pqueue *q;
    if (conc_pqueue_create(&q, sizeof(uint64_t), 1024, NULL) != 0)
        return 1;
    struct spsc_ends e = {q, pq_put, pq_get};
    int rc = spsc_run(p, r, &e);
    return conc_pqueue_destroy(q) != 0 ? 1 : rc;
}

struct pipe_pair {
    int fd[2];
};

static int pipe_put(void *ctx, uint64_t v)
{
    struct pipe_pair *pp = ctx;
    return write(pp->fd[1], &v, sizeof v) == sizeof v ? 0 : 1;
}

static int pipe_get(void *ctx, uint64_t *v)
{
    struct pipe_pair *pp = ctx;
    size_t got = 0;
    while (got < sizeof *v) {
        ssize_t n = read(pp->fd[0], (char *)v + got, sizeof *v - got);
        if (n <= 0 && !(n < 0 && errno == EINTR))
            return 1;
        got += n > 0 ? (size_t)n : 0;
    }
    return 0;
}

static int pipe_spsc(const struct bench_params *p, struct bench_result *r)
{
    struct pipe_pair pp;
    if (pipe(pp.fd) != 0)
        return 1;
    struct spsc_ends e = {&pp, pipe_put, pipe_get};
    int rc = spsc_run(p, r, &e);
    close(pp.fd[0]);
    close(pp.fd[1]);
    return rc;
}

/* ---- the cases ---- */

#define PYTHON {"python", NULL}
#define END {0}

static const struct bench_impl spawn_join_impls[] = {{"conc", conc_spawn_join_measure},
                                                     {"fork", fork_spawn_join},
                                                     {"posix_spawn", posix_spawn_true},
                                                     PYTHON,
                                                     END};
static const struct bench_impl spawn_program_impls[] = {
    {"conc", conc_spawn_true}, {"posix_spawn", posix_spawn_true}, PYTHON, END};
static const struct bench_impl pqueue_impls[] = {
    {"conc", conc_pqueue_spsc}, {"pipe", pipe_spsc}, PYTHON, END};

const struct bench_case bench_process_spawn_join = {
    "process.spawn_join", "us/op",
    "start a function in a child that returns at once, and join it (µs). conc: through its "
    "fork server; fork: fork + _exit + waitpid from this process; posix_spawn: /bin/true; "
    "python: multiprocessing's forkserver Process",
    1, spawn_join_impls};
const struct bench_case bench_process_spawn_program = {
    "process.spawn_program", "us/op",
    "start /bin/true and join it (µs); python: subprocess.run", 1, spawn_program_impls};
const struct bench_case bench_pqueue_spsc = {
    "pqueue.spsc", "items/s",
    "a producer process puts 8-byte items, a consumer process gets them, fixed time; every item "
    "checked. pipe: 8-byte writes and reads on a plain pipe; python: multiprocessing.Queue",
    2, pqueue_impls};
