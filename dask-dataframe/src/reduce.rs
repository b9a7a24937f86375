//! Reductions: [`Scalar`], [`Agg`] (two-stage aggregations shared with
//! groupby), `len`, `sum`/`mean`/`min`/`max`/`count`, `unique`,
//! `value_counts`, `drop_duplicates`.
//!
//! Every reduction is a tree: a chunk task per partition computes partial
//! aggregates (sum and count for a mean), combine tasks merge at most
//! `split_every` partial results, and a last task finishes (sum / count) and
//! casts to the dtype polars itself gives for the same aggregation on the
//! whole data (found by running it on the empty meta frame).

use std::marker::PhantomData;
use std::sync::Arc;

use dask_core::op::Identity;
use dask_core::{Collection, HighLevelGraph, Key, Op, Value};
use polars::prelude as pl;
use polars::prelude::{DataType, Expr, IntoLazy, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::frame::{check_columns, DataFrame, Divisions};
use crate::ops::{AggStage, CombineFrames, CountStage, Kernel, Len, MapFrame, SumCounts, ToScalar};
use crate::parts::Parts;
use crate::series::Series;
use crate::{Error, Result};

/// A lazy single value: the result of a reduction (Dask's `Scalar`).
pub struct Scalar<T> {
    pub(crate) parts: Parts,
    _marker: PhantomData<fn() -> T>,
}

impl<T> Clone for Scalar<T> {
    fn clone(&self) -> Self {
        Scalar {
            parts: self.parts.clone(),
            _marker: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Scalar<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Scalar<{}>({})",
            std::any::type_name::<T>(),
            self.parts.name
        )
    }
}

impl<T> Scalar<T> {
    pub(crate) fn new(parts: Parts) -> Self {
        Scalar {
            parts,
            _marker: PhantomData,
        }
    }

    /// The key holding the value.
    pub fn key(&self) -> Key {
        self.parts.key(0)
    }
}

impl<T: Clone + Send + Sync + 'static> Collection for Scalar<T> {
    type Output = T;

    fn graph(&self) -> HighLevelGraph {
        self.parts.graph.clone()
    }

    fn keys(&self) -> Vec<Key> {
        vec![self.key()]
    }

    fn finalize(&self, values: Vec<Value>) -> dask_core::Result<T> {
        let v = values
            .into_iter()
            .next()
            .ok_or(dask_core::Error::WrongNumberOfValues {
                expected: 1,
                found: 0,
            })?;
        v.take::<T>()
    }

    fn rebuild(&self, graph: HighLevelGraph) -> Self {
        let mut out = self.clone();
        out.parts.graph = graph;
        out
    }
}

/// An aggregation computed in two stages (per partition, then combined).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Agg {
    /// Sum of the non-null values (0 for none).
    Sum,
    /// Mean of the non-null values (null for none).
    Mean,
    /// Smallest non-null value.
    Min,
    /// Largest non-null value.
    Max,
    /// Number of non-null values.
    Count,
    /// Sample standard deviation (ddof 1) of the non-null values, combined
    /// from per-partition counts, means and squared deviations (Chan et al.),
    /// so it does not lose precision to cancellation.
    Std,
    /// The first value (null included) in row order.
    First,
    /// The last value (null included) in row order.
    Last,
}

impl Agg {
    /// The name (`"sum"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Agg::Sum => "sum",
            Agg::Mean => "mean",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Count => "count",
            Agg::Std => "std",
            Agg::First => "first",
            Agg::Last => "last",
        }
    }

    /// Polars' own aggregation of `col` on a whole frame: the oracle's
    /// semantics and the result's dtype.
    pub fn expr(self, col: Expr) -> Expr {
        match self {
            Agg::Sum => col.sum(),
            Agg::Mean => col.mean(),
            Agg::Min => col.min(),
            Agg::Max => col.max(),
            Agg::Count => col.count(),
            Agg::Std => col.std(1),
            Agg::First => col.first(),
            Agg::Last => col.last(),
        }
    }
}

/// One output column of an aggregation: `out = agg(column)`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AggSpec {
    pub(crate) column: String,
    pub(crate) agg: Agg,
    pub(crate) out: String,
}

impl AggSpec {
    fn partial(&self, part: &str) -> String {
        format!("__{}__{}", self.out, part)
    }

