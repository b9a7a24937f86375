//! The registered ops of dataframe tasks: serializable structs that `dask
//! worker` processes rebuild from their tag and parameters.
//!
//! A partition function is data, not a closure: a [`Kernel`] names it (an
//! enum of column names, aggregation kinds, sizes, boundaries) and builds
//! the polars code when the task runs, in whatever process that is. A few op
//! structs apply kernels ([`MapFrame`] to one partition, [`CombineFrames`] to
//! a list of them); the others are one struct per task shape (shuffle
//! splits and concats, joins, file reads and writes). Every struct is
//! registered with `register_op_type!`, and every value passed between them
//! has a codec (frames and series as Arrow IPC, split pieces and scalars in
//! `wire.rs`, numbers and strings in dask-core).
//!
//! User functions (`map_partitions` with a closure) and operations taking a
//! polars `Expr` (`filter`, `with_columns`, `fillna`, `Series::map_expr`, a
//! literal operand) stay closures: polars expressions cannot be serialized
//! without polars' `serde` feature. They run on in-process schedulers and
//! clusters; a client refuses them for worker processes with
//! `OpNotRegistered`.

use std::path::Path;

use dask_core::{BoxError, Op, Value};
use polars::prelude as pl;
use polars::prelude::{ChunkCompareIneq, DataType, Expr, IntoLazy, SerWriter};
use serde::{Deserialize, Serialize};

use crate::csv::{read_block, Spec};
use crate::frame::{check_len, concat_frames};
use crate::merge::How;
use crate::reduce::AggSpec;
use crate::shuffle::{hash_split, range_split, Boundaries};
use crate::wire;
use crate::Error;

/// A stage of a two-stage aggregation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum AggStage {
    /// Partial aggregates of one partition.
    Chunk,
    /// Partial aggregates merged (same columns as `Chunk`'s).
    Combine,
    /// The final columns, cast to polars' dtypes for the whole data.
    Finish(#[serde(with = "wire::dtypes")] Vec<DataType>),
}

/// A stage of `value_counts`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) enum CountStage {
    /// Counts per value in one partition.
    Chunk,
    /// Counts merged per value.
    Combine,
    /// Counts as polars' index type, most frequent first.
    Finish,
}

/// A frame-to-frame partition function, as data.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Kernel {
    /// The frame itself.
    Keep,
    /// These columns, in this order.
    Select(Vec<String>),
    /// Strict casts of the named columns.
    Cast {
        /// The columns.
        columns: Vec<String>,
        /// Their new dtypes.
        #[serde(with = "wire::dtypes")]
        dtypes: Vec<DataType>,
    },
    /// Every column replaced by whether its values are null.
    IsNull,
    /// The rows without a null in these columns (all columns if `None`).
    DropNulls(Option<Vec<String>>),
    /// The first `n` rows.
    Head(usize),
    /// The last `n` rows.
    Tail(usize),
    /// Slice `piece` of `pieces` nearly equal slices (by rows).
    Piece {
        /// Which slice.
        piece: usize,
        /// Of how many.
        pieces: usize,
    },
    /// No rows, the same columns.
    Clear,
    /// The frame, checked to have exactly this schema.
    CheckSchema {
        /// The operation named in the error.
        op: String,
        /// The schema every partition must have.
        #[serde(with = "wire::schema")]
        schema: pl::SchemaRef,
    },
    /// A stage of an aggregation, grouped by `keys` (none: the whole frame).
    Agg {
        /// Group key columns.
        keys: Vec<String>,
        /// The output columns.
        specs: Vec<AggSpec>,
        /// Which stage.
        stage: AggStage,
    },
    /// The distinct rows over `subset` (all columns if `None`), first kept.
    Distinct(Option<Vec<String>>),
    /// The distinct values of one column.
    UniqueColumn(String),
    /// A stage of `value_counts` of one column.
    ValueCounts {
        /// The column.
        column: String,
        /// Which stage.
        stage: CountStage,
    },
    /// `describe`'s weighted sample of these columns.
    DescribeSample {
        /// The numeric columns.
        columns: Vec<String>,
        /// At most this many values per column.
        samples: usize,
    },
    /// `sort_values`'s weighted sample of one column.
    SortSample(String),
    /// A stable sort by several columns, nulls last.
    Sort {
        /// The columns, most significant first.
        by: Vec<String>,
        /// Per column: descending.
        descending: Vec<bool>,
    },
    /// The rows whose `column` value lies in `lo..=hi` (not null).
    Loc {
        /// The index column.
        column: String,
        /// Lower bound (inclusive).
        #[serde(with = "wire::opt_scalar")]
        lo: Option<pl::Scalar>,
        /// Upper bound (inclusive).
        #[serde(with = "wire::opt_scalar")]
        hi: Option<pl::Scalar>,
    },
    /// The kernels one after the other.
    Chain(Vec<Kernel>),
}

