/* conc-bench: runs every case, conc and its peers taking turns, and prints
 * bench/README.md's JSON lines on stdout (a human table on stderr).
 *
 *   conc-bench [--cases GLOB] [--quick] [--reps N] [--list]
 *   conc-bench --measure CASE IMPL [--quick]     (one measurement; internal)
 *
 * Each measurement is a child process: this program re-executed with
 * --measure, or python3 running bench/py/peers.py CASE IMPL for the python
 * rows (python, python:mp). The child prints one line,
 * {"value":V[,"cpu_pct":C][,"fair":F]}. Rounds go conc, peer A, peer B, ...,
 * then again, `reps` times; a case's row reports the median with min and max.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CONC_BENCH_PY
#define CONC_BENCH_PY "bench/py/peers.py"
#endif

extern const struct bench_case bench_mutex_uncontended, bench_mutex_uncontended_st,
    bench_mutex_uncontended_lockdep, bench_mutex_contended, bench_mutex_contended4,
    bench_rmutex_uncontended, bench_sem_pingpong, bench_sem_pingpong4, bench_event_pingpong,
    bench_thread_spawn_join, bench_queue_spsc, bench_queue_spsc_placement, bench_queue_mpmc, bench_queue_pingpong,
    bench_pool_submit_wait, bench_pool_fib, bench_pool_fib_fine, bench_pool_map,
    bench_pool_idle_cpu;
extern const struct bench_case bench_trace_event;
extern const struct bench_case bench_process_spawn_join, bench_process_spawn_program,
    bench_pqueue_spsc;
extern const struct bench_case bench_procpool_roundtrip, bench_procpool_map;

const struct bench_case *const bench_cases[] = {
    &bench_mutex_uncontended, &bench_mutex_uncontended_st, &bench_mutex_uncontended_lockdep,
    &bench_mutex_contended, &bench_mutex_contended4, &bench_rmutex_uncontended, &bench_sem_pingpong,
    &bench_sem_pingpong4, &bench_event_pingpong, &bench_thread_spawn_join, &bench_queue_spsc,
    &bench_queue_spsc_placement, &bench_queue_mpmc, &bench_queue_pingpong, &bench_pool_submit_wait, &bench_pool_fib,
    &bench_pool_fib_fine, &bench_pool_map, &bench_pool_idle_cpu, &bench_process_spawn_join,
    &bench_process_spawn_program, &bench_pqueue_spsc, &bench_procpool_roundtrip,
    &bench_procpool_map, &bench_trace_event, NULL};

#define MAX_REPS 15
#define MAX_IMPLS 12
#define CHILD_TIMEOUT_S 120

struct row {
    const char *impl;
    int n;
    double value[MAX_REPS], cpu_pct[MAX_REPS], fair[MAX_REPS];
    int failures;
};

static const struct bench_case *find_case(const char *name)
{
    for (int i = 0; bench_cases[i]; i++)
        if (!strcmp(bench_cases[i]->name, name))
            return bench_cases[i];
    return NULL;
}

/* ---- one measurement, in this process ---- */

static int measure(const char *case_name, const char *impl, bool quick)
{
    const struct bench_case *c = find_case(case_name);
    if (!c)
        return 2;
    for (const struct bench_impl *i = c->impls; i->impl; i++) {
        if (strcmp(i->impl, impl) != 0 || !i->measure)
            continue;
        struct bench_params p = {.quick = quick, .seconds = quick ? 0.2 : 0.5};
        struct bench_result r = {.cpu_pct = -1, .fair = -1};
        if (i->measure(&p, &r) != 0)
            return 1;
        printf("{\"value\":%.6g", r.value);
        if (r.cpu_pct >= 0)
            printf(",\"cpu_pct\":%.1f", r.cpu_pct);
        if (r.fair >= 0)
            printf(",\"fair\":%.3f", r.fair);
        printf("}\n");
        return 0;
    }
    return 2;
}

/* ---- the runner ---- */

static double json_number(const char *line, const char *key, double missing)
{
    char pattern[32];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *at = strstr(line, pattern);
    return at ? strtod(at + strlen(pattern), NULL) : missing;
}

