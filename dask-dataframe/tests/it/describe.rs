//! `describe`, checked against polars' count, mean, std, min, quantile
//! (linear) and max on the whole frame: exact for count, min and max, 1e-9
//! relative for mean and std; quartiles exactly polars' while no partition
//! holds more values than the sample size, and within the documented rank
//! bound beyond.

use dask_core::Collection;
use dask_dataframe::{DataFrame as DDF, Error};
use polars::prelude::*;
use proptest::prelude::*;

use crate::common::*;

const ROWS: [&str; 8] = ["count", "mean", "std", "min", "25%", "50%", "75%", "max"];

/// Polars' statistic `row` (an index into `ROWS`) of column `c`, as f64.
fn polars_stat(df: &DataFrame, c: &str, row: usize) -> Option<f64> {
    let e = col(c);
    let e = match row {
        0 => e.count(),
        1 => e.mean(),
        2 => e.std(1),
        3 => e.min(),
        4 => e.quantile(lit(0.25), QuantileMethod::Linear),
        5 => e.quantile(lit(0.5), QuantileMethod::Linear),
        6 => e.quantile(lit(0.75), QuantileMethod::Linear),
        _ => e.max(),
    };
    let out = df
        .clone()
        .lazy()
        .select([e.cast(DataType::Float64)])
        .collect()
        .unwrap();
    out.columns()[0].f64().unwrap().get(0)
}

fn column(df: &DataFrame, c: &str) -> Vec<Option<f64>> {
    df.column(c).unwrap().f64().unwrap().iter().collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn describe_matches_polars((df, n) in case(), split_every in 2usize..5) {
        let ddf = DDF::from_polars(df.clone(), n).unwrap().with_split_every(split_every).unwrap();
        let d = ddf.describe().unwrap();
        // Numeric columns only, in order, after the statistic names.
        prop_assert_eq!(d.columns(), vec!["statistic", "k", "i", "x"]);
        for (name, s) in schedulers() {
            let got = d.compute_with(&**s).unwrap();
            let stats: Vec<String> = got.column("statistic").unwrap().str().unwrap()
                .iter().map(|s| s.unwrap_or("null").to_owned()).collect();
            prop_assert_eq!(stats, ROWS.to_vec());
            for c in ["k", "i", "x"] {
                let values = column(&got, c);
                for (row, stat) in ROWS.iter().enumerate() {
                    let expected = polars_stat(&df, c, row);
                    match (values[row], expected) {
                        (Some(g), Some(e)) if matches!(*stat, "mean" | "std" | "25%" | "50%" | "75%") => {
                            prop_assert!(
                                (g - e).abs() <= REL_TOL * (1.0 + g.abs().max(e.abs())),
                                "{}: {}({}) = {} != {}", name, stat, c, g, e
                            );
                        }
                        (g, e) => prop_assert_eq!(g, e, "{}: {}({})", name, stat, c),
                    }
                }
            }
        }
    }

    #[test]
    fn approximate_quartiles_stay_within_the_rank_bound(
        values in prop::collection::vec(prop::option::weighted(0.9, -1000i32..1000), 0..400),
        n in 1usize..6,
        samples in 1usize..8,
    ) {
        let v: Vec<Option<f64>> = values.iter().map(|x| x.map(|x| x as f64 * 0.5)).collect();
        let df = df!("v" => v.clone()).unwrap();
        let ddf = DDF::from_polars(df.clone(), n).unwrap();
        let got = ddf.describe_with(samples).unwrap().compute_with(&**sync()).unwrap();
        let got = column(&got, "v");
        // D: per partition (from_polars cuts rows at i * len / n), ceil(non-null / samples).
        let len = v.len();
        let d: usize = (0..n)
            .map(|p| v[p * len / n..(p + 1) * len / n].iter().flatten().count().div_ceil(samples))
            .sum();
        let max_part = (0..n).map(|p| v[p * len / n..(p + 1) * len / n].iter().flatten().count()).max().unwrap_or(0);
        let mut xs: Vec<f64> = v.iter().flatten().copied().collect();
        xs.sort_by(f64::total_cmp);
        for (row, q) in [(4, 0.25), (5, 0.5), (6, 0.75)] {
            if xs.is_empty() {
                prop_assert_eq!(got[row], None);
                continue;
            }
            let est = got[row].unwrap();
            let lo = ((xs.len() - 1) as f64 * q) as usize;
            let (a, b) = (xs[lo.saturating_sub(d)], xs[(lo + 1 + d).min(xs.len() - 1)]);
            prop_assert!(a - 1e-9 <= est && est <= b + 1e-9, "q{}: {} not in [{}, {}] (D = {})", q, est, a, b, d);
            if max_part <= samples {
                prop_assert_eq!(Some(est), polars_stat(&df, "v", row));
            }
        }
        // count, min and max stay exact.
        for row in [0, 3, 7] {
            prop_assert_eq!(got[row], polars_stat(&df, "v", row));
        }
    }
}

#[test]
fn describe_without_numeric_columns_is_a_typed_error() {
    let ddf = DDF::from_polars(df!("s" => ["a", "b"], "b" => [true, false]).unwrap(), 2).unwrap();
    let err = ddf.describe().unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert!(err.to_string().contains("numeric"), "{err}");
    let ddf = DDF::from_polars(df!("x" => [1.0, 2.0]).unwrap(), 1).unwrap();
    assert!(ddf.describe_with(0).is_err());
}
