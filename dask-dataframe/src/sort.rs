//! `sort_values`, `set_index` and `loc`: a range shuffle on boundaries found
//! by sampling.
//!
//! As in Dask, the boundaries are computed eagerly when the operation is
//! built (the input is computed once for them, and again by the result's
//! compute; persist the input first to avoid that): every partition sends a
//! weighted sample of its sorted non-null values of the column (at most
//! [`SORT_SAMPLES`] points, each standing for the rows of its rank bucket,
//! plus the partition's minimum and maximum). The caller merges the samples
//! and picks `npartitions - 1` boundaries at equal steps of the total
//! weight: approximate quantiles, so output partitions are of roughly equal
//! size (exactly balanced only up to one sample bucket per input partition).
//! A range shuffle then sends every row to the partition of its value and
//! each output partition is sorted stably. Equal values always share a
//! partition, so the result is exactly polars' stable sort of the whole data.
//!
//! Nulls sort last, ascending or descending: they all go to the last
//! partition, after its values. A column without any value gives one
//! partition.

use std::sync::Arc;

use dask_core::{Op, Scheduler};
use polars::prelude as pl;
use polars::prelude::{DataType, IdxSize, NamedFrom, PolarsResult, SortMultipleOptions};

use crate::frame::{check_columns, concat_frames, unknown_column, DataFrame, Divisions};
use crate::ops::{Kernel, MapFrame, SplitBy};
use crate::parts::Parts;
use crate::shuffle::Boundaries;
use crate::{Error, Result};

/// The most sample points a partition sends to choose the boundaries of a
/// sort (plus its minimum and maximum).
pub const SORT_SAMPLES: usize = 256;

/// Column names of a sample frame.
const VALUE: &str = "value";
const WEIGHT: &str = "weight";

/// The weighted sample of one partition's column: `SORT_SAMPLES` values at
/// the middle of equal rank buckets of the sorted non-null values, each
/// weighted by its bucket's size, and the minimum and maximum with weight 0.
pub(crate) fn sample(df: &pl::DataFrame, by: &str) -> PolarsResult<pl::DataFrame> {
    let s = df
        .column(by)?
        .as_materialized_series()
        .drop_nulls()
        .sort(pl::SortOptions::default())?;
    let len = s.len();
    let m = SORT_SAMPLES.min(len);
    let mut idx: Vec<IdxSize> = Vec::with_capacity(m + 2);
    let mut weight: Vec<f64> = Vec::with_capacity(m + 2);
    if len > 0 {
        idx.push(0);
        weight.push(0.0);
        for t in 0..m {
            let (a, b) = (t * len / m, (t + 1) * len / m);
            idx.push(((a + b) / 2) as IdxSize);
            weight.push((b - a) as f64);
        }
        idx.push((len - 1) as IdxSize);
        weight.push(0.0);
    }
    let values = s
        .take(&pl::IdxCa::from_vec("".into(), idx))?
        .with_name(VALUE.into());
    pl::DataFrame::new(
        values.len(),
        vec![values.into(), pl::Series::new(WEIGHT.into(), weight).into()],
    )
}

/// What the samples of every partition say: the sorted distinct-position
/// boundaries and the column's minimum and maximum (`None` without values).
struct Split {
    /// `nout - 1` ascending boundaries.
    boundaries: pl::Series,
    min: pl::Scalar,
    max: pl::Scalar,
}

/// Merges the samples and picks `nout - 1` boundaries at equal weight steps.
fn choose(samples: pl::DataFrame, dtype: &DataType, nout: usize) -> PolarsResult<Option<Split>> {
    if samples.height() == 0 {
        return Ok(None);
    }
    let sorted = samples.sort(
        [VALUE],
        SortMultipleOptions::default().with_maintain_order(true),
    )?;
    let values = sorted.column(VALUE)?.as_materialized_series();
    let weights: Vec<f64> = sorted
        .column(WEIGHT)?
        .f64()?
        .iter()
        .map(|w| w.unwrap_or(0.0))
        .collect();
    let total: f64 = weights.iter().sum();
    let mut picks: Vec<IdxSize> = Vec::with_capacity(nout.saturating_sub(1));
    let mut cum = 0.0;
    let mut row = 0usize;
    for j in 1..nout {
        let target = total * j as f64 / nout as f64;
        while row + 1 < weights.len() && cum + weights[row] < target {
            cum += weights[row];
            row += 1;
        }
        picks.push(row as IdxSize);
    }
    let boundaries = values.take(&pl::IdxCa::from_vec("".into(), picks))?;
    let scalar = |i: usize| -> PolarsResult<pl::Scalar> {
        Ok(pl::Scalar::new(dtype.clone(), values.get(i)?.into_static()))
    };
    Ok(Some(Split {
        boundaries,
        min: scalar(0)?,
        max: scalar(values.len() - 1)?,
    }))
}