    /// Per-partition partial aggregates.
    pub(crate) fn chunk_exprs(&self) -> Vec<Expr> {
        let c = || pl::col(self.column.as_str());
        match self.agg {
            Agg::Sum => vec![c().sum().alias(self.partial("sum"))],
            Agg::Min => vec![c().min().alias(self.partial("min"))],
            Agg::Max => vec![c().max().alias(self.partial("max"))],
            Agg::Count => vec![c()
                .count()
                .cast(DataType::UInt64)
                .alias(self.partial("count"))],
            Agg::Mean => vec![
                c().cast(DataType::Float64).sum().alias(self.partial("sum")),
                c().count()
                    .cast(DataType::UInt64)
                    .alias(self.partial("count")),
            ],
            Agg::Std => {
                let f = || c().cast(DataType::Float64);
                let dev = || f() - f().mean();
                vec![
                    c().count()
                        .cast(DataType::UInt64)
                        .alias(self.partial("count")),
                    f().mean().alias(self.partial("mean")),
                    (dev() * dev()).sum().alias(self.partial("m2")),
                ]
            }
            Agg::First | Agg::Last => vec![
                if self.agg == Agg::First {
                    c().first()
                } else {
                    c().last()
                }
                .alias(self.partial("value")),
                pl::len().cast(DataType::UInt64).alias(self.partial("rows")),
            ],
        }
    }

    /// Merges partial aggregates (stable: the output has the same columns).
    pub(crate) fn combine_exprs(&self) -> Vec<Expr> {
        let p = |part: &str| pl::col(self.partial(part).as_str());
        match self.agg {
            Agg::Sum => vec![p("sum").sum().alias(self.partial("sum"))],
            Agg::Min => vec![p("min").min().alias(self.partial("min"))],
            Agg::Max => vec![p("max").max().alias(self.partial("max"))],
            Agg::Count => vec![p("count").sum().alias(self.partial("count"))],
            Agg::Mean => vec![
                p("sum").sum().alias(self.partial("sum")),
                p("count").sum().alias(self.partial("count")),
            ],
            Agg::Std => {
                let n = || p("count").cast(DataType::Float64);
                let total = || p("count").sum();
                let mean = || (n() * p("mean")).sum() / total().cast(DataType::Float64);
                let gap = || p("mean") - mean();
                vec![
                    total().alias(self.partial("count")),
                    pl::when(total().gt(pl::lit(0u64)))
                        .then(mean())
                        .otherwise(pl::lit(pl::NULL))
                        .alias(self.partial("mean")),
                    (p("m2").sum() + (n() * gap() * gap()).sum()).alias(self.partial("m2")),
                ]
            }
            Agg::First | Agg::Last => {
                let nonempty = || p("value").filter(p("rows").gt(pl::lit(0u64)));
                vec![
                    if self.agg == Agg::First {
                        nonempty().first()
                    } else {
                        nonempty().last()
                    }
                    .alias(self.partial("value")),
                    p("rows").sum().alias(self.partial("rows")),
                ]
            }
        }
    }

    /// The final column from merged partials, cast to `dtype`.
    pub(crate) fn final_expr(&self, dtype: &DataType) -> Expr {
        let p = |part: &str| pl::col(self.partial(part).as_str());
        let e = match self.agg {
            Agg::Sum => p("sum"),
            Agg::Min => p("min"),
            Agg::Max => p("max"),
            Agg::Count => p("count"),
            Agg::Mean => pl::when(p("count").gt(pl::lit(0u64)))
                .then(p("sum") / p("count").cast(DataType::Float64))
                .otherwise(pl::lit(pl::NULL)),
            Agg::Std => pl::when(p("count").gt(pl::lit(1u64)))
                .then((p("m2") / (p("count").cast(DataType::Float64) - pl::lit(1.0))).sqrt())
                .otherwise(pl::lit(pl::NULL)),
            Agg::First | Agg::Last => p("value"),
        };
        e.cast(dtype.clone()).alias(self.out.as_str())
    }
}

/// The three stages of a frame-to-frame tree reduction, as registered kernels.
pub(crate) struct Stages {
    pub(crate) chunk: Kernel,
    pub(crate) combine: Kernel,
    pub(crate) finish: Kernel,
}

/// Runs `stages` as a tree over `parts` (frames or series), giving one frame.
pub(crate) fn reduce_frames(
    parts: &Parts,
    label: &str,
    meta: &pl::DataFrame,
    stages: Stages,
    split_every: usize,
) -> Result<(Parts, SchemaRef)> {
    // The stages on the meta frame: checks them and gives the schemas.
    let partial_schema = stages.chunk.on_meta(label, meta.schema())?;
    let combined = stages.combine.on_meta(label, &partial_schema)?;
    let out_schema = stages.finish.on_meta(label, &combined)?;
    let chunk_op: Arc<dyn Op> = Arc::new(MapFrame {
        label: format!("{label}-chunk"),
        kernel: stages.chunk,
    });
    let combine_op: Arc<dyn Op> = Arc::new(CombineFrames {
        label: format!("{label}-combine"),
        kernel: stages.combine,
        schema: partial_schema,
    });
    let finish_op: Arc<dyn Op> = Arc::new(MapFrame {
        label: format!("{label}-finish"),
        kernel: stages.finish,
    });
    let out = parts.tree_reduce(label, chunk_op, combine_op, finish_op, split_every);
    Ok((out, out_schema))
}

