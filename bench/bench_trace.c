/* The cost of tracing: trace.event, ns per recorded event.
 *
 *   conc        the same run's mutex.uncontended: a conc_mutex lock+unlock
 *               pair, an idle second thread alive (the yardstick)
 *   conc:trace  one span, conc_trace_begin + conc_trace_end, with tracing on:
 *               one complete event written into the thread's ring (the
 *               default 65536 events, overwritten round and round); the
 *               file is written after the timed window
 *   conc:off    the same pair with tracing off (what an idle span costs)
 *
 * conc's floor: tracing costs at most 10x the conc row per event.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <conc/conc.h>
#include <conc/debug.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define TRACE_EVENTS 5000000L

static long trace_events(const struct bench_params *p)
{
    return p->quick ? TRACE_EVENTS / 5 : TRACE_EVENTS;
}

static int mutex_pairs(const struct bench_params *p, struct bench_result *r)
{
    static conc_mutex m;
    conc_mutex_init(&m, NULL);
    bench_start_idle_thread();
    long n = trace_events(p) * 4;
    for (long i = 0; i < n / 20; i++) { /* warm-up */
        conc_mutex_lock(&m);
        conc_mutex_unlock(&m);
    }
    struct bench_window w;
    bench_window_start(&w);
    for (long i = 0; i < n; i++) {
        conc_mutex_lock(&m);
        conc_mutex_unlock(&m);
    }
    bench_window_stop(&w);
    r->value = (double)w.wall_ns / (double)n;
    return 0;
}

static void span_loop(long n)
{
    for (long i = 0; i < n; i++) {
        conc_trace_begin("bench.span");
        conc_trace_end();
    }
}

static int spans(const struct bench_params *p, struct bench_result *r, bool traced)
{
    bench_start_idle_thread();
    char path[] = "/tmp/conc-bench-trace-XXXXXX";
    if (traced) {
        int fd = mkstemp(path);
        if (fd < 0)
            return 1;
        close(fd);
        if (conc_trace_start(path, 0) != 0)
            return 1;
    }
    long n = trace_events(p);
    span_loop(n / 20); /* warm-up: the ring's pages touched */
    struct bench_window w;
    bench_window_start(&w);
    span_loop(n);
    bench_window_stop(&w);
    r->value = (double)w.wall_ns / (double)n;
    if (traced) {
        int rc = conc_trace_stop();
        unlink(path);
        if (rc != 0) {
            fprintf(stderr, "trace: %s\n", conc_strerror(rc));
            return 1;
        }
    }
    return 0;
}

static int spans_traced(const struct bench_params *p, struct bench_result *r)
{
    return spans(p, r, true);
}

static int spans_untraced(const struct bench_params *p, struct bench_result *r)
{
    return spans(p, r, false);
}

static const struct bench_impl trace_event_impls[] = {
    {"conc", mutex_pairs}, {"conc:trace", spans_traced}, {"conc:off", spans_untraced}, {0}};

const struct bench_case bench_trace_event = {
    "trace.event", "ns/op",
    "one recorded span (begin+end) with tracing on; conc: a mutex lock+unlock pair, same run",
    1, trace_event_impls};
