/* The tour's driver: chapter list, command line, output helpers. */
#include "tour.h"

#include <conc/conc.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const struct tour_chapter *const tour_chapters[] = {
    &tour_parallelism,
    &tour_threads,
    &tour_gil,
    &tour_locks,
    &tour_semaphores,
    &tour_queues,
    &tour_pools,
    &tour_processes,
    &tour_bugs,
    NULL,
};

static bool progress_shown;

void tour_heading(const char *title)
{
    tour_progress_done();
    printf("\n== %s ==\n\n", title);
}

/* Prints text wrapped at 78 columns. */
void tour_paragraph(const char *text)
{
    tour_progress_done();
    const char *p = text;
    while (*p) {
        int len = (int)strlen(p);
        int cut = len;
        if (len > 78) {
            cut = 78;
            while (cut > 0 && p[cut] != ' ')
                cut--;
            if (cut == 0)
                cut = 78;
        }
        printf("%.*s\n", cut, p);
        p += cut;
        while (*p == ' ')
            p++;
    }
    printf("\n");
}

void tour_progress(const char *fmt, ...)
{
    if (!isatty(STDERR_FILENO))
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "\r\033[K  ... ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
    progress_shown = true;
}

void tour_progress_done(void)
{
    if (progress_shown) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
        progress_shown = false;
    }
    fflush(stdout);
}

double tour_ms(int64_t ns)
{
    return (double)ns / 1e6;
}

static bool tour_is_prime(uint32_t x)
{
    if (x < 2)
        return false;
    for (uint32_t d = 2; d * d <= x; d++)
        if (x % d == 0)
            return false;
    return true;
}

uint64_t tour_count_primes(uint32_t lo, uint32_t hi)
{
    uint64_t n = 0;
    for (uint32_t x = lo; x < hi; x++)
        n += tour_is_prime(x);
    return n;
}

uint32_t tour_prime_span(uint32_t lo, int64_t target_ns, uint32_t max)
{
    uint32_t span = 20000;
    for (;;) {
        int64_t t0 = conc_now_ns();
        tour_count_primes(lo, lo + span);
        int64_t took = conc_now_ns() - t0;
        if (took >= target_ns / 8 || span > (1u << 26)) {
            double scaled = (double)span * (double)target_ns / (double)(took > 0 ? took : 1);
            return scaled > (double)max ? max : (uint32_t)scaled;
        }
        span *= 2;
    }
}

static void tour_usage(FILE *out)
{
    fprintf(out, "usage: conc tour [--list] [--chapter NAME]...\n\n"
                 "Runs every chapter in order, or only those named. Each explains one\n"
                 "concept and measures it live on this machine.\n\n"
                 "  --list          list the chapters\n"
                 "  --chapter NAME  run only this chapter (may be repeated)\n");
}

static const struct tour_chapter *find_chapter(const char *name)
{
    for (int i = 0; tour_chapters[i]; i++)
        if (!strcmp(tour_chapters[i]->name, name))
            return tour_chapters[i];
    return NULL;
}

static int run_chapter(const struct tour_chapter *c)
{
    tour_heading(c->title);
    int rc = c->run();
    tour_progress_done();
    if (rc != 0)
        fprintf(stderr, "chapter %s failed: %s\n", c->name, conc_strerror(rc));
    return rc;
}

int tour_main(int argc, char **argv)
{
    const struct tour_chapter *chosen[32];
    int nchosen = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            tour_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--list")) {
            for (int j = 0; tour_chapters[j]; j++)
                printf("  %-14s %s\n", tour_chapters[j]->name, tour_chapters[j]->title);
            return 0;
        } else if (!strcmp(argv[i], "--chapter") && i + 1 < argc) {
            const struct tour_chapter *c = find_chapter(argv[++i]);
            if (!c) {
                fprintf(stderr, "conc tour: no chapter '%s' (conc tour --list)\n", argv[i]);
                return 2;
            }
            if (nchosen < 32)
                chosen[nchosen++] = c;
        } else {
            tour_usage(stderr);
            return 2;
        }
    }
    printf("conc %s tour — concurrency in C, measured live on this machine (%d CPUs usable)\n",
           conc_version_string(), (int)conc_cpu_count());
    int failures = 0;
    if (nchosen) {
        for (int i = 0; i < nchosen; i++)
            failures += run_chapter(chosen[i]) != 0;
    } else {
        for (int i = 0; tour_chapters[i]; i++)
            failures += run_chapter(tour_chapters[i]) != 0;
    }
    return failures ? 1 : 0;
}
