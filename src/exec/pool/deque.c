/* The work-stealing deque (deque.h): set-up, growth, steal, size. The owner's
 * push and pop fast paths are inline in deque.h. */
#include "exec/pool/deque.h"
#include "core/misuse.h"

#include <stdlib.h>

/* A buffer of 2^log2 zeroed slots, or NULL. Zeroed: a thief holding a stale
 * top may read a slot that was never written (and then lose its CAS); it
 * reads NULL, not indeterminate memory. */
static struct conc__deque_buf *conc__deque_buf_new(unsigned log2)
{
    size_t cap = (size_t)1 << log2;
    if (cap > (SIZE_MAX - sizeof(struct conc__deque_buf)) / sizeof(_Atomic(void *)))
        return NULL;
    struct conc__deque_buf *a =
        calloc(1, sizeof(struct conc__deque_buf) + cap * sizeof(_Atomic(void *)));
    if (!a)
        return NULL;
    a->mask = (int64_t)cap - 1;
    a->older = NULL;
    return a;
}

int conc__deque_init(struct conc__deque *d, unsigned log2_capacity)
{
    if (log2_capacity > 40)
        return CONC_EINVAL; /* detail set by caller: never reached from the API */
    struct conc__deque_buf *a = conc__deque_buf_new(log2_capacity);
    if (!a)
        return CONC_ENOMEM;
    /* Both indices start at 0; the deque is not shared yet, relaxed is enough
     * (whoever hands it to other threads publishes it). */
    atomic_init(&d->top, 0);
    atomic_init(&d->bottom, 0);
    atomic_init(&d->buf, a);
    d->retired = NULL;
    return 0;
}

void conc__deque_free(struct conc__deque *d)
{
    free(atomic_load_explicit(&d->buf, memory_order_relaxed));
    atomic_store_explicit(&d->buf, NULL, memory_order_relaxed);
    for (struct conc__deque_buf *a = d->retired, *next; a; a = next) {
        next = a->older;
        free(a);
    }
    d->retired = NULL;
}

struct conc__deque_buf *conc__deque_grow(struct conc__deque *d, struct conc__deque_buf *a,
                                         int64_t t, int64_t b)
{
    unsigned log2 = 0;
    while (((int64_t)1 << log2) <= a->mask)
        log2++;
    if (log2 >= 62)
        return NULL;
    struct conc__deque_buf *n = conc__deque_buf_new(log2 + 1);
    if (!n)
        return NULL;
    /* Copy the live items t..b-1 to the same indices in the new buffer.
     * Thieves may take some of them meanwhile (raising top past t): copying
     * those too is harmless, their indices are never read again. Relaxed:
     * the release store of buf below publishes the copies. */
    for (int64_t i = t; i < b; i++)
        atomic_store_explicit(&n->slot[i & n->mask],
                              atomic_load_explicit(&a->slot[i & a->mask], memory_order_relaxed),
                              memory_order_relaxed);
    /* The old buffer stays readable until conc__deque_free: a thief that
     * loaded it may still read a slot (the same item as in the copy: nothing
     * writes to an old buffer again). */
    a->older = d->retired;
    d->retired = a;
    /* Release: pairs with the thief's acquire load of buf (the paper's
     * consume), so a thief that sees the new buffer sees the copies and its
     * mask. */
    atomic_store_explicit(&d->buf, n, memory_order_release);
    return n;
}

void *conc__deque_steal(struct conc__deque *d, bool *retry)
{
    /* Acquire: pairs with the release half of the CAS that set this top (a
     * thief's, or the owner's for a last item), so our reads of bottom and
     * buf below are no older than what that thread had seen. Then the seq_cst
     * fence (StoreLoad/LoadLoad with the owner's fence in take): if the
     * owner lowered bottom to claim index t before its fence, we see the
     * lowered bottom; otherwise it sees our CAS. Under TSan: two seq_cst
     * loads, no fence. */
    int64_t t = atomic_load_explicit(&d->top, CONC__DQ_ACQUIRE_OR_SC);
    CONC__DQ_FENCE_SC();
    /* Acquire: pairs with push's release fence (or, under TSan, its seq_cst
     * store of bottom), so the item in slot t is visible. */
    int64_t b = atomic_load_explicit(&d->bottom, CONC__DQ_ACQUIRE_OR_SC);
    if (t >= b)
        return NULL;
    /* Acquire (the paper's consume, which compilers promote to acquire
     * anyway): pairs with grow's release store, so the buffer's mask and
     * copied slots are visible. A stale (older) buffer is fine: it still
     * holds index t whenever our CAS can succeed. */
    struct conc__deque_buf *a = atomic_load_explicit(&d->buf, memory_order_acquire);
    /* Relaxed: the slot may be overwritten by the owner one lap later; then
     * top has moved past t and the CAS below fails, dropping what we read. */
    void *x = atomic_load_explicit(&a->slot[t & a->mask], memory_order_relaxed);
    /* seq_cst as in the paper: the one CAS that decides who gets index t,
     * against other thieves and the owner's last-item CAS; its release half
     * orders our slot read before the owner's reuse of the slot. */
    if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1, memory_order_seq_cst,
                                                 memory_order_relaxed)) {
        if (retry)
            *retry = true;
        return NULL;
    }
    return x;
}

size_t conc__deque_size(struct conc__deque *d)
{
    /* Relaxed: a snapshot; top first, so a concurrent steal can only make
     * it larger than the truth at the second load, never negative. */
    int64_t t = atomic_load_explicit(&d->top, memory_order_relaxed);
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    return b > t ? (size_t)(b - t) : 0;
}
