//! The seed's workload on a generated taxi CSV, next to polars in the same
//! process:
//!
//! ```text
//! cargo xtask gen-data taxi                  # data/yellow_tripdata_synthetic_6405008.csv
//! cargo run --release -p dask-dataframe --example taxi_bench -- data/yellow_tripdata_synthetic_6405008.csv [reps]
//! ```
//!
//! For each engine (dask-rs on the sync and threaded schedulers with
//! `read_csv(blocksize=12e6)`, polars eager `CsvReader` on the whole file,
//! polars lazy `LazyCsvReader`), it times: read + `len`, read +
//! `groupby("passenger_count").tip_amount.mean()`, read + `VendorID.unique()`,
//! read + a merge with a 265-row zone table + `len`.
//! Every engine reads the file in each query (nothing is cached), as a
//! `read_csv(...).groupby(...).compute()` does. Prints the best of `reps`
//! (default 3) runs and the ratio to polars eager, and checks that all
//! engines agree.
//!
//! `taxi_bench PATH.csv --memory` runs only dask-rs threaded, each query
//! once, and prints the process's peak resident memory next to the file's
//! size: what partitions in flight take (nothing else reads the file).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dask_core::{Collection, Scheduler};
use dask_dataframe::{read_csv, Agg, CsvOptions};
use dask_sync_scheduler::SyncScheduler;
use dask_threaded::ThreadedScheduler;
use polars::prelude::*;

/// The four queries of one engine, each returning its answer's size.
type Queries<'a> = [Box<dyn Fn() -> usize + 'a>; 4];

/// The best time of `reps` runs of `f`, and its last answer.
fn best(reps: usize, f: &dyn Fn() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut out = 0;
    for _ in 0..reps {
        let t = Instant::now();
        out = f();
        best = best.min(t.elapsed());
    }
    (best, out)
}

fn by_key(df: DataFrame) -> DataFrame {
    df.sort(["passenger_count"], SortMultipleOptions::default())
        .expect("sort")
}

/// A small lookup table: zone -> one of 7 groups (265 rows).
fn zones() -> DataFrame {
    let ids: Vec<i64> = (1..=265).collect();
    let groups: Vec<i64> = ids.iter().map(|z| z % 7).collect();
    df!("PULocationID" => ids, "zone_group" => groups).expect("zones")
}

/// The queries on dask-rs, each reading the file.
fn dask<'a>(path: &'a str, s: &'a dyn Scheduler) -> Queries<'a> {
    let opts = CsvOptions::default().blocksize(Some(12_000_000));
    let read = move || read_csv(path, &opts).expect("read_csv");
    let read2 = read.clone();
    let read3 = read.clone();
    let read4 = read.clone();
    [
        Box::new(move || read().len().compute_with(s).expect("len")),
        Box::new(move || {
            read2()
                .groupby(&["passenger_count"])
                .and_then(|g| g.agg(&[("tip_amount", Agg::Mean)]))
                .expect("groupby")
                .compute_with(s)
                .expect("groupby compute")
                .height()
        }),
        Box::new(move || {
            read3()
                .column("VendorID")
                .and_then(|c| c.unique())
                .expect("unique")
                .compute_with(s)
                .expect("unique compute")
                .len()
        }),
        Box::new(move || {
            let small = dask_dataframe::DataFrame::from_polars(zones(), 1).expect("zones");
            read4()
                .merge(&small, &["PULocationID"], dask_dataframe::How::Inner)
                .expect("merge")
                .len()
                .compute_with(s)
                .expect("merge compute")
        }),
    ]
}

fn eager(path: &str) -> DataFrame {
    CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(path.into()))
        .and_then(|r| r.finish())
        .expect("polars read")
}

fn lazy(path: &str) -> LazyFrame {
    LazyCsvReader::new(PlRefPath::from(path))
        .with_has_header(true)
        .finish()
        .expect("scan_csv")
}

/// The peak resident memory of this process (`VmHWM`), if Linux tells.
fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM"))?;
    Some(line.trim_start_matches("VmHWM:").trim().to_string())
}

