/* Hand-off cases: sem.pingpong, sem.pingpong.4pairs, event.pingpong, and
 * thread.spawn_join.
 *
 * A ping-pong pair: the pinger posts `ping` and waits for `pong`, the ponger
 * the reverse, for a fixed time; a hand-off is one post seen by the other
 * thread's wait, two per round trip. With 4 pairs on this machine's cores the
 * figure is wall time / hand-offs of all pairs together: it shows whether a
 * design that spins before sleeping collapses when threads outnumber cores.
 * cpu_pct tells what the latency costs in CPU.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <conc/conc.h>
#include <glib.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#define UNUSED __attribute__((unused))

/* ---- a textbook counting semaphore and event: mutex + condition ---- */

struct tb_sem {
    pthread_mutex_t m;
    pthread_cond_t c;
    unsigned value;
};

static void tb_sem_init(struct tb_sem *s)
{
    pthread_mutex_init(&s->m, NULL);
    pthread_cond_init(&s->c, NULL);
    s->value = 0;
}
static void tb_sem_post(struct tb_sem *s)
{
    pthread_mutex_lock(&s->m);
    s->value++;
    pthread_cond_signal(&s->c);
    pthread_mutex_unlock(&s->m);
}
static void tb_sem_wait(struct tb_sem *s)
{
    pthread_mutex_lock(&s->m);
    while (s->value == 0)
        pthread_cond_wait(&s->c, &s->m);
    s->value--;
    pthread_mutex_unlock(&s->m);
}

struct tb_event {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool flag;
};

static void tb_event_init(struct tb_event *e)
{
    pthread_mutex_init(&e->m, NULL);
    pthread_cond_init(&e->c, NULL);
    e->flag = false;
}
static void tb_event_set(struct tb_event *e)
{
    pthread_mutex_lock(&e->m);
    e->flag = true;
    pthread_cond_broadcast(&e->c);
    pthread_mutex_unlock(&e->m);
}
static void tb_event_clear(struct tb_event *e)
{
    pthread_mutex_lock(&e->m);
    e->flag = false;
    pthread_mutex_unlock(&e->m);
}
static void tb_event_wait(struct tb_event *e)
{
    pthread_mutex_lock(&e->m);
    while (!e->flag)
        pthread_cond_wait(&e->c, &e->m);
    pthread_mutex_unlock(&e->m);
}

struct g_event {
    GMutex m;
    GCond c;
    bool flag;
};

static void g_event_init(struct g_event *e)
{
    g_mutex_init(&e->m);
    g_cond_init(&e->c);
    e->flag = false;
}
static void g_event_set(struct g_event *e)
{
    g_mutex_lock(&e->m);
    e->flag = true;
    g_cond_broadcast(&e->c);
    g_mutex_unlock(&e->m);
}
static void g_event_clear(struct g_event *e)
{
    g_mutex_lock(&e->m);
    e->flag = false;
    g_mutex_unlock(&e->m);
}
static void g_event_wait(struct g_event *e)
{
    g_mutex_lock(&e->m);
    while (!e->flag)
        g_cond_wait(&e->c, &e->m);
    g_mutex_unlock(&e->m);
}

/* conc and POSIX in the same shape. */
static void conc_sem_init0(conc_sem *s)
{
    conc_sem_init(s, 0, NULL);
}
static void conc_sem_post(conc_sem *s)
{
    conc_sem_release(s);
}
static void conc_sem_wait(conc_sem *s)
{
    conc_sem_acquire(s);
}
static void posix_sem_init0(sem_t *s)
{
    sem_init(s, 0, 0);
}
static void conc_event_init0(conc_event *e)
{
    conc_event_init(e, NULL);
}
static void conc_event_wait0(conc_event *e)
{
    conc_event_wait(e);
}

static _Atomic int stop_flag;

struct pair_role {
    void *pair;
    bool pinger;
};

static void bench_sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

