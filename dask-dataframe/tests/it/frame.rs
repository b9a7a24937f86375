//! Per-partition operations, checked against polars on the whole frame.

use std::sync::Arc;

use dask_core::Collection;
use dask_dataframe::{DataFrame as DDF, Divisions};
use polars::prelude::*;
use proptest::prelude::*;

use crate::common::*;

/// Polars' lazy query on the whole frame: the oracle.
fn whole(df: &DataFrame, f: impl FnOnce(LazyFrame) -> LazyFrame) -> DataFrame {
    f(df.clone().lazy()).collect().unwrap()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn from_polars_round_trips((df, n) in case()) {
        let ddf = DDF::from_polars(df.clone(), n).unwrap();
        prop_assert_eq!(ddf.npartitions(), n);
        prop_assert_eq!(ddf.schema().as_ref(), df.schema().as_ref());
        match ddf.divisions() {
            Divisions::Known(d) => {
                prop_assert!(df.height() >= n);
                prop_assert_eq!(d.len(), n + 1);
                prop_assert_eq!(d[0], 0);
                prop_assert_eq!(d[n], df.height() as u64);
                prop_assert!(d.windows(2).all(|w| w[0] < w[1]));
            }
            Divisions::Unknown => prop_assert!(df.height() < n),
            Divisions::Index { .. } => prop_assert!(false, "from_polars sets no index"),
        }
        check_frame(&ddf, &df);
        for (name, s) in schedulers() {
            prop_assert_eq!(ddf.len().compute_with(&**s).unwrap(), df.height(), "{}", name);
        }
    }

    #[test]
    fn select_filter_with_columns((df, n) in case()) {
        let ddf = DDF::from_polars(df.clone(), n).unwrap();
        check_frame(&ddf.select(&["x", "k"]).unwrap(), &whole(&df, |l| l.select([col("x"), col("k")])));
        let pred = col("i").gt(lit(0)).and(col("s").is_not_null());
        check_frame(&ddf.filter(pred.clone()).unwrap(), &whole(&df, |l| l.filter(pred)));
        let exprs = vec![(col("i") * lit(2)).alias("i2"), (col("x") + col("k")).alias("x")];
        check_frame(&ddf.with_columns(exprs.clone()).unwrap(), &whole(&df, |l| l.with_columns(exprs)));
        check_frame(
            &ddf.astype(&[("k", DataType::Float64), ("b", DataType::Int32)]).unwrap(),
            &whole(&df, |l| l.with_columns([col("k").cast(DataType::Float64), col("b").cast(DataType::Int32)])),
        );
    }

    #[test]
    fn missing_values((df, n) in case()) {
        let ddf = DDF::from_polars(df.clone(), n).unwrap();
        let all: Vec<Expr> = df.get_column_names().iter().map(|c| col(c.as_str()).is_null()).collect();
        check_frame(&ddf.isna().unwrap(), &whole(&df, |l| l.select(all)));
        check_frame(&ddf.fillna(lit(0)).unwrap(), &whole(&df, |l| l.fill_null(lit(0))));
        check_frame(&ddf.dropna(None).unwrap(), &df.drop_nulls::<String>(None).unwrap());
        check_frame(
            &ddf.dropna(Some(&["i"])).unwrap(),
            &df.drop_nulls(Some(&["i".to_string()])).unwrap(),
        );
        let s = ddf.column("x").unwrap();
        check_series(&s.isna().unwrap(), &df.column("x").unwrap().as_materialized_series().is_null().into_series());
        check_series(
            &s.fillna(lit(1.5)).unwrap(),
            whole(&df, |l| l.select([col("x").fill_null(lit(1.5))])).column("x").unwrap().as_materialized_series(),
        );
        check_series(
            &s.dropna().unwrap(),
            &df.column("x").unwrap().as_materialized_series().drop_nulls(),
        );
    }

    #[test]
    fn map_partitions_assign_and_masks((df, n) in case()) {
        let ddf = DDF::from_polars(df.clone(), n).unwrap();
        // A per-row function: the concatenation of its results is its result on the whole.
        let f = |d: DataFrame| d.lazy().select([col("i"), (col("x") * lit(3.0)).alias("x3")]).collect();
        check_frame(&ddf.map_partitions(f, None).unwrap(), &f(df.clone()).unwrap());
        let doubled = ddf.column("i").unwrap().mul(2).unwrap();
        check_frame(
            &ddf.assign("i2", &doubled).unwrap(),
            &whole(&df, |l| l.with_column((col("i") * lit(2)).alias("i2"))),
        );
        let mask = ddf.column("x").unwrap().gt(0.0).unwrap();
        check_frame(&ddf.filter_by(&mask).unwrap(), &whole(&df, |l| l.filter(col("x").gt(lit(0.0)))));
    }

    #[test]
    fn head_and_tail((df, n) in case(), k in 0usize..30) {
        let ddf = DDF::from_polars(df.clone(), n).unwrap();
        for (name, s) in schedulers() {
            assert_frames_eq(&ddf.head_with(k, &**s).unwrap(), &df.head(Some(k)), name);
            assert_frames_eq(&ddf.tail_with(k, &**s).unwrap(), &df.tail(Some(k)), name);
        }
    }

    #[test]
    fn series_elementwise_and_comparisons((df, n) in case()) {
        let ddf = DDF::from_polars(df.clone(), n).unwrap();
        let (i, x) = (ddf.column("i").unwrap(), ddf.column("x").unwrap());
        let expect = |e: Expr| {
            whole(&df, |l| l.select([e])).columns()[0].as_materialized_series().clone()
        };
        check_series(&i.add(5).unwrap(), &expect((col("i") + lit(5)).alias("i")));
        check_series(&i.sub(&x).unwrap(), &expect((col("i") - col("x")).alias("i")));
        check_series(&x.mul(&i).unwrap(), &expect((col("x") * col("i")).alias("x")));
        check_series(&i.div(4).unwrap(), &expect((col("i") / lit(4)).alias("i")));
        check_series(&i.lt(&x).unwrap(), &expect(col("i").lt(col("x")).alias("i")));
        check_series(&i.ge(0).unwrap(), &expect(col("i").gt_eq(lit(0)).alias("i")));
        check_series(&x.eq(0.5).unwrap(), &expect(col("x").eq(lit(0.5)).alias("x")));
        check_series(&x.ne(0.5).unwrap(), &expect(col("x").neq(lit(0.5)).alias("x")));
        check_series(&x.le(1.0).unwrap(), &expect(col("x").lt_eq(lit(1.0)).alias("x")));
        let s = ddf.column("s").unwrap();
        check_series(&s.eq("a").unwrap(), &expect(col("s").eq(lit("a")).alias("s")));
        check_series(&i.astype(DataType::Float32).unwrap(), &expect(col("i").cast(DataType::Float32)));
        check_series(&x.filter(|c| c.gt(lit(1.0))).unwrap(), &expect(col("x").filter(col("x").gt(lit(1.0)))));
    }
}

