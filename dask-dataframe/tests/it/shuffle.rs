//! Hash shuffles: merges (inner, left, right, outer; broadcast and shuffle
//! paths) and `groupby(..).agg` with `split_out`, checked against polars'
//! own join and group_by on the whole frames.

use dask_core::Collection;
use dask_dataframe::{Agg, DataFrame as DDF, Error, How, JoinStrategy, MergeOptions};
use polars::prelude::*;
use proptest::prelude::*;

use crate::common::*;

/// A right-hand table: `k` (Int64 in 0..6, some nulls: keys on one side
/// only), `b` (Boolean, a second key), `w` (Int64), `s` (String, clashing
/// with the left frame's `s`: polars' `_right` suffix), 0 to 40 rows.
fn right_frame() -> impl Strategy<Value = DataFrame> {
    let row = (
        prop::option::weighted(0.9, 0i64..6),
        any::<bool>(),
        -50i64..50,
        prop::option::weighted(0.8, prop::sample::select(vec!["p", "q"])),
    );
    prop::collection::vec(row, 0..40).prop_map(|rows| {
        let k: Vec<Option<i64>> = rows.iter().map(|r| r.0).collect();
        let b: Vec<bool> = rows.iter().map(|r| r.1).collect();
        let w: Vec<i64> = rows.iter().map(|r| r.2).collect();
        let s: Vec<Option<&str>> = rows.iter().map(|r| r.3).collect();
        df!("k" => k, "b" => b, "w" => w, "s" => s).unwrap()
    })
}

const HOWS: [(How, JoinType); 4] = [
    (How::Inner, JoinType::Inner),
    (How::Left, JoinType::Left),
    (How::Right, JoinType::Right),
    (How::Outer, JoinType::Full),
];

fn polars_join(l: &DataFrame, r: &DataFrame, on: &[&str], jt: JoinType) -> DataFrame {
    let keys: Vec<Expr> = on.iter().map(|k| col(*k)).collect();
    l.clone()
        .lazy()
        .join(r.clone().lazy(), &keys, &keys, JoinArgs::new(jt))
        .collect()
        .unwrap()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn merges_match_polars_on_every_path(
        (df, n) in case(),
        rdf in right_frame(),
        m in 1usize..7,
        nout in prop::option::of(1usize..6),
    ) {
        let left = DDF::from_polars(df.clone(), n).unwrap();
        let right = DDF::from_polars(rdf.clone(), m).unwrap();
        for (how, jt) in HOWS {
            for on in [&["k"][..], &["k", "b"][..]] {
                let expected = polars_join(&df, &rdf, on, jt.clone());
                for strategy in [JoinStrategy::Auto, JoinStrategy::Shuffle, JoinStrategy::Broadcast] {
                    let mut opts = MergeOptions::new(how).strategy(strategy);
                    if let Some(k) = nout {
                        opts = opts.npartitions(k);
                    }
                    let got = left.merge_with(&right, on, opts);
                    if strategy == JoinStrategy::Broadcast && how == How::Outer && (n, m) != (1, 1) {
                        let err = got.unwrap_err();
                        prop_assert!(matches!(err, Error::InvalidArgument { .. }), "{}", err);
                        continue;
                    }
                    let got = got.unwrap();
                    if strategy == JoinStrategy::Shuffle {
                        prop_assert_eq!(got.npartitions(), nout.unwrap_or(n.max(m)));
                    }
                    check_frame_unordered(&got, &expected);
                }
            }
        }
    }

    #[test]
    fn groupby_split_out_matches_polars((df, n) in case(), split_out in 1usize..6, split_every in 2usize..4) {
        let ddf = DDF::from_polars(df.clone(), n).unwrap().with_split_every(split_every).unwrap();
        let aggs = [
            ("x", Agg::Sum), ("x", Agg::Mean), ("i", Agg::Min), ("i", Agg::Max),
            ("x", Agg::Std), ("i", Agg::Count), ("i", Agg::First), ("b", Agg::Last),
        ];
        let got = ddf.groupby(&["k", "s"]).unwrap().split_out(split_out).unwrap().agg(&aggs).unwrap();
        prop_assert_eq!(got.npartitions(), split_out);
        let expected = df.clone().lazy().group_by([col("k"), col("s")]).agg([
            col("x").sum().alias("x_sum"),
            col("x").mean().alias("x_mean"),
            col("i").min().alias("i_min"),
            col("i").max().alias("i_max"),
            col("x").std(1).alias("x_std"),
            col("i").count().alias("i_count"),
            col("i").first().alias("i_first"),
            col("b").last(),
        ]).collect().unwrap();
        // One row per group: a group split across partitions would appear twice.
        check_frame_unordered(&got, &expected);
    }
}

