//! dask.dataframe in a few steps: a CSV file read as a partitioned dataframe
//! whose partitions are polars DataFrames. Each step is lazy until
//! `compute()`, and each result is checked against polars run eagerly on the
//! whole file.
//!
//! Shows: read_csv with a blocksize (several partitions), column selection, a
//! row filter, groupby-agg, merge with a small lookup frame, sort_values and
//! head. The data is a small synthetic NYC-taxi CSV written to a temp dir.
//!
//! Run: `cargo run --example dataframe`

use std::path::Path;

use dask::dataframe::polars::prelude::{
    col, df, lit, CsvReadOptions, DataFrame as PlFrame, IntoLazy, JoinArgs, JoinType, SerReader,
    SortMultipleOptions,
};
use dask::dataframe::{read_csv, Agg, CsvOptions, DataFrame, How};
use dask::prelude::*;

// The generator of the benchmark's taxi data, shared with xtask and the tour.
#[allow(dead_code)]
#[path = "../../xtask/src/taxi/generate.rs"]
mod taxi;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Checks two polars frames hold the same columns and values (floats up to
/// rounding: partial sums in a different order differ in the last bits).
fn assert_same(what: &str, got: &PlFrame, want: &PlFrame) -> Res<()> {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes differ");
    assert_eq!(got.get_column_names(), want.get_column_names(), "{what}");
    for (g, w) in got.columns().iter().zip(want.columns()) {
        if w.dtype().is_float() {
            for (a, b) in g.f64()?.iter().zip(w.f64()?.iter()) {
                let close = match (a, b) {
                    (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                    (a, b) => a == b,
                };
                assert!(close, "{what}: column {}: {a:?} != {b:?}", w.name());
            }
        } else {
            assert!(g.equals_missing(w), "{what}: column {} differs", w.name());
        }
    }
    println!("{what:<34} {:?} rows x cols  matches polars", got.shape());
    Ok(())
}

/// Writes `rows` rows of the synthetic taxi CSV to `path`.
fn write_taxi_csv(path: &Path, rows: u64) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    taxi::write_csv(&mut file, rows, taxi::DEFAULT_SEED)
}

fn main() -> Res<()> {
    let dir = std::env::temp_dir().join(format!("dask-example-dataframe-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("taxi.csv");
    write_taxi_csv(&path, 1_200)?; // ~170 kB: all of it fits the 256 kB dtype sample
    let size = std::fs::metadata(&path)?.len();
    let path_str = path.to_str().ok_or("a non-UTF-8 temp dir")?;

    // The oracle: polars reads the whole file eagerly.
    let whole = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(path_str.into()))?
        .finish()?;

    // 1. read_csv cuts the file into byte ranges of `blocksize` (aligned on
    //    line ends): one partition, and one task, per block. Dtypes are
    //    inferred from a sample of the first bytes, without reading it all.
    let df: DataFrame = read_csv(path_str, &CsvOptions::default().blocksize(Some(size / 4)))?;
    println!("{df}"); // columns, dtypes, npartitions: no data read yet
    assert!(df.npartitions() >= 4, "{} partitions", df.npartitions());
    assert_same("read_csv(..).compute()", &df.compute()?, &whole)?;

    // 2. Selecting columns, and filtering rows with a polars expression. Both
    //    run partition by partition; row order is kept.
    let fares = df.select(&["VendorID", "fare_amount", "tip_amount"])?;
    let tipped = fares.filter(col("tip_amount").gt(lit(3.0)))?;
    let want = whole
        .clone()
        .lazy()
        .select([col("VendorID"), col("fare_amount"), col("tip_amount")])
        .filter(col("tip_amount").gt(lit(3.0)))
        .collect()?;
    assert_same("select + filter(tip > 3)", &tipped.compute()?, &want)?;

    // 3. groupby-agg: partial aggregates per partition, combined in a tree.
    //    The result has one row per key, sorted by key. (The last rows of the
    //    file have no payment type: we drop them first.)
    let paid = df.filter(col("payment_type").is_not_null())?;
    let by_payment = paid
        .groupby(&["payment_type"])?
        .agg(&[("tip_amount", Agg::Mean), ("fare_amount", Agg::Max)])?;
    let want = whole
        .clone()
        .lazy()
        .filter(col("payment_type").is_not_null())
        .group_by([col("payment_type")])
        .agg([col("tip_amount").mean(), col("fare_amount").max()])
        .sort(["payment_type"], SortMultipleOptions::default())
        .collect()?;
    let got = by_payment.compute()?;
    println!("{got}");
    assert_same("groupby(payment_type).agg", &got, &want)?;

    // 4. merge with a small lookup frame. A frame of one partition is
    //    broadcast to every partition of the big one (no shuffle).
    let zones = df!(
        "PULocationID" => [236i64, 237, 161, 132, 138],
        "zone" => ["Upper East Side N", "Upper East Side S", "Midtown Center", "JFK Airport", "LaGuardia"]
    )?;
    let lookup = DataFrame::from_polars(zones.clone(), 1)?;
    let named = df.merge(&lookup, &["PULocationID"], How::Inner)?;
    // Join order within a partition is polars', so both sides are sorted by
    // pickup time (unique here) before comparing.
    let by_time = |f: PlFrame| f.sort(["tpep_pickup_datetime"], SortMultipleOptions::default());
    let want = whole
        .clone()
        .lazy()
        .join(
            zones.lazy(),
            [col("PULocationID")],
            [col("PULocationID")],
            JoinArgs::new(JoinType::Inner),
        )
        .collect()?;
    assert_same(
        "merge(zones, on=PULocationID)",
        &by_time(named.compute()?)?,
        &by_time(want)?,
    )?;

    // 5. sort_values: a range shuffle on sampled quantiles, then a sort per
    //    partition. head(n) computes only what the first rows need.
    let sorted = df.sort_values("total_amount", true)?;
    let top = sorted.head(5)?;
    println!(
        "{}",
        top.select(["VendorID", "trip_distance", "total_amount"])?
    );
    let order = SortMultipleOptions::default()
        .with_order_descending(true)
        .with_nulls_last(true);
    let want = whole.sort(["total_amount"], order)?;
    // Ties may come in any order: compare the sorted column itself.
    let got = sorted.compute()?;
    assert_same(
        "sort_values(total_amount)",
        &got.select(["total_amount"])?,
        &want.select(["total_amount"])?,
    )?;
    assert_same(
        "head(5)",
        &top.select(["total_amount"])?,
        &want.head(Some(5)).select(["total_amount"])?,
    )?;

    std::fs::remove_dir_all(&dir)?;
    println!("ok: dataframe");
    Ok(())
}
