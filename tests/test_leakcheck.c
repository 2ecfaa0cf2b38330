/* The check every test process makes after its tests (test.h,
 * conc_test_check_leftovers) proven to fail: each test here leaves one
 * thing behind on purpose, and ctest passes it only when the check's
 * report names it (tests/CMakeLists.txt). */
#include "test.h"

static void planted_descriptor_is_reported(void **state)
{
    (void)state;
    assert_true(open("/dev/null", O_RDONLY | O_CLOEXEC) >= 0); /* never closed */
}

static void planted_zombie_is_reported(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    /* Waits for it to end, leaving it unreaped. */
    assert_int_equal(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT), 0);
}

CONC_TEST_MAIN(cmocka_unit_test(planted_descriptor_is_reported),
               cmocka_unit_test(planted_zombie_is_reported))
