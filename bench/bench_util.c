/* Helpers shared by the case files (bench.h). */
#define _GNU_SOURCE
#include "bench.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t bench_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_window_start(struct bench_window *w)
{
    w->cpu0 = bench_cpu_ns();
    w->wall0 = bench_now_ns();
}

void bench_window_stop(struct bench_window *w)
{
    w->wall_ns = bench_now_ns() - w->wall0;
    w->cpu_ns = bench_cpu_ns() - w->cpu0;
}

double bench_window_cpu_pct(const struct bench_window *w)
{
    return w->wall_ns > 0 ? 100.0 * (double)w->cpu_ns / (double)w->wall_ns : 0;
}

static void *bench_idle(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

void bench_start_idle_thread(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, bench_idle, NULL) != 0) {
        perror("pthread_create");
        exit(1);
    }
    pthread_detach(t);
}

double bench_fairness(const uint64_t *counts, int n)
{
    uint64_t lo = counts[0], hi = counts[0];
    for (int i = 1; i < n; i++) {
        if (counts[i] < lo)
            lo = counts[i];
        if (counts[i] > hi)
            hi = counts[i];
    }
    return hi ? (double)lo / (double)hi : 1.0;
}

struct bench_start {
    void *(*fn)(void *);
    void *arg;
    pthread_barrier_t *barrier;
};

static void *bench_trampoline(void *p)
{
    struct bench_start *s = p;
    pthread_barrier_wait(s->barrier);
    return s->fn(s->arg);
}

void bench_run_threads(int n, void *(*fn)(void *), void *arg, unsigned long size)
{
    pthread_t t[64];
    struct bench_start s[64];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, (unsigned)n);
    for (int i = 0; i < n && i < 64; i++) {
        s[i] = (struct bench_start){fn, (char *)arg + (unsigned long)i * size, &barrier};
        if (pthread_create(&t[i], NULL, bench_trampoline, &s[i]) != 0) {
            perror("pthread_create");
            exit(1);
        }
    }
    for (int i = 0; i < n && i < 64; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
}
