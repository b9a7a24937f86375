//! [`DataFrame`]: the collection, its constructors, `Collection` and `Display`,
//! and the operations that work partition by partition.

use std::fmt;
use std::sync::Arc;

use dask_core::op::try_fn_op;
use dask_core::{Arg, Collection, HighLevelGraph, Key, Op, Scheduler, Value};
use polars::prelude as pl;
use polars::prelude::{DataType, Expr, IntoLazy, PolarsResult, SchemaRef};

use crate::ops::{Assign, FilterBy, Kernel, MapFrame, ToSeries};
use crate::parts::{check_split_every, Parts, DEFAULT_SPLIT_EVERY};
use crate::series::Series;
use crate::{Error, Result};

/// Where each partition starts, when known.
///
/// dask-rs dataframes have no index of their own: rows are numbered 0..
/// across the partitions (Dask's default `RangeIndex`). `Known(d)` holds
/// `npartitions + 1` row numbers: partition `i` holds rows `d[i]..d[i+1]` (as
/// a half-open range, unlike Dask's inclusive last division). Operations that
/// keep every row in place keep the divisions; those that drop or reorder
/// rows (`filter`, `dropna`, `map_partitions`, `read_csv`) make them unknown.
///
/// After [`DataFrame::set_index`], the frame is sorted by its index column
/// and the divisions are that column's values: `Index`. Operations that keep
/// the index column's values and order (`select` with the column, `filter`,
/// `dropna`, `astype` and `assign` of other columns) keep them; the others
/// make them unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Divisions {
    /// The partition boundaries are not known without computing.
    Unknown,
    /// Row numbers at the partition boundaries (`npartitions + 1` of them).
    Known(Vec<u64>),
    /// The frame is sorted by `column` (nulls last), and partition `i` holds
    /// the rows whose value `v` is in `bounds[i] <= v < bounds[i+1]`, the last
    /// partition also `v == bounds[npartitions]` and the null values; Dask's
    /// divisions of a sorted index. Consecutive bounds may be equal (then a
    /// partition is empty); the partitions may hold fewer values than the
    /// bounds allow (after a `filter`).
    Index {
        /// The index column (set by [`DataFrame::set_index`]).
        column: String,
        /// `npartitions + 1` non-decreasing values of the column's dtype.
        bounds: Vec<pl::Scalar>,
    },
}

impl Divisions {
    /// Whether the boundaries are known.
    pub fn known(&self) -> bool {
        !matches!(self, Divisions::Unknown)
    }
}

/// A lazy dataframe cut into partitions by rows: Dask's `dask.dataframe`.
///
/// Each partition is a polars [`DataFrame`](polars::prelude::DataFrame) value
/// under the key `(name, i)` of the task graph. The schema (`meta`) is known
/// without computing anything: every operation checks its arguments against
/// it and derives the result's schema by running the same polars code on an
/// empty frame, so a bad column name or expression fails when the operation is
/// built, not in the middle of a compute.
#[derive(Clone)]
pub struct DataFrame {
    pub(crate) parts: Parts,
    pub(crate) meta: SchemaRef,
    pub(crate) divisions: Divisions,
    pub(crate) split_every: usize,
    /// Set on a frame straight from [`read_csv`](crate::read_csv), or a
    /// merge of such a frame (nothing applied since): how to build it again
    /// with fewer columns.
    pub(crate) origin: Option<Arc<Origin>>,
}

/// How a frame was made, so that using only some of its columns reads only
/// those columns (projection pushdown), like polars' lazy engine does.
#[derive(Clone, Debug)]
pub(crate) enum Origin {
    /// [`read_csv`](crate::read_csv) of `pattern` with `options`.
    Csv {
        pattern: String,
        options: crate::CsvOptions,
    },
    /// [`DataFrame::merge_with`] of `left` and `right` on `on`.
    Merge {
        left: DataFrame,
        right: DataFrame,
        on: Vec<String>,
        options: crate::MergeOptions,
    },
}

