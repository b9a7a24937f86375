"""Python Dask's figures for the comparison in dask-bench's actors and
coordination section (issue 7: we aim to be at least 5x faster than Dask's
actors).

    pip install distributed
    python3 dask-bench/python/coordination_dask.py [--calls N]

Same shapes as `cargo xtask bench -- --only actors`: a LocalCluster with one
worker process and one thread, a client over TCP; an actor's method called
one call at a time (median and p99) and back to back (calls/s); a Lock
acquire + release and a Queue put + get round trip (median and p99).
"""

import statistics
import sys
import time

from distributed import Client, LocalCluster, Lock, Queue


class Counter:
    n = 0

    def add(self, x):
        self.n += x
        return self.n


def percentiles(times):
    times = sorted(times)
    at = lambda p: times[round((len(times) - 1) * p)] * 1e6
    return at(0.5), at(0.99)


def timed(n, f):
    for i in range(50):
        f(i)
    times = []
    for i in range(n):
        t = time.perf_counter()
        f(i)
        times.append(time.perf_counter() - t)
    return percentiles(times)


def main():
    calls = 2000
    if "--calls" in sys.argv:
        calls = int(sys.argv[sys.argv.index("--calls") + 1])
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        import dask, distributed
        print(f"dask {dask.__version__}, distributed {distributed.__version__}: LocalCluster 1 worker process x 1 thread")
        counter = client.submit(Counter, actor=True).result()
        expected = [0]

        def call(_):
            expected[0] += 1
            got = counter.add(1).result()
            assert got == expected[0], (got, expected[0])

        median, p99 = timed(calls, call)
        print(f"  actor call latency: median {median:.0f} us, p99 {p99:.0f} us over {calls} calls")
        rates = []
        for _ in range(3):
            t = time.perf_counter()
            futures = [counter.add(1) for _ in range(calls)]
            for f in futures:
                f.result()
            expected[0] += calls
            rates.append(calls / (time.perf_counter() - t))
        print(f"  actor throughput, {calls} calls in flight: {statistics.median(rates):.0f} calls/s")

        lock = Lock("bench-lock")

        def lock_round_trip(_):
            lock.acquire(timeout=10)
            lock.release()

        median, p99 = timed(calls, lock_round_trip)
        print(f"  lock acquire + release: median {median:.0f} us, p99 {p99:.0f} us")

        queue = Queue("bench-queue")

        def queue_round_trip(i):
            queue.put(i, timeout=10)
            assert queue.get(timeout=10) == i

        median, p99 = timed(calls, queue_round_trip)
        print(f"  queue put + get: median {median:.0f} us, p99 {p99:.0f} us")
    print("load average:", open("/proc/loadavg").read().strip())


if __name__ == "__main__":
    main()
