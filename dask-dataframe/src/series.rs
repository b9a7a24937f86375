//! [`Series`]: one column cut into partitions, and its element-wise ops.

use std::fmt;
use std::sync::Arc;

use dask_core::{Collection, HighLevelGraph, Key, Op, Value};
use polars::prelude as pl;
use polars::prelude::{DataType, Expr, IntoLazy, SchemaExt};

use crate::frame::{dtype_name, label_of, DataFrame, Divisions};
use crate::ops::{BinOp, Kernel, MapFrame, SeriesBinary, ToSeries};
use crate::parts::{check_split_every, Parts};
use crate::{Error, Result};

/// A lazy column cut into partitions: Dask's `dask.dataframe.Series`.
///
/// Each partition is a polars [`Series`](polars::prelude::Series) value under
/// the key `(name, i)`. Its name and dtype are known without computing.
#[derive(Clone)]
pub struct Series {
    pub(crate) parts: Parts,
    pub(crate) field: pl::Field,
    pub(crate) divisions: Divisions,
    pub(crate) split_every: usize,
}

impl fmt::Debug for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Series({}: {}, npartitions={})",
            self.field.name, self.field.dtype, self.parts.npartitions
        )
    }
}

/// The right operand of a binary series operation: another series partitioned
/// the same way, or a polars literal (`lit(3)`, `lit("x")`).
#[derive(Clone, Debug)]
pub enum Operand {
    /// A series of the same partitioning.
    Series(Series),
    /// A scalar expression, broadcast to every row.
    Literal(Expr),
}

impl From<&Series> for Operand {
    fn from(s: &Series) -> Operand {
        Operand::Series(s.clone())
    }
}

impl From<Expr> for Operand {
    fn from(e: Expr) -> Operand {
        Operand::Literal(e)
    }
}

macro_rules! literal_operands {
    ($($t:ty),*) => {$(
        impl From<$t> for Operand {
            fn from(v: $t) -> Operand {
                Operand::Literal(pl::lit(v))
            }
        }
    )*};
}
literal_operands!(i32, i64, u32, u64, f32, f64, bool, &str);

/// The names the two sides of a binary op take inside a partition's frame.
pub(crate) const LEFT: &str = "__left";
pub(crate) const RIGHT: &str = "__right";

impl Series {
    pub(crate) fn new(
        parts: Parts,
        field: pl::Field,
        divisions: Divisions,
        split_every: usize,
    ) -> Series {
        Series {
            parts,
            field,
            divisions,
            split_every,
        }
    }

    /// A series of `s` cut into `npartitions` partitions of nearly equal length.
    ///
    /// Errors: [`Error::InvalidArgument`] if `npartitions` is 0.
    pub fn from_polars(s: pl::Series, npartitions: usize) -> Result<Series> {
        let name = s.name().to_string();
        DataFrame::from_polars(s.into_frame(), npartitions)?.column(&name)
    }

    /// The number of partitions.
    pub fn npartitions(&self) -> usize {
        self.parts.npartitions
    }

    /// The series' name.
    pub fn name(&self) -> &str {
        &self.field.name
    }

    /// The dtype, known without computing.
    pub fn dtype(&self) -> &DataType {
        &self.field.dtype
    }

    /// The divisions, if known.
    pub fn divisions(&self) -> &Divisions {
        &self.divisions
    }

    /// The key of partition `i`.
    pub fn partition_key(&self, i: usize) -> Key {
        self.parts.key(i)
    }

    /// The fan-in of tree reductions built from this series.
    ///
    /// Errors: [`Error::InvalidArgument`] if `split_every` < 2.
    pub fn with_split_every(&self, split_every: usize) -> Result<Series> {
        check_split_every(split_every)?;
        let mut out = self.clone();
        out.split_every = split_every;
        Ok(out)
    }

    /// This series as a one-column dataframe (Dask's `to_frame`).
    pub fn to_frame(&self) -> DataFrame {
        let op: Arc<dyn Op> = Arc::new(MapFrame {
            label: "to_frame".into(),
            kernel: Kernel::Keep,
        });
        let schema = pl::Schema::from_iter([self.field.clone()]);
        DataFrame {
            parts: self.parts.map("to_frame", op, &[]),
            meta: Arc::new(schema),
            divisions: self.divisions.clone(),
            split_every: self.split_every,
            origin: None,
        }
    }