impl fmt::Debug for DataFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DataFrame({}, npartitions={})",
            self.parts.name, self.parts.npartitions
        )
    }
}

/// An error for a column that is not in `schema`.
pub(crate) fn unknown_column(op: &str, column: &str, schema: &pl::Schema) -> Error {
    Error::UnknownColumn {
        op: op.to_owned(),
        column: column.to_owned(),
        available: schema.iter_names().map(|n| n.to_string()).collect(),
    }
}

/// Checks that every name is a column of `schema`.
pub(crate) fn check_columns(op: &str, names: &[&str], schema: &pl::Schema) -> Result<()> {
    match names.iter().find(|n| schema.get(n).is_none()) {
        Some(missing) => Err(unknown_column(op, missing, schema)),
        None => Ok(()),
    }
}

/// Concatenates partitions into one frame (an empty frame of `meta` for none).
pub(crate) fn concat_frames(
    meta: &pl::Schema,
    frames: impl IntoIterator<Item = pl::DataFrame>,
) -> PolarsResult<pl::DataFrame> {
    let mut out: Option<pl::DataFrame> = None;
    for df in frames {
        match &mut out {
            None => out = Some(df),
            Some(acc) => {
                acc.vstack_mut_owned(df)?;
            }
        }
    }
    let mut out = out.unwrap_or_else(|| pl::DataFrame::empty_with_schema(meta));
    out.rechunk_mut();
    Ok(out)
}

/// A frame-to-frame partition function, as used by every per-partition op.
pub(crate) type FrameFn = Arc<dyn Fn(pl::DataFrame) -> PolarsResult<pl::DataFrame> + Send + Sync>;

impl DataFrame {
    pub(crate) fn new(parts: Parts, meta: SchemaRef, divisions: Divisions) -> DataFrame {
        DataFrame {
            parts,
            meta,
            divisions,
            split_every: DEFAULT_SPLIT_EVERY,
            origin: None,
        }
    }

    /// A dataframe of `df` cut into `npartitions` partitions of nearly equal
    /// length (lengths differ by at most one; with more partitions than rows
    /// some partitions are empty). Divisions are known when no partition is
    /// empty.
    ///
    /// Errors: [`Error::InvalidArgument`] if `npartitions` is 0.
    pub fn from_polars(df: pl::DataFrame, npartitions: usize) -> Result<DataFrame> {
        if npartitions == 0 {
            return Err(Error::invalid(
                "npartitions",
                "a dataframe needs at least one partition, got 0: pass 1 or more",
            ));
        }
        let len = df.height();
        let bounds: Vec<u64> = (0..=npartitions)
            .map(|i| (i * len / npartitions) as u64)
            .collect();
        let values = bounds
            .windows(2)
            .map(|w| Value::new(df.slice(w[0] as i64, (w[1] - w[0]) as usize)))
            .collect();
        let divisions = if len >= npartitions {
            Divisions::Known(bounds)
        } else {
            Divisions::Unknown
        };
        Ok(DataFrame::new(
            Parts::from_values("from_polars", values),
            df.schema().clone(),
            divisions,
        ))
    }

    /// A dataframe whose partition `i` is the value of `keys[i]` in `graph`:
    /// a polars frame with schema `meta` (Dask's `dd.from_graph`). This is how
    /// another collection hands its partitions over (a bag's `to_dataframe`).
    /// Each partition is checked against `meta` when it is computed: one that
    /// disagrees fails its task with [`Error::NotAligned`] naming both
    /// schemas. Divisions are unknown.
    ///
    /// Errors: [`Error::InvalidArgument`] if `keys` is empty.
    pub fn from_graph(graph: &HighLevelGraph, keys: &[Key], meta: SchemaRef) -> Result<DataFrame> {
        if keys.is_empty() {
            return Err(Error::invalid(
                "keys",
                "a dataframe needs at least one partition, got no keys: pass one key per partition",
            ));
        }
        let op: Arc<dyn Op> = Arc::new(MapFrame {
            label: "from_graph".into(),
            kernel: Kernel::CheckSchema {
                op: "from_graph".into(),
                schema: meta.clone(),
            },
        });
        let tasks = keys
            .iter()
            .map(|k| dask_core::Task::new(op.clone(), vec![Arg::Key(k.clone())]))
            .collect();
        Ok(DataFrame::new(
            Parts::from_tasks("from_graph", tasks, &[graph]),
            meta,
            Divisions::Unknown,
        ))
    }

