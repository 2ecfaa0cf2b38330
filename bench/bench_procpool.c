/* Process-pool cases: procpool.roundtrip and procpool.map. Every row has 2
 * worker processes, started (and warmed by a few tasks) before the window
 * opens; the measuring process only submits and takes results. The child
 * processes' CPU is not the process's, so no row reports cpu_pct.
 *
 * roundtrip: submit one trivial task (its argument + 1), wait for its
 *   result, check it, again; µs per round trip. conc: conc_procpool with 2
 *   workers, a future per task. textbook: 2 workers forked by this process,
 *   a pipe pair each (requests in, replies out); the parent writes an 8-byte
 *   request to worker 0 and reads the 8-byte reply; each worker loops read,
 *   compute, write until end-of-file. Always worker 0, the textbook's best:
 *   with one request in flight the other has nothing to do, and the kernel
 *   then keeps the parent and its one worker on one CPU. Alternating puts
 *   the workers on both CPUs and costs a cross-CPU wake-up per trip (on a
 *   2-CPU AMD EPYC guest: about 50 µs a trip, against about 7).
 * map: 100,000 int64 items doubled (x * 2), chunks of 100, results taken in
 *   index order and each checked against its item; maps repeated for about
 *   p->seconds after a warm-up map; items/s. conc: conc_procpool_map.
 *   textbook: the same 2 pipe workers; chunk c goes to worker c % 2 and the
 *   parent keeps 2 chunks in flight per worker: it reads chunk c's results
 *   (each worker answers its chunks in order), then sends chunk c + 4, which
 *   is that same worker's.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <conc/conc.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PP_WORKERS 2
#define PP_MAP_ITEMS 100000
#define PP_MAP_CHUNK 100
#define PP_IN_FLIGHT 2 /* textbook map: chunks in flight per worker */
#define PP_WARM_TRIPS 20

static long roundtrips(const struct bench_params *p)
{
    return p->quick ? 300 : 1000;
}

/* Times trip(ctx, v, &reply) round trips, each reply checked to be v + 1,
 * after PP_WARM_TRIPS untimed ones; µs per round trip. */
static int roundtrip_timed(const struct bench_params *p, struct bench_result *r,
                           int (*trip)(void *ctx, int64_t v, int64_t *reply), void *ctx)
{
    long n = roundtrips(p);
    int64_t reply;
    for (int64_t v = 0; v < PP_WARM_TRIPS; v++)
        if (trip(ctx, v, &reply) != 0 || reply != v + 1)
            return 1;
    struct bench_window w;
    bench_window_start(&w);
    for (int64_t v = 0; v < n; v++) {
        if (trip(ctx, v, &reply) != 0 || reply != v + 1) {
            fprintf(stderr, "procpool.roundtrip: round trip %lld failed or answered %lld\n",
                    (long long)v, (long long)reply);
            return 1;
        }
    }
    bench_window_stop(&w);
    r->value = (double)w.wall_ns / 1e3 / (double)n;
    return 0;
}

/* Times map(ctx, items, n), which maps x * 2 over items[0..n) and returns 0
 * only if every result came in index order and was right: a warm-up map,
 * then maps for about p->seconds (1 at least); items/s. */
static int map_timed(const struct bench_params *p, struct bench_result *r,
                     int (*map)(void *ctx, const int64_t *items, size_t n), void *ctx)
{
    int64_t *items = malloc(PP_MAP_ITEMS * sizeof *items);
    if (!items)
        return 1;
    for (size_t i = 0; i < PP_MAP_ITEMS; i++)
        items[i] = (int64_t)i;
    long runs = 0;
    int bad = map(ctx, items, PP_MAP_ITEMS) != 0;
    struct bench_window w;
    bench_window_start(&w);
    while (!bad && (runs < 1 || bench_now_ns() - w.wall0 < (int64_t)(p->seconds * 1e9))) {
        bad = map(ctx, items, PP_MAP_ITEMS) != 0;
        runs++;
    }
    bench_window_stop(&w);
    free(items);
    if (bad) {
        fprintf(stderr, "procpool.map: a map failed or gave a wrong result\n");
        return 1;
    }
    r->value = (double)PP_MAP_ITEMS * (double)runs * 1e9 / (double)w.wall_ns;
    return 0;
}

/* ---- conc ---- */


/* The task functions run in the workers, which find them by their place in
 * this program's code. */
static int plus_one_task(const void *arg, size_t size, conc_result *out)
{
    int64_t v;
    if (size != sizeof v)
        return 1;
    memcpy(&v, arg, sizeof v); /* the copy of the argument need not be aligned */
    out->value = v + 1;
    return 0;
}

static int double_task(const void *arg, size_t size, conc_result *out)
{
    int64_t v;
    if (size != sizeof v)
        return 1;
    memcpy(&v, arg, sizeof v);
    out->value = v * 2;
    return 0;
}

static int conc_trip(void *ctx, int64_t v, int64_t *reply)
{
    conc_future *f;
    conc_result out = {0};
    if (conc_procpool_submit(ctx, plus_one_task, &v, sizeof v, &f) != 0)
        return 1;
    int status = conc_future_result(f, &out);
    conc_future_release(f);
    *reply = out.value;
    return status != 0;
}

