/* ex1_basic_threading — the first things to do with threads.
 *
 *   1. start a few named threads, each with its own argument, and join them,
 *      reading back what each thread's function returned (its status);
 *   2. join with a timeout: a join that gives up while the thread still runs
 *      answers CONC_ETIMEDOUT, and can simply be tried again later;
 *   3. measure what a thread costs to create against a process (fork).
 *
 * Build and run:  make && build/release/examples/ex1_basic_threading
 * Python equivalent: threading.Thread(target=..., name=...), t.join(timeout),
 * with one difference: Python's join() returns None whether the thread ended
 * or not (you check t.is_alive()); conc_thread_join says so in its result.
 */
#include <conc/conc.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#define NWORKERS 3

/* ---------------------------------------------------------- 1. start, join */

struct work {
    int id;
    long sum; /* the thread writes its answer here */
};

/* A thread's function takes one void * and returns an int: the status that
 * conc_thread_join hands back. Here: 100 + the worker's id. */
static int worker(void *arg)
{
    struct work *w = arg;
    char name[32];
    conc_thread_get_name(conc_thread_self(), name, sizeof name);
    long n = 1000L * w->id;
    for (long i = 1; i <= n; i++)
        w->sum += i;
    printf("  %s (kernel tid %lld) summed 1..%ld = %ld\n", name,
           (long long)conc_thread_id(conc_thread_self()), n, w->sum);
    return 100 + w->id;
}

static int start_and_join(void)
{
    conc_thread *t[NWORKERS];
    struct work w[NWORKERS];
    char names[NWORKERS][16];
    for (int i = 0; i < NWORKERS; i++) {
        w[i] = (struct work){.id = i + 1};
        snprintf(names[i], sizeof names[i], "worker-%d", i + 1);
        /* The name shows in top -H, gdb and /proc/<pid>/task/<tid>/comm. */
        conc_thread_opts opts = {.name = names[i]};
        int rc = conc_thread_create(&t[i], worker, &w[i], &opts);
        if (rc != 0) {
            fprintf(stderr, "conc_thread_create: %s\n", conc_strerror(rc));
            return 1;
        }
    }
    int failed = 0;
    for (int i = 0; i < NWORKERS; i++) {
        int status = -1;
        /* The return value says whether the join worked; the thread's own
         * result comes back through status. */
        int rc = conc_thread_join(t[i], &status);
        printf("joined %s: %s, status %d\n", names[i], conc_err_name(rc), status);
        failed |= rc != 0 || status != 100 + i + 1;
        conc_thread_destroy(t[i]); /* frees the handle */
    }
    return failed;
}

/* ------------------------------------------------- 2. join with a timeout */

/* Runs until the event is set, then returns 42. */
static int waits_for_event(void *arg)
{
    conc_event_wait(arg);
    return 42;
}

static int join_with_timeout(void)
{
    conc_event go = CONC_EVENT_INIT;
    conc_thread *t;
    conc_thread_opts opts = {.name = "sleeper"};
    if (conc_thread_create(&t, waits_for_event, &go, &opts) != 0)
        return 1;

    /* The thread cannot finish before we set the event, so this join must
     * give up after 50 ms. The thread is not harmed: join again later. */
    int status = -1;
    int64_t t0 = conc_now_ns();
    int rc = conc_thread_join_timed(t, &status, CONC_MSEC(50));
    printf("join with a 50 ms timeout: %s after %.1f ms (still running: %d)\n", conc_err_name(rc),
           (double)(conc_now_ns() - t0) / 1e6, conc_thread_is_alive(t));
    int failed = rc != CONC_ETIMEDOUT;

    conc_event_set(&go); /* now let it finish */
    rc = conc_thread_join_timed(t, &status, CONC_SEC(5));
    printf("join after setting the event: %s, status %d\n", conc_err_name(rc), status);
    failed |= rc != 0 || status != 42;
    conc_thread_destroy(t);
    failed |= conc_event_destroy(&go) != 0;
    return failed;
}

/* ------------------------------------------- 3. thread vs process creation */

static int nothing(void *arg)
{
    (void)arg;
    return 0;
}

static int creation_cost(int n)
{
    int64_t t0 = conc_now_ns();
    for (int i = 0; i < n; i++) {
        conc_thread *t;
        if (conc_thread_create(&t, nothing, NULL, NULL) != 0)
            return 1;
        conc_thread_join(t, NULL);
        conc_thread_destroy(t);
    }
    int64_t thread_ns = (conc_now_ns() - t0) / n;

    /* A process: fork copies this one; the child only exits. No other thread
     * is running now, which keeps fork simple. Flush stdout first: the child
     * gets a copy of its unwritten buffer, and must not print it twice. */
    fflush(stdout);
    t0 = conc_now_ns();
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0)
            _exit(0); /* _exit: skip atexit handlers and stdio flushing */
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
            return 1;
    }
    int64_t process_ns = (conc_now_ns() - t0) / n;
    printf("creation cost (%d each): thread %.1f us, process %.1f us\n", n, (double)thread_ns / 1e3,
           (double)process_ns / 1e3);
    return 0;
}

int main(void)
{
    printf("1. three named threads\n");
    int failed = start_and_join();
    printf("\n2. join with a timeout\n");
    failed |= join_with_timeout();
    printf("\n3. what creating one costs\n");
    failed |= creation_cost(100);
    printf("\n%s\n", failed ? "FAILED" : "ok");
    return failed ? 1 : 0;
}