/// A merge of two frames of many partitions each takes the shuffle path by
/// default (Dask's heuristic), and a small side is broadcast.
#[test]
fn auto_strategy_follows_dasks_heuristic() {
    let l = df!("k" => (0..200i64).map(|i| i % 17).collect::<Vec<_>>(),
                "v" => (0..200i64).collect::<Vec<_>>())
    .unwrap();
    let r = df!("k" => (0..17i64).collect::<Vec<_>>(),
                "w" => (0..17i64).map(|i| i * 10).collect::<Vec<_>>())
    .unwrap();
    for (nl, nr, shuffled) in [(8, 8, true), (16, 1, false), (16, 2, true), (64, 2, false)] {
        let a = DDF::from_polars(l.clone(), nl).unwrap();
        let b = DDF::from_polars(r.clone(), nr).unwrap();
        let got = a.merge(&b, &["k"], How::Inner).unwrap();
        // A broadcast keeps the big side's partitioning; a shuffle gives max(nl, nr).
        assert_eq!(got.npartitions(), nl.max(nr), "{nl} x {nr}");
        let tasks_with_shuffle = got
            .graph()
            .to_graph()
            .keys()
            .any(|k| k.name().starts_with("shuffle-"));
        assert_eq!(tasks_with_shuffle, shuffled, "{nl} x {nr}");
        check_frame_unordered(&got, &polars_join(&l, &r, &["k"], JoinType::Inner));
    }
}

#[test]
fn bad_merges_are_typed_errors_naming_the_column_and_side() {
    let a = DDF::from_polars(df!("k" => [1i64, 2], "v" => [1.0, 2.0]).unwrap(), 2).unwrap();
    let b = DDF::from_polars(df!("key" => [1i64], "w" => ["x"]).unwrap(), 3).unwrap();
    let err = b.merge(&a, &["k"], How::Outer).unwrap_err();
    assert!(matches!(err, Error::UnknownColumn { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("left side") && msg.contains("`k`") && msg.contains("\"key\""),
        "{msg}"
    );
    let err = a.merge(&b, &["k"], How::Left).unwrap_err().to_string();
    assert!(err.contains("right side") && err.contains("`k`"), "{err}");
    // Key dtypes differ.
    let s = DDF::from_polars(df!("k" => ["1", "2"]).unwrap(), 2).unwrap();
    let err = a.merge(&s, &["k"], How::Inner).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert!(
        err.to_string().contains("i64") && err.to_string().contains("str"),
        "{err}"
    );
    // No key, zero partitions, broadcast of an outer join.
    assert!(a.merge(&a, &[], How::Inner).is_err());
    let zero = MergeOptions::new(How::Inner).npartitions(0);
    assert!(matches!(
        a.merge_with(&a, &["k"], zero).unwrap_err(),
        Error::InvalidArgument { .. }
    ));
    let bcast = MergeOptions::new(How::Outer).strategy(JoinStrategy::Broadcast);
    let err = a.merge_with(&a, &["k"], bcast).unwrap_err().to_string();
    assert!(err.contains("Shuffle"), "{err}");
    assert!(a.groupby(&["k"]).unwrap().split_out(0).is_err());
}