    /// A new series from a one-column frame function, keeping this name.
    fn column_of(&self, label: &str, frame: DataFrame, keep_divisions: bool) -> Result<Series> {
        let field = frame
            .meta
            .iter_fields()
            .next()
            .ok_or_else(|| Error::invalid("expression", format!("{label} gave no column")))?;
        let op: Arc<dyn Op> = Arc::new(ToSeries {
            label: label.to_owned(),
            column: None,
        });
        let divisions = if keep_divisions {
            self.divisions.clone()
        } else {
            Divisions::Unknown
        };
        Ok(Series::new(
            frame.parts.map(label, op, &[]),
            field,
            divisions,
            self.split_every,
        ))
    }

    /// Applies an element-wise polars expression to the series: `f` gets
    /// `col(name)` and returns the expression to compute, e.g.
    /// `s.map_expr(|x| x * lit(2))`. The result keeps this series' name.
    ///
    /// Errors: [`Error::Polars`] if the expression does not apply to the dtype.
    pub fn map_expr(&self, f: impl FnOnce(Expr) -> Expr) -> Result<Series> {
        let name = self.field.name.clone();
        let expr = f(pl::col(name.clone())).alias(name);
        let label = format!("map_expr({expr})");
        let frame = self
            .to_frame()
            .map_lazy("map_expr", true, move |lf| lf.select([expr.clone()]))
            .map_err(|e| match e {
                Error::Polars { source, .. } => Error::polars(label.clone(), source),
                other => other,
            })?;
        self.column_of("map_expr", frame, true)
    }

    /// A binary element-wise op: `f(left, right)` on the two sides' columns.
    fn binary(&self, label: &str, other: Operand, op: BinOp) -> Result<Series> {
        let f = |a: Expr, b: Expr| op.apply(a, b);
        let name = self.field.name.clone();
        match other {
            Operand::Literal(lit) => {
                let expr = f(pl::col(name.clone()), lit).alias(name);
                let frame = self
                    .to_frame()
                    .map_lazy(label, true, move |lf| lf.select([expr.clone()]))?;
                self.column_of(label, frame, true)
            }
            Operand::Series(rhs) => {
                let expr = f(pl::col(LEFT), pl::col(RIGHT)).alias(name);
                let meta = pl::DataFrame::new(
                    0,
                    vec![
                        pl::Series::new_empty(LEFT.into(), self.dtype()).into(),
                        pl::Series::new_empty(RIGHT.into(), rhs.dtype()).into(),
                    ],
                )
                .and_then(|df| df.lazy().select([expr.clone()]).collect())
                .map_err(|e| Error::polars(label, e))?;
                let field = meta.schema().iter_fields().next().ok_or_else(|| {
                    Error::invalid("expression", format!("{label} gave no column"))
                })?;
                let op: Arc<dyn Op> = Arc::new(SeriesBinary {
                    label: label.to_owned(),
                    op,
                    out: self.field.name.to_string(),
                });
                let parts = self.parts.zip(&rhs.parts, label, op)?;
                Ok(Series::new(
                    parts,
                    field,
                    self.divisions.clone(),
                    self.split_every,
                ))
            }
        }
    }

    /// `self + other`, element-wise.
    ///
    /// Errors: [`Error::Polars`] for dtypes polars cannot add;
    /// [`Error::NotAligned`] for series of other partitionings.
    pub fn add(&self, other: impl Into<Operand>) -> Result<Series> {
        self.binary("add", other.into(), BinOp::Add)
    }

    /// `self - other`, element-wise.
    pub fn sub(&self, other: impl Into<Operand>) -> Result<Series> {
        self.binary("sub", other.into(), BinOp::Sub)
    }

    /// `self * other`, element-wise.
    pub fn mul(&self, other: impl Into<Operand>) -> Result<Series> {
        self.binary("mul", other.into(), BinOp::Mul)
    }

    /// `self / other`, element-wise (true division: integers give floats).
    pub fn div(&self, other: impl Into<Operand>) -> Result<Series> {
        self.binary("truediv", other.into(), BinOp::Div)
    }