/// Whether a range shuffle can compare values of this dtype.
fn sortable(dtype: &DataType) -> bool {
    dtype.is_primitive_numeric()
        || dtype.is_temporal()
        || matches!(
            dtype,
            DataType::String | DataType::Boolean | DataType::Binary
        )
}

impl DataFrame {
    /// The rows sorted by the column `by` (nulls last), on the default
    /// scheduler for the boundaries; see [`sort_values_with`](Self::sort_values_with).
    pub fn sort_values(&self, by: &str, descending: bool) -> Result<DataFrame> {
        self.sort_values_with(by, descending, &*dask_core::scheduler::default_scheduler()?)
    }

    /// The rows sorted by the column `by`, ascending or `descending`, nulls
    /// last either way, stable (rows with equal values keep their order), in
    /// as many partitions as this frame: partition `i` holds values before
    /// those of partition `i + 1`. The result's divisions are unknown (as in
    /// Dask; use [`set_index`](Self::set_index) for known divisions).
    ///
    /// As in Dask, the partition boundaries are computed now, on `scheduler`
    /// (so the input is computed once for them and again by the result's
    /// compute: persist it first when that is costly): every partition sends
    /// up to [`SORT_SAMPLES`] values of its sorted column, each weighted by
    /// the rows of its rank bucket, and the boundaries are taken at equal
    /// steps of the total weight (approximate quantiles: balanced partitions
    /// up to one bucket per input partition). A range shuffle then sends each
    /// row to the partition of its value and each partition is sorted stably.
    /// Equal values share a partition, so the result is exactly a stable sort
    /// of the whole frame.
    ///
    /// Errors: [`Error::UnknownColumn`]; [`Error::InvalidArgument`] for a
    /// dtype that cannot be range-partitioned (lists, structs, ...); a failed
    /// compute of the sample.
    pub fn sort_values_with(
        &self,
        by: &str,
        descending: bool,
        scheduler: &dyn Scheduler,
    ) -> Result<DataFrame> {
        Ok(self
            .sorted_by("sort_values", &[by], &[descending], scheduler)?
            .0)
    }

    /// The rows sorted by several columns (the first one most significant),
    /// each ascending or descending (`descending` holds one flag per column,
    /// or one for all), nulls last in every column, stable; boundaries on
    /// the default scheduler. See
    /// [`sort_values_multi_with`](Self::sort_values_multi_with).
    pub fn sort_values_multi(&self, by: &[&str], descending: &[bool]) -> Result<DataFrame> {
        self.sort_values_multi_with(by, descending, &*dask_core::scheduler::default_scheduler()?)
    }

    /// [`sort_values_with`](Self::sort_values_with) by several columns: the
    /// range shuffle splits by the first column (its boundaries sampled as
    /// for one column), so rows with equal first values share a partition,
    /// and each partition is sorted stably by all the columns. The result is
    /// exactly polars' stable multi-column sort of the whole frame (nulls
    /// last in every column).
    ///
    /// Errors: [`Error::UnknownColumn`]; [`Error::InvalidArgument`] for no
    /// column, a `descending` of another length than `by` (other than 1), or
    /// a first column that cannot be range-partitioned; [`Error::Polars`] if
    /// polars cannot sort by another column; a failed compute of the sample.
    pub fn sort_values_multi_with(
        &self,
        by: &[&str],
        descending: &[bool],
        scheduler: &dyn Scheduler,
    ) -> Result<DataFrame> {
        if by.is_empty() {
            return Err(Error::invalid(
                "by",
                "sort_values needs at least one column to sort by",
            ));
        }
        let descending: Vec<bool> = match descending {
            [d] => vec![*d; by.len()],
            d if d.len() == by.len() => d.to_vec(),
            d => {
                return Err(Error::invalid(
                    "descending",
                    format!(
                        "{} flags for {} columns: pass one flag per column of `by`, or one for all",
                        d.len(),
                        by.len()
                    ),
                ))
            }
        };
        Ok(self.sorted_by("sort_values", by, &descending, scheduler)?.0)
    }

