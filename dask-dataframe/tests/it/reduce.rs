//! Reductions, unique, value_counts, drop_duplicates and groupby, checked
//! against polars on the whole frame.

use std::collections::HashMap;

use dask_core::Collection;
use dask_dataframe::{Agg, DataFrame as DDF};
use polars::prelude::*;
use proptest::prelude::*;

use crate::common::*;

fn scalar_eq(got: &Scalar, expected: &Scalar, ctx: &str) {
    assert_eq!(got.dtype(), expected.dtype(), "{ctx}: dtype");
    match (
        got.value().extract::<f64>(),
        expected.value().extract::<f64>(),
    ) {
        (Some(g), Some(e)) if got.dtype().is_float() => {
            assert!(
                (g - e).abs() <= REL_TOL * (1.0 + g.abs().max(e.abs())),
                "{ctx}: {g} != {e}"
            )
        }
        _ => assert_eq!(got.value(), expected.value(), "{ctx}"),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn frame_reductions((df, n) in case(), split_every in 2usize..5) {
        let df = df.select(["k", "i", "x"]).unwrap();
        let ddf = DDF::from_polars(df.clone(), n).unwrap().with_split_every(split_every).unwrap();
        let lf = || df.clone().lazy();
        check_frame(&ddf.sum().unwrap(), &lf().sum().collect().unwrap());
        check_frame(&ddf.mean().unwrap(), &lf().mean().collect().unwrap());
        check_frame(&ddf.min().unwrap(), &lf().min().collect().unwrap());
        check_frame(&ddf.max().unwrap(), &lf().max().collect().unwrap());
        let counts = lf().select([col("k").count(), col("i").count(), col("x").count()]).collect().unwrap();
        check_frame(&ddf.count().unwrap(), &counts);
        check_frame(&ddf.std().unwrap(), &lf().std(1).collect().unwrap());
    }

    #[test]
    fn series_reductions((df, n) in case()) {
        let ddf = DDF::from_polars(df.clone(), n).unwrap();
        for c in ["i", "x", "s"] {
            let s = df.column(c).unwrap().as_materialized_series().clone();
            let ds = ddf.column(c).unwrap();
            let mut cases = vec![
                ("min", ds.min().unwrap(), s.min_reduce().unwrap()),
                ("max", ds.max().unwrap(), s.max_reduce().unwrap()),
                ("count", ds.count().unwrap(), Scalar::new_idxsize((s.len() - s.null_count()) as IdxSize)),
            ];
            if c != "s" {
                cases.push(("sum", ds.sum().unwrap(), s.sum_reduce().unwrap()));
                cases.push(("mean", ds.mean().unwrap(), s.mean_reduce().unwrap()));
                cases.push(("std", ds.std().unwrap(), s.std_reduce(1).unwrap()));
            }
            for (what, lazy, expected) in cases {
                for (name, sch) in schedulers() {
                    let got = lazy.compute_with(&**sch).unwrap();
                    scalar_eq(&got, &expected, &format!("{name}: {what}({c})"));
                }
            }
            prop_assert_eq!(ds.len().compute_with(&**sync()).unwrap(), s.len());
            for (name, sch) in schedulers() {
                prop_assert_eq!(ds.nunique().unwrap().compute_with(&**sch).unwrap(), s.n_unique().unwrap(), "{}", name);
            }
        }
    }

    #[test]
    fn unique_value_counts_drop_duplicates((df, n) in case()) {
        let ddf = DDF::from_polars(df.clone(), n).unwrap();
        for c in ["k", "s", "b"] {
            let s = df.column(c).unwrap().as_materialized_series();
            let u = ddf.column(c).unwrap().unique().unwrap();
            check_frame_unordered(&u.to_frame(), &s.unique().unwrap().into_frame());
            // value_counts against a HashMap count (an independent oracle).
            let mut counts: HashMap<String, u32> = HashMap::new();
            for v in s.iter() {
                *counts.entry(v.to_string()).or_default() += 1;
            }
            let vc = ddf.column(c).unwrap().value_counts().unwrap();
            for (name, sch) in schedulers() {
                let got = vc.compute_with(&**sch).unwrap();
                prop_assert_eq!(got.get_column_names(), vec![c, "count"]);
                let cnt = got.column("count").unwrap().idx().unwrap().clone();
                prop_assert!(cnt.into_no_null_iter().collect::<Vec<_>>().windows(2).all(|w| w[0] >= w[1]), "{}: not sorted", name);
                let vals = got.column(c).unwrap().as_materialized_series();
                let cnt = got.column("count").unwrap().idx().unwrap();
                let got_map: HashMap<String, u32> = vals.iter().zip(cnt.into_no_null_iter()).map(|(v, n)| (v.to_string(), n)).collect();
                prop_assert_eq!(&got_map, &counts, "{}", name);
            }
        }
        let dd = ddf.drop_duplicates(Some(&["k", "s"])).unwrap().select(&["k", "s"]).unwrap();
        let expected = df.select(["k", "s"]).unwrap().unique_stable(None, UniqueKeepStrategy::First, None).unwrap();
        check_frame_unordered(&dd, &expected);
        let all = ddf.drop_duplicates(None).unwrap();
        check_frame_unordered(&all, &df.unique_stable(None, UniqueKeepStrategy::First, None).unwrap());
    }

    #[test]
    fn groupby_aggregations((df, n) in case(), split_every in 2usize..4) {
        let ddf = DDF::from_polars(df.clone(), n).unwrap().with_split_every(split_every).unwrap();
        let aggs = [
            ("x", Agg::Sum), ("x", Agg::Mean), ("i", Agg::Min), ("i", Agg::Max),
            ("s", Agg::Count), ("i", Agg::Mean), ("x", Agg::Std),
            ("s", Agg::First), ("b", Agg::Last),
        ];
        let got = ddf.groupby(&["k"]).unwrap().agg(&aggs).unwrap();
        let expected = df.clone().lazy().group_by([col("k")]).agg([
            col("x").sum().alias("x_sum"),
            col("x").mean().alias("x_mean"),
            col("i").min().alias("i_min"),
            col("i").max().alias("i_max"),
            col("s").count().alias("s_count"),
            col("i").mean().alias("i_mean"),
            col("x").std(1).alias("x_std"),
            col("s").first().alias("s_first"),
            col("b").last(),
        ]).sort(["k"], SortMultipleOptions::default()).collect().unwrap();
        check_frame(&got, &expected);
        // Two keys, one aggregation through the shorthand.
        let got = ddf.groupby(&["k", "b"]).unwrap().mean("x").unwrap();
        let expected = df.clone().lazy().group_by([col("k"), col("b")]).agg([col("x").mean()])
            .sort(["k", "b"], SortMultipleOptions::default()).collect().unwrap();
        check_frame(&got, &expected);
    }
}

#[test]
fn bad_reduction_arguments_are_typed_errors() {
    let df = df!("k" => [1i64, 2], "s" => ["a", "b"]).unwrap();
    let ddf = DDF::from_polars(df, 2).unwrap();
    assert!(ddf.with_split_every(1).is_err());
    let err = ddf.groupby(&["nope"]).unwrap_err().to_string();
    assert!(err.contains("nope") && err.contains("\"k\""), "{err}");
    let err = ddf
        .groupby(&["k"])
        .unwrap()
        .agg(&[("zz", Agg::Sum)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("zz"), "{err}");
    assert!(ddf.groupby(&[]).is_err());
    assert!(ddf.groupby(&["k"]).unwrap().agg(&[]).is_err());
    let err = ddf
        .groupby(&["k"])
        .unwrap()
        .agg(&[("k", Agg::Sum)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("group key"), "{err}");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn merge_with_a_one_partition_table((df, n) in case(), m in 1usize..4) {
        use dask_dataframe::How;
        let lookup = df!("k" => [0i64, 1, 2, 5], "label" => ["zero", "one", "two", "five"]).unwrap();
        let ddf = DDF::from_polars(df.clone(), n).unwrap();
        let small = DDF::from_polars(lookup.clone(), 1).unwrap();
        for (how, jt) in [(How::Inner, JoinType::Inner), (How::Left, JoinType::Left)] {
            let expected = df.clone().lazy()
                .join(lookup.clone().lazy(), [col("k")], [col("k")], JoinArgs::new(jt))
                .collect().unwrap();
            check_frame_unordered(&ddf.merge(&small, &["k"], how).unwrap(), &expected);
        }
        // The one-partition side on the left of an inner join.
        let one = DDF::from_polars(df.clone(), 1).unwrap();
        let many = DDF::from_polars(lookup.clone(), m).unwrap();
        let expected = df.clone().lazy()
            .join(lookup.clone().lazy(), [col("k")], [col("k")], JoinArgs::new(JoinType::Inner))
            .collect().unwrap();
        check_frame_unordered(&one.merge(&many, &["k"], How::Inner).unwrap(), &expected);
    }
}

#[test]
fn merge_errors_name_the_side_and_the_fix() {
    use dask_dataframe::How;
    let a = DDF::from_polars(df!("k" => [1i64, 2], "v" => [1.0, 2.0]).unwrap(), 2).unwrap();
    let b = DDF::from_polars(df!("key" => [1i64], "w" => ["x"]).unwrap(), 1).unwrap();
    let err = a.merge(&b, &["k"], How::Inner).unwrap_err().to_string();
    assert!(
        err.contains("right side") && err.contains("`k`") && err.contains("\"key\""),
        "{err}"
    );
    let s = DDF::from_polars(df!("k" => ["1"]).unwrap(), 1).unwrap();
    assert!(a.merge(&s, &["k"], How::Inner).is_err());
    assert!(a.merge(&b, &[], How::Inner).is_err());
}