#[test]
fn display_shows_partitions_columns_dtypes_and_tasks() {
    let df = df!("VendorID" => [1i64, 2, 1, 2, 1], "fare" => [1.5, 2.0, 3.0, 4.0, 5.0]).unwrap();
    let ddf = DDF::from_polars(df, 5).unwrap();
    let text = ddf.to_string();
    assert!(text.starts_with("Dask DataFrame Structure:"), "{text}");
    assert!(text.contains("npartitions=5"), "{text}");
    assert!(text.contains("VendorID") && text.contains("fare"), "{text}");
    assert!(text.contains("i64") && text.contains("f64"), "{text}");
    assert!(text.contains("..."), "{text}");
    assert!(
        text.ends_with("Dask Name: from_polars, 1 graph layer, 5 tasks"),
        "{text}"
    );
    let sel = ddf.select(&["fare"]).unwrap();
    assert!(
        sel.to_string()
            .ends_with("Dask Name: select, 2 graph layers, 10 tasks"),
        "{sel}"
    );
    let s = ddf.column("fare").unwrap();
    let text = s.to_string();
    assert!(
        text.contains("npartitions=5") && text.contains("Name: fare, dtype: f64"),
        "{text}"
    );
}

#[test]
fn head_computes_only_the_partitions_it_needs() {
    // Partition 1 fails when computed: head(2) must not touch it.
    let df = df!("a" => [1i64, 2, 3, 4]).unwrap();
    let ddf = DDF::from_polars(df.clone(), 2).unwrap();
    let poisoned = ddf
        .map_partitions(
            |d: DataFrame| {
                if d.column("a")?.i64()?.get(0) == Some(3) {
                    Err(PolarsError::ComputeError("partition 1 was computed".into()))
                } else {
                    Ok(d)
                }
            },
            Some(ddf.schema().clone()),
        )
        .unwrap();
    for (name, s) in schedulers() {
        let got = poisoned.head_with(2, &**s).unwrap();
        assert_frames_eq(&got, &df.head(Some(2)), name);
        let err = poisoned.head_with(3, &**s).unwrap_err().to_string();
        assert!(err.contains("partition 1 was computed"), "{name}: {err}");
    }
}

