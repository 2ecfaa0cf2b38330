/* A user's program built with -fsanitize=thread: a producer/consumer on a
 * conc_queue, a conc_pool whose tasks add to a counter under a conc_mutex,
 * and plain data handed over through both. Against libconc-tsan it must run
 * clean; against the plain libconc, ThreadSanitizer cannot see conc's own
 * synchronisation and reports races on the program's data (the install
 * check shows both). */
#include <conc/conc.h>
#include <stdio.h>

static conc_mutex lock = CONC_MUTEX_INIT;
static long counter;     /* guarded by lock */
static int payload[256]; /* written before a put, read after the get */

static int add_under_lock(void *arg, conc_result *out)
{
    (void)arg, (void)out;
    for (int i = 0; i < 1000; i++) {
        conc_mutex_lock(&lock);
        counter++;
        conc_mutex_unlock(&lock);
    }
    return 0;
}

static int producer(void *arg)
{
    conc_queue *q = arg;
    for (int i = 0; i < 256; i++) {
        payload[i] = i * 3; /* plain data, published by the put */
        if (conc_queue_put(q, &i) != 0)
            return 1;
    }
    return 0;
}

int main(void)
{
    conc_queue *q;
    conc_pool *p;
    if (conc_queue_create(&q, sizeof(int), &(conc_queue_opts){.capacity = 8}) != 0 ||
        conc_pool_create(&p, &(conc_pool_opts){.max_workers = 2}) != 0)
        return 1;
    conc_thread *t;
    if (conc_thread_create(&t, producer, q, NULL) != 0)
        return 1;
    conc_future *fs[4];
    for (int i = 0; i < 4; i++)
        if (conc_pool_submit(p, add_under_lock, NULL, &fs[i]) != 0)
            return 1;
    long sum = 0;
    for (int i = 0; i < 256; i++) {
        int k;
        if (conc_queue_get(q, &k) != 0)
            return 1;
        sum += payload[k];
    }
    for (int i = 0; i < 4; i++) {
        conc_future_result(fs[i], NULL);
        conc_future_release(fs[i]);
    }
    conc_thread_join(t, NULL);
    conc_thread_destroy(t);
    conc_pool_destroy(p);
    conc_queue_destroy(q);
    conc_mutex_lock(&lock);
    printf("counter %ld, sum %ld\n", counter, sum);
    conc_mutex_unlock(&lock);
    return counter == 4000 && sum == 3 * 255 * 256 / 2 ? 0 : 1;
}
