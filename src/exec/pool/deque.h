/* The work-stealing deque behind the thread pool: a Chase-Lev deque of
 * non-NULL void * items, as in Lê, Pop, Cohen, Zappa Nardelli, "Correct and
 * Efficient Work-Stealing for Weak Memory Models" (PPoPP 2013), C11 version.
 *
 * One thread, the owner, pushes and pops at the bottom (LIFO); any thread
 * steals from the top (FIFO). Items live at indices top..bottom-1 of a
 * circular buffer of 2^k slots; index i is in slot i & mask. top only grows
 * (by compare-and-swap: thieves, and the owner for the last item); bottom is
 * written by the owner alone. Indices are signed 64-bit: the owner's pop
 * first lowers bottom, and bottom - 1 < top must read as "empty" even at 0;
 * they never wrap in practice (2^63 operations).
 *
 * Memory orders. In normal builds the orders and fences are the paper's,
 * each commented where it is used. ThreadSanitizer does not model a
 * stand-alone atomic_thread_fence (docs/architecture.md, "TSan and fences"), so under
 * TSan there is no fence at all: every store of bottom, and the loads of top
 * and bottom that a fence ordered (take's top, steal's top and bottom), are
 * seq_cst instead (the paper's seq_cst variant). A seq_cst store followed by
 * a seq_cst load gives the StoreLoad order the fence gave, and a seq_cst
 * store of bottom is the release that push's release fence provided, an edge
 * TSan sees. Orders that need no fence (acquire/relaxed loads, the seq_cst
 * CASes, the release store of buf) are the same in both builds.
 *
 * Items are _Atomic(void *) slots read and written relaxed: a thief may read
 * a slot while the owner overwrites it one lap later (it then loses its CAS
 * and drops what it read), and that must not be a data race.
 *
 * A buffer that growth replaced is kept on the retired chain until
 * conc__deque_free: a thief that loaded the old buffer pointer may still be
 * reading it. The retired buffers together are smaller than the live one.
 *
 * struct conc__deque is 64-byte aligned (top and bottom on separate cache
 * lines): allocate it with aligned_alloc or embed it in a struct that is
 * allocated so (UBSan checks the alignment). */
#ifndef CONC_DEQUE_H
#define CONC_DEQUE_H

#include "conc/base.h"
#include "core/platform.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The orders of the accesses a fence orders in normal builds; seq_cst (and
 * no fence) under TSan. See each use for why. */
#if CONC__TSAN
#define CONC__DQ_RELAXED_OR_SC memory_order_seq_cst
#define CONC__DQ_ACQUIRE_OR_SC memory_order_seq_cst
#define CONC__DQ_FENCE_SC() ((void)0)
#define CONC__DQ_FENCE_RELEASE() ((void)0)
#else
#define CONC__DQ_RELAXED_OR_SC memory_order_relaxed
#define CONC__DQ_ACQUIRE_OR_SC memory_order_acquire
#define CONC__DQ_FENCE_SC() atomic_thread_fence(memory_order_seq_cst)
#define CONC__DQ_FENCE_RELEASE() atomic_thread_fence(memory_order_release)
#endif

struct conc__deque_buf {
    int64_t mask;                  /* capacity - 1; the capacity is a power of two */
    struct conc__deque_buf *older; /* the retired chain (owner only) */
    _Atomic(void *) slot[];
};

/* Cache-line separated fields: top (thieves), bottom (owner). */
struct conc__deque {
    _Alignas(64) _Atomic int64_t top;
    _Alignas(64) _Atomic int64_t bottom;
    _Atomic(struct conc__deque_buf *) buf;
    /* Old buffers, freed at conc__deque_free: a thief may still read one. */
    struct conc__deque_buf *retired;
};

/* Initial capacity 2^log2_capacity (log2 0 gives 1). Returns 0, CONC_EINVAL
 * (log2_capacity > 40) or CONC_ENOMEM. An all-zero struct is not a valid
 * deque: only init makes one. */
int conc__deque_init(struct conc__deque *d, unsigned log2_capacity);
/* Frees the buffers, the retired ones too. No concurrent users. */
void conc__deque_free(struct conc__deque *d);

/* Out of line, owner only: replaces the full buffer a (items t..b-1) with one
 * twice the size. Returns the new buffer, or NULL (CONC_ENOMEM; the deque is
 * unchanged). */
struct conc__deque_buf *conc__deque_grow(struct conc__deque *d, struct conc__deque_buf *a,
                                         int64_t t, int64_t b);

/* Owner only: pushes item (not NULL) at the bottom, growing the buffer (it
 * doubles) when full. Returns 0, or CONC_ENOMEM with the item not pushed. */
