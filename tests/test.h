/* Shared by every test: cmocka, the CONC_TEST_SCALE knob, small helpers.
 * Each test executable takes an optional test name (ctest passes one) and runs
 * only that test, so every test runs in its own process. */
#ifndef CONC_TEST_H
#define CONC_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define CONC_TEST_MAIN(...)                                                  \
    int main(int argc, char **argv)                                          \
    {                                                                        \
        const struct CMUnitTest tests[] = {__VA_ARGS__};                     \
        if (argc > 1)                                                        \
            cmocka_set_test_filter(argv[1]);                                 \
        return cmocka_run_group_tests(tests, NULL, NULL);                    \
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

/* Polls *count until it equals n, failing after 10 s: how a test knows that
 * n threads are blocked inside a primitive (a count the wait core keeps),
 * never by sleeping and hoping. */
static inline void conc_test_await_count(_Atomic uint32_t *count, uint32_t n)
{
    struct timespec pause = {0, 100 * 1000}, t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (atomic_load(count) != n) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        assert_true(now.tv_sec - t0.tv_sec < 10);
        nanosleep(&pause, NULL);
    }
}

/* Polls until cond holds, failing after 10 s (never a bare sleep). */
#define CONC_TEST_POLL_UNTIL(cond)                                             \
    do {                                                                       \
        struct timespec poll_pause_ = {0, 100 * 1000}, poll_t0_, poll_now_;    \
        clock_gettime(CLOCK_MONOTONIC, &poll_t0_);                             \
        while (!(cond)) {                                                      \
            clock_gettime(CLOCK_MONOTONIC, &poll_now_);                        \
            if (poll_now_.tv_sec - poll_t0_.tv_sec >= 10)                      \
                fail_msg("timed out polling for: %s", #cond);                  \
            nanosleep(&poll_pause_, NULL);                                     \
        }                                                                      \
    } while (0)

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

#endif
