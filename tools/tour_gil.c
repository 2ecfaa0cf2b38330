/* Chapter "gil": why C threads scale on CPU-bound work and Python's do not.
 *
 * One job — count the primes in a range by trial division, the range cut in
 * blocks dealt round-robin to the workers — runs in C on one thread and on W
 * threads, and, when python3 is on PATH, in Python on one thread, on W
 * threads (threading) and on W forked processes (multiprocessing). The Python
 * script is embedded below and run once with `python3 -c`; it sizes its own
 * range to about PY_TARGET_S seconds, then prints one line per run. Every
 * run's prime count is checked against C's count for the same range.
 */
#define _GNU_SOURCE
#include "tour.h"

#include <conc/conc.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define NBLOCKS 64
#define MAX_WORKERS 4
#define C_TARGET_NS (250 * CONC_NSEC_PER_MSEC) /* the C serial run */
#define PY_TARGET_S "0.6"                      /* the Python serial run */
#define PY_LO 1000000u
#define PY_DEADLINE_NS CONC_SEC(60)

/* argv: target seconds, lo, workers. Prints "range lo hi", "gil 0|1",
 * "version X", then "run MODE WORKERS WALL_S CPU_S PRIMES" per run. */
static const char py_script[] =
    "import sys, time, threading, resource, multiprocessing as mp\n"
    "def count(lo, hi):\n"
    "    n = 0\n"
    "    for x in range(max(lo, 2), hi):\n"
    "        d = 2\n"
    "        while d * d <= x:\n"
    "            if x % d == 0:\n"
    "                break\n"
    "            d += 1\n"
    "        else:\n"
    "            n += 1\n"
    "    return n\n"
    "def share(lo, hi, w, nw):\n"
    "    size = (hi - lo) // 64\n" /* NBLOCKS */
    "    n = 0\n"
    "    for b in range(w, 64, nw):\n"
    "        n += count(lo + b * size, hi if b == 63 else lo + (b + 1) * size)\n"
    "    return n\n"
    "def cpu():\n"
    "    s, c = resource.getrusage(resource.RUSAGE_SELF), "
    "resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime\n"
    "def serial(lo, hi, nw):\n"
    "    return share(lo, hi, 0, 1)\n"
    "def threads(lo, hi, nw):\n"
    "    res = [0] * nw\n"
    "    def work(w):\n"
    "        res[w] = share(lo, hi, w, nw)\n"
    "    ts = [threading.Thread(target=work, args=(w,)) for w in range(nw)]\n"
    "    for t in ts: t.start()\n"
    "    for t in ts: t.join()\n"
    "    return sum(res)\n"
    "def pwork(q, lo, hi, w, nw):\n"
    "    q.put(share(lo, hi, w, nw))\n"
    "def processes(lo, hi, nw):\n"
    "    ctx = mp.get_context('fork')\n"
    "    q = ctx.SimpleQueue()\n"
    "    ps = [ctx.Process(target=pwork, args=(q, lo, hi, w, nw)) for w in range(nw)]\n"
    "    for p in ps: p.start()\n"
    "    n = sum(q.get() for p in ps)\n"
    "    for p in ps: p.join()\n"
    "    return n\n"
    "target, lo, nw = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])\n"
    "span = 4096\n"
    "while True:\n"
    "    t0 = time.perf_counter(); count(lo, lo + span); dt = time.perf_counter() - t0\n"
    "    if dt >= target / 10 or span > 1 << 26: break\n"
    "    span *= 2\n"
    "hi = lo + max(64, int(span * target / max(dt, 1e-6)))\n"
    "print('range', lo, hi)\n"
    "print('gil', int(getattr(sys, '_is_gil_enabled', lambda: True)()))\n"
    "print('version', sys.version.split()[0], flush=True)\n"
    "for name, fn, w in (('serial', serial, 1), ('threads', threads, nw), "
    "('processes', processes, nw)):\n"
    "    t0, c0 = time.perf_counter(), cpu()\n"
    "    n = fn(lo, hi, w)\n"
    "    print('run', name, w, time.perf_counter() - t0, cpu() - c0, n, flush=True)\n";

struct measure {
    double wall_s, cpu_s;
    uint64_t primes;
    bool done;
};

/* ------------------------------------------------------------------- C side */

struct c_worker {
    uint32_t lo, hi;
    int w, nw;
    uint64_t primes;
};

/* Block b of NBLOCKS over [lo, hi): the last one takes the remainder. */
static uint64_t count_share(uint32_t lo, uint32_t hi, int w, int nw)
{
    uint32_t size = (hi - lo) / NBLOCKS;
    uint64_t n = 0;
    for (int b = w; b < NBLOCKS; b += nw)
        n += tour_count_primes(lo + (uint32_t)b * size,
                          b == NBLOCKS - 1 ? hi : lo + (uint32_t)(b + 1) * size);
    return n;
}