    /// The number of partitions.
    pub fn npartitions(&self) -> usize {
        self.parts.npartitions
    }

    /// The name of the partition keys, `(name, i)`.
    pub fn name(&self) -> &str {
        &self.parts.name
    }

    /// The schema: column names and dtypes, known without computing.
    pub fn schema(&self) -> &SchemaRef {
        &self.meta
    }

    /// The column names, in order.
    pub fn columns(&self) -> Vec<String> {
        self.meta.iter_names().map(|n| n.to_string()).collect()
    }

    /// `(column, dtype)` pairs, in order.
    pub fn dtypes(&self) -> Vec<(String, DataType)> {
        self.meta
            .iter()
            .map(|(n, d)| (n.to_string(), d.clone()))
            .collect()
    }

    /// An empty polars frame with this schema (Dask's `_meta`).
    pub fn meta(&self) -> pl::DataFrame {
        pl::DataFrame::empty_with_schema(&self.meta)
    }

    /// The divisions (partition boundaries), if known.
    pub fn divisions(&self) -> &Divisions {
        &self.divisions
    }

    /// Whether the divisions are known.
    pub fn known_divisions(&self) -> bool {
        self.divisions.known()
    }

    /// The key of partition `i`.
    pub fn partition_key(&self, i: usize) -> Key {
        self.parts.key(i)
    }

    /// The fan-in of tree reductions built from this dataframe (default
    /// [`DEFAULT_SPLIT_EVERY`]).
    ///
    /// Errors: [`Error::InvalidArgument`] if `split_every` < 2.
    pub fn with_split_every(&self, split_every: usize) -> Result<DataFrame> {
        check_split_every(split_every)?;
        let mut out = self.clone();
        out.split_every = split_every;
        Ok(out)
    }

    /// A new dataframe applying `f` to each partition, whose schema is `f`'s
    /// result on the meta frame; `keep_divisions` when `f` keeps rows in place
    /// (row-number divisions only: index divisions are dropped, see
    /// `keep_index`).
    pub(crate) fn map_frames(
        &self,
        label: &str,
        f: FrameFn,
        keep_divisions: bool,
    ) -> Result<DataFrame> {
        let meta = f(self.meta()).map_err(|e| Error::polars(label, e))?;
        let op = try_fn_op(move |df: pl::DataFrame| f(df));
        let divisions = match &self.divisions {
            Divisions::Known(_) if keep_divisions => self.divisions.clone(),
            _ => Divisions::Unknown,
        };
        let mut out = DataFrame::new(
            self.parts.map(label, op, &[]),
            meta.schema().clone(),
            divisions,
        );
        out.split_every = self.split_every;
        Ok(out)
    }

    /// A new dataframe applying the registered `kernel` to each partition
    /// (so it runs on worker processes too); the schema is the kernel's
    /// result on the meta frame; `keep_divisions` as in `map_frames`.
    pub(crate) fn map_kernel(
        &self,
        label: &str,
        kernel: Kernel,
        keep_divisions: bool,
    ) -> Result<DataFrame> {
        let meta = kernel.on_meta(label, &self.meta)?;
        let op: Arc<dyn Op> = Arc::new(MapFrame {
            label: label.to_owned(),
            kernel,
        });
        let divisions = match &self.divisions {
            Divisions::Known(_) if keep_divisions => self.divisions.clone(),
            _ => Divisions::Unknown,
        };
        Ok(self.derived(self.parts.map(label, op, &[]), meta, divisions))
    }

