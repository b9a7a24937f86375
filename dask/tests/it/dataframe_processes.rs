//! Dataframes on `dask worker` processes: every built-in dataframe op is a
//! registered struct the workers rebuild, and partitions, shuffle pieces and
//! scalars cross processes by their codecs. Each result is compared with
//! polars computing the same thing on the whole file in this process.

use std::fmt::Write as _;
use std::path::PathBuf;

use dask::core::Collection;
use dask::dataframe::polars::prelude as pl;
use dask::dataframe::polars::prelude::{ChunkAgg, ChunkQuantile, IntoLazy, SerReader};
use dask::dataframe::{read_csv, Agg, CsvOptions, DataFrame, How, JoinStrategy, MergeOptions};
use dask_testing::Rng;

use super::processes::cluster_of_processes;

/// A fresh temporary directory, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(label: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("dask-df-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A taxi-like CSV: `VendorID` (1 or 2, empty in the last rows, as in the
/// real file), `passenger_count` (0..6), `trip_distance`, `PULocationID`
/// (1..=40), `fare_amount`, `tip_amount`, `store_and_fwd_flag` (N/Y).
/// Amounts have two decimals, so the CSV text parses to the same floats in
/// every reader.
fn write_taxi(path: &std::path::Path, rows: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut text = String::from(
        "VendorID,passenger_count,trip_distance,PULocationID,fare_amount,tip_amount,store_and_fwd_flag\n",
    );
    for r in 0..rows {
        let vendor = if r + rows / 50 >= rows {
            String::new()
        } else {
            (1 + rng.below(2)).to_string()
        };
        let cents = |rng: &mut Rng, max: usize| {
            let c = rng.below(max);
            format!("{}.{:02}", c / 100, c % 100)
        };
        let distance = cents(&mut rng, 3000);
        let fare = cents(&mut rng, 8000);
        let tip = cents(&mut rng, 1500);
        writeln!(
            text,
            "{vendor},{},{distance},{},{fare},{tip},{}",
            rng.below(7),
            1 + rng.below(40),
            if rng.one_in(20) { "Y" } else { "N" }
        )
        .unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// Polars on the whole file: the oracle.
fn polars_read(path: &std::path::Path) -> pl::DataFrame {
    pl::CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(None)
        .try_into_reader_with_file_path(Some(path.to_owned()))
        .unwrap()
        .finish()
        .unwrap()
}

fn sorted(df: &pl::DataFrame) -> pl::DataFrame {
    let names = df.get_column_names_owned();
    df.sort(names, pl::SortMultipleOptions::default()).unwrap()
}

/// Equal schemas and values; floats within `tol` relative (0 for exact).
fn assert_frames_eq(got: &pl::DataFrame, want: &pl::DataFrame, tol: f64, ctx: &str) {
    assert_eq!(got.schema(), want.schema(), "{ctx}: schema");
    assert_eq!(got.height(), want.height(), "{ctx}: height");
    for (g, w) in got.columns().iter().zip(want.columns()) {
        let (g, w) = (g.as_materialized_series(), w.as_materialized_series());
        if g.dtype().is_float() && tol > 0.0 {
            let (g, w) = (g.f64().unwrap(), w.f64().unwrap());
            for (x, y) in g.iter().zip(w.iter()) {
                match (x, y) {
                    (Some(x), Some(y)) => assert!(
                        (x - y).abs() <= tol * (1.0 + x.abs().max(y.abs())),
                        "{ctx}: column {}: {x} != {y}",
                        g.name()
                    ),
                    (x, y) => assert_eq!(x, y, "{ctx}: column {}", g.name()),
                }
            }
        } else {
            assert!(g.equals_missing(w), "{ctx}: column {}", g.name());
        }
    }
}

/// The seed flow on two worker processes, checked against polars.
#[test]
fn dataframe_seed_flow_on_worker_processes() {
    let (procs, client) = cluster_of_processes(2);
    let dir = TempDir::new("seed");
    let path = dir.0.join("taxi.csv");
    write_taxi(&path, 20_000, 11);
    let whole = polars_read(&path);
    let size = std::fs::metadata(&path).unwrap().len();
    let blocksize = 100_000;

    // read_csv: byte-range blocks read by the workers, with the dtypes
    // inferred here from a sample (VendorID: integers with nulls at the end).
    let options = CsvOptions::default()
        .blocksize(Some(blocksize))
        .sample(20_000);
    let df = read_csv(path.to_str().unwrap(), &options).unwrap();
    assert_eq!(df.npartitions() as u64, size.div_ceil(blocksize));
    assert!(df.npartitions() >= 5, "{}", df.npartitions());
    let all = df.compute_with(&client).unwrap();
    assert_frames_eq(&all, &whole, 0.0, "read_csv");

    // len, head, and the seed's `VendorID.unique()`.
    assert_eq!(df.len().compute_with(&client).unwrap(), whole.height());
    let head = df.head_with(7, &client).unwrap();
    assert_frames_eq(&head, &whole.head(Some(7)), 0.0, "head");
    let vendors = df.column("VendorID").unwrap().unique().unwrap();
    let got = vendors.compute_with(&client).unwrap();
    let want = whole.column("VendorID").unwrap().unique().unwrap();
    let sort = |s: pl::Series| s.sort(pl::SortOptions::default()).unwrap();
    assert!(
        sort(got).equals_missing(&sort(want.as_materialized_series().clone())),
        "VendorID.unique()"
    );
    let nunique = df.column("PULocationID").unwrap().nunique().unwrap();
    assert_eq!(
        nunique.compute_with(&client).unwrap(),
        whole.column("PULocationID").unwrap().n_unique().unwrap()
    );

    // Column reductions: exact for integers, a few ulps for float sums.
    let tips = df.column("tip_amount").unwrap();
    let total = tips.sum().unwrap().compute_with(&client).unwrap();
    let want_total: f64 = whole
        .column("tip_amount")
        .unwrap()
        .f64()
        .unwrap()
        .sum()
        .unwrap();
    let total = total.value().extract::<f64>().unwrap();
    assert!(
        (total - want_total).abs() <= 1e-9 * want_total,
        "{total} != {want_total}"
    );
    let max = df.column("passenger_count").unwrap().max().unwrap();
    assert_eq!(
        max.compute_with(&client).unwrap().value().extract::<i64>(),
        whole
            .column("passenger_count")
            .unwrap()
            .i64()
            .unwrap()
            .max()
    );

    // Series arithmetic, a mask and assign: registered element-wise ops.
    let fare = df.column("fare_amount").unwrap();
    let total = fare.add(&tips).unwrap();
    let big = total.gt(&fare.mul(&fare).unwrap()).unwrap();
    let picked = df
        .assign("total", &total)
        .unwrap()
        .filter_by(&big)
        .unwrap()
        .select(&["total", "passenger_count"])
        .unwrap();
    let want = whole
        .clone()
        .lazy()
        .with_column((pl::col("fare_amount") + pl::col("tip_amount")).alias("total"))
        .filter(pl::col("total").gt(pl::col("fare_amount") * pl::col("fare_amount")))
        .select([pl::col("total"), pl::col("passenger_count")])
        .collect()
        .unwrap();
    assert_frames_eq(
        &picked.compute_with(&client).unwrap(),
        &want,
        0.0,
        "series ops",
    );

    // groupby(passenger_count): tip mean, fare sum, count, with split_every 2
    // so partial aggregates move between workers in a deeper tree.
    let by = df
        .with_split_every(2)
        .unwrap()
        .groupby(&["passenger_count"])
        .unwrap()
        .agg(&[
            ("tip_amount", Agg::Mean),
            ("fare_amount", Agg::Sum),
            ("trip_distance", Agg::Count),
        ])
        .unwrap();
    let want = whole
        .clone()
        .lazy()
        .group_by([pl::col("passenger_count")])
        .agg([
            pl::col("tip_amount").mean(),
            pl::col("fare_amount").sum(),
            pl::col("trip_distance").count(),
        ])
        .sort(["passenger_count"], Default::default())
        .collect()
        .unwrap();
    assert_frames_eq(&by.compute_with(&client).unwrap(), &want, 1e-9, "groupby");

    // A merge with a small lookup table (broadcast), and a hash-shuffled
    // merge of two multi-partition frames (split pieces cross processes).
    let zones = pl::df!(
        "PULocationID" => (1i64..=40).collect::<Vec<_>>(),
        "zone" => (1..=40).map(|i| format!("zone-{}", i % 7)).collect::<Vec<_>>()
    )
    .unwrap();
    let lookup = DataFrame::from_polars(zones.clone(), 1).unwrap();
    let merged = df.merge(&lookup, &["PULocationID"], How::Left).unwrap();
    let want = whole
        .clone()
        .lazy()
        .join(
            zones.clone().lazy(),
            [pl::col("PULocationID")],
            [pl::col("PULocationID")],
            pl::JoinArgs::new(pl::JoinType::Left),
        )
        .collect()
        .unwrap();
    assert_frames_eq(
        &sorted(&merged.compute_with(&client).unwrap()),
        &sorted(&want),
        0.0,
        "broadcast merge",
    );
    let counts = df
        .groupby(&["PULocationID"])
        .unwrap()
        .split_out(3)
        .unwrap()
        .agg(&[("fare_amount", Agg::Max)])
        .unwrap();
    let shuffled = df
        .merge_with(
            &counts,
            &["PULocationID"],
            MergeOptions::new(How::Inner).strategy(JoinStrategy::Shuffle),
        )
        .unwrap();
    let want_counts = whole
        .clone()
        .lazy()
        .group_by([pl::col("PULocationID")])
        .agg([pl::col("fare_amount").max()])
        .collect()
        .unwrap();
    let want = whole
        .clone()
        .lazy()
        .join(
            want_counts.lazy(),
            [pl::col("PULocationID")],
            [pl::col("PULocationID")],
            pl::JoinArgs::new(pl::JoinType::Inner),
        )
        .collect()
        .unwrap();
    assert_frames_eq(
        &sorted(&shuffled.compute_with(&client).unwrap()),
        &sorted(&want),
        0.0,
        "shuffle merge",
    );

    // sort_values: boundaries sampled on the workers, a range shuffle, then
    // exactly polars' stable sort of the whole frame.
    let by_distance = df.sort_values_with("trip_distance", true, &client).unwrap();
    let want = whole
        .sort(
            ["trip_distance"],
            pl::SortMultipleOptions::default()
                .with_order_descending(true)
                .with_nulls_last(true)
                .with_maintain_order(true),
        )
        .unwrap();
    assert_frames_eq(
        &by_distance.compute_with(&client).unwrap(),
        &want,
        0.0,
        "sort_values",
    );

    // By several columns, with ties in the first: polars' stable
    // multi-column sort.
    let multi = df
        .sort_values_multi_with(
            &["passenger_count", "trip_distance"],
            &[false, true],
            &client,
        )
        .unwrap();
    let want = whole
        .sort(
            ["passenger_count", "trip_distance"],
            pl::SortMultipleOptions::default()
                .with_order_descending_multi([false, true])
                .with_nulls_last(true)
                .with_maintain_order(true),
        )
        .unwrap();
    assert_frames_eq(
        &multi.compute_with(&client).unwrap(),
        &want,
        0.0,
        "sort_values_multi",
    );

    // set_index + loc: the index bounds travel inside the ops' parameters.
    let indexed = df.set_index_with("fare_amount", &client).unwrap();
    let lo = pl::Scalar::from(10.0f64);
    let hi = pl::Scalar::from(20.5f64);
    let picked = indexed.loc(Some(lo), Some(hi)).unwrap();
    let want = whole
        .clone()
        .lazy()
        .filter(
            pl::col("fare_amount")
                .gt_eq(pl::lit(10.0))
                .and(pl::col("fare_amount").lt_eq(pl::lit(20.5))),
        )
        .sort(
            ["fare_amount"],
            pl::SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()
        .unwrap();
    assert_frames_eq(&picked.compute_with(&client).unwrap(), &want, 0.0, "loc");

    // describe: exact quartiles (every partition holds fewer values than
    // the sample size), moments within float rounding.
    let described = df
        .select(&["trip_distance", "tip_amount"])
        .unwrap()
        .describe()
        .unwrap()
        .compute_with(&client)
        .unwrap();
    for name in ["trip_distance", "tip_amount"] {
        let c = whole.column(name).unwrap().as_materialized_series();
        let q = |p: f64| {
            c.f64()
                .unwrap()
                .quantile(p, pl::QuantileMethod::Linear)
                .unwrap()
        };
        let want = [
            Some(c.len() as f64 - c.null_count() as f64),
            c.mean(),
            c.std(1),
            c.f64().unwrap().min(),
            q(0.25),
            q(0.5),
            q(0.75),
            c.f64().unwrap().max(),
        ];
        let got = described.column(name).unwrap().f64().unwrap();
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let (g, w) = (g.unwrap(), w.unwrap());
            assert!(
                (g - w).abs() <= 1e-9 * (1.0 + w.abs()),
                "describe {name} row {i}: {g} != {w}"
            );
        }
    }

    // repartition, value_counts and drop_duplicates, then a parquet round
    // trip written and read by the workers.
    let fewer = df.repartition(2).unwrap();
    assert_frames_eq(
        &fewer.compute_with(&client).unwrap(),
        &whole,
        0.0,
        "repartition",
    );
    let flags = df
        .column("store_and_fwd_flag")
        .unwrap()
        .value_counts()
        .unwrap();
    let want = whole
        .clone()
        .lazy()
        .group_by([pl::col("store_and_fwd_flag")])
        .agg([pl::len().alias("count")])
        .collect()
        .unwrap();
    assert_frames_eq(
        &sorted(&flags.compute_with(&client).unwrap()),
        &sorted(&want),
        0.0,
        "value_counts",
    );
    let out = dir.0.join("parquet");
    let written = df.to_parquet_with(out.to_str().unwrap(), &client).unwrap();
    assert_eq!(written.len(), df.npartitions());
    let back = dask::dataframe::read_parquet(out.to_str().unwrap()).unwrap();
    assert_frames_eq(&back.compute_with(&client).unwrap(), &whole, 0.0, "parquet");

    // CSV files written by the workers, read back by them.
    let csv_out = dir.0.join("csv");
    let pattern = format!("{}/part-*.csv", csv_out.display());
    assert_eq!(
        df.to_csv_with(&pattern, &client).unwrap().len(),
        df.npartitions()
    );
    let again = read_csv(&pattern.replace("part-*", "part-[0-9]*"), &options).unwrap();
    assert_eq!(again.len().compute_with(&client).unwrap(), whole.height());

    // The tasks ran on the worker processes: the task stream holds every
    // CSV block, each recorded by one of the two workers.
    let workers: Vec<String> = client
        .workers()
        .unwrap()
        .into_iter()
        .map(|w| w.addr)
        .collect();
    let records = client.get_task_stream().unwrap();
    let blocks: Vec<_> = records
        .iter()
        .filter(|r| r.key.name().starts_with("read_csv"))
        .collect();
    assert!(
        blocks.len() >= df.npartitions(),
        "{} block tasks",
        blocks.len()
    );
    assert!(blocks.iter().all(|r| workers.contains(&r.worker)));
    drop(procs);
}

/// A partition whose data disagree with the inferred dtypes fails on the
/// worker process, and the client's error still carries the dtype table and
/// the `dtype` override that fixes it.
#[test]
fn dtype_mismatch_on_a_worker_process_names_the_fix() {
    let (procs, client) = cluster_of_processes(1);
    let dir = TempDir::new("mismatch");
    let path = dir.0.join("late.csv");
    let mut text = String::from("id,count\n");
    for i in 0..2000 {
        writeln!(text, "{i},{}", i % 7).unwrap();
    }
    text.push_str("2000,lots\n");
    std::fs::write(&path, text).unwrap();
    let options = CsvOptions::default().blocksize(Some(4096)).sample(1000);
    let df = read_csv(path.to_str().unwrap(), &options).unwrap();
    let err = df.compute_with(&client).unwrap_err().to_string();
    for part in ["count", "Int64", "String", "dtype"] {
        assert!(err.contains(part), "no `{part}` in: {err}");
    }
    drop(procs);
}

/// Closures and polars expressions cannot travel to worker processes: the
/// client refuses them before sending anything, naming the op, and the
/// cluster keeps serving registered dataframe ops.
#[test]
fn dataframe_closures_are_refused_for_worker_processes() {
    let (procs, client) = cluster_of_processes(1);
    let pdf = pl::df!("k" => [1i64, 2, 1, 3], "x" => [1.5f64, 2.0, 3.0, 4.5]).unwrap();
    let df = DataFrame::from_polars(pdf.clone(), 2).unwrap();
    let doubled = df
        .map_partitions(
            |d: pl::DataFrame| d.lazy().with_column(pl::col("x") * pl::lit(2.0)).collect(),
            None,
        )
        .unwrap();
    let filtered = df.filter(pl::col("x").gt(pl::lit(2.0))).unwrap();
    for (what, x) in [("map_partitions", doubled), ("filter", filtered)] {
        let err = x.compute_with(&client).unwrap_err();
        match &err {
            dask::Error::OpNotRegistered { .. } => {}
            other => panic!("{what}: expected OpNotRegistered, got {other:?}"),
        }
        assert!(err.to_string().contains("register_op"), "{what}: {err}");
    }
    let sums = df.groupby(&["k"]).unwrap().sum("x").unwrap();
    let want = pdf
        .lazy()
        .group_by([pl::col("k")])
        .agg([pl::col("x").sum()])
        .sort(["k"], Default::default())
        .collect()
        .unwrap();
    assert_frames_eq(&sums.compute_with(&client).unwrap(), &want, 0.0, "groupby");
    drop(procs);
}
