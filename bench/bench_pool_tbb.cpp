// The TBB rows of the thread-pool cases (bench_pool.c has the cases, the
// other rows and what each case measures). TBB counts the caller as one of
// its threads: every row runs in a task_arena of 2 — the calling thread and
// one worker — under a global_control that lets TBB start no more than that.
// The measurements are C functions (bench.h) the case tables point at.
#include "bench.h"

#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <cstdio>
#include <cstdlib>

namespace {

// 2 threads in all, the caller included.
struct Tbb2 {
    tbb::global_control limit{tbb::global_control::max_allowed_parallelism, BENCH_POOL_THREADS};
    tbb::task_arena arena{BENCH_POOL_THREADS};

    // The arena really has 2 slots, and has run a task (its worker is up).
    bool start()
    {
        int slots = 0;
        bool done = false;
        arena.execute([&] {
            slots = tbb::this_task_arena::max_concurrency();
            tbb::task_group g;
            g.run([&] { done = true; });
            done = g.wait() == tbb::complete && done;
        });
        if (slots != BENCH_POOL_THREADS)
            std::fprintf(stderr, "tbb: the arena has %d threads, not %d\n", slots,
                         BENCH_POOL_THREADS);
        return slots == BENCH_POOL_THREADS && done;
    }
};

int64_t tbb_fib(int n, int cutoff)
{
    if (n <= cutoff)
        return bench_fib_seq(n);
    int64_t a = 0, b;
    tbb::task_group g;
    g.run([&] { a = tbb_fib(n - 1, cutoff); });
    b = tbb_fib(n - 2, cutoff);
    g.wait();
    return a + b;
}

int64_t tbb_fib_root(void *ctx, int n, int cutoff)
{
    int64_t result = -1;
    static_cast<Tbb2 *>(ctx)->arena.execute([&] { result = tbb_fib(n, cutoff); });
    return result;
}

int tbb_fib_case(const bench_params *p, bench_result *r, int cutoff)
{
    Tbb2 tbb;
    return tbb.start() ? bench_fib_timed(p, r, cutoff, tbb_fib_root, &tbb) : 1;
}

} // namespace

extern "C" int bench_tbb_submit_wait(const bench_params *p, bench_result *r)
{
    long n = bench_pool_tasks(p);
    Tbb2 tbb;
    if (!tbb.start())
        return 1;
    bool complete = false;
    bench_window w;
    bench_window_start(&w);
    tbb.arena.execute([&] {
        tbb::task_group g;
        for (long i = 0; i < n; i++)
            g.run([] {});
        complete = g.wait() == tbb::complete;
    });
    bench_window_stop(&w);
    if (!complete)
        return 1;
    r->value = (double)n * 1e9 / (double)w.wall_ns;
    r->cpu_pct = bench_window_cpu_pct(&w);
    return 0;
}

extern "C" int bench_tbb_fib(const bench_params *p, bench_result *r)
{
    return tbb_fib_case(p, r, BENCH_FIB_CUTOFF);
}

extern "C" int bench_tbb_fib_fine(const bench_params *p, bench_result *r)
{
    return tbb_fib_case(p, r, BENCH_FIB_FINE_CUTOFF);
}

namespace {

struct TbbMap {
    Tbb2 tbb;
    uint64_t *results; // touched by the warm-up run
};

// parallel_for fills the results array in chunks of at most 1024 (the simple
// partitioner splits down to the grain size and no further), then the
// caller sums it in index order.
int tbb_map_run(void *ctx, long n, uint64_t *sum)
{
    auto *m = static_cast<TbbMap *>(ctx);
    uint64_t *results = m->results, s = 0;
    m->tbb.arena.execute([&] {
        tbb::parallel_for(
            tbb::blocked_range<long>(0, n, BENCH_MAP_CHUNK),
            [&](const tbb::blocked_range<long> &range) {
                for (long i = range.begin(); i != range.end(); i++)
                    results[i] = bench_map_item((uint64_t)i);
            },
            tbb::simple_partitioner());
    });
    for (long i = 0; i < n; i++)
        s += results[i];
    *sum = s;
    return 0;
}

} // namespace

extern "C" int bench_tbb_map(const bench_params *p, bench_result *r)
{
    TbbMap m;
    m.results = static_cast<uint64_t *>(std::malloc((size_t)bench_pool_tasks(p) * sizeof(uint64_t)));
    int rc = m.results && m.tbb.start() ? bench_map_timed(p, r, tbb_map_run, &m) : 1;
    std::free(m.results);
    return rc;
}

// After a task_group run + wait (start()), the arena sits idle.
extern "C" int bench_tbb_idle_cpu(const bench_params *p, bench_result *r)
{
    Tbb2 tbb;
    if (!tbb.start())
        return 1;
    r->value = bench_idle_cpu_ms(p);
    return 0;
}