    /// Applies a polars lazy query to each partition.
    pub(crate) fn map_lazy(
        &self,
        label: &str,
        keep_divisions: bool,
        f: impl Fn(pl::LazyFrame) -> pl::LazyFrame + Send + Sync + 'static,
    ) -> Result<DataFrame> {
        self.map_frames(
            label,
            Arc::new(move |df| f(df.lazy()).collect()),
            keep_divisions,
        )
    }

    /// Applies `f` to every partition. `meta` is the schema of `f`'s results;
    /// with `None` it is found by calling `f` on an empty frame of this
    /// dataframe's schema (as Dask does). Every partition's result is checked
    /// against it, and a partition that disagrees fails with an error naming
    /// both schemas.
    ///
    /// Errors: [`Error::Polars`] if `meta` is `None` and `f` fails on the empty
    /// frame.
    pub fn map_partitions<F>(&self, f: F, meta: Option<SchemaRef>) -> Result<DataFrame>
    where
        F: Fn(pl::DataFrame) -> PolarsResult<pl::DataFrame> + Send + Sync + 'static,
    {
        let meta = match meta {
            Some(m) => m,
            None => f(self.meta())
                .map_err(|e| Error::polars("map_partitions (on the meta frame; pass `meta` if `f` cannot run on an empty frame)", e))?
                .schema()
                .clone(),
        };
        let expected = meta.clone();
        let op = try_fn_op(move |df: pl::DataFrame| -> Result<pl::DataFrame> {
            let out = f(df).map_err(|e| Error::polars("map_partitions", e))?;
            if out.schema().as_ref() != expected.as_ref() {
                return Err(Error::NotAligned {
                    op: "map_partitions".into(),
                    message: format!(
                        "a partition's result has schema {:?}, but the meta says {:?}: pass the right `meta`",
                        out.schema(),
                        expected
                    ),
                });
            }
            Ok(out)
        });
        let mut out = DataFrame::new(
            self.parts.map("map_partitions", op, &[]),
            meta,
            Divisions::Unknown,
        );
        out.split_every = self.split_every;
        Ok(out)
    }

    /// The columns `names`, in that order (Dask's `df[["a", "b"]]`).
    ///
    /// Errors: [`Error::UnknownColumn`].
    pub fn select(&self, names: &[&str]) -> Result<DataFrame> {
        check_columns("select", names, &self.meta)?;
        if let Some(narrow) = self.projected(names)? {
            return narrow.select(names);
        }
        let kernel = Kernel::Select(names.iter().map(|n| (*n).to_owned()).collect());
        let out = self.map_kernel("select", kernel, true)?;
        Ok(self.keep_index(out))
    }

    /// One column as a [`Series`] (Dask's `df["a"]`).
    ///
    /// Errors: [`Error::UnknownColumn`].
    pub fn column(&self, name: &str) -> Result<Series> {
        check_columns("column", &[name], &self.meta)?;
        if let Some(narrow) = self.projected(&[name])? {
            return narrow.column(name);
        }
        let dtype = self.meta.get(name).cloned().unwrap_or(DataType::Null);
        let op: Arc<dyn Op> = Arc::new(ToSeries {
            label: "getitem".into(),
            column: Some(name.to_owned()),
        });
        let parts = self.parts.map("getitem", op, &[]);
        Ok(Series::new(
            parts,
            pl::Field::new(name.into(), dtype),
            // A series has no index column: only row-number divisions carry over.
            match &self.divisions {
                Divisions::Known(_) => self.divisions.clone(),
                _ => Divisions::Unknown,
            },
            self.split_every,
        ))
    }

    /// The rows for which the polars expression `predicate` is true.
    ///
    /// Errors: [`Error::Polars`] if the expression does not apply to this
    /// schema (unknown column, not a boolean).
    pub fn filter(&self, predicate: Expr) -> Result<DataFrame> {
        let label = format!("filter({predicate})");
        self.check_boolean(&label, &predicate)?;
        let out = self
            .map_lazy("filter", false, move |lf| lf.filter(predicate.clone()))
            .map_err(|e| relabel(e, &label))?;
        Ok(self.keep_index(out))
    }