struct pingpong_run {
    void *(*fn)(void *);
    struct pair_role *roles;
    int threads;
};

static void *pingpong_driver(void *arg)
{
    struct pingpong_run *run = arg;
    bench_run_threads(run->threads, run->fn, run->roles, sizeof *run->roles);
    return NULL;
}

/* Runs `pairs` ping-pong pairs for p->seconds; rounds[i] is filled by the
 * pingers. Returns wall ns; cpu% in r. */
static int64_t pingpong_run(const struct bench_params *p, struct bench_result *r,
                            void *(*fn)(void *), void *pairs, unsigned long pair_size, int npairs)
{
    struct pair_role roles[16];
    for (int i = 0; i < 2 * npairs; i++)
        roles[i] = (struct pair_role){(char *)pairs + (unsigned long)(i / 2) * pair_size, i % 2 == 0};
    struct pingpong_run run = {fn, roles, 2 * npairs};
    pthread_t driver;
    atomic_store(&stop_flag, 0);
    struct bench_window w;
    bench_window_start(&w);
    pthread_create(&driver, NULL, pingpong_driver, &run);
    bench_sleep_s(p->seconds);
    atomic_store(&stop_flag, 1);
    pthread_join(driver, NULL);
    bench_window_stop(&w);
    r->cpu_pct = bench_window_cpu_pct(&w);
    return w.wall_ns;
}