    /// The rows sorted by the column `column`, which becomes the index: the
    /// result has [`Divisions::Index`] (Dask's known divisions), for
    /// [`loc`](Self::loc). The column stays a column (dask-rs frames have no
    /// separate index). Boundaries on the default scheduler; see
    /// [`set_index_with`](Self::set_index_with).
    pub fn set_index(&self, column: &str) -> Result<DataFrame> {
        self.set_index_with(column, &*dask_core::scheduler::default_scheduler()?)
    }

    /// [`set_index`](Self::set_index), computing the boundaries on
    /// `scheduler`. Nulls of the column sort last, in the last partition,
    /// outside the divisions (no `loc` range selects them). A column without
    /// values gives one partition and unknown divisions.
    ///
    /// Errors: as [`sort_values_with`](Self::sort_values_with).
    pub fn set_index_with(&self, column: &str, scheduler: &dyn Scheduler) -> Result<DataFrame> {
        let (mut out, split) = self.sorted_by("set_index", &[column], &[false], scheduler)?;
        if let Some(split) = split {
            let mut bounds = Vec::with_capacity(out.npartitions() + 1);
            bounds.push(split.min);
            for i in 0..split.boundaries.len() {
                let v = split
                    .boundaries
                    .get(i)
                    .map_err(|e| Error::polars("set_index", e))?;
                bounds.push(pl::Scalar::new(
                    split.boundaries.dtype().clone(),
                    v.into_static(),
                ));
            }
            bounds.push(split.max);
            out.divisions = Divisions::Index {
                column: column.to_owned(),
                bounds,
            };
        }
        Ok(out)
    }

    /// Sorts by the columns `by` (range-partitioned by the first, at least
    /// one; one `descending` flag per column); also returns the first
    /// column's boundaries.
    fn sorted_by(
        &self,
        label: &str,
        columns: &[&str],
        flags: &[bool],
        scheduler: &dyn Scheduler,
    ) -> Result<(DataFrame, Option<Split>)> {
        check_columns(label, columns, &self.meta)?;
        let (by, descending) = (columns[0], flags[0]);
        let sort = Kernel::Sort {
            by: columns.iter().map(|c| (*c).to_owned()).collect(),
            descending: flags.to_vec(),
        };
        sort.on_meta(label, &self.meta)?;
        let dtype = self
            .meta
            .get(by)
            .cloned()
            .ok_or_else(|| unknown_column(label, by, &self.meta))?;
        if !sortable(&dtype) {
            return Err(Error::invalid(
                "by",
                format!(
                    "{label}: the column `{by}` is {dtype}, which cannot be range-partitioned: \
                     sort by a numeric, temporal, string or boolean column"
                ),
            ));
        }
        // The samples, computed now.
        let sample_op: Arc<dyn Op> = Arc::new(MapFrame {
            label: format!("{label}-sample"),
            kernel: Kernel::SortSample(by.to_owned()),
        });
        let samples = self.parts.map(&format!("{label}-sample"), sample_op, &[]);
        let values = Parts::compute_keys(&samples.graph, &samples.keys(), scheduler)?;
        let frames = values
            .into_iter()
            .map(|v| v.take::<pl::DataFrame>())
            .collect::<dask_core::Result<Vec<_>>>()?;
        let sample_schema = pl::Schema::from_iter([
            pl::Field::new(VALUE.into(), dtype.clone()),
            pl::Field::new(WEIGHT.into(), DataType::Float64),
        ]);
        let all = concat_frames(&sample_schema, frames).map_err(|e| Error::polars(label, e))?;
        let split = choose(all, &dtype, self.npartitions()).map_err(|e| Error::polars(label, e))?;
        let values = match &split {
            Some(s) if descending => s.boundaries.reverse(),
            Some(s) => s.boundaries.clone(),
            None => pl::Series::new_empty("".into(), &dtype),
        };
        let b = Boundaries {
            column: by.to_owned(),
            values,
            descending,
        };
        let shuffled = self
            .parts
            .shuffle(label, SplitBy::Range(b), self.meta.clone());
        let sort_op: Arc<dyn Op> = Arc::new(MapFrame {
            label: format!("{label}-sort"),
            kernel: sort,
        });
        let parts = shuffled.map(&format!("{label}-sort"), sort_op, &[]);
        Ok((
            self.derived(parts, self.meta.clone(), Divisions::Unknown),
            split,
        ))
    }

