//! `describe`: count, mean, std, min, quartiles and max of every numeric
//! column.
//!
//! Count, mean, std, min and max are the tree reductions of [`Agg`]
//! (exact; std combined from per-partition moments). The quartiles come from
//! a second tree whose partials are weighted samples: each partition sorts
//! the non-null values of each column and keeps them all when there are at
//! most `samples` of them (weight 1 each), else one value per rank bucket
//! (`samples` equal buckets, the middle value, weighted by the bucket's
//! size). The samples of all partitions are merged and the quantile is read
//! with polars' linear interpolation (position `q * (N - 1)` among the `N`
//! values) as if every sample value were repeated `weight` times.
//!
//! Accuracy: exact (polars' `quantile(q, Linear)`) when no partition holds
//! more than `samples` values of the column. Otherwise, with `D = sum over
//! partitions of ceil(L_i / samples)` (`L_i` the partition's non-null
//! count), the estimate lies between the true order statistics of ranks
//! `floor(q (N-1)) - D` and `floor(q (N-1)) + 1 + D`: a rank error of about
//! `N / samples` plus one per partition.

use std::sync::Arc;

use dask_core::Op;
use polars::prelude as pl;
use polars::prelude::{DataType, NamedFrom, PolarsResult};

use crate::frame::{DataFrame, Divisions};
use crate::ops::{DescribeFinish, Kernel};
use crate::reduce::{agg_stages, reduce_frames, result_dtypes, Agg, AggSpec, Stages};
use crate::{Error, Result};

/// The default number of sample values per partition and column for the
/// quartiles of [`DataFrame::describe`].
pub const DESCRIBE_SAMPLES: usize = 10_000;

/// The statistics, in the order of the result's rows.
const STATISTICS: [&str; 8] = ["count", "mean", "std", "min", "25%", "50%", "75%", "max"];

/// The quantiles of the 25%, 50% and 75% rows.
const QUANTILES: [f64; 3] = [0.25, 0.5, 0.75];

/// The moments and extremes reduced exactly, in the order of `STATISTICS`
/// without the quartiles.
const AGGS: [Agg; 5] = [Agg::Count, Agg::Mean, Agg::Std, Agg::Min, Agg::Max];

/// The weighted sample of one partition: rows `(column index, value,
/// weight)`.
pub(crate) fn sample(
    df: &pl::DataFrame,
    columns: &[String],
    samples: usize,
) -> PolarsResult<pl::DataFrame> {
    let (mut col, mut val, mut wt) = (Vec::<u32>::new(), Vec::<f64>::new(), Vec::<f64>::new());
    for (i, name) in columns.iter().enumerate() {
        let s = df
            .column(name.as_str())?
            .as_materialized_series()
            .cast(&DataType::Float64)?;
        let mut v: Vec<f64> = s.f64()?.iter().flatten().collect();
        v.sort_by(f64::total_cmp);
        let len = v.len();
        if len <= samples {
            col.extend(std::iter::repeat_n(i as u32, len));
            wt.extend(std::iter::repeat_n(1.0, len));
            val.extend(v);
        } else {
            for t in 0..samples {
                let (a, b) = (t * len / samples, (t + 1) * len / samples);
                col.push(i as u32);
                val.push(v[(a + b) / 2]);
                wt.push((b - a) as f64);
            }
        }
    }
    sample_frame(col, val, wt)
}

fn sample_frame(col: Vec<u32>, val: Vec<f64>, wt: Vec<f64>) -> PolarsResult<pl::DataFrame> {
    pl::DataFrame::new(
        col.len(),
        vec![
            pl::Series::new("column".into(), col).into(),
            pl::Series::new("value".into(), val).into(),
            pl::Series::new("weight".into(), wt).into(),
        ],
    )
}

/// The `q` quantile (linear interpolation) of values given as sorted
/// `(value, weight)` pairs, each standing for `weight` equal values.
pub(crate) fn weighted_quantile(points: &[(f64, f64)], q: f64) -> Option<f64> {
    let n: f64 = points.iter().map(|p| p.1).sum();
    if n < 1.0 {
        return None;
    }
    // The value of rank `k` (0-based) of the expanded values.
    let at = |k: usize| -> f64 {
        let mut cum = 0.0;
        for &(v, w) in points {
            cum += w;
            if (k as f64) < cum {
                return v;
            }
        }
        points[points.len() - 1].0
    };
    let fidx = (n - 1.0) * q;
    let idx = fidx as usize;
    let lower = at(idx);
    if fidx.ceil() as usize == idx {
        return Some(lower);
    }
    let upper = at(idx + 1);
    Some(if lower == upper {
        lower
    } else {
        (fidx - idx as f64) * (upper - lower) + lower
    })
}