fn cols(names: &[String]) -> Vec<Expr> {
    names.iter().map(|n| pl::col(n.as_str())).collect()
}

impl Kernel {
    /// Applies the kernel to one frame.
    pub(crate) fn apply(&self, df: pl::DataFrame) -> Result<pl::DataFrame, BoxError> {
        Ok(match self {
            Kernel::Keep => df,
            Kernel::Select(names) => df.select(names.iter().map(String::as_str))?,
            Kernel::Cast { columns, dtypes } => {
                let exprs: Vec<Expr> = columns
                    .iter()
                    .zip(dtypes)
                    .map(|(c, d)| pl::col(c.as_str()).strict_cast(d.clone()))
                    .collect();
                df.lazy().with_columns(exprs).collect()?
            }
            Kernel::IsNull => {
                let exprs: Vec<Expr> = df
                    .get_column_names()
                    .into_iter()
                    .map(|n| pl::col(n.clone()).is_null())
                    .collect();
                df.lazy().select(exprs).collect()?
            }
            Kernel::DropNulls(subset) => df.drop_nulls(subset.as_deref())?,
            Kernel::Head(n) => df.head(Some(*n)),
            Kernel::Tail(n) => df.tail(Some(*n)),
            Kernel::Piece { piece, pieces } => {
                let len = df.height();
                let (a, b) = (piece * len / pieces, (piece + 1) * len / pieces);
                df.slice(a as i64, b - a)
            }
            Kernel::Clear => df.clear(),
            Kernel::CheckSchema { op, schema } => {
                if df.schema().as_ref() != schema.as_ref() {
                    return Err(Error::NotAligned {
                        op: op.clone(),
                        message: format!(
                            "a partition has schema {:?}, but the meta says {:?}: make every \
                             partition's frame match the meta",
                            df.schema(),
                            schema
                        ),
                    }
                    .into());
                }
                df
            }
            Kernel::Agg { keys, specs, stage } => {
                let exprs: Vec<Expr> = match stage {
                    AggStage::Chunk => specs.iter().flat_map(AggSpec::chunk_exprs).collect(),
                    AggStage::Combine => specs.iter().flat_map(AggSpec::combine_exprs).collect(),
                    AggStage::Finish(dtypes) => specs
                        .iter()
                        .zip(dtypes)
                        .map(|(s, d)| s.final_expr(d))
                        .collect(),
                };
                let lf = df.lazy();
                match (keys.is_empty(), stage) {
                    (true, _) => lf.select(exprs),
                    (false, AggStage::Finish(_)) => {
                        let mut all = cols(keys);
                        all.extend(exprs);
                        lf.select(all)
                            .sort(keys.clone(), pl::SortMultipleOptions::default())
                    }
                    (false, _) => lf.group_by(cols(keys)).agg(exprs),
                }
                .collect()?
            }
            Kernel::Distinct(subset) => df
                .lazy()
                .unique_stable(subset.clone().map(pl::cols), pl::UniqueKeepStrategy::First)
                .collect()?,
            Kernel::UniqueColumn(name) => df
                .lazy()
                .select([pl::col(name.as_str()).unique()])
                .collect()?,
            Kernel::ValueCounts { column, stage } => {
                let lf = df.lazy();
                let c = || pl::col(column.as_str());
                match stage {
                    CountStage::Chunk => lf
                        .group_by([c()])
                        .agg([pl::len().cast(DataType::UInt64).alias("count")]),
                    CountStage::Combine => lf.group_by([c()]).agg([pl::col("count").sum()]),
                    CountStage::Finish => {
                        lf.with_column(pl::col("count").cast(pl::IDX_DTYPE)).sort(
                            ["count"],
                            pl::SortMultipleOptions::default().with_order_descending(true),
                        )
                    }
                }
                .collect()?
            }
            Kernel::DescribeSample { columns, samples } => {
                crate::describe::sample(&df, columns, *samples)?
            }
            Kernel::SortSample(by) => crate::sort::sample(&df, by)?,
            Kernel::Sort { by, descending } => df.sort(
                by.iter().map(String::as_str),
                pl::SortMultipleOptions::default()
                    .with_order_descending_multi(descending.clone())
                    .with_nulls_last(true)
                    .with_maintain_order(true),
            )?,
            Kernel::Loc { column, lo, hi } => {
                if df.height() == 0 {
                    return Ok(df);
                }
                let c = df.column(column.as_str())?.as_materialized_series();
                let mut mask = c.is_not_null();
                if let Some(lo) = lo {
                    mask = &mask & &c.gt_eq(&lo.clone().into_series(column.as_str().into()))?;
                }
                if let Some(hi) = hi {
                    mask = &mask & &c.lt_eq(&hi.clone().into_series(column.as_str().into()))?;
                }
                df.filter(&mask)?
            }
            Kernel::Chain(kernels) => {
                let mut df = df;
                for k in kernels {
                    df = k.apply(df)?;
                }
                df
            }
        })
    }

