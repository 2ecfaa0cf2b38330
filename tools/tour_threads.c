/* Chapter "threads": threads versus processes, measured.
 *
 * Creation cost: N threads started and joined one after another, against N
 * children forked and reaped the same way. Memory: a thread's write to a
 * global is seen by the main thread, a forked child's write to the same global
 * stays in the child's copy (the child reports what it read back through its
 * exit status). Isolation: a child that crashes leaves the parent running.
 * No other thread is alive when this chapter forks, so the children may do
 * anything; they only _exit.
 */
#include "tour.h"

#include <conc/conc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define CREATE_N 100 /* per round */
#define ROUNDS 3     /* the best round is shown: the least disturbed by others */

static int shared_value; /* what the thread and the child write to */

static int empty_thread(void *arg)
{
    (void)arg;
    return 0;
}

/* Nanoseconds per thread for n start+join pairs, or a negative error. */
static int64_t time_threads(int n)
{
    int64_t t0 = conc_now_ns();
    for (int i = 0; i < n; i++) {
        conc_thread *t;
        int rc = conc_thread_create(&t, empty_thread, NULL, NULL);
        if (rc != 0)
            return rc;
        rc = conc_thread_join(t, NULL);
        conc_thread_destroy(t);
        if (rc != 0)
            return rc;
    }
    return (conc_now_ns() - t0) / n;
}

/* Nanoseconds per child for n fork+waitpid pairs, or a negative error. */
static int64_t time_forks(int n)
{
    fflush(stdout); /* a child must not inherit unwritten output */
    int64_t t0 = conc_now_ns();
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return CONC_EAGAIN;
        if (pid == 0)
            _exit(0);
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return CONC_ECHILD;
    }
    return (conc_now_ns() - t0) / n;
}

static int write_two(void *arg)
{
    (void)arg;
    shared_value = 2;
    return 0;
}

/* Forks a child that writes 3, reads it back and exits with what it read.
 * Returns the child's wait status, or -1. */
static int child_writes_three(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        shared_value = 3;
        _exit(shared_value);
    }
    int st;
    return waitpid(pid, &st, 0) == pid ? st : -1;
}

/* Forks a child that dies of SIGSEGV (no core file). Returns its wait status. */
static int child_crashes(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        signal(SIGSEGV, SIG_DFL);
        raise(SIGSEGV);
        _exit(99); /* not reached */
    }
    int st;
    return waitpid(pid, &st, 0) == pid ? st : -1;
}

/* The best of ROUNDS rounds of fn(CREATE_N), after one warm-up round, into
 * best[0]; the worst into best[1]. Returns 0 or a negative error. */
static int best_of(int64_t (*fn)(int), const char *what, int64_t best[2])
{
    best[0] = INT64_MAX;
    best[1] = 0;
    for (int r = 0; r <= ROUNDS; r++) {
        tour_progress("%s: round %d of %d", what, r, ROUNDS);
        int64_t ns = fn(CREATE_N);
        if (ns < 0)
            return (int)ns;
        if (r == 0)
            continue; /* warm-up: stacks and page tables get allocated once */
        best[0] = ns < best[0] ? ns : best[0];
        best[1] = ns > best[1] ? ns : best[1];
    }
    return 0;
}

static int show_creation_cost(void)
{
    int64_t thr[2], proc[2];
    int rc = best_of(time_threads, "starting and joining threads", thr);
    if (rc == 0)
        rc = best_of(time_forks, "forking and reaping processes", proc);
    if (rc != 0)
        return rc;
    tour_progress_done();

    printf("  %-28s %12s %12s   (%d rounds of %d)\n", "create and wait for", "best µs", "worst µs",
           ROUNDS, CREATE_N);
    printf("  %-28s %12.1f %12.1f\n", "a thread (start + join)", (double)thr[0] / 1e3,
           (double)thr[1] / 1e3);
    printf("  %-28s %12.1f %12.1f\n", "a process (fork + waitpid)", (double)proc[0] / 1e3,
           (double)proc[1] / 1e3);
    double ratio = (double)proc[0] / (double)(thr[0] > 0 ? thr[0] : 1);
    if (ratio >= 1.0)
        printf("\n  A process costs %.1fx a thread here: fork copies the page tables and\n"
               "  the kernel builds a new address space; a thread shares the one it has.\n\n",
               ratio);
    else
        printf("\n  A process cost only %.1fx a thread this time: the machine was busy\n"
               "  while we measured. Run the chapter again for a steadier figure.\n\n",
               ratio);
    return 0;
}

static int show_memory(void)
{
    shared_value = 1;
    printf("  shared_value starts at %d in the main thread\n", shared_value);
    conc_thread *t;
    int rc = conc_thread_create(&t, write_two, NULL, NULL);
    if (rc != 0)
        return rc;
    conc_thread_join(t, NULL);
    conc_thread_destroy(t);
    int after_thread = shared_value;
    printf("  a thread wrote 2         -> the main thread reads %d (one memory, shared)\n",
           after_thread);

    int st = child_writes_three();
    int child_saw = st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    printf("  a forked child wrote 3   -> it read back %d; the parent reads %d (a copy)\n",
           child_saw, shared_value);

    int crash = child_crashes();
    bool crashed = crash >= 0 && WIFSIGNALED(crash) && WTERMSIG(crash) == SIGSEGV;
    printf("  a forked child crashed   -> %s; the parent runs on\n",
           crashed ? "killed by SIGSEGV" : "did not die as planned");
    printf("\n  A crash in a thread takes the whole process down; a crash in a child\n"
           "  process is only a status for its parent to read.\n");

    bool ok = after_thread == 2 && child_saw == 3 && shared_value == 2 && crashed;
    return ok ? 0 : CONC_EIO;
}

static int threads_run(void)
{
    tour_paragraph("A process is a program with its own address space; a thread is one more "
                   "flow of control inside a process, sharing its memory, files and everything "
                   "else. So threads are cheap to create and talk to each other simply by "
                   "writing memory — which is also why they need locks. Processes cost more to "
                   "create and must share data on purpose (pipes, shared memory), but a crash "
                   "in one cannot touch the others. Python's multiprocessing starts processes "
                   "to get past the GIL; in C, threads already run in parallel.");
    int rc = show_creation_cost();
    if (rc != 0)
        return rc;
    return show_memory();
}

const struct tour_chapter tour_threads = {
    .name = "threads",
    .title = "Threads vs processes",
    .run = threads_run,
};