    /// The rows where the boolean series `mask` is true (Dask's `df[mask]`);
    /// `mask` must be partitioned like this dataframe (derived from it).
    ///
    /// Errors: [`Error::NotAligned`] if the partitionings differ;
    /// [`Error::InvalidArgument`] if `mask` is not boolean.
    pub fn filter_by(&self, mask: &Series) -> Result<DataFrame> {
        if mask.dtype() != &DataType::Boolean {
            return Err(Error::invalid(
                "mask",
                format!("a filter mask must be Boolean, got {}", mask.dtype()),
            ));
        }
        let op: Arc<dyn Op> = Arc::new(FilterBy);
        let parts = self.parts.zip(&mask.parts, "filter", op)?;
        Ok(self.keep_index(self.derived(parts, self.meta.clone(), Divisions::Unknown)))
    }

    /// Adds or replaces columns computed by polars expressions.
    ///
    /// Errors: [`Error::Polars`] if an expression does not apply to this schema.
    pub fn with_columns(&self, exprs: Vec<Expr>) -> Result<DataFrame> {
        self.map_lazy("with_columns", true, move |lf| {
            lf.with_columns(exprs.clone())
        })
    }

    /// Adds or replaces the column `name` with the series `values`, which must
    /// be partitioned like this dataframe (Dask's `df.assign(name=values)`).
    ///
    /// Errors: [`Error::NotAligned`] if the partitionings differ.
    pub fn assign(&self, name: &str, values: &Series) -> Result<DataFrame> {
        let mut meta = self.meta.as_ref().clone();
        meta.with_column(name.into(), values.dtype().clone());
        let op: Arc<dyn Op> = Arc::new(Assign {
            name: name.to_owned(),
        });
        let parts = self.parts.zip(&values.parts, "assign", op)?;
        let divisions = match &self.divisions {
            Divisions::Known(_) => self.divisions.clone(),
            _ => Divisions::Unknown,
        };
        let out = self.derived(parts, Arc::new(meta), divisions);
        Ok(if self.index() == Some(name) {
            out
        } else {
            self.keep_index(out)
        })
    }

    /// Casts columns to new dtypes (Dask's `astype({"a": "float64"})`).
    ///
    /// Errors: [`Error::UnknownColumn`]; [`Error::Polars`] if polars cannot
    /// cast between the dtypes.
    pub fn astype(&self, dtypes: &[(&str, DataType)]) -> Result<DataFrame> {
        let names: Vec<&str> = dtypes.iter().map(|d| d.0).collect();
        check_columns("astype", &names, &self.meta)?;
        let kernel = Kernel::Cast {
            columns: names.iter().map(|n| (*n).to_owned()).collect(),
            dtypes: dtypes.iter().map(|d| d.1.clone()).collect(),
        };
        let touches_index = self.index().is_some_and(|i| names.contains(&i));
        let out = self.map_kernel("astype", kernel, true)?;
        Ok(if touches_index {
            out
        } else {
            self.keep_index(out)
        })
    }

    /// A boolean frame: true where a value is missing (null).
    pub fn isna(&self) -> Result<DataFrame> {
        self.map_kernel("isna", Kernel::IsNull, true)
    }

    /// Replaces missing values by `value` (a polars literal or expression).
    ///
    /// Errors: [`Error::Polars`] if `value` does not fit a column's dtype.
    pub fn fillna(&self, value: Expr) -> Result<DataFrame> {
        self.map_lazy("fillna", true, move |lf| lf.fill_null(value.clone()))
    }

    /// Drops the rows holding a missing value in any of `subset` (all columns
    /// if `None`).
    ///
    /// Errors: [`Error::UnknownColumn`].
    pub fn dropna(&self, subset: Option<&[&str]>) -> Result<DataFrame> {
        let subset: Option<Vec<String>> = match subset {
            Some(s) => {
                check_columns("dropna", s, &self.meta)?;
                Some(s.iter().map(|c| (*c).to_owned()).collect())
            }
            None => None,
        };
        let out = self.map_kernel("dropna", Kernel::DropNulls(subset), false)?;
        Ok(self.keep_index(out))
    }