/* A pool of 2 whose workers have both run a task: two submitted at once,
 * so that neither waits for the other. */
static conc_procpool *conc_procpool_started(void)
{
    conc_procpool *pp;
    if (conc_procpool_create(&pp, &(conc_procpool_opts){.max_workers = PP_WORKERS}) != 0)
        return NULL;
    conc_future *f[PP_WORKERS] = {0};
    int bad = 0;
    for (int64_t i = 0; i < PP_WORKERS && !bad; i++)
        bad = conc_procpool_submit(pp, plus_one_task, &i, sizeof i, &f[i]) != 0;
    for (int i = 0; i < PP_WORKERS; i++) {
        conc_result out = {0};
        if (f[i]) {
            bad |= conc_future_result(f[i], &out) != 0 || out.value != i + 1;
            conc_future_release(f[i]);
        }
    }
    if (bad) {
        conc_procpool_destroy(pp);
        return NULL;
    }
    return pp;
}

static int conc_roundtrip(const struct bench_params *p, struct bench_result *r)
{
    conc_procpool *pp = conc_procpool_started();
    if (!pp)
        return 1;
    int rc = roundtrip_timed(p, r, conc_trip, pp);
    return conc_procpool_destroy(pp) != 0 ? 1 : rc;
}

static int conc_map_run(void *ctx, const int64_t *items, size_t n)
{
    conc_map *m;
    if (conc_procpool_map(&m, ctx, double_task, items, sizeof *items, n,
                          &(conc_map_opts){.chunksize = PP_MAP_CHUNK}) != 0)
        return 1;
    size_t taken = 0;
    int bad = 0;
    for (;;) {
        size_t index;
        int status;
        conc_result out;
        int rc = conc_map_next(m, &index, &status, &out);
        if (rc == CONC_ENOENT)
            break;
        if (rc != 0 || status != 0 || index != taken || out.value != items[index] * 2) {
            bad = 1;
            break;
        }
        taken++;
    }
    return conc_map_destroy(m) != 0 || bad || taken != n;
}

static int conc_map_case(const struct bench_params *p, struct bench_result *r)
{
    conc_procpool *pp = conc_procpool_started();
    if (!pp)
        return 1;
    int rc = map_timed(p, r, conc_map_run, pp);
    return conc_procpool_destroy(pp) != 0 ? 1 : rc;
}


/* ---- textbook: forked workers, a pipe pair each ---- */

struct tb_worker {
    pid_t pid;
    int req; /* the parent writes requests here */
    int rep; /* and reads the replies here */
};

struct tb_pool {
    struct tb_worker w[PP_WORKERS];
    int started;
};

/* 1: all len bytes read; 0: end-of-file before the first; -1: an error or
 * an end-of-file midway. */
static int read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n == 0)
            return got == 0 ? 0 : -1;
        if (n < 0 && errno != EINTR)
            return -1;
        got += n > 0 ? (size_t)n : 0;
    }
    return 1;
}

static int write_full(int fd, const void *buf, size_t len)
{
    size_t put = 0;
    while (put < len) {
        ssize_t n = write(fd, (const char *)buf + put, len - put);
        if (n < 0 && errno != EINTR)
            return -1;
        put += n > 0 ? (size_t)n : 0;
    }
    return 0;
}

/* A roundtrip worker: one int64 in, that + 1 out. */
static int tb_plus_one_loop(int in, int out)
{
    int64_t v;
    int rc;
    while ((rc = read_full(in, &v, sizeof v)) == 1) {
        v += 1;
        if (write_full(out, &v, sizeof v) != 0)
            return 1;
    }
    return rc != 0;
}

/* A map worker: a request is a count and that many int64 items; the reply
 * is their doubles. */
static int tb_double_loop(int in, int out)
{
    int64_t buf[PP_MAP_CHUNK], count;
    int rc;
    while ((rc = read_full(in, &count, sizeof count)) == 1) {
        if (count < 0 || count > PP_MAP_CHUNK ||
            read_full(in, buf, (size_t)count * sizeof *buf) != 1)
            return 1;
        for (int64_t i = 0; i < count; i++)
            buf[i] *= 2;
        if (write_full(out, buf, (size_t)count * sizeof *buf) != 0)
            return 1;
    }
    return rc != 0;
}

/* Closes the requests (each worker then reads end-of-file and exits) and
 * reaps the workers; 0 if each exited with 0. */
static int tb_stop(struct tb_pool *tp)
{
    int bad = 0;
    for (int i = 0; i < tp->started; i++)
        close(tp->w[i].req);
    for (int i = 0; i < tp->started; i++) {
        int status;
        while (waitpid(tp->w[i].pid, &status, 0) < 0 && errno == EINTR)
            ;
        bad |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
        close(tp->w[i].rep);
    }
    tp->started = 0;
    return bad;
}