    /// The kernel's result on the empty frame of `meta`: checks it and
    /// gives the result's schema.
    pub(crate) fn on_meta(&self, label: &str, meta: &pl::Schema) -> crate::Result<pl::SchemaRef> {
        let out = self
            .apply(pl::DataFrame::empty_with_schema(meta))
            .map_err(|e| match e.downcast::<pl::PolarsError>() {
                Ok(p) => Error::polars(label, *p),
                Err(e) => match e.downcast::<Error>() {
                    Ok(e) => *e,
                    Err(e) => Error::invalid("meta", format!("{label}: {e}")),
                },
            })?;
        Ok(out.schema().clone())
    }
}

/// A partition's value as a frame (series partitions become one column).
pub(crate) fn as_frame(v: &Value) -> Result<pl::DataFrame, BoxError> {
    if let Ok(df) = v.downcast_ref::<pl::DataFrame>() {
        return Ok(df.clone());
    }
    Ok(v.downcast_ref::<pl::Series>()?.clone().into_frame())
}

fn frame_arg(args: &[Value], i: usize) -> Result<pl::DataFrame, BoxError> {
    let v = args.get(i).ok_or_else(|| -> BoxError {
        format!("argument {i} is missing: the task gave {}", args.len()).into()
    })?;
    as_frame(v)
}

fn arg<T: Clone + 'static>(args: &[Value], i: usize) -> Result<T, BoxError> {
    let v = args.get(i).ok_or_else(|| -> BoxError {
        format!("argument {i} is missing: the task gave {}", args.len()).into()
    })?;
    Ok(v.downcast_ref::<T>()
        .map_err(|e| -> BoxError { format!("argument {i}: {e}").into() })?
        .clone())
}

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), BoxError> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!("`{name}` takes {n} arguments, the task gave {}", args.len()).into())
    }
}

/// Applies a [`Kernel`] to one partition (a frame, or a series as a
/// one-column frame).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct MapFrame {
    /// The name in diagnostics.
    pub(crate) label: String,
    /// The function.
    pub(crate) kernel: Kernel,
}

impl Op for MapFrame {
    fn name(&self) -> &str {
        &self.label
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        arity(&self.label, args, 1)?;
        Ok(Value::new(self.kernel.apply(frame_arg(args, 0)?)?))
    }
}

/// Concatenates a list of frames (a tree reduction's combine, a gather, a
/// repartition) and applies a [`Kernel`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CombineFrames {
    /// The name in diagnostics.
    pub(crate) label: String,
    /// The function applied to the concatenation.
    pub(crate) kernel: Kernel,
    /// The frames' schema (the result of an empty list).
    #[serde(with = "wire::schema")]
    pub(crate) schema: pl::SchemaRef,
}

