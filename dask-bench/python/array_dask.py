"""Python dask.array's figures for the comparison in dask-bench's array
section (issue 4: we aim to be more than 3x faster than dask.array).

    python3 dask-bench/python/array_dask.py [--array-n N] [--dot-n N] [--reps R]

Same cases and sizes as `cargo xtask bench -- --only array [--array-n N]`:
`(x + x.T).sum()` on N x N (default 20000) in N/10 chunks, first with x
generated in the graph (`da.random.default_rng(42).random`), then with x
persisted; `x.mean(axis=0)` on the persisted x; `x.dot(x.T).sum()` on
DOT_N x DOT_N (default 4000) in DOT_N/4 chunks, persisted. Each on dask's
synchronous and threaded schedulers (threads = cores), next to NumPy on the
whole array. BLAS is limited to one thread (set before NumPy loads), as
ndarray's dot is single-threaded in the Rust run. Every figure is the median
of R runs (default 3); every dask result is checked against NumPy's
(relative tolerance 1e-9). Peak RSS above the run's start is sampled from
/proc/self/status every 5 ms, as the Rust bench does.
"""

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import statistics  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402

RTOL = 1e-9


def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Sampler:
    def __enter__(self):
        self.start = rss()
        self.peak = self.start
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, rss())
            time.sleep(0.005)

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join()
        self.peak = max(self.peak, rss())

    @property
    def above(self):
        return self.peak - self.start


def measure(reps, f):
    times, peak, out = [], 0, None
    for _ in range(reps):
        with Sampler() as s:
            t = time.perf_counter()
            out = f()
            times.append(time.perf_counter() - t)
        peak = max(peak, s.above)
    return statistics.median(times), peak, out


def size(b):
    return f"{b / 2**30:.2f} GiB" if b >= 2**30 else f"{b / 2**20:.1f} MiB"


def check(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    scale = max(1.0, float(np.max(np.abs(want))))
    if got.shape != want.shape or not np.all(np.abs(got - want) <= RTOL * scale):
        raise SystemExit(f"{what}: result differs from NumPy's")


def table(title, rows, ref):
    base = dict((r[0], r[1]) for r in rows)[ref]
    print(title)
    print(f"  {'runner':<52} {'median s':>10} {'speedup vs':>12} {'peak RSS above':>16}")
    print(f"  {'':<52} {'':>10} {'numpy 1t':>12} {'the run start':>16}")
    for name, t, peak in rows:
        print(f"  {name:<52} {t:>10.3f} {base / t:>11.2f}x {size(peak):>16}")
    print()


def arg(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def main():
    n = arg("--array-n", 20000)
    dot_n = arg("--dot-n", 4000)
    reps = arg("--reps", 3)
    chunk, dot_chunk = max(1, -(-n // 10)), max(1, -(-dot_n // 4))
    cores = os.cpu_count()
    schedulers = [("sync", dict(scheduler="synchronous")),
                  (f"threaded, {cores} threads", dict(scheduler="threads", num_workers=cores))]
    print(f"dask {dask.__version__}, numpy {np.__version__}: {cores} cores, median of {reps} runs, results checked against NumPy")
    row_bytes = chunk * n * 8
    print(f"x: {n} x {n} f64 in {chunk} x {chunk} chunks (one chunk row {size(row_bytes)}); dot on {dot_n} x {dot_n} in {dot_chunk} x {dot_chunk} chunks\n")

    x = da.random.default_rng(42).random((n, n), chunks=chunk)
    tsum, mean, dot = [], [], []
    outs = []
    for name, kw in schedulers:
        t, p, out = measure(reps, lambda: (x + x.T).sum().compute(**kw))
        tsum.append((f"dask {name}, x generated in the graph", t, p))
        outs.append(out)
    generated_peak = tsum[-1][2]

    xp = x.persist(scheduler="threads")
    for name, kw in schedulers:
        t, p, out = measure(reps, lambda: (xp + xp.T).sum().compute(**kw))
        tsum.append((f"dask {name}, x in memory", t, p))
        outs.append(out)
    mean_outs = []
    for name, kw in schedulers:
        t, p, out = measure(reps, lambda: xp.mean(axis=0).compute(**kw))
        mean.append((f"dask {name}, x in memory", t, p))
        mean_outs.append(out)
    xd = da.random.default_rng(42).random((dot_n, dot_n), chunks=dot_chunk).persist(scheduler="threads")
    dot_outs = []
    for name, kw in schedulers:
        t, p, out = measure(reps, lambda: xd.dot(xd.T).sum().compute(**kw))
        dot.append((f"dask {name}, x in memory", t, p))
        dot_outs.append(out)

    xn = xp.compute(scheduler="threads")
    del xp
    xdn = xd.compute(scheduler="threads")
    del xd
    t, p, want = measure(reps, lambda: (xn + xn.T).sum())
    tsum.append(("numpy, 1 thread: (x + x.T).sum()", t, p))
    for out in outs:
        check(out, want, "(x + x.T).sum()")
    t, p, want = measure(reps, lambda: xn.mean(axis=0))
    mean.append(("numpy, 1 thread: x.mean(axis=0)", t, p))
    for out in mean_outs:
        check(out, want, "x.mean(axis=0)")
    del xn
    t, p, want = measure(reps, lambda: xdn.dot(xdn.T).sum())
    dot.append(("numpy, 1 thread: x.dot(x.T).sum()", t, p))
    for out in dot_outs:
        check(out, want, "x.dot(x.T).sum()")

    table(f"(x + x.T).sum(), x {n} x {n} in {chunk} x {chunk} chunks", tsum, "numpy, 1 thread: (x + x.T).sum()")
    table(f"x.mean(axis=0), x {n} x {n} in {chunk} x {chunk} chunks", mean, "numpy, 1 thread: x.mean(axis=0)")
    table(f"x.dot(x.T).sum(), x {dot_n} x {dot_n} in {dot_chunk} x {dot_chunk} chunks", dot, "numpy, 1 thread: x.dot(x.T).sum()")
    print(f"peak memory of the generated (x + x.T).sum(), threaded: {size(generated_peak)} = {generated_peak / row_bytes:.2f} chunk rows")


if __name__ == "__main__":
    main()
