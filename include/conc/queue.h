/* conc/queue.h — thread-safe queues: Python's queue.Queue, LifoQueue and
 * PriorityQueue for C.
 *
 * Items are copied in and out by value; every item of a queue has the size
 * given at creation (a queue of pointers has item size sizeof(void *)). A
 * bounded queue (capacity > 0) holds at most that many items and a put waits
 * for room: that is backpressure. An unbounded queue (capacity 0) grows as
 * needed.
 *
 * Kinds: FIFO (first in, first out), LIFO (last in, first out), PRIORITY
 * (lowest key first; equal keys in insertion order — a stable order, unlike a
 * bare heap, and unlike Python's PriorityQueue, which compares the items).
 *
 * Blocking calls come in two forms (base.h): conc_queue_get(q, &out) waits
 * as long as it takes, conc_queue_get_timed(q, &out, timeout) gives up. As
 * Python raises Empty and Full: a get that finds nothing by its deadline
 * (timeout 0 included: Python's get_nowait) returns CONC_EEMPTY, a put that
 * finds no room CONC_EFULL.
 *
 * Tasks (Python's task_done/join): every item put counts as an unfinished
 * task; conc_queue_task_done says one taken item is finished; conc_queue_join
 * waits until none is unfinished.
 *
 * Shutdown (Python 3.13's Queue.shutdown): afterwards put fails with
 * CONC_ESHUTDOWN; get still returns what is left, then fails with
 * CONC_ESHUTDOWN; every blocked put and every get blocked on an empty queue
 * wakes with CONC_ESHUTDOWN. An immediate shutdown also discards the queued
 * items and lowers the count of unfinished tasks by their number, so join
 * returns once the items already taken are task_done'd (CPython's rule);
 * after it every get fails with CONC_ESHUTDOWN. A put racing with an
 * immediate shutdown either fails with CONC_ESHUTDOWN or counts as put
 * before it, its item discarded: no item is ever left in the queue.
 *
 * Every function is thread-safe. size, empty and full are snapshots: another
 * thread may change the queue before the caller looks at the answer.
 * Predicates (empty, full, is_shutdown) answer 1 or 0, or a negative error.
 */
#ifndef CONC_QUEUE_H
#define CONC_QUEUE_H

#include <conc/base.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_queue conc_queue;

typedef enum conc_queue_kind {
    CONC_QUEUE_FIFO = 0,
    CONC_QUEUE_LIFO = 1,
    CONC_QUEUE_PRIORITY = 2,
} conc_queue_kind;

typedef struct conc_queue_opts {
    conc_queue_kind kind; /* default FIFO */
    size_t capacity;      /* 0: unbounded */
    /* Promises that only one thread puts (gets) at a time, which lets a
     * queue skip what multi-producer (multi-consumer) safety costs. Breaking
     * the promise is undefined behaviour. */
    bool single_producer;
    bool single_consumer;
    /* Shown by traces and dumps (conc/debug.h) for the waits on this queue;
     * copied. NULL: "queue". */
    const char *name;
    uint64_t reserved_[4]; /* zero (docs/api.md: growing options) */
} conc_queue_opts;

/* The largest byte size a queue's storage may have: 2^47. */
#define CONC_QUEUE_MAX_BYTES ((size_t)1 << 47)

/* Creates a queue of items of item_size bytes; *q is NULL on failure.
 * Returns 0, CONC_EINVAL (NULL q, item_size 0, an unknown kind),
 * CONC_EOVERFLOW (the bytes the queue needs — capacity x item size plus a
 * few bytes a slot — overflow), CONC_ENOMEM (more than CONC_QUEUE_MAX_BYTES,
 * or out of memory). Never blocks. opts may be NULL: an unbounded FIFO. */
CONC_API int conc_queue_create(conc_queue **q, size_t item_size, const conc_queue_opts *opts);

/* Frees the queue and its items. Returns 0, CONC_EINVAL (NULL), CONC_EBUSY
 * while a thread is blocked in it (shut it down first: that wakes them). Using
 * the handle after a successful destroy is undefined behaviour. */
CONC_API int conc_queue_destroy(conc_queue *q);

