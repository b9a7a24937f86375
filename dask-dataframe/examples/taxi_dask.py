"""Python dask.dataframe on taxi_bench's queries, for the comparison in
dask-dataframe's figures (issue 5: we intend to be more than 5x faster).

    cargo xtask gen-data taxi
    pip install "dask[dataframe]"
    python3 dask-dataframe/examples/taxi_dask.py data/yellow_tripdata_synthetic_6405008.csv [reps]

Same four queries as `taxi_bench.rs`, each reading the file again with
`read_csv(blocksize=12e6)` (with the seed's dtype fix for the columns
that are empty at the end of the file), on dask's threaded scheduler: read + len, read +
groupby(passenger_count).tip_amount.mean(), read + VendorID.unique(), read +
merge with a 265-row zone table + len. Prints the best of `reps` (default 2).
"""

import sys
import time

import dask
import dask.dataframe as dd
import pandas as pd


def best(reps, f):
    times, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "data/yellow_tripdata_synthetic_6405008.csv"
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    read = lambda: dd.read_csv(path, blocksize=12e6, dtype={"store_and_fwd_flag": "object", "VendorID": "float64",
                                             "passenger_count": "float64", "RatecodeID": "float64",
                                             "payment_type": "float64"})
    zones = pd.DataFrame({"PULocationID": range(1, 266), "zone": [f"zone-{i}" for i in range(1, 266)]})
    queries = [
        ("read + len", lambda: len(read())),
        ("read + groupby(passenger_count).tip_amount.mean()",
         lambda: len(read().groupby("passenger_count").tip_amount.mean().compute())),
        ("read + VendorID.unique()", lambda: len(read().VendorID.unique().compute())),
        ("read + merge(zones, on=PULocationID) + len",
         lambda: len(read().merge(zones, on="PULocationID"))),
    ]
    print(f"dask {dask.__version__}, pandas {pd.__version__}, scheduler threads, best of {reps}")
    with dask.config.set(scheduler="threads"):
        for name, q in queries:
            t, out = best(reps, q)
            print(f"{name:<52} {t:8.2f} s  (answer size {out})")
    print("load average:", open("/proc/loadavg").read().strip())


if __name__ == "__main__":
    main()
