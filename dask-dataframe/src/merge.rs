//! `merge`: joins where one side is a single partition (broadcast join).
//!
//! The one-partition side is joined to every partition of the other side,
//! as Dask does for a small table. Joining two multi-partition frames needs a
//! hash shuffle, which is not implemented: that case is refused with an
//! error saying how to make one side a single partition.

use dask_core::op::try_fn_op;
use polars::prelude as pl;
use polars::prelude::{Expr, IntoLazy, JoinArgs, JoinType, PolarsResult};

use crate::frame::{check_columns, DataFrame, Divisions};
use crate::{Error, Result};

/// The kind of join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// Rows whose keys are on both sides.
    Inner,
    /// Every left row, with the right side's columns null where no key matches.
    Left,
}

impl How {
    fn join_type(self) -> JoinType {
        match self {
            How::Inner => JoinType::Inner,
            How::Left => JoinType::Left,
        }
    }
}

/// Joins two frames on `on` with polars (columns of the right side that
/// clash with the left get polars' `_right` suffix).
fn join(
    left: pl::DataFrame,
    right: pl::DataFrame,
    on: &[Expr],
    how: How,
) -> PolarsResult<pl::DataFrame> {
    left.lazy()
        .join(right.lazy(), on, on, JoinArgs::new(how.join_type()))
        .collect()
}

impl DataFrame {
    /// Joins with `right` on the key columns `on` (present on both sides).
    ///
    /// One side must be a single partition (a small lookup table): it is
    /// joined to every partition of the other side. With `How::Left` the
    /// single partition must be `right`. Row order within the result is not
    /// specified.
    ///
    /// Errors: [`Error::UnknownColumn`] naming the side without a key;
    /// [`Error::InvalidArgument`] when both sides have several partitions
    /// (repartition the small one to 1, e.g. `DataFrame::from_polars(small.compute()?, 1)`),
    /// or for no key; [`Error::Polars`] if the key dtypes cannot be joined.
    pub fn merge(&self, right: &DataFrame, on: &[&str], how: How) -> Result<DataFrame> {
        if on.is_empty() {
            return Err(Error::invalid("on", "merge needs at least one key column"));
        }
        check_columns("merge (left side)", on, &self.meta)?;
        check_columns("merge (right side)", on, &right.meta)?;
        let keys: Vec<Expr> = on.iter().map(|k| pl::col(*k)).collect();
        let meta = join(self.meta(), right.meta(), &keys, how)
            .map_err(|e| Error::polars(format!("merge on {on:?}"), e))?;
        let schema = meta.schema().clone();
        if right.npartitions() == 1 {
            let op = try_fn_op(move |l: pl::DataFrame, r: pl::DataFrame| join(l, r, &keys, how));
            let parts = self.parts.zip_broadcast(&right.parts, "merge", op);
            let divisions = Divisions::Unknown;
            Ok(self.derived(parts, schema, divisions))
        } else if self.npartitions() == 1 && how == How::Inner {
            let op = try_fn_op(move |r: pl::DataFrame, l: pl::DataFrame| join(l, r, &keys, how));
            let parts = right.parts.zip_broadcast(&self.parts, "merge", op);
            Ok(self.derived(parts, schema, Divisions::Unknown))
        } else {
            Err(Error::invalid(
                "right",
                format!(
                    "merging frames of {} and {} partitions needs a hash shuffle, which is not \
                     implemented: make the smaller side one partition (for a left join, the right \
                     side), e.g. DataFrame::from_polars(small.compute()?, 1)",
                    self.npartitions(),
                    right.npartitions()
                ),
            ))
        }
    }
}
