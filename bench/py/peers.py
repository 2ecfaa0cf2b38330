#!/usr/bin/env python3
"""The python rows of conc-bench: Python's stdlib doing what each case measures.

    python3 peers.py CASE [IMPL] [--quick]

IMPL is python (the default) or a variant of it: python:mp (multiprocessing,
between processes). Prints one line, {"value": V[, "cpu_pct": C][, "fair": F]},
in the case's unit (the same as the C rows: ns/op, ops/s, items/s, us/op).
Loop overhead is included, as a Python user pays it.
"""
import concurrent.futures
import json
import multiprocessing
import queue
import resource
import subprocess
import sys
import threading
import time

QUICK = "--quick" in sys.argv
SECONDS = 0.2 if QUICK else 0.5


def window(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    t1, c1 = time.perf_counter(), time.process_time()
    return out, t1 - t0, 100.0 * (c1 - c0) / (t1 - t0)


def run_for_a_while(threads, stop):
    """Starts the threads, lets them run SECONDS, calls stop() (which sets the
    flag their loops read), joins them; returns window()'s figures."""
    def go():
        for t in threads:
            t.start()
        time.sleep(SECONDS)
        stop()
        for t in threads:
            t.join()
    return window(go)


def idle_thread():
    ev = threading.Event()
    threading.Thread(target=ev.wait, daemon=True).start()


def pairs(lock_type):
    def run():
        idle_thread()
        lock = lock_type()
        n = 300_000 if QUICK else 1_000_000
        acquire, release = lock.acquire, lock.release
        for _ in range(n // 10):
            acquire()
            release()
        t0 = time.perf_counter()
        for _ in range(n):
            acquire()
            release()
        return {"value": (time.perf_counter() - t0) * 1e9 / n}
    return run


def contended(threads):
    def run():
        lock = threading.Lock()
        stop = False
        counts = [0] * threads
        shared = [0]

        def worker(i):
            mine = 0
            while not stop:
                with lock:
                    shared[0] += 1
                mine += 1
            counts[i] = mine

        ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]

        def stop_now():
            nonlocal stop
            stop = True
        _, wall, cpu = run_for_a_while(ts, stop_now)
        assert shared[0] == sum(counts)
        return {"value": sum(counts) / wall, "cpu_pct": cpu,
                "fair": min(counts) / max(counts) if max(counts) else 1.0}
    return run


def pingpong(npairs, make, post, wait, clear=None):
    def run():
        stop = False
        rounds = [0] * npairs

        def pinger(i, ping, pong, done):
            n = 0
            while not stop:
                post(ping)
                wait(pong)
                if clear:
                    clear(pong)
                n += 1
            rounds[i] = n
            done[0] = True
            post(ping)

        def ponger(ping, pong, done):
            while True:
                wait(ping)
                if clear:
                    clear(ping)
                if done[0]:
                    break
                post(pong)

        ts = []
        for i in range(npairs):
            ping, pong, done = make(), make(), [False]
            ts.append(threading.Thread(target=pinger, args=(i, ping, pong, done)))
            ts.append(threading.Thread(target=ponger, args=(ping, pong, done)))

        def stop_now():
            nonlocal stop
            stop = True
        _, wall, cpu = run_for_a_while(ts, stop_now)
        return {"value": wall * 1e9 / (2 * sum(rounds)), "cpu_pct": cpu}
    return run


def spawn_join():
    n = 300 if QUICK else 1000
    _, wall, cpu = window(lambda: [t.start() or t.join() for t in
                                   (threading.Thread(target=int) for _ in range(n))])
    return {"value": wall * 1e6 / n, "cpu_pct": cpu}


def sem_make():
    return threading.Semaphore(0)


# ---- queues: the same programs as bench/bench_queue.c ----
#
# Producer p's k-th item is k * producers + p + 1; None ends a consumer. A run
# fails (an exception, so no result line) unless each consumer sees each
# producer's items in increasing order and the count and sum taken equal those
# put. A consumer that sees an item out of order notes it and keeps draining,
# so that the producers are not left blocked on a full queue.

def produce(q, index, producers, stopped, out):
    k = 0
    total = 0
    put = q.put
    while not stopped():
        v = k * producers + index + 1
        put(v)
        total += v
        k += 1
    out.append((k, total))


def consume(q, producers, out):
    last = [0] * producers
    n = total = 0
    disorder = None
    get = q.get
    while True:
        v = get()
        if v is None:
            break
        p = (v - 1) % producers
        if v <= last[p] and disorder is None:
            disorder = f"item {v} after {last[p]} from producer {p}"
        last[p] = v
        n += 1
        total += v
    out.append((n, total, disorder))


def check(put, got):
    """put: (count, sum) per producer; got: (count, sum, disorder) per consumer.
    Returns the number of items taken."""
    for _, _, disorder in got:
        if disorder:
            raise AssertionError(disorder)
    n = sum(g[0] for g in got)
    if sum(p[0] for p in put) != n or sum(p[1] for p in put) != sum(g[1] for g in got) or not n:
        raise AssertionError(f"put {put}, took {got}")
    return n


def queue_threads(producers, consumers):
    def run():
        q = queue.Queue(1024)
        stop = False
        put, got = [], []
        ps = [threading.Thread(target=produce, args=(q, i, producers, lambda: stop, put))
              for i in range(producers)]
        cs = [threading.Thread(target=consume, args=(q, producers, got)) for _ in range(consumers)]

        def go():
            nonlocal stop
            for t in cs + ps:
                t.start()
            time.sleep(SECONDS)
            stop = True
            for t in ps:
                t.join()
            for _ in cs:
                q.put(None)
            for t in cs:
                t.join()
        _, wall, cpu = window(go)
        return {"value": check(put, got) / wall, "cpu_pct": cpu}
    return run


def cpu_s():
    """CPU seconds of this process and its waited-for children."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def mp_producer(q, stop, result):
    out = []
    produce(q, 0, 1, lambda: stop.value, out)
    q.put(None)
    result.put(("put", out[0]))


def mp_consumer(q, result):
    out = []
    consume(q, 1, out)
    result.put(("got", out[0]))


def mp_spsc():
    """multiprocessing.Queue(1024) between a producer and a consumer process.
    The window includes starting them (a few ms); CPU counts both."""
    q, results = multiprocessing.Queue(1024), multiprocessing.Queue()
    stop = multiprocessing.Value("b", 0, lock=False)
    prod = multiprocessing.Process(target=mp_producer, args=(q, stop, results), daemon=True)
    cons = multiprocessing.Process(target=mp_consumer, args=(q, results), daemon=True)
    c0, t0 = cpu_s(), time.perf_counter()
    cons.start()
    prod.start()
    time.sleep(SECONDS)
    stop.value = 1
    counts = dict(results.get(timeout=60) for _ in range(2))  # raises if a process died
    prod.join()
    cons.join()
    wall = time.perf_counter() - t0
    cpu = 100.0 * (cpu_s() - c0) / wall
    if prod.exitcode or cons.exitcode:
        raise AssertionError("a queue process failed")
    return {"value": check([counts["put"]], [counts["got"]]) / wall, "cpu_pct": cpu}


def queue_pingpong():
    q1, q2 = queue.Queue(1024), queue.Queue(1024)
    stop = False
    rounds, echoes, wrong = [0], [0], [False]

    def ping():
        n = 1
        while not stop:
            q1.put(n)
            if q2.get() != n:
                wrong[0] = True
                break
            n += 1
        rounds[0] = n - 1
        q1.put(None)  # always: it ends pong

    def pong():
        n = 0
        while True:
            v = q1.get()
            if v is None:
                break
            q2.put(v)
            n += 1
        echoes[0] = n

    ts = [threading.Thread(target=ping), threading.Thread(target=pong)]

    def stop_now():
        nonlocal stop
        stop = True
    _, wall, cpu = run_for_a_while(ts, stop_now)
    if wrong[0] or rounds[0] != echoes[0] or not rounds[0]:
        raise AssertionError(f"{rounds[0]} round trips, {echoes[0]} echoes, wrong answer: {wrong[0]}")
    return {"value": wall * 1e9 / rounds[0], "cpu_pct": cpu}


# ---- thread pools: the same programs as bench/bench_pool.c, 2 workers ----

POOL_N = 30_000 if QUICK else 100_000  # tasks / items: a tenth of the C rows'
M64 = (1 << 64) - 1


def started_executor():
    """ThreadPoolExecutor(max_workers=2) whose two threads are up (it starts a
    thread per submit while none is idle, up to max_workers)."""
    ex = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    for f in [ex.submit(int) for _ in range(2)]:
        f.result()
    return ex


def noop():
    pass


def pool_submit_wait():
    """POOL_N empty tasks submitted, then each future waited for in order."""
    with started_executor() as ex:
        def go():
            fs = [ex.submit(noop) for _ in range(POOL_N)]
            for f in fs:
                f.result()
        _, wall, cpu = window(go)
    return {"value": POOL_N / wall, "cpu_pct": cpu}


def map_item(i):
    """bench_map_item: four 64-bit LCG steps, 31 bits kept."""
    for _ in range(4):
        i = (i * 6364136223846793005 + 1442695040888963407) & M64
    return i >> 33


def pool_map():
    """executor.map over POOL_N items, results summed in order as they come.
    ThreadPoolExecutor.map ignores chunksize (only ProcessPoolExecutor uses
    it): every item is its own task and future."""
    expected = sum(map(map_item, range(POOL_N)))
    with started_executor() as ex:
        total, wall, cpu = window(lambda: sum(ex.map(map_item, range(POOL_N), chunksize=1024)))
    if total != expected:
        raise AssertionError(f"map summed to {total}, not {expected}")
    return {"value": POOL_N / wall, "cpu_pct": cpu}


def mp_noop():
    pass


def process_spawn_join():
    """A forkserver Process that returns at once, started and joined."""
    ctx = multiprocessing.get_context("forkserver")
    warm = ctx.Process(target=mp_noop)  # starts the server: not a round
    warm.start()
    warm.join()
    n = 20 if QUICK else 100

    def rounds():
        for _ in range(n):
            p = ctx.Process(target=mp_noop)
            p.start()
            p.join()
            if p.exitcode != 0:
                raise AssertionError("the child failed")
    _, wall, cpu = window(rounds)
    return {"value": wall * 1e6 / n, "cpu_pct": cpu}


def process_spawn_program():
    n = 50 if QUICK else 200

    def rounds():
        for _ in range(n):
            subprocess.run(["/bin/true"], check=True)
    _, wall, cpu = window(rounds)
    return {"value": wall * 1e6 / n, "cpu_pct": cpu}


# ---- process pools: the same programs as bench/bench_procpool.c, 2 workers ----
#
# Workers come from multiprocessing's default start method (fork on Linux
# before Python 3.14) and are up, having run tasks, before the window opens.

PP_ROUNDTRIPS = 300 if QUICK else 1000
PP_ITEMS = 100_000
PP_CHUNK = 100


def plus_one(x):
    return x + 1


def double(x):
    return x * 2


def roundtrips(call):
    """call(v) runs plus_one(v) in a worker and returns its result: a few
    untimed round trips, then PP_ROUNDTRIPS timed ones, each checked."""
    for v in range(20):
        if call(v) != v + 1:
            raise AssertionError("a warm-up round trip failed")

    def go():
        for v in range(PP_ROUNDTRIPS):
            got = call(v)
            if got != v + 1:
                raise AssertionError(f"round trip {v} answered {got}")
    _, wall, _ = window(go)
    return {"value": wall * 1e6 / PP_ROUNDTRIPS}


def timed_maps(map_fn):
    """map_fn(f, items, chunksize) maps in a pool: a warm-up map, then maps
    for SECONDS (1 at least), each result list checked after its map."""
    items = range(PP_ITEMS)
    expected = [x * 2 for x in items]
    if list(map_fn(double, items, PP_CHUNK)) != expected:
        raise AssertionError("the warm-up map gave a wrong result")
    runs, t0 = 0, time.perf_counter()
    while runs < 1 or time.perf_counter() - t0 < SECONDS:
        out = list(map_fn(double, items, PP_CHUNK))
        runs += 1
        if out != expected:
            raise AssertionError("a map gave a wrong result")
    return {"value": PP_ITEMS * runs / (time.perf_counter() - t0)}


def started_process_pool():
    """ProcessPoolExecutor(2) whose two workers have run a task each."""
    ex = concurrent.futures.ProcessPoolExecutor(max_workers=2)
    for f in [ex.submit(plus_one, i) for i in range(2)]:
        f.result()
    return ex


def ppe_roundtrip():
    with started_process_pool() as ex:
        return roundtrips(lambda v: ex.submit(plus_one, v).result())


def mp_roundtrip():
    with multiprocessing.Pool(2) as pool:
        return roundtrips(lambda v: pool.apply(plus_one, (v,)))


def ppe_map():
    with started_process_pool() as ex:
        return timed_maps(lambda f, items, chunk: ex.map(f, items, chunksize=chunk))


def mp_map():
    with multiprocessing.Pool(2) as pool:
        return timed_maps(lambda f, items, chunk: pool.map(f, items, chunksize=chunk))


CASES = {
    "mutex.uncontended": pairs(threading.Lock),
    "mutex.contended": contended(2),
    "mutex.contended.4t": contended(4),
    "rmutex.uncontended": pairs(threading.RLock),
    "sem.pingpong": pingpong(1, sem_make, lambda s: s.release(), lambda s: s.acquire()),
    "sem.pingpong.4pairs": pingpong(4, sem_make, lambda s: s.release(), lambda s: s.acquire()),
    "event.pingpong": pingpong(1, threading.Event, lambda e: e.set(), lambda e: e.wait(),
                               lambda e: e.clear()),
    "thread.spawn_join": spawn_join,
    "queue.spsc": queue_threads(1, 1),
    "queue.mpmc": queue_threads(2, 2),
    "queue.pingpong": queue_pingpong,
    "pool.submit_wait": pool_submit_wait,
    "pool.map": pool_map,
    "process.spawn_join": process_spawn_join,
    "process.spawn_program": process_spawn_program,
    "pqueue.spsc": mp_spsc,
    "procpool.roundtrip": ppe_roundtrip,
    "procpool.map": ppe_map,
}

# The variants of the python row: IMPL -> {case: function}.
VARIANTS = {
    "python:mp": {"queue.spsc": mp_spsc, "procpool.roundtrip": mp_roundtrip,
                  "procpool.map": mp_map},
}

if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    impl = args[1] if len(args) > 1 else "python"
    table = CASES if impl == "python" else VARIANTS.get(impl, {})
    if not args or args[0] not in table:
        print("usage: peers.py CASE [IMPL] [--quick]; cases: " + " ".join(CASES) +
              "; variants: " + ", ".join(f"{v} ({' '.join(c)})" for v, c in VARIANTS.items()),
              file=sys.stderr)
        sys.exit(2)
    print(json.dumps(table[args[0]]()))
