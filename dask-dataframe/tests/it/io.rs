//! Writers and `read_parquet`, and the Arrow IPC codec.

use dask_core::codec::{decode_value, encode_value};
use dask_core::{Collection, Value};
use dask_dataframe::{read_csv, read_parquet, CsvOptions, DataFrame as DDF, Error};
use polars::prelude::*;
use proptest::prelude::*;

use crate::common::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..config() })]

    #[test]
    fn parquet_and_csv_round_trips((df, n) in case()) {
        prop_assume!(df.height() > 0);
        let ddf = DDF::from_polars(df.clone(), n).unwrap();
        for (name, s) in schedulers() {
            let dir = TempDir::new("pq");
            let out = dir.path().join("pq");
            let files = ddf.to_parquet_with(out.to_str().unwrap(), &**s).unwrap();
            prop_assert_eq!(files.len(), n);
            prop_assert!(files[0].ends_with("part.0.parquet"));
            let back = read_parquet(out.to_str().unwrap()).unwrap();
            prop_assert_eq!(back.npartitions(), n);
            assert_frames_eq(&back.compute_with(&**s).unwrap(), &df, name);

            let files = ddf.to_csv_with(&dir.join("csv/part-*.csv"), &**s).unwrap();
            prop_assert_eq!(files.len(), n);
            let back = read_csv(&dir.join("csv/part-*.csv"), &CsvOptions::default()
                .dtype("k", DataType::Int64).dtype("i", DataType::Int64)
                .dtype("x", DataType::Float64).dtype("s", DataType::String)
                .dtype("b", DataType::Boolean)).unwrap();
            // Files sort by name: part-10 before part-2; compare as sets of rows.
            assert_frames_eq(&sorted(&back.compute_with(&**s).unwrap()), &sorted(&df), name);
        }
    }

    #[test]
    fn partitions_survive_the_ipc_codec(df in frame()) {
        let v = Value::new(df.clone());
        let (tag, bytes) = encode_value(&v).unwrap();
        let back = decode_value(tag, &bytes).unwrap();
        assert_frames_eq(back.downcast_ref::<DataFrame>().unwrap(), &df, "frame");
        let s = df.column("x").unwrap().as_materialized_series().clone();
        let (tag, bytes) = encode_value(&Value::new(s.clone())).unwrap();
        let back = decode_value(tag, &bytes).unwrap();
        prop_assert!(back.downcast_ref::<Series>().unwrap().equals_missing(&s));
    }
}

/// Partitions are sized by polars' estimate (no encoding): a frame of a
/// million `i64` holds about 8 MB, a column of it a third of a 3-column frame.
#[test]
fn partitions_are_sized_without_encoding() {
    use dask_core::sizeof::sizeof_registered;
    let n = 1_000_000i64;
    let df = df!("a" => (0..n).collect::<Vec<_>>(), "b" => vec![1.5f64; n as usize],
                 "c" => (0..n).map(|i| i as i32).collect::<Vec<_>>())
    .unwrap();
    let frame = sizeof_registered(&Value::new(df.clone())).expect("a DataFrame sizeof");
    assert!((20_000_000..=21_000_000).contains(&frame), "{frame}");
    let a = df.column("a").unwrap().as_materialized_series().clone();
    let col = sizeof_registered(&Value::new(a)).expect("a Series sizeof");
    assert!((8_000_000..=8_100_000).contains(&col), "{col}");
}

#[test]
fn parquet_errors_name_the_file() {
    let dir = TempDir::new("pqbad");
    assert!(matches!(
        read_parquet(&dir.join("none.parquet")),
        Err(Error::NoFiles { .. })
    ));
    let not = dir.write("not.parquet", "hello");
    let err = read_parquet(&not).unwrap_err().to_string();
    assert!(err.contains("not.parquet"), "{err}");
    let ddf = DDF::from_polars(df!("a" => [1i64]).unwrap(), 1).unwrap();
    assert!(matches!(
        ddf.to_csv(&dir.join("a*b*.csv")),
        Err(Error::InvalidArgument { .. })
    ));
}