/* Runs one child measurement; fills value/cpu/fair; returns 0 on success. */
static int run_child(char *const argv[], double *value, double *cpu_pct, double *fair)
{
    int out[2];
    if (pipe(out) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        close(out[1]);
        alarm(CHILD_TIMEOUT_S);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(out[1]);
    char line[512] = "";
    FILE *f = fdopen(out[0], "r");
    if (!f || !fgets(line, sizeof line, f))
        line[0] = 0;
    if (f)
        fclose(f);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !strstr(line, "\"value\":"))
        return -1;
    *value = json_number(line, "value", 0);
    *cpu_pct = json_number(line, "cpu_pct", -1);
    *fair = json_number(line, "fair", -1);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double s[MAX_REPS];
    memcpy(s, v, (size_t)n * sizeof *v);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double minimum(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

static double maximum(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

static bool higher_is_better(const char *unit)
{
    return !strcmp(unit, "ops/s") || !strcmp(unit, "items/s") || !strcmp(unit, "tasks/s") ||
           !strcmp(unit, "rt/s") || !strcmp(unit, "req/s") || !strcmp(unit, "% of ref");
}

static void print_row(const struct bench_case *c, const struct row *r, double conc_median)
{
    if (r->n == 0) {
        fprintf(stderr, "  %-14s failed\n", r->impl);
        return;
    }
    double med = median(r->value, r->n), lo = minimum(r->value, r->n),
           hi = maximum(r->value, r->n);
    printf("{\"case\":\"%s\",\"impl\":\"%s\",\"value\":%.6g,\"unit\":\"%s\",\"reps\":%d,"
           "\"min\":%.6g,\"max\":%.6g,\"threads\":%d",
           c->name, r->impl, med, c->unit, r->n, lo, hi, c->threads);
    if (r->cpu_pct[0] >= 0)
        printf(",\"cpu_pct\":%.1f", median(r->cpu_pct, r->n));
    if (r->fair[0] >= 0)
        printf(",\"fair\":%.3f", median(r->fair, r->n));
    printf("}\n");
    double ratio = conc_median > 0 ? (higher_is_better(c->unit) ? med / conc_median
                                                                : conc_median / med)
                                   : 0;
    fprintf(stderr, "  %-14s %14.4g %-6s  [%.4g .. %.4g]", r->impl, med, c->unit, lo, hi);
    if (r->cpu_pct[0] >= 0)
        fprintf(stderr, "  cpu %5.0f%%", median(r->cpu_pct, r->n));
    if (r->fair[0] >= 0)
        fprintf(stderr, "  fair %.2f", median(r->fair, r->n));
    if (strcmp(r->impl, "conc") != 0 && ratio > 0)
        fprintf(stderr, "  conc is %.2fx %s", ratio >= 1 ? ratio : 1 / ratio,
                ratio >= 1 ? "worse" : "better");
    fprintf(stderr, "\n");
}

/* python and its variants (python:mp) run bench/py/peers.py. */
static bool is_python(const char *impl)
{
    return !strncmp(impl, "python", 6) && (impl[6] == 0 || impl[6] == ':');
}

static void run_case(const struct bench_case *c, const char *self, bool quick, int reps,
                     bool have_python)
{
    bool progress = isatty(STDERR_FILENO);
    struct row rows[MAX_IMPLS] = {0};
    int nimpl = 0;
    for (const struct bench_impl *i = c->impls; i->impl && nimpl < MAX_IMPLS; i++) {
        if (!i->measure && !have_python)
            continue;
        rows[nimpl++].impl = i->impl;
    }
    fprintf(stderr, "%s (%s; %s)\n", c->name, c->unit, c->what);
    for (int rep = 0; rep < reps; rep++) {
        for (int k = 0; k < nimpl; k++) {
            struct row *r = &rows[k];
            bool py = is_python(r->impl);
            char *argv[8];
            int a = 0;
            argv[a++] = py ? "python3" : (char *)self;
            argv[a++] = py ? CONC_BENCH_PY : "--measure";
            argv[a++] = (char *)c->name;
            argv[a++] = (char *)r->impl;
            if (quick)
                argv[a++] = "--quick";
            argv[a] = NULL;
            if (progress)
                fprintf(stderr, "\r\033[K  round %d/%d: %s", rep + 1, reps, r->impl);
            double v, cpu, fair;
            if (run_child(argv, &v, &cpu, &fair) == 0) {
                r->value[r->n] = v;
                r->cpu_pct[r->n] = cpu;
                r->fair[r->n] = fair;
                r->n++;
            } else {
                r->failures++;
            }
        }
    }
    if (progress)
        fprintf(stderr, "\r\033[K");
    /* Ratios are against the conc row; a case built without one has none. */
    double conc_median = 0;
    for (int k = 0; k < nimpl; k++)
        if (!strcmp(rows[k].impl, "conc") && rows[k].n)
            conc_median = median(rows[k].value, rows[k].n);
    for (int k = 0; k < nimpl; k++)
        print_row(c, &rows[k], conc_median);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: conc-bench [--cases GLOB] [--quick] [--reps N] [--list]\n");
}

int main(int argc, char **argv)
{
    const char *glob = "*";
    bool quick = false;
    int reps = 5;
    if (argc >= 4 && !strcmp(argv[1], "--measure"))
        return measure(argv[2], argv[3], argc > 4 && !strcmp(argv[4], "--quick"));
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cases") && i + 1 < argc)
            glob = argv[++i];
        else if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--list")) {
            for (int k = 0; bench_cases[k]; k++)
                printf("%-22s %s\n", bench_cases[k]->name, bench_cases[k]->what);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (reps < 1 || reps > MAX_REPS)
        reps = reps < 1 ? 1 : MAX_REPS;
    setvbuf(stdout, NULL, _IOLBF, 0);
    bool have_python = system("python3 -c 'pass' >/dev/null 2>&1") == 0;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 1;
    self[n] = 0;
    for (int k = 0; bench_cases[k]; k++)
        if (fnmatch(glob, bench_cases[k]->name, 0) == 0)
            run_case(bench_cases[k], self, quick, reps, have_python);
    return 0;
}
