//! `sort_values`, `set_index` and `loc`, checked against polars' stable sort
//! and filter on the whole frame.

use dask_core::{Collection, Scheduler};
use dask_dataframe::{DataFrame as DDF, Divisions, Error};
use polars::prelude::*;
use proptest::prelude::*;

use crate::common::*;

fn polars_sort(df: &DataFrame, by: &str, descending: bool) -> DataFrame {
    df.sort(
        [by],
        SortMultipleOptions::default()
            .with_order_descending(descending)
            .with_nulls_last(true)
            .with_maintain_order(true),
    )
    .unwrap()
}

/// Every partition of `x`, computed on `s`.
fn partitions(x: &DDF, s: &dyn Scheduler) -> Vec<DataFrame> {
    let keys = x.keys();
    s.compute(&x.graph().to_graph(), &keys)
        .unwrap()
        .into_iter()
        .map(|v| v.downcast_ref::<DataFrame>().unwrap().clone())
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sort_values_is_polars_stable_sort((df, n) in case(), descending in any::<bool>()) {
        let ddf = DDF::from_polars(df.clone(), n).unwrap();
        for by in ["k", "i", "x", "s", "b"] {
            let expected = polars_sort(&df, by, descending);
            let has_values = df.column(by).unwrap().null_count() < df.height();
            for (name, s) in schedulers() {
                let sorted = ddf.sort_values_with(by, descending, &**s).unwrap();
                prop_assert_eq!(sorted.npartitions(), if has_values { n } else { 1 });
                prop_assert!(!sorted.known_divisions());
                let got = sorted.compute_with(&**s).unwrap();
                // Exact row order: partitions hold consecutive value ranges.
                assert_frames_eq(&got, &expected, &format!("{name}: sort_values({by}, {descending})"));
            }
        }
    }

    #[test]
    fn sort_values_multi_is_polars_multi_column_sort(
        (df, n) in case(),
        flags in prop::collection::vec(any::<bool>(), 3),
    ) {
        let ddf = DDF::from_polars(df.clone(), n).unwrap();
        // A group key first (many ties), then columns with nulls.
        for by in [["k", "s", "i"], ["s", "x", "b"], ["b", "k", "x"]] {
            let expected = df
                .sort(
                    by,
                    SortMultipleOptions::default()
                        .with_order_descending_multi(flags.clone())
                        .with_nulls_last(true)
                        .with_maintain_order(true),
                )
                .unwrap();
            for (name, s) in schedulers() {
                let sorted = ddf.sort_values_multi_with(&by, &flags, &**s).unwrap();
                let got = sorted.compute_with(&**s).unwrap();
                assert_frames_eq(&got, &expected, &format!("{name}: sort_values({by:?}, {flags:?})"));
            }
        }
    }

    #[test]
    fn set_index_gives_divisions_that_bound_every_partition((df, n) in case(), lo in -1100i64..1100, width in 0i64..1500) {
        let ddf = DDF::from_polars(df.clone(), n).unwrap();
        let sorted = polars_sort(&df, "i", false);
        for (name, s) in schedulers() {
            let indexed = ddf.set_index_with("i", &**s).unwrap();
            let got = indexed.compute_with(&**s).unwrap();
            assert_frames_eq(&got, &sorted, &format!("{name}: set_index"));
            let values = df.column("i").unwrap().i64().unwrap().clone();
            let Divisions::Index { column, bounds } = indexed.divisions().clone() else {
                prop_assert_eq!(values.null_count(), values.len(), "{}: no divisions", name);
                prop_assert_eq!(indexed.npartitions(), 1);
                continue;
            };
            prop_assert_eq!(column.as_str(), "i");
            prop_assert_eq!(indexed.index(), Some("i"));
            prop_assert_eq!(bounds.len(), indexed.npartitions() + 1);
            let b: Vec<i64> = bounds.iter().map(|s| s.value().extract::<i64>().unwrap()).collect();
            prop_assert!(b.windows(2).all(|w| w[0] <= w[1]), "{:?}", b);
            prop_assert_eq!(Some(b[0]), values.min());
            prop_assert_eq!(Some(b[b.len() - 1]), values.max());
            let parts = partitions(&indexed, &**s);
            let last = parts.len() - 1;
            for (p, part) in parts.iter().enumerate() {
                for v in part.column("i").unwrap().i64().unwrap().iter() {
                    match v {
                        Some(v) => prop_assert!(
                            b[p] <= v && (v < b[p + 1] || (p == last && v == b[p + 1])),
                            "{}: {} in partition {} of {:?}", name, v, p, b
                        ),
                        None => prop_assert_eq!(p, last, "{}: a null outside the last partition", name),
                    }
                }
            }
            // loc: inclusive range selection, against polars' filter of the sorted frame.
            let hi = lo + width;
            let in_range = |e: Expr| sorted.clone().lazy().filter(e).collect().unwrap();
            for (l, h, expected) in [
                (Some(lo), Some(hi), in_range(col("i").gt_eq(lit(lo)).and(col("i").lt_eq(lit(hi))))),
                (Some(lo), None, in_range(col("i").gt_eq(lit(lo)))),
                (None, Some(hi), in_range(col("i").lt_eq(lit(hi)))),
                (None, None, in_range(col("i").is_not_null())),
            ] {
                let sel = indexed.loc(l.map(Scalar::from), h.map(Scalar::from)).unwrap();
                prop_assert!(sel.npartitions() <= indexed.npartitions());
                prop_assert_eq!(sel.index(), Some("i"));
                let got = sel.compute_with(&**s).unwrap();
                assert_frames_eq(&got, &expected, &format!("{name}: loc({l:?}, {h:?})"));
            }
            // A filter keeps the index divisions; a with_columns drops them.
            prop_assert!(indexed.filter(col("x").gt(lit(0.0))).unwrap().index() == Some("i"));
            prop_assert!(indexed.select(&["x"]).unwrap().index().is_none());
            prop_assert!(indexed.with_columns(vec![col("x")]).unwrap().index().is_none());
        }
    }
}

