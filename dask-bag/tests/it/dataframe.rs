//! `to_dataframe` / `to_dataframe_json` (feature `dataframe`) against polars
//! frames built from the whole data, over random partitionings, on every
//! scheduler; and their bad inputs.

use std::sync::Arc;

use dask_bag::{Bag, Error};
use dask_core::{Collection, Scheduler};
use dask_dataframe::polars::prelude::*;
use proptest::prelude::*;
use serde_json::{json, Map, Value as Json};

use crate::common::check;

/// A plain struct, as a bag of parsed log records would hold.
#[derive(Clone, Debug)]
struct Rec {
    id: i64,
    name: String,
    score: Option<f64>,
}

/// The conversion under test: a partition of records into a frame.
fn recs_frame(rows: Vec<Rec>) -> PolarsResult<DataFrame> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
    let scores: Vec<Option<f64>> = rows.iter().map(|r| r.score).collect();
    df!("id" => ids, "name" => names, "score" => scores)
}

fn recs() -> impl Strategy<Value = (Vec<Rec>, usize)> {
    let rec = (
        any::<i64>(),
        "[a-z]{0,6}",
        proptest::option::of(-1e6f64..1e6),
    )
        .prop_map(|(id, name, score)| Rec { id, name, score });
    (proptest::collection::vec(rec, 0..60), 1usize..12)
}

fn schema(fields: &[(&str, DataType)]) -> SchemaRef {
    Arc::new(Schema::from_iter(
        fields
            .iter()
            .map(|(n, d)| (PlSmallStr::from(*n), d.clone())),
    ))
}

/// One JSON record: each field absent, null or a value.
type JsonRow = (
    Option<Option<i64>>,
    Option<Option<f64>>,
    Option<Option<String>>,
    Option<Option<bool>>,
);

fn json_rows() -> impl Strategy<Value = (Vec<JsonRow>, usize)> {
    use proptest::option::of;
    let row = (
        of(of(any::<i64>())),
        of(of(-1e9f64..1e9)),
        of(of("[a-z ]{0,5}")),
        of(of(any::<bool>())),
    );
    (proptest::collection::vec(row, 0..50), 1usize..10)
}

fn record(row: &JsonRow) -> Json {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Json>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    };
    put("a", row.0.map(|v| v.map_or(Json::Null, Json::from)));
    put("b", row.1.map(|v| v.map_or(Json::Null, Json::from)));
    put("c", row.2.clone().map(|v| v.map_or(Json::Null, Json::from)));
    put("d", row.3.map(|v| v.map_or(Json::Null, Json::from)));
    Json::Object(m)
}

/// The oracle: the columns of the whole data, absent and null both null.
fn json_oracle(rows: &[JsonRow]) -> DataFrame {
    let a: Vec<Option<i64>> = rows.iter().map(|r| r.0.flatten()).collect();
    let b: Vec<Option<f64>> = rows.iter().map(|r| r.1.flatten()).collect();
    let c: Vec<Option<String>> = rows.iter().map(|r| r.2.clone().flatten()).collect();
    let d: Vec<Option<bool>> = rows.iter().map(|r| r.3.flatten()).collect();
    df!("a" => a, "b" => b, "c" => c, "d" => d).unwrap()
}

fn json_meta() -> SchemaRef {
    schema(&[
        ("a", DataType::Int64),
        ("b", DataType::Float64),
        ("c", DataType::String),
        ("d", DataType::Boolean),
    ])
}