impl Op for CombineFrames {
    fn name(&self) -> &str {
        &self.label
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        arity(&self.label, args, 1)?;
        let xs = args[0].downcast_ref::<Vec<Value>>()?;
        let frames = xs.iter().map(as_frame).collect::<Result<Vec<_>, _>>()?;
        let df = concat_frames(&self.schema, frames)?;
        Ok(Value::new(self.kernel.apply(df)?))
    }
}

/// One column of a frame as a series: by name (`getitem`), or the first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ToSeries {
    /// The name in diagnostics.
    pub(crate) label: String,
    /// The column; `None` for the first.
    pub(crate) column: Option<String>,
}

impl Op for ToSeries {
    fn name(&self) -> &str {
        &self.label
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        arity(&self.label, args, 1)?;
        let df = frame_arg(args, 0)?;
        let c = match &self.column {
            Some(name) => df.column(name.as_str())?,
            None => df
                .columns()
                .first()
                .ok_or_else(|| format!("{}: the frame has no column", self.label))?,
        };
        Ok(Value::new(c.as_materialized_series().clone()))
    }
}

/// The number of rows of a frame or series.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct Len;

impl Op for Len {
    fn name(&self) -> &str {
        "len-chunk"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        arity("len-chunk", args, 1)?;
        Ok(Value::new(frame_arg(args, 0)?.height()))
    }
}

/// The sum of a list of `usize` counts.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct SumCounts;

impl Op for SumCounts {
    fn name(&self) -> &str {
        "len-combine"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        arity("len-combine", args, 1)?;
        let xs = args[0].downcast_ref::<Vec<Value>>()?;
        let mut n = 0usize;
        for v in xs {
            n += *v.downcast_ref::<usize>()?;
        }
        Ok(Value::new(n))
    }
}

/// The first value of a one-row frame's first column, as a `pl::Scalar`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct ToScalar;

impl Op for ToScalar {
    fn name(&self) -> &str {
        "to-scalar"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        arity("to-scalar", args, 1)?;
        let df = frame_arg(args, 0)?;
        let c = df.columns().first().ok_or("to-scalar: no column")?;
        Ok(Value::new(pl::Scalar::new(
            c.dtype().clone(),
            c.get(0)?.into_static(),
        )))
    }
}

/// The rows of a frame where a boolean series partition is true.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct FilterBy;

impl Op for FilterBy {
    fn name(&self) -> &str {
        "filter"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        arity("filter", args, 2)?;
        let (df, m) = (arg::<pl::DataFrame>(args, 0)?, arg::<pl::Series>(args, 1)?);
        check_len("filter_by", df.height(), m.len())?;
        let mask = m.bool().map_err(|e| Error::polars("filter_by", e))?;
        Ok(Value::new(
            df.filter(mask).map_err(|e| Error::polars("filter_by", e))?,
        ))
    }
}

/// A frame partition with a series partition added as the column `name`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Assign {
    /// The column added or replaced.
    pub(crate) name: String,
}

impl Op for Assign {
    fn name(&self) -> &str {
        "assign"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        arity("assign", args, 2)?;
        let (mut df, s) = (arg::<pl::DataFrame>(args, 0)?, arg::<pl::Series>(args, 1)?);
        check_len("assign", df.height(), s.len())?;
        df.with_column(s.with_name(self.name.as_str().into()).into())
            .map_err(|e| Error::polars("assign", e))?;
        Ok(Value::new(df))
    }
}

/// How a shuffle split picks each row's piece.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum SplitBy {
    /// By the seeded hash of the columns `on`, into `nout` pieces.
    Hash {
        /// The key columns.
        on: Vec<String>,
        /// The number of pieces.
        nout: usize,
    },
    /// By value ranges of one column.
    Range(Boundaries),
}

impl SplitBy {
    /// The number of pieces.
    pub(crate) fn nout(&self) -> usize {
        match self {
            SplitBy::Hash { nout, .. } => *nout,
            SplitBy::Range(b) => b.values.len() + 1,
        }
    }
}

