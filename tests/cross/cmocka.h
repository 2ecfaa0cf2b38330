/* The few cmocka calls tests/test.h and tests/test_coro.c use, for the
 * cross-compiled run of the coroutine tests (tools/test-aarch64.sh), where
 * Debian's cmocka for the target is not installed. Same meaning as
 * cmocka's with CMOCKA_TEST_ABORT=1: a failed assertion prints the
 * expression and both values, then aborts; the process runs the test named
 * on its command line (all without one), then the group's teardown, and
 * exits non-zero if either failed. */
#ifndef CONC_CROSS_CMOCKA_H
#define CONC_CROSS_CMOCKA_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*CMUnitTestFunction)(void **state);
typedef int (*CMFixtureFunction)(void **state);

struct CMUnitTest {
    const char *name;
    CMUnitTestFunction test_func;
};

#define cmocka_unit_test(f) {#f, f}

static const char *cmocka_shim_filter;

static inline void cmocka_set_test_filter(const char *pattern)
{
    cmocka_shim_filter = pattern;
}

__attribute__((noreturn, format(printf, 3, 4))) static inline void
cmocka_shim_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n[   LINE   ] --- %s:%d: error: Failure!\n", file, line);
    fflush(stderr);
    abort();
}

#define cmocka_shim_check(cond, ...)                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            cmocka_shim_fail(__FILE__, __LINE__, __VA_ARGS__);                                     \
    } while (0)

#define assert_true(c) cmocka_shim_check((c), "%s", #c)
#define assert_false(c) cmocka_shim_check(!(c), "!(%s)", #c)
#define assert_null(p) cmocka_shim_check((p) == NULL, "%s is not NULL", #p)
#define assert_non_null(p) cmocka_shim_check((p) != NULL, "%s is NULL", #p)
#define assert_int_equal(a, b)                                                                     \
    do {                                                                                           \
        uintmax_t a_ = (uintmax_t)(a), b_ = (uintmax_t)(b);                                        \
        cmocka_shim_check(a_ == b_, "%#jx != %#jx", a_, b_);                                       \
    } while (0)
#define assert_int_not_equal(a, b)                                                                 \
    do {                                                                                           \
        uintmax_t a_ = (uintmax_t)(a), b_ = (uintmax_t)(b);                                        \
        cmocka_shim_check(a_ != b_, "%#jx == %#jx", a_, b_);                                       \
    } while (0)
#define assert_ptr_equal(a, b)                                                                     \
    do {                                                                                           \
        const void *a_ = (const void *)(a), *b_ = (const void *)(b);                              \
        cmocka_shim_check(a_ == b_, "%p != %p", a_, b_);                                           \
    } while (0)
#define fail_msg(...) cmocka_shim_fail(__FILE__, __LINE__, __VA_ARGS__)
#define print_error(...) fprintf(stderr, __VA_ARGS__)

static inline int cmocka_shim_run(const struct CMUnitTest *tests, size_t n,
                                  CMFixtureFunction setup, CMFixtureFunction teardown)
{
    void *state = NULL;
    if (setup && setup(&state) != 0)
        return 1;
    size_t ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (cmocka_shim_filter && strcmp(cmocka_shim_filter, tests[i].name) != 0)
            continue;
        printf("[ RUN      ] %s\n", tests[i].name);
        fflush(stdout);
        tests[i].test_func(&state);
        printf("[       OK ] %s\n", tests[i].name);
        ran++;
    }
    if (teardown && teardown(&state) != 0)
        return 1;
    printf("[==========] %zu test(s) run.\n", ran);
    return ran == 0;
}

#define cmocka_run_group_tests(tests, setup, teardown)                                             \
    cmocka_shim_run((tests), sizeof(tests) / sizeof((tests)[0]), (setup), (teardown))

#endif
