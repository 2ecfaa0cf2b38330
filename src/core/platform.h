/* Platform specifics behind a small fixed interface: the futex calls and
 * whether this is a sanitizer build; what is particular to a CPU
 * architecture is in arch/. Only Linux on x86-64 and aarch64 is supported;
 * everything OS-specific goes through here. */
#ifndef CONC_PLATFORM_H
#define CONC_PLATFORM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "arch/cpu.h"

/* Which sanitizer this is built with, for gcc (__SANITIZE_*__) and clang
 * (__has_feature) alike: CONC__TSAN, CONC__ASAN, and CONC__SANITIZED for
 * either. */
#if defined(__SANITIZE_THREAD__)
#define CONC__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CONC__TSAN 1
#endif
#endif
#ifndef CONC__TSAN
#define CONC__TSAN 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#define CONC__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CONC__ASAN 1
#endif
#endif
#ifndef CONC__ASAN
#define CONC__ASAN 0
#endif

#define CONC__SANITIZED (CONC__TSAN || CONC__ASAN)

/* Test hooks: interleaving points a test can hold a thread at, compiled
 * only into the library the tests link (CONC_TEST_HOOKS, tests/CMakeLists.txt);
 * in the shipped library they are nothing. */
#ifdef CONC_TEST_HOOKS
#define CONC__TEST_HOOK(hook, ...) \
    do {                           \
        if (hook)                  \
            hook(__VA_ARGS__);     \
    } while (0)
#else
#define CONC__TEST_HOOK(hook, ...) ((void)0)
#endif

#define conc__likely(x) __builtin_expect(!!(x), 1)
#define conc__unlikely(x) __builtin_expect(!!(x), 0)

/* Sleeps while *addr == expected, until woken or until the absolute monotonic
 * deadline (INT64_MAX: none). Returns 0 when woken, when the value differed,
 * or on a signal (callers loop and re-check), CONC_ETIMEDOUT once the
 * deadline has passed. shared selects the process-shared futex namespace. */
int conc__futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t deadline,
                     bool shared);
/* Wakes up to n sleepers on addr. Harmless on an address nobody sleeps on,
 * even one whose memory has since been reused: futex waiters always re-check. */
void conc__futex_wake(_Atomic uint32_t *addr, int n, bool shared);

#endif
