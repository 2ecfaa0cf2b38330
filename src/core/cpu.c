/* conc_cpu_count: the CPUs this process may really use.
 *
 * The affinity mask (taskset, cpusets) bounds the CPUs the scheduler will give
 * us; a cgroup CPU quota bounds how much of them we get (a container limited
 * to 2 CPUs on a 64-core host). Both count; _SC_NPROCESSORS_ONLN counts
 * neither. The quota is read from cgroup v2's cpu.max along the process's
 * cgroup path up to the root (every level applies), or from cgroup v1's
 * cpu.cfs_quota_us / cpu.cfs_period_us.
 */
#define _GNU_SOURCE
#include "conc/thread.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int conc__affinity_count(void)
{
    for (int ncpus = 1024; ncpus <= 1 << 20; ncpus *= 2) {
        cpu_set_t *set = CPU_ALLOC(ncpus);
        if (!set)
            break;
        size_t size = CPU_ALLOC_SIZE(ncpus);
        CPU_ZERO_S(size, set);
        if (sched_getaffinity(0, size, set) == 0) {
            int n = CPU_COUNT_S(size, set);
            CPU_FREE(set);
            return n;
        }
        CPU_FREE(set);
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* CPUs granted by a quota over a period, rounded up; INT_MAX if unlimited. */
static int conc__quota_cpus(long long quota, long long period)
{
    if (quota <= 0 || period <= 0)
        return INT_MAX;
    long long n = (quota + period - 1) / period;
    return n > INT_MAX ? INT_MAX : (int)n;
}

static int conc__cgroup2_limit(const char *dir)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max", dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return INT_MAX;
    char quota[32] = "";
    long long period = 0;
    int fields = fscanf(f, "%31s %lld", quota, &period);
    fclose(f);
    if (fields != 2 || strcmp(quota, "max") == 0)
        return INT_MAX;
    return conc__quota_cpus(atoll(quota), period);
}

/* The process's cgroup v2 path ("0::/path" in /proc/self/cgroup), or "". */
static void conc__cgroup2_path(char *out, size_t size)
{
    out[0] = 0;
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return;
    char line[PATH_MAX];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "0::", 3) == 0) {
            line[strcspn(line, "\n")] = 0;
            snprintf(out, size, "%s", strcmp(line + 3, "/") == 0 ? "" : line + 3);
            break;
        }
    }
    fclose(f);
}

static int conc__cgroup_limit(void)
{
    char dir[PATH_MAX];
    conc__cgroup2_path(dir, sizeof dir);
    int limit = INT_MAX;
    for (;;) { /* from the process's own cgroup up to the root ("") */
        int l = conc__cgroup2_limit(dir);
        if (l < limit)
            limit = l;
        char *slash = strrchr(dir, '/');
        if (!slash)
            break;
        *slash = 0;
    }
    FILE *q = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "re");
    FILE *p = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "re");
    long long quota = 0, period = 0;
    if (q && p && fscanf(q, "%lld", &quota) == 1 && fscanf(p, "%lld", &period) == 1) {
        int l = conc__quota_cpus(quota, period);
        if (l < limit)
            limit = l;
    }
    if (q)
        fclose(q);
    if (p)
        fclose(p);
    return limit;
}

int64_t conc_cpu_count(void)
{
    int n = conc__affinity_count();
    int limit = conc__cgroup_limit();
    if (limit < n)
        n = limit;
    return n > 0 ? n : 1;
}