    /// A dataframe sharing this one's graph, with new partitions.
    pub(crate) fn derived(&self, parts: Parts, meta: SchemaRef, divisions: Divisions) -> DataFrame {
        DataFrame {
            parts,
            meta,
            divisions,
            split_every: self.split_every,
            origin: None,
        }
    }

    /// This frame with only `columns` (a subset of its own, in its order),
    /// built from its [`Origin`] with fewer columns: a fresh
    /// [`read_csv`](crate::read_csv) frame is read again with `usecols`
    /// (polars then skips parsing the other columns); a merge of such frames
    /// merges the sides narrowed to `columns` and the keys. `None` when there
    /// is nothing to gain (no origin, every column wanted, a column named
    /// after the merge's suffix); callers then go on with this frame.
    pub(crate) fn projected(&self, columns: &[&str]) -> Result<Option<DataFrame>> {
        let Some(origin) = &self.origin else {
            return Ok(None);
        };
        let wanted: Vec<&str> = self
            .meta
            .iter_names()
            .map(|n| n.as_str())
            .filter(|n| columns.contains(n))
            .collect();
        if wanted.len() == self.meta.len() || wanted.len() != columns.len() {
            return Ok(None);
        }
        match &**origin {
            Origin::Csv { pattern, options } => {
                let options = options.clone().usecols(&wanted);
                let mut out = crate::read_csv(pattern, &options)?;
                out.split_every = self.split_every;
                Ok(Some(out))
            }
            Origin::Merge {
                left,
                right,
                on,
                options,
            } => {
                let on: Vec<&str> = on.iter().map(String::as_str).collect();
                let in_a_side =
                    |c: &&str| left.meta.get(c).is_some() || right.meta.get(c).is_some();
                if !wanted.iter().all(in_a_side) {
                    return Ok(None);
                }
                let side = |df: &DataFrame| -> Result<Option<DataFrame>> {
                    let keep: Vec<&str> = df
                        .meta
                        .iter_names()
                        .map(|n| n.as_str())
                        .filter(|n| wanted.contains(n) || on.contains(n))
                        .collect();
                    if keep.len() == df.meta.len() {
                        return Ok(None);
                    }
                    match df.projected(&keep)? {
                        Some(narrow) => Ok(Some(narrow)),
                        None => df.select(&keep).map(Some),
                    }
                };
                let (l, r) = (side(left)?, side(right)?);
                if l.is_none() && r.is_none() {
                    return Ok(None);
                }
                let l = l.unwrap_or_else(|| left.clone());
                let r = r.unwrap_or_else(|| right.clone());
                let mut merged = l.merge_with(&r, &on, options.clone())?;
                merged.split_every = self.split_every;
                if merged.meta.len() == wanted.len() {
                    Ok(Some(merged))
                } else {
                    merged.select(&wanted).map(Some)
                }
            }
        }
    }

    /// The same rows in fewer columns, for [`len`](Self::len): a fresh
    /// read's blocks as row counts (frames without columns, which parse no
    /// value of a block of plain records), a merge of its sides narrowed to
    /// the keys. `None` for other frames or when narrowing fails: the whole
    /// frame is counted then.
    pub(crate) fn narrowed_for_len(&self) -> Option<DataFrame> {
        match &**self.origin.as_ref()? {
            Origin::Csv { pattern, options } => {
                let mut rows = crate::csv::read_csv_rows(pattern, options).ok()?;
                rows.split_every = self.split_every;
                Some(rows)
            }
            Origin::Merge { on, .. } => {
                let on: Vec<&str> = on.iter().map(String::as_str).collect();
                self.projected(&on).ok().flatten()
            }
        }
    }