/// The result frame from the reduced moments (one row) and the merged samples.
pub(crate) fn finish(
    columns: &[String],
    moments: &pl::DataFrame,
    samples: &pl::DataFrame,
) -> PolarsResult<pl::DataFrame> {
    let mut points: Vec<Vec<(f64, f64)>> = vec![Vec::new(); columns.len()];
    let col = samples.column("column")?.u32()?;
    let val = samples.column("value")?.f64()?;
    let wt = samples.column("weight")?.f64()?;
    for ((c, v), w) in col.iter().zip(val.iter()).zip(wt.iter()) {
        if let (Some(c), Some(v), Some(w)) = (c, v, w) {
            points[c as usize].push((v, w));
        }
    }
    let mut out: Vec<pl::Column> = vec![pl::Series::new(
        "statistic".into(),
        STATISTICS.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    )
    .into()];
    for (i, name) in columns.iter().enumerate() {
        let stat = |agg: Agg| -> PolarsResult<Option<f64>> {
            let c = moments.column(out_name(i, agg).as_str())?;
            let c = c.cast(&DataType::Float64)?;
            Ok(c.f64()?.get(0))
        };
        let pts = &mut points[i];
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let q = |p: f64| weighted_quantile(pts, p);
        let values: Vec<Option<f64>> = vec![
            stat(Agg::Count)?,
            stat(Agg::Mean)?,
            stat(Agg::Std)?,
            stat(Agg::Min)?,
            q(QUANTILES[0]),
            q(QUANTILES[1]),
            q(QUANTILES[2]),
            stat(Agg::Max)?,
        ];
        out.push(pl::Series::new(name.as_str().into(), values).into());
    }
    pl::DataFrame::new(STATISTICS.len(), out)
}

fn out_name(i: usize, agg: Agg) -> String {
    format!("c{i}_{}", agg.name())
}

impl DataFrame {
    /// Summary statistics of the numeric columns (Dask's / pandas'
    /// `describe()`): a one-partition frame with a `statistic` column
    /// (`count`, `mean`, `std`, `min`, `25%`, `50%`, `75%`, `max`) and one
    /// Float64 column per numeric column. Nulls are skipped; std is the
    /// sample std (ddof 1); a column without values has count 0 and nulls
    /// elsewhere. Quartiles are exact while no partition holds more than
    /// [`DESCRIBE_SAMPLES`] values of a column, approximate beyond (see
    /// [`describe_with`](Self::describe_with)).
    ///
    /// Errors: [`Error::InvalidArgument`] if no column is numeric.
    pub fn describe(&self) -> Result<DataFrame> {
        self.describe_with(DESCRIBE_SAMPLES)
    }

    /// [`describe`](Self::describe) keeping at most `samples` values per
    /// partition and column for the quartiles. With `D` the sum over
    /// partitions of `ceil(non-null values / samples)`, each quartile lies
    /// between the true order statistics `D` ranks below and `D` ranks above
    /// the two that polars' linear interpolation reads; exact when every
    /// partition has at most `samples` values.
    ///
    /// Errors: [`Error::InvalidArgument`] if no column is numeric or
    /// `samples` is 0.
    pub fn describe_with(&self, samples: usize) -> Result<DataFrame> {
        if samples == 0 {
            return Err(Error::invalid(
                "samples",
                "describe needs at least one sample value per partition, got 0",
            ));
        }
        let columns: Vec<String> = self
            .meta
            .iter()
            .filter(|(_, d)| d.is_primitive_numeric())
            .map(|(n, _)| n.to_string())
            .collect();
        if columns.is_empty() {
            return Err(Error::invalid(
                "describe",
                format!(
                    "describe summarizes numeric columns and this frame has none (dtypes {:?}): \
                     cast a column with `astype`",
                    self.dtypes()
                ),
            ));
        }
        if columns.iter().any(|c| c == "statistic") {
            return Err(Error::invalid(
                "describe",
                "the result's first column is `statistic`, and a numeric column has that name: \
                 rename it first",
            ));
        }
        let meta = self.meta();
        let specs: Vec<AggSpec> = columns
            .iter()
            .enumerate()
            .flat_map(|(i, c)| {
                AGGS.iter().map(move |&agg| AggSpec {
                    column: c.clone(),
                    agg,
                    out: out_name(i, agg),
                })
            })
            .collect();
        let dtypes = result_dtypes("describe", &meta, &[], &specs)?;
        let (moments, _) = reduce_frames(
            &self.parts,
            "describe-moments",
            &meta,
            agg_stages(&[], &specs, &dtypes),
            self.split_every,
        )?;
        let chunk = Kernel::DescribeSample {
            columns: columns.clone(),
            samples,
        };
        let (sketch, _) = reduce_frames(
            &self.parts,
            "describe-quantiles",
            &meta,
            Stages {
                chunk,
                combine: Kernel::Keep,
                finish: Kernel::Keep,
            },
            self.split_every,
        )?;
        let op: Arc<dyn Op> = Arc::new(DescribeFinish {
            columns: columns.clone(),
        });
        let parts = moments.zip(&sketch, "describe", op)?;
        let out_meta: pl::Schema =
            std::iter::once(pl::Field::new("statistic".into(), DataType::String))
                .chain(
                    columns
                        .iter()
                        .map(|c| pl::Field::new(c.as_str().into(), DataType::Float64)),
                )
                .collect();
        Ok(self.derived(parts, Arc::new(out_meta), Divisions::Unknown))
    }
}