/// The stages of a whole-frame aggregation (no groups), or grouped by `keys`.
pub(crate) fn agg_stages(keys: &[String], specs: &[AggSpec], dtypes: &[DataType]) -> Stages {
    let kernel = |stage| Kernel::Agg {
        keys: keys.to_vec(),
        specs: specs.to_vec(),
        stage,
    };
    Stages {
        chunk: kernel(AggStage::Chunk),
        combine: kernel(AggStage::Combine),
        finish: kernel(AggStage::Finish(dtypes.to_vec())),
    }
}

/// The tree of a row count: `Len` per partition, `SumCounts` above.
fn len_tree(parts: &Parts, split_every: usize) -> Parts {
    parts.tree_reduce(
        "len",
        Arc::new(Len),
        Arc::new(SumCounts),
        Arc::new(Identity),
        split_every,
    )
}

/// The dtypes polars gives for `specs` on the whole data (from the meta frame).
pub(crate) fn result_dtypes(
    label: &str,
    meta: &pl::DataFrame,
    group_keys: &[Expr],
    specs: &[AggSpec],
) -> Result<Vec<DataType>> {
    let exprs: Vec<Expr> = specs
        .iter()
        .map(|s| s.agg.expr(pl::col(s.column.as_str())).alias(s.out.as_str()))
        .collect();
    let lf = meta.clone().lazy();
    let out = if group_keys.is_empty() {
        lf.select(exprs).collect()
    } else {
        lf.group_by(group_keys).agg(exprs).collect()
    }
    .map_err(|e| Error::polars(label, e))?;
    Ok(specs
        .iter()
        .map(|s| {
            out.schema()
                .get(s.out.as_str())
                .cloned()
                .unwrap_or(DataType::Null)
        })
        .collect())
}

impl DataFrame {
    /// The number of rows, summed over the partitions.
    ///
    /// A frame straight from [`read_csv`](crate::read_csv) counts its blocks'
    /// records without parsing their values, like polars' own row count of
    /// a CSV file: a value that does not match its column's dtype does not
    /// fail the count (computing the column does), a row with a field too
    /// many does.
    pub fn len(&self) -> Scalar<usize> {
        let narrow = self.narrowed_for_len();
        let parts = narrow.as_ref().map_or(&self.parts, |n| &n.parts);
        Scalar::new(len_tree(parts, self.split_every))
    }

    /// Whether the dataframe has no rows (computes [`len`](Self::len)).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len().compute()? == 0)
    }

    fn whole_agg(&self, agg: Agg) -> Result<DataFrame> {
        let specs: Vec<AggSpec> = self
            .meta
            .iter_names()
            .map(|n| AggSpec {
                column: n.to_string(),
                agg,
                out: n.to_string(),
            })
            .collect();
        let meta = self.meta();
        let dtypes = result_dtypes(agg.name(), &meta, &[], &specs)?;
        let (parts, schema) = reduce_frames(
            &self.parts,
            agg.name(),
            &meta,
            agg_stages(&[], &specs, &dtypes),
            self.split_every,
        )?;
        Ok(self.derived(parts, schema, Divisions::Unknown))
    }

    /// Column sums, as a one-row, one-partition dataframe (polars' `sum`).
    ///
    /// Errors: [`Error::Polars`] if a column cannot be summed.
    pub fn sum(&self) -> Result<DataFrame> {
        self.whole_agg(Agg::Sum)
    }

    /// Column means (null for a column without values).
    pub fn mean(&self) -> Result<DataFrame> {
        self.whole_agg(Agg::Mean)
    }

    /// Column minima.
    pub fn min(&self) -> Result<DataFrame> {
        self.whole_agg(Agg::Min)
    }

    /// Column maxima.
    pub fn max(&self) -> Result<DataFrame> {
        self.whole_agg(Agg::Max)
    }

    /// Non-null counts per column.
    pub fn count(&self) -> Result<DataFrame> {
        self.whole_agg(Agg::Count)
    }

    /// Sample standard deviations (ddof 1) per column.
    pub fn std(&self) -> Result<DataFrame> {
        self.whole_agg(Agg::Std)
    }

    /// The distinct rows (over `subset` of the columns, keeping the first row
    /// of each; all columns if `None`), in one partition. Row order is not
    /// kept.
    ///
    /// Errors: [`Error::UnknownColumn`].
    pub fn drop_duplicates(&self, subset: Option<&[&str]>) -> Result<DataFrame> {
        let subset: Option<Vec<String>> = match subset {
            Some(s) => {
                check_columns("drop_duplicates", s, &self.meta)?;
                Some(s.iter().map(|c| (*c).to_owned()).collect())
            }
            None => None,
        };
        let stages = Stages {
            chunk: Kernel::Distinct(subset.clone()),
            combine: Kernel::Distinct(subset),
            finish: Kernel::Keep,
        };
        let (parts, schema) = reduce_frames(
            &self.parts,
            "drop_duplicates",
            &self.meta(),
            stages,
            self.split_every,
        )?;
        Ok(self.derived(parts, schema, Divisions::Unknown))
    }
}