/// Cuts a partition into the pieces of a shuffle (a `Vec<pl::DataFrame>`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Split {
    /// The name in diagnostics.
    pub(crate) label: String,
    /// How rows are assigned to pieces.
    pub(crate) by: SplitBy,
}

impl Op for Split {
    fn name(&self) -> &str {
        &self.label
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        arity(&self.label, args, 1)?;
        let df = frame_arg(args, 0)?;
        let pieces = match &self.by {
            SplitBy::Hash { on, nout } => hash_split(&df, on, *nout),
            SplitBy::Range(b) => range_split(&df, b),
        }
        .map_err(|e| Error::polars(self.label.clone(), e))?;
        if pieces.len() != self.by.nout() {
            return Err(Error::Core(dask_core::Error::Internal(format!(
                "a shuffle split gave {} pieces for {} output partitions (bug)",
                pieces.len(),
                self.by.nout()
            )))
            .into());
        }
        Ok(Value::new(pieces))
    }
}

/// Output partition `j` of a shuffle: piece `j` of every split, in order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ConcatPieces {
    /// The name in diagnostics.
    pub(crate) label: String,
    /// The frames' schema (for an output that receives no rows).
    #[serde(with = "wire::schema")]
    pub(crate) schema: pl::SchemaRef,
}

impl Op for ConcatPieces {
    fn name(&self) -> &str {
        &self.label
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        arity(&self.label, args, 2)?;
        let j = arg::<usize>(args, 0)?;
        let splits = args[1].downcast_ref::<Vec<Value>>()?;
        let mut frames = Vec::with_capacity(splits.len());
        for s in splits {
            let pieces = s.downcast_ref::<Vec<pl::DataFrame>>()?;
            let piece = pieces.get(j).ok_or_else(|| {
                Error::Core(dask_core::Error::Internal(format!(
                    "a shuffle split holds {} pieces, partition {j} was asked for (bug)",
                    pieces.len()
                )))
            })?;
            if piece.height() > 0 {
                frames.push(piece.clone());
            }
        }
        Ok(Value::new(
            concat_frames(&self.schema, frames)
                .map_err(|e| Error::polars(self.label.clone(), e))?,
        ))
    }
}

/// Joins two frame partitions with polars (`swap`: the arguments come
/// right side first).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Join {
    /// The key columns.
    pub(crate) on: Vec<String>,
    /// The kind of join.
    pub(crate) how: How,
    /// Whether argument 0 is the right side.
    pub(crate) swap: bool,
}

impl Op for Join {
    fn name(&self) -> &str {
        "merge"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        arity("merge", args, 2)?;
        let (a, b) = (frame_arg(args, 0)?, frame_arg(args, 1)?);
        let (l, r) = if self.swap { (b, a) } else { (a, b) };
        Ok(Value::new(crate::merge::join(
            l,
            r,
            &cols(&self.on),
            self.how,
        )?))
    }
}

/// `describe`'s result from the reduced moments and the merged samples.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DescribeFinish {
    /// The numeric columns.
    pub(crate) columns: Vec<String>,
}

impl Op for DescribeFinish {
    fn name(&self) -> &str {
        "describe"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        arity("describe", args, 2)?;
        let (m, s) = (frame_arg(args, 0)?, frame_arg(args, 1)?);
        Ok(Value::new(
            crate::describe::finish(&self.columns, &m, &s)
                .map_err(|e| Error::polars("describe", e))?,
        ))
    }
}

/// Reads one CSV block: arguments path, partition, start and end offsets.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ReadCsvBlock {
    /// The schemas and parse options shared by every block.
    pub(crate) spec: Spec,
}

impl Op for ReadCsvBlock {
    fn name(&self) -> &str {
        "read_csv"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        arity("read_csv", args, 4)?;
        let path = arg::<String>(args, 0)?;
        let (partition, start, end) = (
            arg::<usize>(args, 1)?,
            arg::<u64>(args, 2)?,
            arg::<u64>(args, 3)?,
        );
        Ok(Value::new(read_block(
            &self.spec,
            Path::new(&path),
            partition,
            start,
            end,
        )?))
    }
}