    /// `out` with this frame's index divisions, when it has them and `out`
    /// still holds the index column with its dtype: for operations that keep
    /// the index column's values and their order.
    pub(crate) fn keep_index(&self, mut out: DataFrame) -> DataFrame {
        if let Divisions::Index { column, .. } = &self.divisions {
            if out.meta.get(column) == self.meta.get(column) {
                out.divisions = self.divisions.clone();
            }
        }
        out
    }

    /// The index column set by [`set_index`](Self::set_index), if the frame
    /// still has index divisions.
    pub fn index(&self) -> Option<&str> {
        match &self.divisions {
            Divisions::Index { column, .. } => Some(column.as_str()),
            _ => None,
        }
    }

    /// Checks that `predicate` is a boolean expression on this schema.
    fn check_boolean(&self, label: &str, predicate: &Expr) -> Result<()> {
        let out = self
            .meta()
            .lazy()
            .select([predicate.clone()])
            .collect()
            .map_err(|e| Error::polars(label, e))?;
        match out.columns().first().map(|c| c.dtype()) {
            Some(DataType::Boolean) => Ok(()),
            other => Err(Error::invalid(
                "predicate",
                format!("{label}: a filter needs a Boolean expression, this one gives {other:?}"),
            )),
        }
    }

    /// The first `n` rows, computing only the partitions needed (the first
    /// one, then the next ones while fewer than `n` rows were found), on the
    /// default scheduler.
    pub fn head(&self, n: usize) -> Result<pl::DataFrame> {
        self.head_with(n, &*dask_core::scheduler::default_scheduler()?)
    }

    /// [`head`](Self::head) on `scheduler`.
    pub fn head_with(&self, n: usize, scheduler: &dyn Scheduler) -> Result<pl::DataFrame> {
        self.ends(n, scheduler, false)
    }

    /// The last `n` rows, computing only the partitions needed (from the last
    /// one backwards), on the default scheduler.
    pub fn tail(&self, n: usize) -> Result<pl::DataFrame> {
        self.tail_with(n, &*dask_core::scheduler::default_scheduler()?)
    }

    /// [`tail`](Self::tail) on `scheduler`.
    pub fn tail_with(&self, n: usize, scheduler: &dyn Scheduler) -> Result<pl::DataFrame> {
        self.ends(n, scheduler, true)
    }

    fn ends(&self, n: usize, scheduler: &dyn Scheduler, from_end: bool) -> Result<pl::DataFrame> {
        let mut got: Vec<pl::DataFrame> = Vec::new();
        let mut rows = 0;
        let order: Vec<usize> = if from_end {
            (0..self.npartitions()).rev().collect()
        } else {
            (0..self.npartitions()).collect()
        };
        for i in order {
            if rows >= n {
                break;
            }
            let want = n - rows;
            let label = if from_end { "tail" } else { "head" };
            let op: Arc<dyn Op> = Arc::new(MapFrame {
                label: label.into(),
                kernel: if from_end {
                    Kernel::Tail(want)
                } else {
                    Kernel::Head(want)
                },
            });
            let parts = Parts::from_tasks(
                label,
                vec![dask_core::Task::new(op, vec![Arg::Key(self.parts.key(i))])],
                &[&self.parts.graph],
            );
            let v = Parts::compute_keys(&parts.graph, &parts.keys(), scheduler)?;
            let df = take_frame(v)?;
            rows += df.height();
            got.push(df);
        }
        if from_end {
            got.reverse();
        }
        concat_frames(&self.meta, got).map_err(|e| Error::polars("head/tail", e))
    }
}

/// The single frame of a one-key compute.
pub(crate) fn take_frame(values: Vec<Value>) -> Result<pl::DataFrame> {
    let v = values
        .into_iter()
        .next()
        .ok_or(dask_core::Error::WrongNumberOfValues {
            expected: 1,
            found: 0,
        })?;
    Ok(v.take::<pl::DataFrame>()?)
}