dask_testing::scheduler_test! {
    fn structs_with_inferred_meta(s: &dyn Scheduler) {
        check(recs(), |(data, n)| {
            let bag = Bag::from_sequence(data.clone(), n).unwrap();
            // A pending step is fused into the conversion's task.
            let kept = bag.filter(|r| r.id % 3 != 0);
            let ddf = kept.to_dataframe(recs_frame, None).unwrap();
            prop_assert_eq!(ddf.npartitions(), n);
            prop_assert_eq!(ddf.columns(), ["id", "name", "score"]);
            let out = ddf.compute_with(s).unwrap();
            let whole: Vec<Rec> = data.into_iter().filter(|r| r.id % 3 != 0).collect();
            let oracle = recs_frame(whole).unwrap();
            prop_assert!(out.equals_missing(&oracle), "{out}\nvs\n{oracle}");
            Ok(())
        });
    }

    fn tuples_with_given_meta(s: &dyn Scheduler) {
        check(
            (proptest::collection::vec(("[a-z]{1,4}", any::<i32>()), 0..40), 1usize..8),
            |(data, n)| {
                let meta = schema(&[("word", DataType::String), ("n", DataType::Int64)]);
                let to_frame = |rows: Vec<(String, i64)>| {
                    let (w, c): (Vec<String>, Vec<i64>) = rows.into_iter().unzip();
                    df!("word" => w, "n" => c)
                };
                let bag = Bag::from_sequence(data.clone(), n)
                    .unwrap()
                    .map(|(w, c)| (w, i64::from(c) * 2));
                let ddf = bag.to_dataframe(to_frame, Some(meta.clone())).unwrap();
                prop_assert_eq!(ddf.schema(), &meta);
                let out = ddf.compute_with(s).unwrap();
                let oracle =
                    to_frame(data.into_iter().map(|(w, c)| (w, i64::from(c) * 2)).collect()).unwrap();
                prop_assert!(out.equals_missing(&oracle), "{out}\nvs\n{oracle}");
                Ok(())
            },
        );
    }

    fn json_records_with_meta(s: &dyn Scheduler) {
        check(json_rows(), |(rows, n)| {
            let records: Vec<Json> = rows.iter().map(record).collect();
            let bag = Bag::from_sequence(records, n).unwrap();
            let ddf = bag.to_dataframe_json_with(Some(json_meta()), s).unwrap();
            prop_assert_eq!(ddf.npartitions(), n);
            let out = ddf.compute_with(s).unwrap();
            let oracle = json_oracle(&rows);
            prop_assert!(out.equals_missing(&oracle), "{out}\nvs\n{oracle}");
            Ok(())
        });
    }

    fn json_inferred_from_the_first_partition_with_records(s: &dyn Scheduler) {
        // More partitions than records: the first ones are empty and skipped.
        // Keys in alphabetical order: the column order is the same whether
        // serde_json keeps insertion order (`preserve_order`) or sorts keys.
        let records = vec![
            json!({"a": 1, "b": 2, "c": "x"}),
            json!({"a": 2, "b": 2.5, "d": true}),
            json!({"a": null, "c": "y"}),
        ];
        for n in [1, 2, 5] {
            // With 5 partitions, partition 0 is empty and partition 1 holds
            // record 0 alone.
            let bag = Bag::from_sequence(records.clone(), n).unwrap();
            let result = bag.to_dataframe_json_with(None, s);
            if n == 2 {
                // Partition 0 holds only the first record: `b` is inferred
                // Int64, and the second record's 2.5 fails its partition.
                let ddf = result.unwrap();
                assert_eq!(ddf.columns(), ["a", "b", "c"]);
                let err = ddf.compute_with(s).unwrap_err();
                assert!(
                    matches!(Error::find(&err), Some(Error::JsonRecord { partition: 1, record: 0, .. })),
                    "{err}"
                );
                continue;
            }
            let ddf = result.unwrap();
            let expected_meta = if n == 1 {
                schema(&[
                    ("a", DataType::Int64),
                    ("b", DataType::Float64),
                    ("c", DataType::String),
                    ("d", DataType::Boolean),
                ])
            } else {
                // n = 5: the first partition with records holds only record 0.
                schema(&[
                    ("a", DataType::Int64),
                    ("b", DataType::Int64),
                    ("c", DataType::String),
                ])
            };
            assert_eq!(ddf.schema(), &expected_meta, "n = {n}");
            if n == 1 {
                let out = ddf.compute_with(s).unwrap();
                let oracle = df!(
                    "a" => [Some(1i64), Some(2), None],
                    "b" => [Some(2.0f64), Some(2.5), None],
                    "c" => [Some("x"), None, Some("y")],
                    "d" => [None, Some(true), None]
                )
                .unwrap();
                assert!(out.equals_missing(&oracle), "{out}\nvs\n{oracle}");
            }
        }
    }

    fn bad_json_records_fail_their_partition(s: &dyn Scheduler) {
        let meta = json_meta();
        let cases = [
            (json!([1, 2]), "an array where an object"),
            (json!({"a": 1, "zzz": 2}), "key `zzz` is not a column"),
            (json!({"a": 1.5}), "column `a` is i64, but the record has a number"),
            (json!({"c": 3}), "column `c` is str, but the record has an integer"),
            (json!({"d": "yes"}), "column `d` is bool, but the record has a string"),
        ];
        for (bad, message) in cases {
            let records = vec![json!({"a": 1}), json!({"b": 2}), bad, json!({})];
            let bag = Bag::from_sequence(records, 2).unwrap();
            let err = bag
                .to_dataframe_json_with(Some(meta.clone()), s)
                .unwrap()
                .compute_with(s)
                .unwrap_err();
            match Error::find(&err) {
                Some(Error::JsonRecord { partition: 1, record: 0, problem }) => {
                    assert!(problem.contains(message), "{problem} / {message}")
                }
                _ => panic!("expected JsonRecord in partition 1, record 0, got {err}"),
            }
        }
    }

    fn a_frame_that_disagrees_with_meta_fails_its_partition(s: &dyn Scheduler) {
        // On an empty partition the function gives one column, on others two.
        let sneaky = |rows: Vec<i64>| {
            if rows.is_empty() {
                df!("x" => rows)
            } else {
                let y = rows.clone();
                df!("x" => rows, "y" => y)
            }
        };
        let ddf = Bag::from_sequence(vec![1i64, 2, 3], 2)
            .unwrap()
            .to_dataframe(sneaky, None)
            .unwrap();
        assert_eq!(ddf.columns(), ["x"]);
        let err = ddf.compute_with(s).unwrap_err();
        assert!(
            matches!(
                dask_dataframe::Error::find(&err),
                Some(dask_dataframe::Error::NotAligned { .. })
            ),
            "{err}"
        );
        // A pipeline error reaches the caller as itself.
        let ddf = Bag::from_sequence(vec![String::from("{\"x\": 1}"), String::from("nope")], 1)
            .unwrap()
            .parse_json()
            .to_dataframe_json_with(Some(schema(&[("x", DataType::Int64)])), s)
            .unwrap();
        let err = ddf.compute_with(s).unwrap_err();
        assert!(
            matches!(Error::find(&err), Some(Error::Json { record: 1, .. })),
            "{err}"
        );
    }
}

