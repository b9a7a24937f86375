//! `read_csv`: blocks, dtypes, options and errors, checked against polars
//! reading the whole file.

use std::sync::Arc;

use dask_core::Collection;
use dask_dataframe::{read_csv, CsvOptions, DataFrame as DDF, Error};
use polars::prelude::*;
use proptest::prelude::*;

use crate::common::*;

/// Polars reading the whole file at once: the oracle.
fn polars_read(path: &str, schema: Option<SchemaRef>) -> DataFrame {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_schema(schema)
        .with_infer_schema_length(None)
        .try_into_reader_with_file_path(Some(path.into()))
        .unwrap()
        .finish()
        .unwrap()
}

fn write_frame(dir: &TempDir, name: &str, df: &DataFrame) -> String {
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).unwrap();
    CsvWriter::new(&mut file).finish(&mut df.clone()).unwrap();
    path
}

/// The text of a failed compute's error chain.
fn failure(ddf: &DDF) -> String {
    let err = ddf.compute_with(&**sync()).unwrap_err();
    Error::find(&err)
        .map(|e| e.to_string())
        .unwrap_or_else(|| err.to_string())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn blocks_of_any_size_read_like_polars((df, _) in case(), blocksize in 1u64..400) {
        // The sample infers the
        // whole file's dtypes; the sample is the whole file here. A file
        // without rows is `NoRowsToInfer` (tested in `bad_inputs`).
        prop_assume!(df.height() > 0);
        let dir = TempDir::new("blocks");
        let path = write_frame(&dir, "f.csv", &df);
        let size = std::fs::metadata(&path).unwrap().len();
        let ddf = read_csv(&path, &CsvOptions::default().blocksize(Some(blocksize))).unwrap();
        prop_assert_eq!(ddf.npartitions() as u64, size.div_ceil(blocksize));
        let expected = polars_read(&path, Some(ddf.schema().clone()));
        check_frame(&ddf, &expected);
    }
}