/// Checks that two partitions zipped together have the same length.
pub(crate) fn check_len(op: &str, left: usize, right: usize) -> Result<()> {
    if left == right {
        Ok(())
    } else {
        Err(Error::NotAligned {
            op: op.to_owned(),
            message: format!(
                "a partition has {left} rows on the left and {right} on the right: the operands \
                 must come from the same dataframe without row-dropping steps in between"
            ),
        })
    }
}

fn relabel(e: Error, label: &str) -> Error {
    match e {
        Error::Polars { source, .. } => Error::polars(label, source),
        other => other,
    }
}

impl Collection for DataFrame {
    type Output = pl::DataFrame;

    fn graph(&self) -> HighLevelGraph {
        self.parts.graph.clone()
    }

    fn keys(&self) -> Vec<Key> {
        self.parts.keys()
    }

    fn finalize(&self, values: Vec<Value>) -> dask_core::Result<pl::DataFrame> {
        let frames = values
            .into_iter()
            .map(|v| v.take::<pl::DataFrame>())
            .collect::<dask_core::Result<Vec<_>>>()?;
        concat_frames(&self.meta, frames).map_err(|e| {
            dask_core::Error::Internal(format!(
                "the partitions of {} disagree on their schema: {e}",
                self.parts.name
            ))
        })
    }

    fn rebuild(&self, graph: HighLevelGraph) -> Self {
        let mut out = self.clone();
        out.parts.graph = graph;
        // Persisted: never read the files again.
        out.origin = None;
        out
    }
}

/// A dtype the way Dask prints it (`int64`, `float64`, `string`, ...).
pub(crate) fn dtype_name(d: &DataType) -> String {
    d.to_string()
}

impl fmt::Display for DataFrame {
    /// Dask's structure view: column names, `npartitions=N`, the dtypes, `...`
    /// for the values, and the graph's size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.columns();
        let dtypes: Vec<String> = self.meta.iter_values().map(dtype_name).collect();
        let rows = match &self.divisions {
            Divisions::Known(d) => d.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
            Divisions::Index { bounds, .. } => {
                bounds.iter().map(|b| b.value().to_string()).collect()
            }
            Divisions::Unknown => vec![String::new(); self.npartitions() + 1],
        };
        let label = format!("npartitions={}", self.npartitions());
        let w0 = rows
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(0)
            .max(label.len());
        let widths: Vec<usize> = names
            .iter()
            .zip(&dtypes)
            .map(|(n, d)| n.len().max(d.len()).max(3))
            .collect();
        let line = |f: &mut fmt::Formatter<'_>, first: &str, cells: &[&str]| -> fmt::Result {
            write!(f, "{first:<w0$}")?;
            for (c, w) in cells.iter().zip(&widths) {
                write!(f, " {c:>w$}")?;
            }
            writeln!(f)
        };
        writeln!(f, "Dask DataFrame Structure:")?;
        let name_cells: Vec<&str> = names.iter().map(String::as_str).collect();
        line(f, "", &name_cells)?;
        writeln!(f, "{label}")?;
        let dots: Vec<&str> = vec!["..."; names.len()];
        let dtype_cells: Vec<&str> = dtypes.iter().map(String::as_str).collect();
        line(f, &rows[0], &dtype_cells)?;
        let shown = rows.len().min(4);
        for (i, r) in rows.iter().enumerate().skip(1) {
            if i < shown - 1 || i == rows.len() - 1 {
                line(f, r, &dots)?;
            } else if i == shown - 1 {
                line(f, "...", &dots)?;
            }
        }
        let graph = self.graph();
        let layers = graph.layers().count();
        write!(
            f,
            "Dask Name: {}, {} graph layer{}, {} tasks",
            label_of(&self.parts.name),
            layers,
            if layers == 1 { "" } else { "s" },
            graph.len()
        )
    }
}

/// `read_csv` from `read_csv-3f2a...`.
pub(crate) fn label_of(name: &str) -> &str {
    name.rsplit_once('-').map_or(name, |(l, _)| l)
}