#[test]
fn map_partitions_checks_results_against_meta() {
    let df = df!("a" => [1i64, 2, 3, 4]).unwrap();
    let ddf = DDF::from_polars(df, 2).unwrap();
    let wrong_meta = Arc::new(Schema::from_iter([Field::new(
        "a".into(),
        DataType::String,
    )]));
    let m = ddf.map_partitions(Ok, Some(wrong_meta)).unwrap();
    let err = m.compute_with(&**sync()).unwrap_err().to_string();
    assert!(
        err.contains("meta") && err.contains("map_partitions"),
        "{err}"
    );
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn repartition_keeps_rows_in_order((df, n) in case(), k in 1usize..12) {
        let ddf = DDF::from_polars(df.clone(), n).unwrap();
        let r = ddf.repartition(k).unwrap();
        prop_assert_eq!(r.npartitions(), k);
        check_frame(&r, &df);
        if let (Divisions::Known(d), true) = (r.divisions(), k <= n) {
            prop_assert_eq!(d.len(), k + 1);
            prop_assert_eq!(d[k], df.height() as u64);
        }
        prop_assert!(ddf.repartition(0).is_err());
    }
}

proptest! {
    #![proptest_config(config())]

    /// Partitions handed over as keys of another graph (as a bag's
    /// `to_dataframe` does) come back in order, on every scheduler.
    #[test]
    fn from_graph_takes_partitions_by_key((df, n) in case()) {
        let name: Arc<str> = "frames-from-elsewhere".into();
        let mut graph = dask_core::Graph::new();
        let mut keys = Vec::new();
        for i in 0..n {
            let (start, end) = (i * df.height() / n, (i + 1) * df.height() / n);
            // Stored in reverse key order: keys, not insertion, decide the order.
            let key = dask_core::Key::new(name.clone(), [(n - 1 - i) as u64]);
            graph.insert_data(key.clone(), dask_core::Value::new(df.slice(start as i64, end - start)));
            keys.push(key);
        }
        let hlg = dask_core::HighLevelGraph::from_layer(name.clone(), graph, &[]);
        let ddf = DDF::from_graph(&hlg, &keys, df.schema().clone()).unwrap();
        prop_assert_eq!(ddf.npartitions(), n);
        prop_assert_eq!(ddf.divisions(), &Divisions::Unknown);
        check_frame(&ddf, &df);
    }
}

#[test]
fn from_graph_checks_partitions_against_meta() {
    let name: Arc<str> = "frames".into();
    let mut graph = dask_core::Graph::new();
    let keys: Vec<dask_core::Key> = (0..2u64)
        .map(|i| dask_core::Key::new(name.clone(), [i]))
        .collect();
    graph.insert_data(
        keys[0].clone(),
        dask_core::Value::new(df!("a" => [1i64]).unwrap()),
    );
    graph.insert_data(
        keys[1].clone(),
        dask_core::Value::new(df!("a" => ["x"]).unwrap()),
    );
    let hlg = dask_core::HighLevelGraph::from_layer(name, graph, &[]);
    let meta = Arc::new(Schema::from_iter([Field::new("a".into(), DataType::Int64)]));
    let ddf = DDF::from_graph(&hlg, &keys, meta.clone()).unwrap();
    let err = ddf.compute_with(&**sync()).unwrap_err();
    assert!(
        matches!(
            dask_dataframe::Error::find(&err),
            Some(dask_dataframe::Error::NotAligned { op, .. }) if op == "from_graph"
        ),
        "{err}"
    );
    assert!(matches!(
        DDF::from_graph(&hlg, &[], meta),
        Err(dask_dataframe::Error::InvalidArgument { name: "keys", .. })
    ));
}
