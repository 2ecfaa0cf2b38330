/* base.h: error codes, names and messages, version, deadlines. */
#include "test.h"

#include "conc/conc.h"
#include "core/deadline.h"

#include <errno.h>
#include <string.h>

static void error_codes_equal_minus_errno(void **state)
{
    (void)state;
    assert_int_equal(CONC_ETIMEDOUT, -ETIMEDOUT);
    assert_int_equal(CONC_EINVAL, -EINVAL);
    assert_int_equal(CONC_EDEADLK, -EDEADLK);
    assert_int_equal(CONC_EOWNERDEAD, -EOWNERDEAD);
    assert_true(CONC_EBROKEN < -4095);
    assert_true(CONC_EEMPTY < -4095 && CONC_EFULL < -4095 && CONC_EWORKERDIED < -4095);
}

static void every_code_has_a_distinct_name_and_message(void **state)
{
    (void)state;
    static const int codes[] = {
#define CODE(name, value, msg) CONC_##name,
        CONC_ERRNO_MAP(CODE)
#undef CODE
    };
    size_t n = sizeof codes / sizeof *codes;
    for (size_t i = 0; i < n; i++) {
        assert_string_not_equal(conc_err_name(codes[i]), "UNKNOWN");
        assert_string_not_equal(conc_strerror(codes[i]), "unknown error");
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal(codes[i], codes[j]);
            assert_string_not_equal(conc_err_name(codes[i]), conc_err_name(codes[j]));
        }
    }
    assert_string_equal(conc_err_name(CONC_ETIMEDOUT), "ETIMEDOUT");
    assert_string_equal(conc_err_name(0), "OK");
    assert_string_equal(conc_err_name(12345), "UNKNOWN");
    assert_string_equal(conc_strerror(-99999), "unknown error");
    assert_non_null(conc_strerror(INT32_MIN));
}

static void version_matches_header(void **state)
{
    (void)state;
    assert_int_equal(conc_version(), CONC_VERSION_HEX);
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", CONC_VERSION_MAJOR, CONC_VERSION_MINOR,
             CONC_VERSION_PATCH);
    assert_string_equal(conc_version_string(), expect);
}

static void deadlines_from_timeouts(void **state)
{
    (void)state;
    int64_t d = 0;
    assert_int_equal(conc__deadline(CONC_FOREVER, &d), 0);
    assert_true(d == CONC__NO_DEADLINE);
    assert_int_equal(conc__deadline(-2, &d), CONC_EINVAL);
    assert_int_equal(conc__deadline(INT64_MIN, &d), CONC_EINVAL);
    /* -1 ns is what "the deadline has just passed" computes to: an error,
     * never a wait without end. */
    assert_int_equal(conc__deadline(-1, &d), CONC_EINVAL);
    assert_true(CONC_FOREVER == INT64_MAX);
    int64_t before = conc_now_ns();
    assert_int_equal(conc__deadline(CONC_MSEC(5), &d), 0);
    assert_true(d >= before + CONC_MSEC(5));
    assert_true(d <= conc_now_ns() + CONC_MSEC(5));
    /* A huge timeout saturates instead of overflowing into the past. */
    assert_int_equal(conc__deadline(INT64_MAX - 1, &d), 0);
    assert_true(d == CONC__NO_DEADLINE);
    assert_int_equal(conc__deadline(0, &d), 0);
    assert_true(conc__expired(d));
    assert_false(conc__expired(CONC__NO_DEADLINE));
}

CONC_TEST_MAIN(cmocka_unit_test(error_codes_equal_minus_errno),
               cmocka_unit_test(every_code_has_a_distinct_name_and_message),
               cmocka_unit_test(version_matches_header),
               cmocka_unit_test(deadlines_from_timeouts))