    /// `self == other`, element-wise (null where either side is null).
    pub fn eq(&self, other: impl Into<Operand>) -> Result<Series> {
        self.binary("eq", other.into(), BinOp::Eq)
    }

    /// `self != other`, element-wise.
    pub fn ne(&self, other: impl Into<Operand>) -> Result<Series> {
        self.binary("ne", other.into(), BinOp::Ne)
    }

    /// `self < other`, element-wise.
    pub fn lt(&self, other: impl Into<Operand>) -> Result<Series> {
        self.binary("lt", other.into(), BinOp::Lt)
    }

    /// `self <= other`, element-wise.
    pub fn le(&self, other: impl Into<Operand>) -> Result<Series> {
        self.binary("le", other.into(), BinOp::Le)
    }

    /// `self > other`, element-wise.
    pub fn gt(&self, other: impl Into<Operand>) -> Result<Series> {
        self.binary("gt", other.into(), BinOp::Gt)
    }

    /// `self >= other`, element-wise.
    pub fn ge(&self, other: impl Into<Operand>) -> Result<Series> {
        self.binary("ge", other.into(), BinOp::Ge)
    }

    /// Casts to `dtype`.
    ///
    /// Errors: [`Error::Polars`] if polars cannot cast between the dtypes.
    pub fn astype(&self, dtype: DataType) -> Result<Series> {
        let kernel = Kernel::Cast {
            columns: vec![self.name().to_owned()],
            dtypes: vec![dtype],
        };
        let frame = self.to_frame().map_kernel("astype", kernel, true)?;
        self.column_of("astype", frame, true)
    }

    /// True where a value is missing (null).
    pub fn isna(&self) -> Result<Series> {
        let frame = self.to_frame().map_kernel("isna", Kernel::IsNull, true)?;
        self.column_of("isna", frame, true)
    }

    /// Replaces missing values by `value` (a polars literal).
    ///
    /// Errors: [`Error::Polars`] if `value` does not fit the dtype.
    pub fn fillna(&self, value: Expr) -> Result<Series> {
        self.map_expr(|x| x.fill_null(value))
    }

    /// Drops missing values.
    pub fn dropna(&self) -> Result<Series> {
        let frame = self
            .to_frame()
            .map_kernel("dropna", Kernel::DropNulls(None), false)?;
        self.column_of("dropna", frame, false)
    }

    /// The values for which the boolean expression `f(col)` is true.
    ///
    /// Errors: [`Error::Polars`] if the expression does not apply.
    pub fn filter(&self, f: impl FnOnce(Expr) -> Expr) -> Result<Series> {
        let frame = self
            .to_frame()
            .filter(f(pl::col(self.field.name.clone())))?;
        self.column_of("filter", frame, false)
    }
}

impl Collection for Series {
    type Output = pl::Series;

    fn graph(&self) -> HighLevelGraph {
        self.parts.graph.clone()
    }

    fn keys(&self) -> Vec<Key> {
        self.parts.keys()
    }

    fn finalize(&self, values: Vec<Value>) -> dask_core::Result<pl::Series> {
        let mut out = pl::Series::new_empty(self.field.name.clone(), &self.field.dtype);
        for v in values {
            let s = v.take::<pl::Series>()?;
            out.append_owned(s).map_err(|e| {
                dask_core::Error::Internal(format!(
                    "the partitions of {} disagree on their dtype: {e}",
                    self.parts.name
                ))
            })?;
        }
        Ok(out.rechunk())
    }

    fn rebuild(&self, graph: HighLevelGraph) -> Self {
        let mut out = self.clone();
        out.parts.graph = graph;
        out
    }
}

impl fmt::Display for Series {
    /// Dask's structure view of a series.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = format!("npartitions={}", self.npartitions());
        writeln!(f, "Dask Series Structure:")?;
        writeln!(f, "{label}")?;
        writeln!(f, "    {}", dtype_name(self.dtype()))?;
        writeln!(f, "    ...")?;
        let graph = self.graph();
        let layers = graph.layers().count();
        write!(
            f,
            "Name: {}, dtype: {}\nDask Name: {}, {} graph layer{}, {} tasks",
            self.name(),
            dtype_name(self.dtype()),
            label_of(&self.parts.name),
            layers,
            if layers == 1 { "" } else { "s" },
            graph.len()
        )
    }
}