static inline int conc__deque_push(struct conc__deque *d, void *item)
{
    /* Relaxed: bottom and buf are written by this thread only. */
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    /* Acquire: pairs with the release half of the CAS that raised top, so a
     * thief's read of the slot it took happens before our reuse of that slot
     * below; it can never see the item we are about to store there. */
    int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
    struct conc__deque_buf *a = atomic_load_explicit(&d->buf, memory_order_relaxed);
    if (conc__unlikely(b - t > a->mask)) {
        a = conc__deque_grow(d, a, t, b);
        if (!a)
            return CONC_ENOMEM;
    }
    atomic_store_explicit(&a->slot[b & a->mask], item, memory_order_relaxed);
    /* Release fence, then a relaxed store of bottom: a thief that reads the
     * new bottom (acquire) sees the item in its slot, and everything the
     * owner wrote before the push (the task the item points at). Under TSan
     * the store itself is seq_cst (a release). */
    CONC__DQ_FENCE_RELEASE();
    atomic_store_explicit(&d->bottom, b + 1, CONC__DQ_RELAXED_OR_SC);
    return 0;
}

/* The paper's take(): pops the item at index b = bottom - 1, which the caller
 * has read (owner only). NULL when the deque is empty or a thief took the
 * last item first. */
static inline void *conc__deque_take(struct conc__deque *d, int64_t b)
{
    struct conc__deque_buf *a = atomic_load_explicit(&d->buf, memory_order_relaxed);
    /* Claim index b first by lowering bottom, then read top. The seq_cst
     * fence between the store and the load (StoreLoad) pairs with the fence
     * between a thief's loads of top and bottom: either the thief sees the
     * lowered bottom and backs off, or we see its raised top. Without it
     * both could take index b. Under TSan: a seq_cst store and a seq_cst
     * load, which are ordered the same way in the single total order. */
    atomic_store_explicit(&d->bottom, b, CONC__DQ_RELAXED_OR_SC);
    CONC__DQ_FENCE_SC();
    int64_t t = atomic_load_explicit(&d->top, CONC__DQ_RELAXED_OR_SC);
    if (t > b) {
        /* Empty: put bottom back (relaxed: a thief that reads the lower
         * value only sees an empty deque, which it was). */
        atomic_store_explicit(&d->bottom, b + 1, CONC__DQ_RELAXED_OR_SC);
        return NULL;
    }
    /* Relaxed: our own store, or a copy made by our own growth. */
    void *x = atomic_load_explicit(&a->slot[b & a->mask], memory_order_relaxed);
    if (t == b) {
        /* The last item: thieves may be after it too. Exactly one CAS of
         * top from t to t + 1 wins, ours or a thief's. seq_cst as in the
         * paper: the CAS is also ordered against the fences. */
        if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1, memory_order_seq_cst,
                                                     memory_order_relaxed))
            x = NULL;
        /* top is now b + 1 either way: the deque is empty at b + 1. */
        atomic_store_explicit(&d->bottom, b + 1, CONC__DQ_RELAXED_OR_SC);
    }
    return x;
}

/* Owner only: the newest item, or NULL when empty. */
static inline void *conc__deque_pop(struct conc__deque *d)
{
    /* Relaxed: bottom is written by this thread only. */
    return conc__deque_take(d, atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1);
}

/* Owner only: the current bottom index, for conc__deque_pop_above. A push
 * raises it by one and a pop lowers it by one, except a pop of the last item
 * (it raises top instead: the CAS that races the thieves), which leaves it.
 * So while the owner pops only with pop_above(mark), bottom never goes below
 * the mark, and everything it pushes meanwhile lands at an index >= mark. */
static inline int64_t conc__deque_mark(struct conc__deque *d)
{
    return atomic_load_explicit(&d->bottom, memory_order_relaxed);
}

/* Owner only: pops the newest item only if its index is >= mark (mark from
 * conc__deque_mark taken earlier); NULL otherwise. Used for isolation: items
 * pushed after the mark are the running task's own subtree. An item that a
 * thief stole is gone, never returned again. */
static inline void *conc__deque_pop_above(struct conc__deque *d, int64_t mark)
{
    /* bottom is ours: this read is exact, and a newest item below the mark
     * is never touched (not even its bottom lowered). */
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
    if (b < mark)
        return NULL;
    return conc__deque_take(d, b);
}

/* Any thread: the oldest item. NULL when empty, or when it lost a race with
 * another thief or the owner: only then is *retry (when not NULL) set to
 * true. *retry is never set to false, so a caller clears it once and can
 * steal from several deques in turn to learn whether any race was lost. */
void *conc__deque_steal(struct conc__deque *d, bool *retry);

/* A snapshot of the number of items, from any thread (one low while the
 * owner is inside a pop, which lowers bottom before it looks at top). */
size_t conc__deque_size(struct conc__deque *d);

#endif
