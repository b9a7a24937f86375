"""Python dask.bag on the word-count benchmark's corpus, for the comparison in
dask-bag's word-count figures (issue 6: we aim to be more than 10x faster).

    cargo xtask gen-data text --mb 200          # or run the Rust bench once
    pip install dask
    python3 dask-bag/benches/wordcount_dask.py data/text-200mb [--reps 3]

The same pipeline as the Rust bench: read_text, split on whitespace, flatten,
frequencies, topk(10) by count. Prints the best time per dask scheduler
("threads", "processes", "sync") next to a plain-Python Counter loop.
"""

import collections
import glob
import os
import sys
import time

import dask
import dask.bag as db


def bag_top10(pattern, scheduler):
    bag = db.read_text(pattern).str.split().flatten()
    top = bag.frequencies().topk(10, key=lambda kv: (kv[1], kv[0]))
    return top.compute(scheduler=scheduler)


def loop_top10(paths):
    counts = collections.Counter()
    for p in paths:
        with open(p) as f:
            for line in f:
                counts.update(line.split())
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]


def best(reps, f):
    times, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


def main():
    args = sys.argv[1:]
    reps = 3
    if "--reps" in args:
        i = args.index("--reps")
        reps = int(args[i + 1])
        del args[i : i + 2]
    directory = args[0] if args else "data/text-200mb"
    paths = sorted(glob.glob(os.path.join(directory, "part-*.txt")))
    if not paths:
        sys.exit(f"no part-*.txt files in {directory}: run `cargo xtask gen-data text` first")
    mb = sum(os.path.getsize(p) for p in paths) / 1e6
    pattern = os.path.join(directory, "part-*.txt")
    print(f"dask {dask.__version__}, {len(paths)} files, {mb:.0f} MB, {os.cpu_count()} cores, best of {reps}")
    t_loop, expected = best(reps, lambda: loop_top10(paths))
    print(f"{'python Counter loop':<22} {t_loop:8.2f} s {mb / t_loop:7.1f} MB/s")
    for scheduler in ["sync", "threads", "processes"]:
        t, top = best(reps, lambda: bag_top10(pattern, scheduler))
        top = sorted(top, key=lambda kv: (-kv[1], kv[0]))
        assert [c for _, c in top] == [c for _, c in expected], (top, expected)
        print(f"{'dask.bag ' + scheduler:<22} {t:8.2f} s {mb / t:7.1f} MB/s")
    print("load average:", open("/proc/loadavg").read().strip())


if __name__ == "__main__":
    main()
