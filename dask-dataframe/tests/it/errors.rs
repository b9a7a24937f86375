//! Bad arguments to dataframe operations: typed errors naming the column or
//! the expression, found when the operation is built.

use dask_core::Collection;
use dask_dataframe::{DataFrame as DDF, Error};
use polars::prelude::*;

fn ddf() -> DDF {
    let df = df!("a" => [1i64, 2, 3], "s" => ["x", "y", "z"]).unwrap();
    DDF::from_polars(df, 2).unwrap()
}

#[test]
fn unknown_columns_are_named_with_the_columns_that_exist() {
    let d = ddf();
    for err in [
        d.select(&["a", "nope"]).unwrap_err(),
        d.column("nope").unwrap_err(),
        d.astype(&[("nope", DataType::Float64)]).unwrap_err(),
        d.dropna(Some(&["nope"])).unwrap_err(),
        d.drop_duplicates(Some(&["nope"])).unwrap_err(),
    ] {
        assert!(matches!(err, Error::UnknownColumn { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("`nope`") && msg.contains("[\"a\", \"s\"]"),
            "{msg}"
        );
    }
}

#[test]
fn bad_expressions_fail_when_built() {
    let d = ddf();
    let err = d.filter(col("zz").gt(lit(1))).unwrap_err();
    assert!(matches!(err, Error::Polars { .. }), "{err}");
    assert!(err.to_string().contains("zz"), "{err}");
    let err = d.filter(col("a") + lit(1)).unwrap_err();
    assert!(err.to_string().contains("Boolean"), "{err}");
    let err = d.with_columns(vec![col("missing").alias("b")]).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    // A cast that only fails on values fails the compute, naming the values.
    let bad = d.astype(&[("s", DataType::Int64)]).unwrap();
    let err = bad
        .compute_with(&dask_sync_scheduler::SyncScheduler::new())
        .unwrap_err();
    assert!(err.to_string().contains("conversion"), "{err}");
    let err = d
        .column("s")
        .unwrap()
        .mul(&d.column("s").unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::Polars { .. }), "{err}");
}

#[test]
fn misaligned_operands_are_refused() {
    let d = ddf();
    let other = DDF::from_polars(df!("a" => [1i64, 2, 3]).unwrap(), 3).unwrap();
    let err = d
        .column("a")
        .unwrap()
        .add(&other.column("a").unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::NotAligned { .. }), "{err}");
    assert!(err.to_string().contains("2 and 3 partitions"), "{err}");
    let err = d.assign("b", &other.column("a").unwrap()).unwrap_err();
    assert!(matches!(err, Error::NotAligned { .. }), "{err}");
    let err = d.filter_by(&d.column("a").unwrap()).unwrap_err();
    assert!(err.to_string().contains("Boolean"), "{err}");
    assert!(matches!(
        DDF::from_polars(df!("a" => [1i64]).unwrap(), 0),
        Err(Error::InvalidArgument { .. })
    ));
}
