/* What differs between CPU architectures, behind a small fixed interface:
 * the spin-wait hint and the mutex's fused flag test. x86-64 and aarch64,
 * with a portable fallback for anything else. (The coroutines' context
 * switch will sit beside this file.) */
#ifndef CONC_ARCH_CPU_H
#define CONC_ARCH_CPU_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* A hint to the CPU that this is a spin-wait loop. */
static inline void conc__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

/* Whether v | *word is non-zero, *word read relaxed: two tests in one
 * branch. On x86-64 *word is or-ed in straight from memory and the branch
 * taken on the flags of the result (an aligned 32-bit load is atomic there;
 * relaxed is all this needs): not one instruction more than testing v
 * alone. Elsewhere, and under the sanitizers (which must see an atomic
 * load), a relaxed load and an or. */
static inline bool conc__or_nonzero(uint32_t v, _Atomic uint32_t *word, bool plain_load_ok)
{
#if defined(__x86_64__) && defined(__GCC_ASM_FLAG_OUTPUTS__)
    if (plain_load_ok) {
        bool nonzero;
        __asm__("orl %2, %0" : "+r"(v), "=@ccnz"(nonzero) : "m"(*word));
        return nonzero;
    }
#else
    (void)plain_load_ok;
#endif
    return (v | atomic_load_explicit(word, memory_order_relaxed)) != 0;
}

#endif