impl Series {
    fn reduce(&self, agg: Agg) -> Result<Scalar<pl::Scalar>> {
        let name = self.name().to_owned();
        let specs = [AggSpec {
            column: name.clone(),
            agg,
            out: name.clone(),
        }];
        let meta = pl::Series::new_empty(name.as_str().into(), self.dtype()).into_frame();
        let dtypes = result_dtypes(agg.name(), &meta, &[], &specs)?;
        let (parts, _) = reduce_frames(
            &self.parts,
            agg.name(),
            &meta,
            agg_stages(&[], &specs, &dtypes),
            self.split_every,
        )?;
        Ok(Scalar::new(parts.map(agg.name(), Arc::new(ToScalar), &[])))
    }

    /// The sum of the non-null values (polars' dtype rules).
    ///
    /// Errors: [`Error::Polars`] if the dtype cannot be summed.
    pub fn sum(&self) -> Result<Scalar<pl::Scalar>> {
        self.reduce(Agg::Sum)
    }

    /// The mean of the non-null values (null if there are none).
    pub fn mean(&self) -> Result<Scalar<pl::Scalar>> {
        self.reduce(Agg::Mean)
    }

    /// The smallest value.
    pub fn min(&self) -> Result<Scalar<pl::Scalar>> {
        self.reduce(Agg::Min)
    }

    /// The largest value.
    pub fn max(&self) -> Result<Scalar<pl::Scalar>> {
        self.reduce(Agg::Max)
    }

    /// The number of non-null values.
    pub fn count(&self) -> Result<Scalar<pl::Scalar>> {
        self.reduce(Agg::Count)
    }

    /// The sample standard deviation (ddof 1).
    pub fn std(&self) -> Result<Scalar<pl::Scalar>> {
        self.reduce(Agg::Std)
    }

    /// The number of distinct values (null counts as one, as in polars'
    /// `n_unique`).
    pub fn nunique(&self) -> Result<Scalar<usize>> {
        Ok(self.unique()?.len())
    }

    /// The number of rows, nulls included.
    pub fn len(&self) -> Scalar<usize> {
        Scalar::new(len_tree(&self.parts, self.split_every))
    }

    /// Whether the series has no rows (computes [`len`](Self::len)).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len().compute()? == 0)
    }

    /// The distinct values (null included once, if present), in one
    /// partition, in no particular order.
    pub fn unique(&self) -> Result<Series> {
        let name = self.name().to_owned();
        let stages = Stages {
            chunk: Kernel::UniqueColumn(name.clone()),
            combine: Kernel::UniqueColumn(name.clone()),
            finish: Kernel::Keep,
        };
        let meta = pl::Series::new_empty(name.as_str().into(), self.dtype()).into_frame();
        let (parts, _) = reduce_frames(&self.parts, "unique", &meta, stages, self.split_every)?;
        let frame = DataFrame::new(parts, meta.schema().clone(), Divisions::Unknown);
        frame.column(&name)
    }

    /// How often each distinct value occurs: a one-partition dataframe with
    /// the values and a `count` column (UInt32, polars' index type), most
    /// frequent first (ties in no particular order). Nulls are counted as a
    /// value, as polars does.
    ///
    /// Errors: [`Error::InvalidArgument`] if the series is itself named `count`.
    pub fn value_counts(&self) -> Result<DataFrame> {
        let name = self.name().to_owned();
        if name == "count" {
            return Err(Error::invalid(
                "series",
                "value_counts names its result column `count`; rename the series first \
                 (map_expr(|x| x.alias(\"other\")))",
            ));
        }
        let stage = |stage| Kernel::ValueCounts {
            column: name.clone(),
            stage,
        };
        let (chunk, combine, finish) = (
            stage(CountStage::Chunk),
            stage(CountStage::Combine),
            stage(CountStage::Finish),
        );
        let meta = pl::Series::new_empty(name.as_str().into(), self.dtype()).into_frame();
        let (parts, schema) = reduce_frames(
            &self.parts,
            "value_counts",
            &meta,
            Stages {
                chunk,
                combine,
                finish,
            },
            self.split_every,
        )?;
        Ok(DataFrame {
            parts,
            meta: schema,
            divisions: Divisions::Unknown,
            split_every: self.split_every,
            origin: None,
        })
    }
}