    /// The rows whose index value `v` is in `lo <= v <= hi` (both inclusive,
    /// as pandas' `df.loc[lo:hi]`; `None` for no bound), after
    /// [`set_index`](Self::set_index): only the partitions whose divisions
    /// overlap the range are read, and the result keeps index divisions
    /// clipped to the range. Rows with a null index are never selected. The
    /// bounds are cast to the index dtype (`pl::Scalar::from(3i64)` for an
    /// Int32 index is fine).
    ///
    /// Errors: [`Error::InvalidArgument`] without index divisions (call
    /// `set_index` first), or for a bound that is null or does not cast to
    /// the index dtype.
    pub fn loc(&self, lo: Option<pl::Scalar>, hi: Option<pl::Scalar>) -> Result<DataFrame> {
        let Divisions::Index { column, bounds } = &self.divisions else {
            return Err(Error::invalid(
                "loc",
                "loc selects by index value and needs known index divisions: call \
                 set_index(column) first (operations that change the index column drop them)",
            ));
        };
        let dtype = self.meta.get(column).cloned().unwrap_or(DataType::Null);
        let cast = |name: &'static str, b: Option<pl::Scalar>| -> Result<Option<pl::Scalar>> {
            let Some(b) = b else { return Ok(None) };
            if b.is_null() {
                return Err(Error::invalid(
                    name,
                    "a loc bound cannot be null: pass None for no bound",
                ));
            }
            let found = b.dtype().clone();
            b.cast_with_options(&dtype, polars::chunked_array::cast::CastOptions::Strict)
                .ok()
                .filter(|c| !c.is_null())
                .map(Some)
                .ok_or_else(|| {
                    Error::invalid(
                        name,
                        format!("the bound is {found}, which does not cast to the index `{column}`'s dtype {dtype}"),
                    )
                })
        };
        let (lo, hi) = (cast("lo", lo)?, cast("hi", hi)?);
        let le = |a: &pl::Scalar, b: &pl::Scalar| a.value() <= b.value();
        let n = self.npartitions();
        let chosen: Vec<usize> = (0..n)
            .filter(|&i| {
                hi.as_ref().is_none_or(|hi| le(&bounds[i], hi))
                    && lo.as_ref().is_none_or(|lo| le(lo, &bounds[i + 1]))
            })
            .collect();
        let op: Arc<dyn Op> = Arc::new(MapFrame {
            label: "loc".into(),
            kernel: Kernel::Loc {
                column: column.clone(),
                lo: lo.clone(),
                hi: hi.clone(),
            },
        });
        let out_bounds: Vec<pl::Scalar>;
        let tasks: Vec<dask_core::Task>;
        if chosen.is_empty() {
            // No partition overlaps: one empty partition.
            let first = dask_core::Task::new(op, vec![dask_core::Arg::Key(self.parts.key(0))]);
            let empty: Arc<dyn Op> = Arc::new(MapFrame {
                label: "loc-empty".into(),
                kernel: Kernel::Clear,
            });
            tasks = vec![dask_core::Task::new(
                empty,
                vec![dask_core::Arg::Task(Box::new(first))],
            )];
            let b = lo
                .clone()
                .or(hi.clone())
                .unwrap_or_else(|| bounds[0].clone());
            out_bounds = vec![b.clone(), b];
        } else {
            tasks = chosen
                .iter()
                .map(|&i| {
                    dask_core::Task::new(op.clone(), vec![dask_core::Arg::Key(self.parts.key(i))])
                })
                .collect();
            let mut b: Vec<pl::Scalar> = chosen.iter().map(|&i| bounds[i].clone()).collect();
            b.push(bounds[chosen[chosen.len() - 1] + 1].clone());
            let last = b.len() - 1;
            if let Some(lo) = &lo {
                if le(&b[0], lo) {
                    b[0] = lo.clone();
                }
            }
            if let Some(hi) = &hi {
                if le(hi, &b[last]) {
                    b[last] = hi.clone();
                }
            }
            // Clipping keeps the bounds non-decreasing.
            for k in 1..b.len() {
                if le(&b[k], &b[k - 1]) {
                    b[k] = b[k - 1].clone();
                }
            }
            out_bounds = b;
        }
        let parts = Parts::from_tasks("loc", tasks, &[&self.parts.graph]);
        Ok(self.derived(
            parts,
            self.meta.clone(),
            Divisions::Index {
                column: column.clone(),
                bounds: out_bounds,
            },
        ))
    }
}