static int tb_start(struct tb_pool *tp, int (*loop)(int in, int out))
{
    tp->started = 0;
    for (int i = 0; i < PP_WORKERS; i++) {
        int req[2], rep[2];
        if (pipe(req) != 0)
            goto fail;
        if (pipe(rep) != 0) {
            close(req[0]);
            close(req[1]);
            goto fail;
        }
        pid_t pid = fork();
        if (pid == 0) {
            /* The earlier workers' request ends must not stay open here, or
             * they would never read end-of-file. */
            for (int k = 0; k < i; k++) {
                close(tp->w[k].req);
                close(tp->w[k].rep);
            }
            close(req[1]);
            close(rep[0]);
            _exit(loop(req[0], rep[1]));
        }
        close(req[0]);
        close(rep[1]);
        if (pid < 0) {
            close(req[1]);
            close(rep[0]);
            goto fail;
        }
        tp->w[i] = (struct tb_worker){pid, req[1], rep[0]};
        tp->started++;
    }
    return 0;
fail:
    tb_stop(tp);
    return 1;
}

static int tb_trip(void *ctx, int64_t v, int64_t *reply)
{
    struct tb_worker *w = &((struct tb_pool *)ctx)->w[0]; /* why worker 0: at the top */
    return write_full(w->req, &v, sizeof v) != 0 || read_full(w->rep, reply, sizeof *reply) != 1;
}

static int textbook_roundtrip(const struct bench_params *p, struct bench_result *r)
{
    struct tb_pool tp;
    if (tb_start(&tp, tb_plus_one_loop) != 0)
        return 1;
    int rc = roundtrip_timed(p, r, tb_trip, &tp);
    return tb_stop(&tp) != 0 ? 1 : rc;
}

/* Sends chunk c of items[0..n) to its worker, c % PP_WORKERS. */
static int tb_send_chunk(struct tb_pool *tp, const int64_t *items, size_t n, size_t c)
{
    int64_t msg[1 + PP_MAP_CHUNK];
    size_t first = c * PP_MAP_CHUNK;
    size_t count = n - first < PP_MAP_CHUNK ? n - first : PP_MAP_CHUNK;
    msg[0] = (int64_t)count;
    memcpy(&msg[1], &items[first], count * sizeof *items);
    return write_full(tp->w[c % PP_WORKERS].req, msg, (1 + count) * sizeof *msg);
}

static int tb_map_run(void *ctx, const int64_t *items, size_t n)
{
    struct tb_pool *tp = ctx;
    size_t chunks = (n + PP_MAP_CHUNK - 1) / PP_MAP_CHUNK, ahead = PP_WORKERS * PP_IN_FLIGHT;
    for (size_t c = 0; c < chunks && c < ahead; c++)
        if (tb_send_chunk(tp, items, n, c) != 0)
            return 1;
    for (size_t c = 0; c < chunks; c++) {
        int64_t res[PP_MAP_CHUNK];
        size_t first = c * PP_MAP_CHUNK;
        size_t count = n - first < PP_MAP_CHUNK ? n - first : PP_MAP_CHUNK;
        if (read_full(tp->w[c % PP_WORKERS].rep, res, count * sizeof *res) != 1)
            return 1;
        for (size_t i = 0; i < count; i++)
            if (res[i] != items[first + i] * 2)
                return 1;
        /* c + ahead is c's worker's again: it keeps PP_IN_FLIGHT chunks. */
        if (c + ahead < chunks && tb_send_chunk(tp, items, n, c + ahead) != 0)
            return 1;
    }
    return 0;
}

static int textbook_map(const struct bench_params *p, struct bench_result *r)
{
    struct tb_pool tp;
    if (tb_start(&tp, tb_double_loop) != 0)
        return 1;
    int rc = map_timed(p, r, tb_map_run, &tp);
    return tb_stop(&tp) != 0 ? 1 : rc;
}

/* ---- the cases ---- */

/* clang-format off */
#define PYTHON {"python", NULL}
#define PYTHON_MP {"python:mp", NULL}
#define END {0}

static const struct bench_impl roundtrip_impls[] = {
    {"conc", conc_roundtrip},
    {"textbook", textbook_roundtrip}, PYTHON, PYTHON_MP, END};
static const struct bench_impl map_impls[] = {
    {"conc", conc_map_case},
    {"textbook", textbook_map}, PYTHON, PYTHON_MP, END};
/* clang-format on */

const struct bench_case bench_procpool_roundtrip = {
    "procpool.roundtrip", "us/op",
    "2 started worker processes; submit one trivial task, wait for its result, again (µs per "
    "round trip). textbook: 2 forked workers, a pipe pair each, 8-byte request and reply "
    "(always to worker 0); python: ProcessPoolExecutor(2) submit().result(); python:mp: "
    "multiprocessing.Pool(2).apply",
    PP_WORKERS, roundtrip_impls};
const struct bench_case bench_procpool_map = {
    "procpool.map", "items/s",
    "100k int64 items doubled by 2 worker processes, chunks of 100, results in index order, each "
    "checked. textbook: 2 forked pipe workers, 2 chunks in flight each; python: "
    "ProcessPoolExecutor(2).map; python:mp: multiprocessing.Pool(2).map",
    PP_WORKERS, map_impls};