/* One ping-pong implementation over a semaphore-like type with POST/WAIT. */
#define PINGPONG_BENCH(NAME, TYPE, INIT, POST, WAIT, CLEAR)                                \
    struct NAME##_pair {                                                                   \
        TYPE ping, pong;                                                                   \
        _Atomic int done;                                                                  \
        uint64_t rounds;                                                                   \
        char pad[64];                                                                      \
    };                                                                                     \
    UNUSED static void *NAME##_player(void *arg)                                           \
    {                                                                                      \
        struct pair_role *role = arg;                                                      \
        struct NAME##_pair *pp = role->pair;                                               \
        if (role->pinger) {                                                                \
            uint64_t n = 0;                                                                \
            while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {              \
                POST(&pp->ping);                                                           \
                WAIT(&pp->pong);                                                           \
                CLEAR(&pp->pong);                                                          \
                n++;                                                                       \
            }                                                                              \
            pp->rounds = n;                                                                \
            atomic_store(&pp->done, 1);                                                    \
            POST(&pp->ping);                                                               \
        } else {                                                                           \
            for (;;) {                                                                     \
                WAIT(&pp->ping);                                                           \
                CLEAR(&pp->ping);                                                          \
                if (atomic_load(&pp->done))                                                \
                    break;                                                                 \
                POST(&pp->pong);                                                           \
            }                                                                              \
        }                                                                                  \
        return NULL;                                                                       \
    }                                                                                      \
    UNUSED static int NAME##_pingpong_n(const struct bench_params *p, struct bench_result *r, \
                                        int npairs)                                        \
    {                                                                                      \
        static struct NAME##_pair pairs[8];                                                \
        for (int i = 0; i < npairs; i++) {                                                 \
            INIT(&pairs[i].ping);                                                          \
            INIT(&pairs[i].pong);                                                          \
            atomic_store(&pairs[i].done, 0);                                               \
            pairs[i].rounds = 0;                                                           \
        }                                                                                  \
        int64_t wall = pingpong_run(p, r, NAME##_player, pairs, sizeof pairs[0], npairs);  \
        uint64_t handoffs = 0;                                                             \
        for (int i = 0; i < npairs; i++)                                                   \
            handoffs += 2 * pairs[i].rounds;                                               \
        if (!handoffs)                                                                     \
            return 1;                                                                      \
        r->value = (double)wall / (double)handoffs;                                        \
        return 0;                                                                          \
    }                                                                                      \
    UNUSED static int NAME##_pingpong(const struct bench_params *p, struct bench_result *r) \
    {                                                                                      \
        return NAME##_pingpong_n(p, r, 1);                                                 \
    }                                                                                      \
    UNUSED static int NAME##_pingpong4(const struct bench_params *p, struct bench_result *r) \
    {                                                                                      \
        return NAME##_pingpong_n(p, r, 4);                                                 \
    }

#define NO_CLEAR(x) ((void)0)

PINGPONG_BENCH(csem, conc_sem, conc_sem_init0, conc_sem_post, conc_sem_wait, NO_CLEAR)
PINGPONG_BENCH(psem, sem_t, posix_sem_init0, sem_post, sem_wait, NO_CLEAR)
PINGPONG_BENCH(tsem, struct tb_sem, tb_sem_init, tb_sem_post, tb_sem_wait, NO_CLEAR)
PINGPONG_BENCH(cevent, conc_event, conc_event_init0, conc_event_set, conc_event_wait0,
               conc_event_clear)
PINGPONG_BENCH(tevent, struct tb_event, tb_event_init, tb_event_set, tb_event_wait,
               tb_event_clear)
PINGPONG_BENCH(gevent, struct g_event, g_event_init, g_event_set, g_event_wait, g_event_clear)

/* ---- thread.spawn_join ---- */

static int noop_conc(void *arg)
{
    return arg != NULL;
}
static void *noop_pthread(void *arg)
{
    return arg;
}
static gpointer noop_glib(gpointer arg)
{
    return arg;
}

static long spawn_count(const struct bench_params *p)
{
    return p->quick ? 500 : 2000;
}

#define SPAWN_BENCH(NAME, BODY) BENCH_ROUNDS(NAME##_spawn, spawn_count(p), BODY)

SPAWN_BENCH(conc, {
    conc_thread *t;
    if (conc_thread_create(&t, noop_conc, NULL, NULL) != 0)
        return 1;
    conc_thread_join(t, NULL);
    conc_thread_destroy(t);
})
SPAWN_BENCH(pthread, {
    pthread_t t;
    if (pthread_create(&t, NULL, noop_pthread, NULL) != 0)
        return 1;
    pthread_join(t, NULL);
})
SPAWN_BENCH(glib, {
    GThread *t = g_thread_new(NULL, noop_glib, NULL);
    g_thread_join(t);
})

/* ---- the cases ---- */

#define PYTHON {"python", NULL}
#define END {0}

static const struct bench_impl sem_impls[] = {
    {"conc", csem_pingpong}, {"pthread", psem_pingpong}, {"textbook", tsem_pingpong}, PYTHON, END};
static const struct bench_impl sem4_impls[] = {
    {"conc", csem_pingpong4}, {"pthread", psem_pingpong4}, {"textbook", tsem_pingpong4}, PYTHON,
    END};
static const struct bench_impl event_impls[] = {{"conc", cevent_pingpong},
                                                {"textbook", tevent_pingpong},
                                                {"glib", gevent_pingpong},
                                                PYTHON,
                                                END};
static const struct bench_impl spawn_impls[] = {
    {"conc", conc_spawn}, {"pthread", pthread_spawn}, {"glib", glib_spawn}, PYTHON, END};

const struct bench_case bench_sem_pingpong = {
    "sem.pingpong", "ns/op",
    "two threads hand a token back and forth through two semaphores (ns per hand-off)", 2,
    sem_impls};
const struct bench_case bench_sem_pingpong4 = {
    "sem.pingpong.4pairs", "ns/op",
    "4 ping-pong pairs at once, 8 threads on this machine's cores (wall ns / all hand-offs)", 8,
    sem4_impls};
const struct bench_case bench_event_pingpong = {
    "event.pingpong", "ns/op",
    "two threads hand a token back and forth through two events, set/wait/clear (ns per hand-off)",
    2, event_impls};
const struct bench_case bench_thread_spawn_join = {
    "thread.spawn_join", "us/op", "start a thread that returns at once, and join it (µs)", 1,
    spawn_impls};