static int c_work(void *arg)
{
    struct c_worker *cw = arg;
    cw->primes = count_share(cw->lo, cw->hi, cw->w, cw->nw);
    return 0;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* nw == 1 runs on the calling thread. */
static int c_run(uint32_t lo, uint32_t hi, int nw, struct measure *m)
{
    struct c_worker cw[MAX_WORKERS];
    conc_thread *t[MAX_WORKERS];
    double c0 = cpu_s();
    int64_t t0 = conc_now_ns();
    int started = 0, rc = 0;
    for (int w = 0; w < nw; w++)
        cw[w] = (struct c_worker){.lo = lo, .hi = hi, .w = w, .nw = nw};
    if (nw == 1)
        c_work(&cw[0]);
    for (; nw > 1 && started < nw && rc == 0; started++)
        rc = conc_thread_create(&t[started], c_work, &cw[started], NULL);
    if (rc != 0)
        started--;
    for (int i = 0; i < started; i++) {
        conc_thread_join(t[i], NULL);
        conc_thread_destroy(t[i]);
    }
    m->wall_s = (double)(conc_now_ns() - t0) / 1e9;
    m->cpu_s = cpu_s() - c0;
    m->primes = 0;
    for (int w = 0; w < nw; w++)
        m->primes += cw[w].primes;
    m->done = rc == 0;
    return rc;
}

/* -------------------------------------------------------------- Python side */

struct py_result {
    bool ran;        /* python3 ran every measurement */
    char why[160];   /* when not: why */
    char other[160]; /* the last line that was not a result (an error's) */
    char version[32];
    int gil;
    uint32_t lo, hi;
    struct measure m[3]; /* serial, threads, processes */
};

static void py_parse_line(char *line, struct py_result *py)
{
    static const char *const modes[] = {"serial", "threads", "processes"};
    char mode[16];
    int w;
    double wall, cpu;
    unsigned long long primes;
    unsigned lo, hi;
    if (sscanf(line, "range %u %u", &lo, &hi) == 2) {
        py->lo = lo;
        py->hi = hi;
    } else if (sscanf(line, "gil %d", &py->gil) == 1) {
    } else if (sscanf(line, "version %31s", py->version) == 1) {
    } else if (sscanf(line, "run %15s %d %lf %lf %llu", mode, &w, &wall, &cpu, &primes) == 5) {
        for (int i = 0; i < 3; i++)
            if (!strcmp(mode, modes[i])) {
                py->m[i] = (struct measure){wall, cpu, primes, true};
                tour_progress("Python: %s done in %.2f s", mode, wall);
            }
    } else {
        snprintf(py->other, sizeof py->other, "%.150s", line);
    }
}

/* Reads the child's output line by line until EOF or the deadline. */
static void py_read(int fd, struct py_result *py)
{
    char buf[4096];
    size_t len = 0;
    int64_t deadline = conc_now_ns() + PY_DEADLINE_NS;
    for (;;) {
        int64_t left = deadline - conc_now_ns();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)(left / CONC_NSEC_PER_MSEC) + 1) == 0) {
            snprintf(py->why, sizeof py->why, "python3 took longer than %d s",
                     (int)(PY_DEADLINE_NS / CONC_NSEC_PER_SEC));
            return;
        }
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        len += (size_t)n;
        buf[len] = '\0';
        char *nl;
        while ((nl = strchr(buf, '\n'))) {
            *nl = '\0';
            py_parse_line(buf, py);
            len -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, len + 1);
        }
        if (len == sizeof buf - 1)
            len = 0; /* an endless line: drop it */
    }
}

/* Runs the embedded script with python3 from PATH; fills py. */
static void py_run(int workers, struct py_result *py)
{
    memset(py, 0, sizeof *py);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(py->why, sizeof py->why, "pipe: %s", strerror(errno));
        return;
    }
    char lo[16], nw[8];
    snprintf(lo, sizeof lo, "%u", PY_LO);
    snprintf(nw, sizeof nw, "%d", workers);
    char *argv[] = {"python3", "-c", (char *)py_script, PY_TARGET_S, lo, nw, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDERR_FILENO);
    pid_t pid;
    int err = posix_spawnp(&pid, "python3", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (err != 0) {
        snprintf(py->why, sizeof py->why, "python3 is not on PATH (%s)", strerror(err));
        close(fds[0]);
        return;
    }
    tour_progress("Python: sizing the job to ~%s s", PY_TARGET_S);
    py_read(fds[0], py);
    close(fds[0]);
    int st = 0;
    if (py->why[0]) /* it ran past the deadline: our own child, stopped */
        kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    py->ran = !py->why[0] && WIFEXITED(st) && WEXITSTATUS(st) == 0 && py->m[0].done &&
              py->m[1].done && py->m[2].done;
    if (!py->ran && !py->why[0])
        snprintf(py->why, sizeof py->why, "python3 failed: %.140s",
                 py->other[0] ? py->other : "no result");
}

