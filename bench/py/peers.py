#!/usr/bin/env python3
"""The python rows of conc-bench: Python's stdlib doing what each case measures.

    python3 peers.py CASE [--quick]

Prints one line, {"value": V[, "cpu_pct": C][, "fair": F]}, in the case's unit
(the same as the C rows: ns/op, ops/s, us/op). Loop overhead is included, as a
Python user pays it.
"""
import json
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

        def go():
            nonlocal stop
            for t in ts:
                t.start()
            time.sleep(SECONDS)
            stop = True
            for t in ts:
                t.join()
        _, wall, cpu = window(go)
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

        def go():
            nonlocal stop
            for t in ts:
                t.start()
            time.sleep(SECONDS)
            stop = True
            for t in ts:
                t.join()
        _, wall, cpu = window(go)
        return {"value": wall * 1e9 / (2 * sum(rounds)), "cpu_pct": cpu}
    return run


def spawn_join():
    n = 300 if QUICK else 1000
    _, wall, cpu = window(lambda: [t.start() or t.join() for t in
                                   (threading.Thread(target=int) for _ in range(n))])
    return {"value": wall * 1e6 / n, "cpu_pct": cpu}


def sem_make():
    return threading.Semaphore(0)


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
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in CASES:
        print("usage: peers.py CASE [--quick]; cases: " + " ".join(CASES), file=sys.stderr)
        sys.exit(2)
    print(json.dumps(CASES[sys.argv[1]]()))
