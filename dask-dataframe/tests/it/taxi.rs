//! The seed's flow on a generated taxi file (the generator `cargo xtask
//! gen-data taxi` runs, included from xtask): read_csv with a blocksize,
//! the partition count, the dtypes shown, map_partitions, head, and
//! `VendorID.unique()`, checked against polars reading the whole file.

use dask_core::Collection;
use dask_dataframe::{read_csv, Agg, CsvOptions};
use polars::prelude::*;

use crate::common::*;

#[allow(dead_code)]
#[path = "../../../xtask/src/taxi/generate.rs"]
mod generate;

#[test]
fn seed_flow_on_a_generated_taxi_file() {
    let dir = TempDir::new("taxi");
    let path = dir.join("yellow_tripdata_2020-01.csv");
    let rows = 20_000;
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        generate::write_csv(&mut w, rows, 1).unwrap();
    }
    let size = std::fs::metadata(&path).unwrap().len();
    // The seed's blocksize is 12e6 on ~570 MB (50 partitions); scaled to this file.
    let blocksize = size / 50 + 1;
    let opts = CsvOptions::default()
        .blocksize(Some(blocksize))
        .sample(64_000);
    let ddf = read_csv(&path, &opts).unwrap();
    assert_eq!(ddf.npartitions() as u64, size.div_ceil(blocksize));
    assert_eq!(ddf.npartitions(), 50);
    let names: Vec<String> = generate::HEADER.split(',').map(str::to_owned).collect();
    assert_eq!(ddf.columns(), names);
    let dtypes: Vec<String> = ddf.dtypes().iter().map(|(_, d)| d.to_string()).collect();
    assert_eq!(
        dtypes,
        [
            "i64", "str", "str", "i64", "f64", "i64", "str", "i64", "i64", "i64", "f64", "f64",
            "f64", "f64", "f64", "f64", "f64", "f64"
        ]
    );
    let shown = ddf.to_string();
    assert!(
        shown.contains("npartitions=50") && shown.contains("VendorID"),
        "{shown}"
    );

    let expected = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(None)
        .try_into_reader_with_file_path(Some(path.clone().into()))
        .unwrap()
        .finish()
        .unwrap();
    // Missing VendorIDs in the last rows are nulls of an integer column.
    assert_eq!(
        expected.column("VendorID").unwrap().dtype(),
        &DataType::Int64
    );
    assert_eq!(
        expected.column("VendorID").unwrap().null_count(),
        rows as usize / 100
    );

    // map_partitions computes (missing integers are not a mismatch).
    let mp = ddf
        .map_partitions(
            |df: DataFrame| {
                df.lazy()
                    .select([col("VendorID"), col("tip_amount")])
                    .collect()
            },
            None,
        )
        .unwrap();
    for (name, s) in schedulers() {
        let got = mp.compute_with(&**s).unwrap();
        let want = expected.select(["VendorID", "tip_amount"]).unwrap();
        assert_frames_eq(&got, &want, name);
        assert_frames_eq(
            &ddf.head_with(5, &**s).unwrap(),
            &expected.head(Some(5)),
            name,
        );
    }
    let unique = ddf.column("VendorID").unwrap().unique().unwrap();
    let want = expected
        .column("VendorID")
        .unwrap()
        .as_materialized_series()
        .unique()
        .unwrap();
    check_frame_unordered(&unique.to_frame(), &want.into_frame());

    let by = ddf
        .groupby(&["passenger_count"])
        .unwrap()
        .agg(&[("tip_amount", Agg::Mean)])
        .unwrap();
    let want = expected
        .clone()
        .lazy()
        .group_by([col("passenger_count")])
        .agg([col("tip_amount").mean()])
        .sort(["passenger_count"], SortMultipleOptions::default())
        .collect()
        .unwrap();
    check_frame(&by, &want);
    assert_eq!(ddf.len().compute_with(&**sync()).unwrap(), rows as usize);
}