/* Copies item in, waiting for room in a bounded queue. On a PRIORITY queue
 * the key is 0. Returns 0, CONC_EFULL (timed form: no room by the deadline),
 * CONC_ESHUTDOWN, CONC_ENOMEM (an unbounded queue could not grow),
 * CONC_EINVAL (NULL q or item, bad timeout). */
CONC_API int conc_queue_put(conc_queue *q, const void *item);
CONC_API int conc_queue_put_timed(conc_queue *q, const void *item, int64_t timeout);

/* As conc_queue_put, with the priority key (lowest first). On a FIFO or LIFO
 * queue the key is ignored. */
CONC_API int conc_queue_put_key(conc_queue *q, const void *item, int64_t key);
CONC_API int conc_queue_put_key_timed(conc_queue *q, const void *item, int64_t key,
                                      int64_t timeout);

/* Copies the next item into out, waiting for one. Returns 0, CONC_EEMPTY
 * (timed form: none by the deadline), CONC_ESHUTDOWN (shut down and empty),
 * CONC_EINVAL. */
CONC_API int conc_queue_get(conc_queue *q, void *out);
CONC_API int conc_queue_get_timed(conc_queue *q, void *out, int64_t timeout);

/* As conc_queue_get; also stores the item's key in *key (0 for FIFO/LIFO). */
CONC_API int conc_queue_get_key(conc_queue *q, void *out, int64_t *key);
CONC_API int conc_queue_get_key_timed(conc_queue *q, void *out, int64_t *key, int64_t timeout);

/* Puts the n items of the array items (n x item size bytes), as many at a
 * time as there is room, until all are in (or, timed, the deadline passes);
 * *done (may be NULL) receives how many went in, in order. Returns 0 when
 * all n did, CONC_EFULL (timed form: some or none by the deadline),
 * CONC_ESHUTDOWN, CONC_ENOMEM, CONC_EINVAL (n == 0 included). */
CONC_API int conc_queue_put_many(conc_queue *q, const void *items, size_t n, size_t *done);
CONC_API int conc_queue_put_many_timed(conc_queue *q, const void *items, size_t n, size_t *done,
                                       int64_t timeout);

/* Waits for at least one item, then takes up to max at once into out; *got
 * (may be NULL) receives how many. Returns 0 (*got >= 1), CONC_EEMPTY (timed
 * form), CONC_ESHUTDOWN (shut down and empty), CONC_EINVAL (max == 0
 * included). */
CONC_API int conc_queue_get_many(conc_queue *q, void *out, size_t max, size_t *got);
CONC_API int conc_queue_get_many_timed(conc_queue *q, void *out, size_t max, size_t *got,
                                       int64_t timeout);

/* Snapshots: the number of items (or a negative error); 1 if empty (full),
 * 0 if not, or a negative error. An unbounded queue is never full. */
CONC_API int64_t conc_queue_size(conc_queue *q);
CONC_API int conc_queue_empty(conc_queue *q);
CONC_API int conc_queue_full(conc_queue *q);

/* Snapshots (Python 3.13's Queue.is_shutdown, Queue.unfinished_tasks): 1 if
 * conc_queue_shutdown was called, 0 if not; the number of items put and not
 * yet task_done'd nor discarded by an immediate shutdown. CONC_EINVAL for
 * NULL. Never block; thread-safe. */
CONC_API int conc_queue_is_shutdown(conc_queue *q);
CONC_API int64_t conc_queue_unfinished_tasks(conc_queue *q);

/* One item taken earlier is finished. Returns 0, CONC_ESTATE (called more
 * times than items were put: Python's ValueError), CONC_EINVAL (NULL).
 * Never blocks. */
CONC_API int conc_queue_task_done(conc_queue *q);

/* Waits until every item put has been task_done'd. Returns 0, CONC_ETIMEDOUT
 * (timed form), CONC_EINVAL. */
CONC_API int conc_queue_join(conc_queue *q);
CONC_API int conc_queue_join_timed(conc_queue *q, int64_t timeout);

/* Shuts the queue down (see above); immediate also discards the items queued.
 * Returns 0 or CONC_EINVAL. A second shutdown is allowed (an immediate one
 * after a normal one still discards). Never blocks. */
CONC_API int conc_queue_shutdown(conc_queue *q, bool immediate);

#ifdef __cplusplus
}
#endif

#endif /* CONC_QUEUE_H */