/// `--memory`: the four queries on dask-rs threaded only, then the peak RSS.
fn memory(path: &str) {
    let size = std::fs::metadata(path).expect("the CSV file").len();
    let threaded = ThreadedScheduler::new();
    println!("peak RSS at the start: {}", peak_rss().unwrap_or_default());
    for (i, q) in dask(path, &threaded).iter().enumerate() {
        let t = Instant::now();
        let n = q();
        println!(
            "query {i}: answer size {n}, {:.3} s, peak RSS so far {}",
            t.elapsed().as_secs_f64(),
            peak_rss().unwrap_or_default()
        );
    }
    println!("file: {:.1} MB", size as f64 / 1e6);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!(
            "usage: taxi_bench PATH.csv [reps]   (make one with `cargo xtask gen-data taxi`)"
        );
        std::process::exit(2);
    };
    let path = path.as_str();
    if args.get(1).map(String::as_str) == Some("--memory") {
        return memory(path);
    }
    let reps: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(3).max(1);
    let size = std::fs::metadata(path).expect("the CSV file").len();
    let ddf = read_csv(path, &CsvOptions::default().blocksize(Some(12_000_000))).expect("read_csv");
    println!("{ddf}\n");
    println!(
        "file: {path}, {:.1} MB, {} partitions, best of {reps}\n",
        size as f64 / 1e6,
        ddf.npartitions()
    );

    let queries = [
        "read + len",
        "read + groupby(passenger_count).tip_amount.mean()",
        "read + VendorID.unique()",
        "read + merge(zones, on=PULocationID) + len",
    ];
    let mut rows: Vec<(String, [Duration; 4])> = Vec::new();

    // polars eager: read the whole file, then the query.
    let pe: Queries = [
        Box::new(|| eager(path).height()),
        Box::new(|| {
            eager(path)
                .lazy()
                .group_by([col("passenger_count")])
                .agg([col("tip_amount").mean()])
                .collect()
                .expect("groupby")
                .height()
        }),
        Box::new(|| {
            eager(path)
                .column("VendorID")
                .expect("col")
                .unique()
                .expect("unique")
                .len()
        }),
        Box::new(|| {
            eager(path)
                .lazy()
                .join(
                    zones().lazy(),
                    [col("PULocationID")],
                    [col("PULocationID")],
                    JoinArgs::new(JoinType::Inner),
                )
                .collect()
                .expect("join")
                .height()
        }),
    ];
    let pl_lazy: Queries = [
        Box::new(|| {
            lazy(path)
                .select([len()])
                .collect()
                .expect("len")
                .column("len")
                .expect("len")
                .get(0)
                .expect("v")
                .extract::<usize>()
                .expect("usize")
        }),
        Box::new(|| {
            lazy(path)
                .group_by([col("passenger_count")])
                .agg([col("tip_amount").mean()])
                .collect()
                .expect("groupby")
                .height()
        }),
        Box::new(|| {
            lazy(path)
                .select([col("VendorID").unique()])
                .collect()
                .expect("unique")
                .height()
        }),
        Box::new(|| {
            lazy(path)
                .join(
                    zones().lazy(),
                    [col("PULocationID")],
                    [col("PULocationID")],
                    JoinArgs::new(JoinType::Inner),
                )
                .select([len()])
                .collect()
                .expect("join")
                .column("len")
                .expect("len")
                .get(0)
                .expect("v")
                .extract::<usize>()
                .expect("usize")
        }),
    ];
    let sync: Arc<dyn Scheduler> = Arc::new(SyncScheduler::new());
    let threaded: Arc<dyn Scheduler> = Arc::new(ThreadedScheduler::new());
    let engines: Vec<(String, Queries<'_>)> = vec![
        ("polars eager".into(), pe),
        ("polars lazy".into(), pl_lazy),
        ("dask-rs sync".into(), dask(path, &*sync)),
        ("dask-rs threaded".into(), dask(path, &*threaded)),
    ];
    let mut answers: Vec<[usize; 4]> = Vec::new();
    for (name, qs) in &engines {
        let mut times = [Duration::ZERO; 4];
        let mut ans = [0usize; 4];
        for (i, q) in qs.iter().enumerate() {
            let (t, n) = best(reps, q.as_ref());
            times[i] = t;
            ans[i] = n;
        }
        println!(
            "{name:>18}: {:?}",
            times.map(|t| format!("{:.3} s", t.as_secs_f64()))
        );
        rows.push((name.clone(), times));
        answers.push(ans);
    }
    let base = rows[0].1;
    println!();
    for (qi, q) in queries.iter().enumerate() {
        println!("{q}:");
        for (name, times) in &rows {
            println!(
                "  {name:>18}: {:8.3} s  ({:.2}x polars eager)",
                times[qi].as_secs_f64(),
                times[qi].as_secs_f64() / base[qi].as_secs_f64()
            );
        }
    }
    let agree = answers.windows(2).all(|w| w[0] == w[1]);
    println!(
        "\nanswers (rows, groups, distinct VendorIDs, merged rows) agree across engines: {agree} {:?}",
        answers[0]
    );
    // Also check the groupby values themselves against polars eager.
    let got = by_key(
        read_csv(path, &CsvOptions::default().blocksize(Some(12_000_000)))
            .and_then(|d| d.groupby(&["passenger_count"]))
            .and_then(|g| g.agg(&[("tip_amount", Agg::Mean)]))
            .expect("groupby")
            .compute_with(&*threaded)
            .expect("compute"),
    );
    let want = by_key(
        eager(path)
            .lazy()
            .group_by([col("passenger_count")])
            .agg([col("tip_amount").mean()])
            .collect()
            .expect("groupby"),
    );
    let (g, w) = (
        got.column("tip_amount")
            .expect("col")
            .f64()
            .expect("f64")
            .clone(),
        want.column("tip_amount")
            .expect("col")
            .f64()
            .expect("f64")
            .clone(),
    );
    let max_diff = g
        .iter()
        .zip(w.iter())
        .map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs(),
            (None, None) => 0.0,
            _ => f64::INFINITY,
        })
        .fold(0.0f64, f64::max);
    println!("groupby means: max |dask-rs - polars| = {max_diff:e}");
    if let Some(hwm) = peak_rss() {
        println!("peak RSS of the whole run: {hwm}");
    }
}
