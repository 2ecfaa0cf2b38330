/* `conc tour`: each chapter explains one concept in a paragraph and then
 * demonstrates it live on this machine, printing what it measured. */
#ifndef CONC_TOUR_H
#define CONC_TOUR_H

#include <stdbool.h>
#include <stdint.h>

struct tour_chapter {
    const char *name;  /* for --chapter NAME */
    const char *title;
    int (*run)(void);  /* 0 on success */
};

/* The chapters, in tour order; NULL-terminated. */
extern const struct tour_chapter *const tour_chapters[];

/* Chapter helpers (tour.c). */
void tour_heading(const char *title);
void tour_paragraph(const char *text);
/* A transient progress line on stderr, erased by the next output. */
void tour_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tour_progress_done(void);
double tour_ms(int64_t ns);

/* The tour's CPU-bound job: the primes in [lo, hi), by trial division. */
uint64_t tour_count_primes(uint32_t lo, uint32_t hi);
/* A span of numbers from lo that takes about target_ns to count on one
 * thread on this machine, at most max. */
uint32_t tour_prime_span(uint32_t lo, int64_t target_ns, uint32_t max);

/* Runs the parallelism chapter's three ways again on short jobs (about
 * job_ms each) while recording a timeline into path (conc/debug.h's trace):
 * each way and each job is a span. *njobs gets how many jobs each way ran.
 * Returns 0, or the error of conc_trace_start / conc_trace_stop (CONC_ENOSYS
 * where traces are not in the build). */
int tour_parallelism_trace(const char *path, int job_ms, int *njobs);

int tour_main(int argc, char **argv);

extern const struct tour_chapter tour_parallelism;
extern const struct tour_chapter tour_threads;
extern const struct tour_chapter tour_gil;
extern const struct tour_chapter tour_locks;
extern const struct tour_chapter tour_semaphores;
extern const struct tour_chapter tour_queues;
extern const struct tour_chapter tour_pools;
extern const struct tour_chapter tour_processes;
extern const struct tour_chapter tour_bugs;

#endif