/// On a larger frame the sampled boundaries give partitions of roughly equal
/// size, and `loc` of a narrow range reads a single partition.
#[test]
fn set_index_balances_partitions_and_loc_prunes() {
    let n = 10_000i64;
    // A permutation of 0..n (multiplication by a unit mod n).
    let df = df!("v" => (0..n).map(|i| (i * 7919) % n).collect::<Vec<_>>(),
                 "w" => (0..n).collect::<Vec<_>>())
    .unwrap();
    let ddf = DDF::from_polars(df.clone(), 8).unwrap();
    let indexed = ddf.set_index_with("v", &**sync()).unwrap();
    let parts = partitions(&indexed, &**sync());
    for p in &parts {
        // 1250 rows each if exact; sampling keeps them within 10%.
        assert!((1125..=1375).contains(&p.height()), "{}", p.height());
    }
    let sel = indexed
        .loc(Some(Scalar::from(100i64)), Some(Scalar::from(120i64)))
        .unwrap();
    assert_eq!(sel.npartitions(), 1);
    let got = sel.compute_with(&**sync()).unwrap();
    let expected = polars_sort(&df, "v", false)
        .lazy()
        .filter(col("v").gt_eq(lit(100i64)).and(col("v").lt_eq(lit(120i64))))
        .collect()
        .unwrap();
    assert_frames_eq(&got, &expected, "loc");
}

#[test]
fn bad_sorts_are_typed_errors() {
    let ddf =
        DDF::from_polars(df!("a" => [3i64, 1, 2], "s" => ["x", "y", "z"]).unwrap(), 2).unwrap();
    let s = &**sync();
    for err in [
        ddf.sort_values_with("nope", false, s).unwrap_err(),
        ddf.set_index_with("nope", s).unwrap_err(),
    ] {
        assert!(matches!(err, Error::UnknownColumn { .. }), "{err}");
        assert!(err.to_string().contains("`nope`"), "{err}");
    }
    for err in [
        ddf.sort_values_multi_with(&[], &[false], s).unwrap_err(),
        ddf.sort_values_multi_with(&["a", "s"], &[false, true, false], s)
            .unwrap_err(),
    ] {
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    }
    let err = ddf
        .sort_values_multi_with(&["a", "nope"], &[false], s)
        .unwrap_err();
    assert!(err.to_string().contains("`nope`"), "{err}");
    // One flag for all columns.
    let got = ddf
        .sort_values_multi_with(&["s", "a"], &[true], s)
        .unwrap()
        .compute_with(s)
        .unwrap();
    assert_eq!(
        got.column("a").unwrap().i64().unwrap().to_vec(),
        vec![Some(2), Some(1), Some(3)]
    );
    let err = ddf.loc(None, Some(Scalar::from(2i64))).unwrap_err();
    assert!(err.to_string().contains("set_index"), "{err}");
    let indexed = ddf.set_index_with("a", s).unwrap();
    let bad = Scalar::new(DataType::String, AnyValue::StringOwned("zz".into()));
    let err = indexed.loc(Some(bad), None).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    let null = Scalar::null(DataType::Int64);
    assert!(indexed.loc(None, Some(null)).is_err());
    // An Int32 bound casts to the Int64 index.
    let got = indexed
        .loc(Some(Scalar::from(2i32)), None)
        .unwrap()
        .compute_with(s)
        .unwrap();
    assert_eq!(
        got.column("a").unwrap().i64().unwrap().to_vec(),
        vec![Some(2), Some(3)]
    );
}