/// Reads one parquet file (argument: its path), checked against the first
/// file's schema.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ReadParquet {
    /// The schema of the first file.
    #[serde(with = "wire::schema")]
    pub(crate) schema: pl::SchemaRef,
}

impl Op for ReadParquet {
    fn name(&self) -> &str {
        "read_parquet"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        arity("read_parquet", args, 1)?;
        let path = arg::<String>(args, 0)?;
        Ok(Value::new(crate::io::read_parquet_file(
            &path,
            &self.schema,
        )?))
    }
}

/// The file format of a [`WriteFile`].
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) enum Format {
    /// CSV with a header.
    Csv,
    /// Parquet.
    Parquet,
}

/// Writes a partition to a file (arguments: the frame and the path); gives
/// the number of rows written.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct WriteFile {
    /// The format.
    pub(crate) format: Format,
}

impl Op for WriteFile {
    fn name(&self) -> &str {
        match self.format {
            Format::Csv => "to_csv",
            Format::Parquet => "to_parquet",
        }
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        arity(self.name(), args, 2)?;
        let (mut df, path) = (arg::<pl::DataFrame>(args, 0)?, arg::<String>(args, 1)?);
        let p = Path::new(&path);
        let file = crate::io::create(p)?;
        match self.format {
            Format::Csv => {
                let mut file = file;
                pl::CsvWriter::new(&mut file)
                    .finish(&mut df)
                    .map_err(|e| Error::polars(format!("to_csv `{path}`"), e))?;
            }
            Format::Parquet => {
                pl::ParquetWriter::new(file)
                    .finish(&mut df)
                    .map_err(|e| Error::polars(format!("to_parquet `{path}`"), e))?;
            }
        }
        Ok(Value::new(df.height()))
    }
}

/// An element-wise binary operator on two series.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BinOp {
    /// The polars expression `a <op> b`.
    pub(crate) fn apply(self, a: Expr, b: Expr) -> Expr {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            BinOp::Eq => a.eq(b),
            BinOp::Ne => a.neq(b),
            BinOp::Lt => a.lt(b),
            BinOp::Le => a.lt_eq(b),
            BinOp::Gt => a.gt(b),
            BinOp::Ge => a.gt_eq(b),
        }
    }
}

/// `left <op> right` on two series partitions of equal length, named `out`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SeriesBinary {
    /// The name in diagnostics.
    pub(crate) label: String,
    /// The operator.
    pub(crate) op: BinOp,
    /// The result's name.
    pub(crate) out: String,
}

impl Op for SeriesBinary {
    fn name(&self) -> &str {
        &self.label
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        use crate::series::{LEFT, RIGHT};
        arity(&self.label, args, 2)?;
        let (l, r) = (arg::<pl::Series>(args, 0)?, arg::<pl::Series>(args, 1)?);
        check_len(&self.label, l.len(), r.len())?;
        let expr = self
            .op
            .apply(pl::col(LEFT), pl::col(RIGHT))
            .alias(self.out.as_str());
        let df = pl::DataFrame::new(
            l.len(),
            vec![
                l.with_name(LEFT.into()).into(),
                r.with_name(RIGHT.into()).into(),
            ],
        )
        .and_then(|df| df.lazy().select([expr]).collect())
        .map_err(|e| Error::polars(self.label.clone(), e))?;
        Ok(Value::new(df.columns()[0].as_materialized_series().clone()))
    }
}

dask_core::register_op_type!(SeriesBinary);
dask_core::register_op_type!(MapFrame);
dask_core::register_op_type!(CombineFrames);
dask_core::register_op_type!(ToSeries);
dask_core::register_op_type!(Len);
dask_core::register_op_type!(SumCounts);
dask_core::register_op_type!(ToScalar);
dask_core::register_op_type!(FilterBy);
dask_core::register_op_type!(Assign);
dask_core::register_op_type!(Split);
dask_core::register_op_type!(ConcatPieces);
dask_core::register_op_type!(Join);
dask_core::register_op_type!(DescribeFinish);
dask_core::register_op_type!(ReadCsvBlock);
dask_core::register_op_type!(ReadParquet);
dask_core::register_op_type!(WriteFile);