#[test]
fn conversion_failing_on_empty_needs_meta() {
    let picky = |rows: Vec<i64>| -> PolarsResult<DataFrame> {
        if rows.is_empty() {
            Err(PolarsError::NoData("no rows".into()))
        } else {
            df!("x" => rows)
        }
    };
    let bag = Bag::from_sequence(vec![1i64, 2, 3], 1).unwrap();
    let err = bag.to_dataframe(picky, None).unwrap_err();
    assert!(matches!(&err, Error::Frame { .. }), "{err}");
    assert!(err.to_string().contains("pass `meta`"), "{err}");
    let ddf = bag
        .to_dataframe(picky, Some(schema(&[("x", DataType::Int64)])))
        .unwrap();
    let s = dask_sync_scheduler::SyncScheduler::new();
    let out = ddf.compute_with(&s).unwrap();
    assert!(out.equals_missing(&df!("x" => [1i64, 2, 3]).unwrap()));
    // The same function on an empty partition fails that partition's task.
    let ddf = Bag::from_sequence(vec![1i64], 2)
        .unwrap()
        .to_dataframe(picky, Some(schema(&[("x", DataType::Int64)])))
        .unwrap();
    let err = ddf.compute_with(&s).unwrap_err();
    assert!(
        matches!(Error::find(&err), Some(Error::Frame { what, .. }) if what == "partition 0"),
        "{err}"
    );
}

#[test]
fn json_inference_errors() {
    let s = dask_sync_scheduler::SyncScheduler::new();
    let infer = |records: Vec<Json>, n: usize| {
        Bag::from_sequence(records, n)
            .unwrap()
            .to_dataframe_json_with(None, &s)
            .unwrap_err()
    };
    let cases = [
        (infer(vec![], 3), "none of the 3 partitions has a record"),
        (
            infer(vec![json!({"a": null}), json!({"a": null, "b": 1})], 1),
            "key `a` is null in every record",
        ),
        (infer(vec![json!({"a": [1]})], 1), "a nested value"),
        (
            infer(vec![json!({"a": 1}), json!({"a": "x"})], 1),
            "key `a` holds i64 values and, in record 1, a str value",
        ),
        (
            infer(vec![json!(7)], 1),
            "record 0: an integer where an object",
        ),
    ];
    for (err, message) in cases {
        assert!(matches!(&err, Error::JsonInference { .. }), "{err}");
        assert!(err.to_string().contains(message), "{err} / {message}");
    }
    // A meta dtype JSON values cannot fill.
    let err = Bag::from_sequence(vec![json!({"a": 1})], 1)
        .unwrap()
        .to_dataframe_json(Some(schema(&[("a", DataType::Int32)])))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::InvalidArgument {
                argument: "meta",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("column `a` has dtype i32"),
        "{err}"
    );
}