/* ------------------------------------------------------------------ report */

static void print_row(const char *lang, const char *how, int workers, const struct measure *m,
                      const struct measure *base)
{
    printf("  %-7s %-24s %7d %8.3f %8.3f %8.2fx\n", lang, how, workers, m->wall_s, m->cpu_s,
           base->wall_s / m->wall_s);
}

/* A speed-up that shows real parallelism on nw workers. */
static bool scaled(double up)
{
    return up >= 1.3;
}

static void conclude(int cpus, int nw, const struct measure *c, const struct py_result *py)
{
    double c_up = c[0].wall_s / c[1].wall_s;
    if (cpus < 2) {
        printf("  This process may use 1 CPU: no speed-up is possible here, for C threads,\n"
               "  Python threads or Python processes alike — they can only take turns.\n");
        return;
    }
    if (scaled(c_up))
        printf("  C threads: %.2fx on %d workers — they run at once, one per core.\n", c_up, nw);
    else
        printf("  C threads: only %.2fx on %d workers this time — other programs were\n"
               "  using the cores while we measured; run it again when the machine is quiet.\n",
               c_up, nw);
    if (!py->ran)
        return;
    double t_up = py->m[0].wall_s / py->m[1].wall_s;
    double p_up = py->m[0].wall_s / py->m[2].wall_s;
    if (!scaled(t_up))
        printf("  Python threads: %.2fx — the GIL lets one thread run bytecode at a time,\n"
               "  so CPU-bound threads take turns however many cores there are.\n",
               t_up);
    else
        printf("  Python threads: %.2fx — this Python (GIL %s) ran them in parallel.\n", t_up,
               py->gil ? "on" : "off: a free-threaded build");
    if (scaled(p_up))
        printf("  Python processes: %.2fx — each has its own interpreter and GIL, so they\n"
               "  scale, at the price of a fork and of sending results back through a pipe.\n",
               p_up);
    else
        printf("  Python processes: only %.2fx this time — each has its own interpreter and\n"
               "  GIL and should scale like C threads, but the cores were busy elsewhere.\n",
               p_up);
}

static int gil_run(void)
{
    tour_paragraph("CPython runs Python bytecode under a global interpreter lock: however many "
                   "threads a program starts, one executes Python code at a time, so threads "
                   "help with waiting (I/O) but not with computing. Python programmers get "
                   "parallelism from processes (multiprocessing), each with its own interpreter. "
                   "C has no such lock: threads run on all cores at once. Below, the same job "
                   "— counting primes in a range by trial division, the range dealt in blocks "
                   "round-robin to the workers — runs in C and in Python, on 1 and several "
                   "workers.");
    int cpus = conc_cpu_count();
    int nw = cpus < 2 ? 2 : cpus > MAX_WORKERS ? MAX_WORKERS : cpus;

    struct py_result py;
    py_run(nw, &py);

    tour_progress("C: sizing the job");
    const uint32_t c_lo = 1000000;
    uint32_t c_hi = c_lo + tour_prime_span(c_lo, C_TARGET_NS, 50000000u);
    struct measure c[2];
    for (int i = 0; i < 2; i++) {
        tour_progress("C: %d worker%s", i ? nw : 1, i ? "s" : "");
        int rc = c_run(c_lo, c_hi, i ? nw : 1, &c[i]);
        if (rc != 0)
            return rc;
    }
    uint64_t c_on_py_range = py.ran ? tour_count_primes(py.lo, py.hi) : 0;
    tour_progress_done();

    printf("  C counts the primes in [%u, %u)\n", c_lo, c_hi);
    if (py.ran)
        printf("  Python %s in [%u, %u): C gets through %.0fx more numbers.\n\n", py.version, py.lo,
               py.hi, (double)(c_hi - c_lo) / (double)(py.hi - py.lo));
    else
        printf("  Python: not measured — %s.\n\n", py.why);
    printf("  %-7s %-24s %7s %8s %8s %9s\n", "", "how", "workers", "wall s", "CPU s", "speed-up");
    print_row("C", "one thread", 1, &c[0], &c[0]);
    print_row("C", "threads", nw, &c[1], &c[0]);
    if (py.ran) {
        print_row("Python", "one thread", 1, &py.m[0], &py.m[0]);
        print_row("Python", "threading", nw, &py.m[1], &py.m[0]);
        print_row("Python", "multiprocessing (fork)", nw, &py.m[2], &py.m[0]);
    }
    bool same = c[0].primes == c[1].primes;
    for (int i = 0; py.ran && i < 3; i++)
        same = same && py.m[i].primes == c_on_py_range;
    printf("\n  every run found the primes C finds in its range: %s\n\n", same ? "yes" : "NO");
    conclude(cpus, nw, c, &py);
    return same ? 0 : CONC_EIO;
}

const struct tour_chapter tour_gil = {
    .name = "gil",
    .title = "The GIL: threads that compute, in C and in Python",
    .run = gil_run,
};