/// A CSV text of 3 columns whose records are written in several ways:
/// plain, a quoted field holding the separator, a CRLF ending, a field
/// short (polars fills it with null).
fn odd_records() -> impl Strategy<Value = String> {
    prop::collection::vec(0u8..5, 1..60).prop_map(|kinds| {
        let mut text = String::from("a,b,c\n");
        for (i, kind) in kinds.iter().enumerate() {
            text += &match kind {
                0 | 1 => format!("{i},{},{}\n", i * 2, i % 7),
                2 => format!("{i},\"x,{i}\",{}\n", i % 7),
                3 => format!("{i},{},{}\r\n", i * 2, i % 7),
                _ => format!("{i},{}\n", i * 2),
            };
        }
        text
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn len_of_a_fresh_read_counts_the_rows_polars_reads(
        text in odd_records(),
        blocksize in 1u64..300,
    ) {
        let dir = TempDir::new("rows");
        let path = dir.write("f.csv", &text);
        let ddf = read_csv(&path, &CsvOptions::default().blocksize(Some(blocksize))).unwrap();
        // Every column as text: the oracle counts rows, it parses no value.
        let text_schema: Schema = ["a", "b", "c"]
            .into_iter()
            .map(|c| Field::new(c.into(), DataType::String))
            .collect();
        let expected = polars_read(&path, Some(Arc::new(text_schema))).height();
        for (name, s) in schedulers() {
            let rows = ddf.len().compute_with(&**s).unwrap();
            prop_assert_eq!(rows, expected, "{}", name);
        }
    }
}

/// A CSV text of an integer column `i`, a float column `f`, text columns
/// around them (`a`, `b`, `c`, of 0-80 digits: lines cross the 64-byte
/// steps of the plain reader) and a text column `t`. Most numbers are plain (read without polars); some take forms
/// polars reads or refuses (a plus sign, `.5`, an exponent, a space, too
/// many digits) and some are empty (null); some lines end in CRLF, and some
/// have a field too few.
fn numeric_records() -> impl Strategy<Value = String> {
    prop::collection::vec((0u8..11, -100_000i64..100_000, any::<bool>()), 1..60).prop_map(|rows| {
        let mut text = String::from("a,i,b,c,f,t\n");
        for (kind, n, crlf) in rows {
            // Digits: a reader that lost its field would read them as numbers.
            let pad = "7".repeat((n.unsigned_abs() % 81) as usize);
            let frac = n.unsigned_abs() % 1000;
            let (i, f) = match kind {
                0..=3 => (n.to_string(), format!("{n}.{frac}")),
                4 => (String::new(), String::new()),
                5 => (format!("+{}", n.abs()), n.to_string()),
                6 => (n.to_string(), format!(".{frac}")),
                7 => (n.to_string(), format!("{n}e2")),
                8 => (format!(" {n}"), format!("{n}.")),
                9 => (format!("{n}000000000000000000"), format!("-{frac}.5")),
                // A field too few: polars reads null. (A field too many is
                // refused by the block's read, and not always by polars' read
                // of the whole file: see `bad_inputs_are_typed_errors`.)
                _ => (n.to_string(), format!("{n}.5")),
            };
            let end = if crlf { "\r\n" } else { "\n" };
            if kind == 10 {
                text += &format!("{pad},{i},,{pad},{f}{end}");
            } else {
                text += &format!("{pad},{i},,{pad},{f},t{n}{end}");
            }
        }
        text
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn numeric_columns_read_like_polars(text in numeric_records(), blocksize in 1u64..300) {
        let dir = TempDir::new("numbers");
        let path = dir.write("f.csv", &text);
        // Every dtype given and a sample of the header line alone: the odd
        // values meet the blocks, not the inference.
        let opts = CsvOptions::default()
            .blocksize(Some(blocksize))
            .sample("a,i,b,c,f,t\n".len())
            .dtype("i", DataType::Int64)
            .dtype("f", DataType::Float64)
            .dtype("t", DataType::String)
            .dtype("a", DataType::String)
            .dtype("b", DataType::String)
            .dtype("c", DataType::String);
        let ddf = read_csv(&path, &opts).unwrap();
        let picks: [&[&str]; 4] = [&["i", "f"], &["i"], &["f"], &["i", "f", "t"]];
        for columns in picks {
            let got = ddf.select(columns).unwrap();
            // Polars reading the same columns of the whole file.
            let whole = CsvReadOptions::default()
                .with_has_header(true)
                .with_schema(Some(ddf.schema().clone()))
                .with_columns(Some(columns.iter().map(|c| PlSmallStr::from(*c)).collect()))
                .try_into_reader_with_file_path(Some(path.clone().into()))
                .unwrap()
                .finish();
            match whole {
                Ok(whole) => check_frame(&got, &whole),
                Err(e) => {
                    // Polars refuses the file: some partition fails too.
                    for (name, s) in schedulers() {
                        prop_assert!(got.compute_with(&**s).is_err(), "{}: polars says {}", name, e);
                    }
                }
            }
        }
    }
}

#[test]
fn len_of_a_fresh_read_parses_no_value_but_refuses_a_ragged_row() {
    let dir = TempDir::new("rows-ragged");
    // `n` is inferred Int64 from the sample and turns to text at the end:
    // counting rows does not parse it (polars' own row count neither).
    let mut text = String::from("n,v\n");
    for i in 0..100 {
        text += &format!("{i},{}\n", i * 3);
    }
    text += "oops,7\n";
    let path = dir.write("f.csv", &text);
    let opts = CsvOptions::default().sample(100).blocksize(Some(64));
    let ddf = read_csv(&path, &opts).unwrap();
    assert!(ddf.npartitions() > 5);
    for (name, s) in schedulers() {
        assert_eq!(ddf.len().compute_with(&**s).unwrap(), 101, "{name}");
    }
    assert!(failure(&ddf).contains("| n "), "{}", failure(&ddf));
    // A row with a field too many fails the count of its partition, as it
    // fails polars' read.
    text += "1,2,3\n";
    let path = dir.write("ragged.csv", &text);
    let ddf = read_csv(&path, &opts).unwrap();
    let last = ddf.npartitions() - 1;
    let err = ddf.len().compute_with(&**sync()).unwrap_err();
    let msg = Error::find(&err)
        .map(|e| e.to_string())
        .unwrap_or_else(|| err.to_string());
    assert!(
        msg.contains("ragged.csv") && msg.contains(&format!("partition {last}")),
        "{msg}"
    );
}

#[test]
fn glob_of_files_is_their_concatenation() {
    let dir = TempDir::new("glob");
    let a = df!("n" => [1i64, 2, 3], "name" => ["x", "y", "z"]).unwrap();
    let b = df!("n" => [4i64, 5], "name" => ["u", "v"]).unwrap();
    write_frame(&dir, "part-0.csv", &a);
    write_frame(&dir, "part-1.csv", &b);
    let pattern = dir.join("part-*.csv");
    let ddf = read_csv(&pattern, &CsvOptions::default().blocksize(Some(10))).unwrap();
    let mut expected = a.clone();
    expected.vstack_mut(&b).unwrap();
    check_frame(&ddf, &expected);
    // One partition per file without a blocksize.
    let whole = read_csv(&pattern, &CsvOptions::default().blocksize(None)).unwrap();
    assert_eq!(whole.npartitions(), 2);
    check_frame(&whole, &expected);
}

#[test]
fn dtype_overrides_usecols_assume_missing_and_dates() {
    let dir = TempDir::new("opts");
    let path = dir.write(
        "f.csv",
        "id,when,price,tag\n1,2020-01-01 00:28:15,3,a\n2,2020-01-02 10:00:00,4,b\n3,2020-01-31 23:59:59,,c\n",
    );
    let opts = CsvOptions::default()
        .dtype("price", DataType::Float32)
        .usecols(&["tag", "id", "price"])
        .parse_dates(&["when"]);
    let ddf = read_csv(&path, &opts).unwrap();
    assert_eq!(ddf.columns(), ["id", "price", "tag"]);
    let expected = df!(
        "id" => [1i64, 2, 3],
        "price" => [Some(3f32), Some(4.0), None],
        "tag" => ["a", "b", "c"]
    )
    .unwrap();
    check_frame(&ddf, &expected);

    let ddf = read_csv(
        &path,
        &CsvOptions::default()
            .assume_missing(true)
            .parse_dates(&["when"]),
    )
    .unwrap();
    assert_eq!(ddf.schema().get("id"), Some(&DataType::Float64));
    assert_eq!(ddf.schema().get("price"), Some(&DataType::Float64));
    assert_eq!(
        ddf.schema().get("when"),
        Some(&DataType::Datetime(TimeUnit::Microseconds, None))
    );
    let expected = polars_read(&path, Some(ddf.schema().clone()));
    assert_eq!(expected.column("when").unwrap().null_count(), 0);
    check_frame(&ddf, &expected);
}

#[test]
fn missing_integers_later_in_the_file_stay_integers_with_nulls() {
    // The taxi file's pattern: VendorID is empty in the last rows.
    let dir = TempDir::new("nullint");
    let mut text = String::from("VendorID,fare\n");
    for i in 0..200 {
        text += &format!("{},{}.5\n", 1 + i % 2, i);
    }
    for i in 0..20 {
        text += &format!(",{i}.25\n");
    }
    let path = dir.write("f.csv", &text);
    let opts = CsvOptions::default().blocksize(Some(256)).sample(100);
    let ddf = read_csv(&path, &opts).unwrap();
    assert_eq!(ddf.schema().get("VendorID"), Some(&DataType::Int64));
    let expected = polars_read(&path, None);
    assert_eq!(expected.column("VendorID").unwrap().null_count(), 20);
    check_frame(&ddf, &expected);
}

#[test]
fn an_int_column_turning_float_or_text_later_fails_with_the_dtype_table() {
    let dir = TempDir::new("mismatch");
    let mut text = String::from("a,b,c\n");
    for i in 0..100 {
        text += &format!("{i},{i},x\n");
    }
    text += "1.5,abc,y\n";
    let path = dir.write("f.csv", &text);
    let ddf = read_csv(
        &path,
        &CsvOptions::default().sample(200).blocksize(Some(300)),
    )
    .unwrap();
    assert_eq!(ddf.schema().get("a"), Some(&DataType::Int64));
    let msg = failure(&ddf);
    assert!(msg.contains("Mismatched dtypes found"), "{msg}");
    assert!(
        msg.contains(&format!("partition {}", ddf.npartitions() - 1)),
        "{msg}"
    );
    assert!(msg.contains("f.csv"), "{msg}");
    assert!(msg.contains("| a      | Float64 | Int64    |"), "{msg}");
    assert!(msg.contains("| b      | String  | Int64    |"), "{msg}");
    assert!(!msg.contains("| c "), "{msg}");
    assert!(msg.contains(".dtype(\"a\", DataType::Float64)"), "{msg}");
    assert!(msg.contains(".dtype(\"b\", DataType::String)"), "{msg}");
    // The fix the message suggests works.
    let fixed = CsvOptions::default()
        .sample(200)
        .blocksize(Some(300))
        .dtype("a", DataType::Float64)
        .dtype("b", DataType::String);
    let ddf = read_csv(&path, &fixed).unwrap();
    let expected = polars_read(&path, Some(ddf.schema().clone()));
    check_frame(&ddf, &expected);
    // Columns left out by `usecols` are not parsed, so their mismatch does not matter.
    let only_c = read_csv(
        &path,
        &CsvOptions::default()
            .sample(200)
            .blocksize(Some(300))
            .usecols(&["c"]),
    )
    .unwrap();
    check_frame(&only_c, &polars_read(&path, None).select(["c"]).unwrap());
    // An int column turning float only suggests assume_missing too.
    let path = dir.write(
        "g.csv",
        &(String::from("a\n") + &"1\n".repeat(100) + "2.5\n"),
    );
    let msg = failure(&read_csv(&path, &CsvOptions::default().sample(50)).unwrap());
    assert!(msg.contains("assume_missing(true)"), "{msg}");
    let ok = read_csv(
        &path,
        &CsvOptions::default().sample(50).assume_missing(true),
    )
    .unwrap();
    check_frame(&ok, &polars_read(&path, None));
}

#[test]
fn quoted_newlines_inside_a_block_parse_and_across_blocks_are_refused() {
    let dir = TempDir::new("quotes");
    let path = dir.write("f.csv", "a,b\n1,\"x\ny\"\n2,z\n");
    let whole = read_csv(&path, &CsvOptions::default()).unwrap();
    check_frame(&whole, &polars_read(&path, None));
    let cut = read_csv(&path, &CsvOptions::default().blocksize(Some(8))).unwrap();
    let msg = failure(&cut);
    assert!(
        msg.contains("quoted field") && msg.contains("blocksize: None"),
        "{msg}"
    );
}

#[test]
fn bad_inputs_are_typed_errors() {
    let dir = TempDir::new("bad");
    let missing = dir.join("nope.csv");
    assert!(matches!(
        read_csv(&missing, &CsvOptions::default()),
        Err(Error::NoFiles { .. })
    ));
    assert!(matches!(
        read_csv(&dir.join("*.nothing"), &CsvOptions::default()),
        Err(Error::NoFiles { .. })
    ));
    assert!(matches!(
        read_csv(&dir.join("[a.csv"), &CsvOptions::default()),
        Err(Error::Pattern { .. })
    ));
    let empty = dir.write("empty.csv", "");
    let err = read_csv(&empty, &CsvOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::EmptyFile { .. }) && err.to_string().contains("empty.csv"),
        "{err}"
    );
    let header = dir.write("header.csv", "a,b\n");
    let err = read_csv(&header, &CsvOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::NoRowsToInfer { .. }) && err.to_string().contains("header.csv"),
        "{err}"
    );
    // With every dtype given, a header-only file is an empty frame.
    let opts = CsvOptions::default()
        .dtype("a", DataType::Int64)
        .dtype("b", DataType::String);
    let ddf = read_csv(&header, &opts).unwrap();
    assert_eq!(ddf.compute_with(&**sync()).unwrap().height(), 0);
    let good = dir.write("good.csv", "a,b\n1,2\n");
    let err = read_csv(&good, &CsvOptions::default().usecols(&["a", "zz"])).unwrap_err();
    assert!(
        matches!(err, Error::UnknownColumn { .. }) && err.to_string().contains("zz"),
        "{err}"
    );
    let err = read_csv(&good, &CsvOptions::default().dtype("q", DataType::Int64)).unwrap_err();
    assert!(err.to_string().contains("`q`"), "{err}");
    assert!(matches!(
        read_csv(&good, &CsvOptions::default().blocksize(Some(0))),
        Err(Error::InvalidArgument { .. })
    ));
    // A ragged row in the sample fails read_csv; later, its partition.
    let ragged = dir.write("ragged.csv", "a,b\n1,2\n3,4,5\n");
    let err = read_csv(&ragged, &CsvOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::Csv { .. }) && err.to_string().contains("ragged.csv"),
        "{err}"
    );
    let msg = failure(&read_csv(&ragged, &CsvOptions::default().sample(8)).unwrap());
    assert!(
        msg.contains("ragged.csv") && msg.contains("partition 0") && msg.contains("more fields"),
        "{msg}"
    );
    let other = dir.write("other.csv", "a,c\n1,2\n");
    let _ = other;
    let err = read_csv(&dir.join("[go]*.csv"), &CsvOptions::default()).unwrap_err();
    assert!(err.to_string().contains("header"), "{err}");
}

/// A file of columns `k` (`k0` .. `k{keys - 1}`), `v` and `bad`, read in
/// several partitions, with polars' read of the whole file. `bad` is
/// inferred Int64 from the sample and turns to text at the end: reading it
/// fails, so a result proves it was not parsed.
fn bad_at_the_end(dir: &TempDir, keys: usize) -> (DDF, DataFrame) {
    let mut text = String::from("k,v,bad\n");
    for i in 0..200 {
        text += &format!("k{},{i},{i}\n", i % keys);
    }
    text += "k0,7,oops\n";
    let path = dir.write("f.csv", &text);
    let opts = CsvOptions::default().sample(200).blocksize(Some(500));
    let ddf = read_csv(&path, &opts).unwrap();
    assert!(ddf.npartitions() > 3);
    (ddf, polars_read(&path, None))
}

#[test]
fn columns_of_a_fresh_read_are_the_only_ones_parsed() {
    let dir = TempDir::new("projection");
    let (ddf, whole) = bad_at_the_end(&dir, 3);

    let v = ddf.column("v").unwrap();
    check_series(&v, whole.column("v").unwrap().as_materialized_series());
    check_frame(
        &ddf.select(&["v", "k"]).unwrap(),
        &whole.select(["v", "k"]).unwrap(),
    );
    let means = ddf.groupby(&["k"]).unwrap().mean("v").unwrap();
    let expected = whole
        .clone()
        .lazy()
        .group_by([col("k")])
        .agg([col("v").mean()])
        .sort(["k"], Default::default())
        .collect()
        .unwrap();
    check_frame(&means, &expected);

    // Anything applied first (here a filter) reads every column: the
    // mismatch of `bad` then fails the task, as Dask's would.
    let filtered = ddf.filter(col("v").gt(lit(-1))).unwrap();
    let msg = failure(&filtered.select(&["v"]).unwrap());
    assert!(msg.contains("Mismatched dtypes found"), "{msg}");
    // So does the whole frame.
    assert!(failure(&ddf).contains("| bad "), "{}", failure(&ddf));
}

#[test]
fn len_and_merges_of_a_fresh_read_parse_only_the_columns_they_need() {
    let dir = TempDir::new("projection-merge");
    let (ddf, whole) = bad_at_the_end(&dir, 4);
    let whole = whole.select(["k", "v"]).unwrap();
    // k3 has no zone: an inner merge drops its rows.
    let zones = df!("k" => ["k0", "k1", "k2"], "zone" => [10i64, 20, 30]).unwrap();
    let small = DDF::from_polars(zones.clone(), 1).unwrap();
    let joined = whole
        .clone()
        .lazy()
        .join(
            zones.lazy(),
            [col("k")],
            [col("k")],
            JoinArgs::new(JoinType::Inner),
        )
        .collect()
        .unwrap();

    let merged = ddf
        .merge(&small, &["k"], dask_dataframe::How::Inner)
        .unwrap();
    for (name, s) in schedulers() {
        let rows = ddf.len().compute_with(&**s).unwrap();
        assert_eq!(rows, whole.height(), "{name}: len");
        let rows = merged.len().compute_with(&**s).unwrap();
        assert_eq!(rows, joined.height(), "{name}: merged len");
    }
    check_frame_unordered(
        &merged.select(&["v", "zone"]).unwrap(),
        &joined.select(["v", "zone"]).unwrap(),
    );
    let total = merged.column("zone").unwrap().sum().unwrap();
    let total = total.compute_with(&**sync()).unwrap();
    let want: i64 = joined.column("zone").unwrap().i64().unwrap().sum().unwrap();
    assert_eq!(total.value(), &AnyValue::Int64(want));
    // The whole merged frame needs `bad`: its mismatch fails the task.
    assert!(failure(&merged).contains("| bad "), "{}", failure(&merged));
}
