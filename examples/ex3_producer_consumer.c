/* ex3_producer_consumer — threads that hand work over through a queue.
 *
 * ex2 showed what goes wrong when threads share one counter. The usual cure
 * is to share nothing: a producer puts an item in a queue, and from then on
 * only the consumer that gets it touches it. The queue does the locking.
 *
 *   - NPRODUCERS producers each put N items, every item with its own id;
 *   - NCONSUMERS consumers get items, "process" them, and call
 *     conc_queue_task_done for each one;
 *   - the queue holds at most CAPACITY items: when the consumers fall behind
 *     it fills up and a put has to wait for room. That wait is backpressure:
 *     producers slow down to the consumers' pace, and memory stays bounded;
 *   - main waits for the producers, then conc_queue_join waits until every
 *     item put has been task_done'd, and conc_queue_shutdown tells the
 *     consumers to leave: their next get fails with CONC_ESHUTDOWN.
 *
 * Build and run:  make && build/release/examples/ex3_producer_consumer [N]
 * It prints what each thread did, then a last line such as
 * "delivered 30000 of 30000 items exactly once", and exits 0 only if every
 * item was consumed exactly once.
 * Python equivalent: queue.Queue(maxsize=8) with put/get/task_done/join and
 * (Python 3.13) q.shutdown().
 */
#include <conc/conc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define NPRODUCERS 3
#define NCONSUMERS 4
#define CAPACITY 8

static long per_producer = 10000; /* N: argv[1] can change it */
static conc_queue *queue;         /* items are longs: their ids */

/* seen[id] counts how many times item id was consumed: it must end at 1. */
static atomic_int *seen;

struct producer {
    int index;
    long put;    /* items put */
    long waited; /* puts that found the queue full and had to wait */
};

struct consumer {
    long got; /* items taken */
    long sum; /* of their ids: the "work" done on them */
};

/* Producer p makes ids p*N .. p*N + N-1: no two producers share an id. */
static int produce(void *arg)
{
    struct producer *p = arg;
    for (long i = 0; i < per_producer; i++) {
        long id = p->index * per_producer + i;
        /* A timeout of 0 only tries: CONC_EFULL means no room right now.
         * Only then do we count a wait and block until a consumer makes room. */
        int rc = conc_queue_put_timed(queue, &id, 0);
        if (rc == CONC_EFULL) {
            p->waited++;
            rc = conc_queue_put(queue, &id);
        }
        if (rc != 0) {
            fprintf(stderr, "put: %s\n", conc_strerror(rc));
            return rc;
        }
        p->put++;
    }
    return 0;
}

/* Takes items until the queue is shut down and empty. */
static int consume(void *arg)
{
    struct consumer *c = arg;
    for (;;) {
        long id;
        int rc = conc_queue_get(queue, &id);
        if (rc == CONC_ESHUTDOWN)
            return 0; /* main said there is no more work: a normal exit */
        if (rc != 0) {
            fprintf(stderr, "get: %s\n", conc_strerror(rc));
            return rc;
        }
        /* The item is ours alone now: no lock needed to work on it. */
        if (id >= 0 && id < NPRODUCERS * per_producer)
            atomic_fetch_add(&seen[id], 1);
        c->sum += id;
        c->got++;
        /* Say the item is finished: conc_queue_join waits for this. */
        conc_queue_task_done(queue);
    }
}

/* Starts n threads running fn(args[i]); returns how many started. */
static int start_all(conc_thread **t, int n, conc_thread_fn fn, void *args, size_t size)
{
    int i = 0;
    while (i < n && conc_thread_create(&t[i], fn, (char *)args + (size_t)i * size, NULL) == 0)
        i++;
    return i;
}

/* Joins n threads; returns how many of them did not end with status 0. */
static int join_all(conc_thread **t, int n)
{
    int failed = 0;
    for (int i = 0; i < n; i++) {
        int status = -1;
        failed += conc_thread_join(t[i], &status) != 0 || status != 0;
        conc_thread_destroy(t[i]);
    }
    return failed;
}

/* Counts the ids consumed exactly once; reports the others. */
static long check_exactly_once(long total)
{
    long once = 0, missing = 0, repeated = 0;
    for (long id = 0; id < total; id++) {
        int n = atomic_load(&seen[id]);
        once += n == 1;
        missing += n == 0;
        repeated += n > 1;
    }
    if (missing || repeated)
        printf("missing %ld items, %ld consumed more than once\n", missing, repeated);
    return once;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        per_producer = atol(argv[1]);
    if (per_producer <= 0) {
        fprintf(stderr, "usage: %s [items per producer]\n", argv[0]);
        return 2;
    }
    long total = NPRODUCERS * per_producer;
    seen = calloc((size_t)total, sizeof *seen);
    conc_queue_opts opts = {.kind = CONC_QUEUE_FIFO, .capacity = CAPACITY};
    if (!seen || conc_queue_create(&queue, sizeof(long), &opts) != 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    printf("%d producers, %d consumers, a queue of at most %d items, %ld items per producer\n\n",
           NPRODUCERS, NCONSUMERS, CAPACITY, per_producer);

    /* Consumers first: they simply wait in get until items arrive. */
    conc_thread *pt[NPRODUCERS], *ct[NCONSUMERS];
    struct producer prod[NPRODUCERS] = {0};
    struct consumer cons[NCONSUMERS] = {0};
    for (int i = 0; i < NPRODUCERS; i++)
        prod[i].index = i;
    int ncons = start_all(ct, NCONSUMERS, consume, cons, sizeof cons[0]);
    int nprod = start_all(pt, NPRODUCERS, produce, prod, sizeof prod[0]);
    int failed = (ncons != NCONSUMERS) + (nprod != NPRODUCERS);

    /* Every item is in once the producers are done; join then waits until
     * the consumers have task_done'd all of them. Joining before the
     * producers finish could return early, while some items are still to come. */
    failed += join_all(pt, nprod);
    int rc = nprod == NPRODUCERS ? conc_queue_join(queue) : 0;
    printf("conc_queue_join: %s (every item put was task_done'd)\n", conc_err_name(rc));
    failed += rc != 0;
    /* Nothing more will come: shut down, and every consumer's next get
     * returns CONC_ESHUTDOWN (after the queue is empty, which it is now). */
    conc_queue_shutdown(queue, false);
    failed += join_all(ct, ncons);
    printf("after shutdown all %d consumers left\n\n", ncons);

    long put = 0, waited = 0, got = 0, sum = 0;
    for (int i = 0; i < nprod; i++) {
        printf("producer %d: put %ld items, waited for room %ld times\n", i, prod[i].put,
               prod[i].waited);
        put += prod[i].put;
        waited += prod[i].waited;
    }
    for (int i = 0; i < ncons; i++) {
        printf("consumer %d: got %ld items\n", i, cons[i].got);
        got += cons[i].got;
        sum += cons[i].sum;
    }
    printf("\nput %ld, got %ld; producers waited for room on %ld puts (%.1f%%)\n", put, got, waited,
           100.0 * (double)waited / (double)(put ? put : 1));

    long once = check_exactly_once(total);
    /* The ids 0 .. total-1 add up to total*(total-1)/2: a second check. */
    failed += once != total || got != total || sum != total * (total - 1) / 2;
    failed += conc_queue_destroy(queue) != 0;
    free(seen);
    printf("delivered %ld of %ld items exactly once\n", once, total);
    printf("%s\n", failed ? "FAILED" : "ok");
    return failed ? 1 : 0;
}
