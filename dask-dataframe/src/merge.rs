//! `merge`: joins by broadcast or by hash shuffle.
//!
//! - Single-partition: when the side whose unmatched rows are dropped (or
//!   both sides) is one partition, it is joined to every partition of the
//!   other side (Dask's `_is_single_partition_broadcast`).
//! - Broadcast: when one side has few partitions (`n_small < log2(n_big) *
//!   broadcast_bias`, bias 0.5: Dask's heuristic) and the join keeps no
//!   unmatched rows of it (inner, or left with the small side right, right
//!   with the small side left), its partitions are concatenated into one and
//!   joined to every partition of the other side.
//! - Hash shuffle otherwise: both sides are shuffled by the hash of the key
//!   columns into the same `npartitions` (default: the larger side's count)
//!   and joined partition by partition; equal keys meet in one partition, so
//!   inner, left, right and outer joins are all exact.
//!
//! [`MergeOptions::strategy`] forces either path. Every partition is joined
//! by polars with the same arguments as a join of the whole frames, so the
//! result's schema and rows are polars' own (row order is not specified).

use std::sync::Arc;

use dask_core::{Arg, Op, Task};
use polars::prelude as pl;
use polars::prelude::{Expr, IntoLazy, JoinArgs, JoinType, PolarsResult};
use serde::{Deserialize, Serialize};

use crate::frame::{check_columns, DataFrame, Divisions, Origin};
use crate::ops::{CombineFrames, Join, Kernel};
use crate::parts::Parts;
use crate::shuffle::check_npartitions;
use crate::{Error, Result};

/// The kind of join.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum How {
    /// Rows whose keys are on both sides.
    Inner,
    /// Every left row, with the right side's columns null where no key matches.
    Left,
    /// Every right row, with the left side's columns null where no key matches.
    Right,
    /// Every row of both sides (polars' full join: the right key columns are
    /// kept as `<key>_right`).
    Outer,
}

impl How {
    fn join_type(self) -> JoinType {
        match self {
            How::Inner => JoinType::Inner,
            How::Left => JoinType::Left,
            How::Right => JoinType::Right,
            How::Outer => JoinType::Full,
        }
    }

    /// Whether the unmatched rows of `side` are kept.
    fn keeps(self, side: Side) -> bool {
        matches!(
            (self, side),
            (How::Outer, _) | (How::Left, Side::Left) | (How::Right, Side::Right)
        )
    }
}

/// How a merge moves the data (see [`DataFrame::merge_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum JoinStrategy {
    /// Broadcast a single-partition or small side when the join allows it,
    /// hash-shuffle both sides otherwise (Dask's default).
    #[default]
    Auto,
    /// Always concatenate one side into one partition and join it to every
    /// partition of the other (the smaller side, or the one whose unmatched
    /// rows are dropped). Refused for outer joins of several partitions.
    Broadcast,
    /// Always hash-shuffle both sides.
    Shuffle,
}

/// Options of [`DataFrame::merge_with`].
#[derive(Clone, Debug, PartialEq)]
pub struct MergeOptions {
    how: How,
    strategy: JoinStrategy,
    npartitions: Option<usize>,
    broadcast_bias: f64,
}

impl MergeOptions {
    /// A join of kind `how`, strategy [`JoinStrategy::Auto`], bias 0.5.
    pub fn new(how: How) -> MergeOptions {
        MergeOptions {
            how,
            strategy: JoinStrategy::Auto,
            npartitions: None,
            broadcast_bias: 0.5,
        }
    }

    /// Forces a strategy (Dask's `broadcast=True/False`).
    pub fn strategy(mut self, strategy: JoinStrategy) -> MergeOptions {
        self.strategy = strategy;
        self
    }

    /// The number of output partitions of a hash shuffle (default: the
    /// larger side's count).
    pub fn npartitions(mut self, npartitions: usize) -> MergeOptions {
        self.npartitions = Some(npartitions);
        self
    }

    /// Dask's `broadcast=<float>`: [`JoinStrategy::Auto`] broadcasts a side of
    /// `n_small` partitions when `n_small < log2(n_big) * bias`.
    pub fn broadcast_bias(mut self, bias: f64) -> MergeOptions {
        self.broadcast_bias = bias;
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

/// Joins two frames on `on` with polars (columns of the right side that
/// clash with the left get polars' `_right` suffix).
pub(crate) fn join(
    left: pl::DataFrame,
    right: pl::DataFrame,
    on: &[Expr],
    how: How,
) -> PolarsResult<pl::DataFrame> {
    left.lazy()
        .join(right.lazy(), on, on, JoinArgs::new(how.join_type()))
        .collect()
}

/// The whole of `parts` as one partition (itself when it already is one).
fn gather(parts: &Parts, meta: pl::SchemaRef) -> Parts {
    if parts.npartitions == 1 {
        return parts.clone();
    }
    let op: Arc<dyn Op> = Arc::new(CombineFrames {
        label: "merge-gather".into(),
        kernel: Kernel::Keep,
        schema: meta,
    });
    let keys = parts.keys().into_iter().map(Arg::Key).collect();
    Parts::from_tasks(
        "merge-gather",
        vec![Task::new(op, vec![Arg::List(keys)])],
        &[&parts.graph],
    )
}

impl DataFrame {
    /// Joins with `right` on the key columns `on` (present on both sides)
    /// with [`JoinStrategy::Auto`]; see [`merge_with`](Self::merge_with).
    pub fn merge(&self, right: &DataFrame, on: &[&str], how: How) -> Result<DataFrame> {
        self.merge_with(right, on, MergeOptions::new(how))
    }

    /// Joins with `right` on the key columns `on` (present on both sides,
    /// with the same dtypes). Each pair of partitions is joined by polars as
    /// the whole frames would be, so the schema is polars' for the same join;
    /// row order is not specified; null keys match nothing (polars' default).
    ///
    /// How the data move ([`JoinStrategy::Auto`], Dask's rules):
    /// - a single-partition side whose unmatched rows the join drops (inner;
    ///   the right side of a left join; the left side of a right join), or
    ///   two single partitions: joined to every partition of the other side;
    /// - a side of `n_small` partitions with `n_small < log2(n_big) * bias`
    ///   (bias 0.5, [`MergeOptions::broadcast_bias`]) under the same rule:
    ///   concatenated into one partition, then broadcast likewise;
    /// - otherwise a hash shuffle: both sides go through a hash shuffle on
    ///   the keys into `npartitions` (default: the larger count) partitions
    ///   and are joined pairwise. Equal keys meet in one partition, so inner,
    ///   left, right and outer joins are exact.
    ///
    /// [`JoinStrategy::Broadcast`] and [`JoinStrategy::Shuffle`] force a path.
    ///
    /// Errors: [`Error::UnknownColumn`] naming the side without a key;
    /// [`Error::InvalidArgument`] for no key, key dtypes that differ, 0
    /// `npartitions`, or a forced broadcast of an outer join;
    /// [`Error::Polars`] if polars refuses the join.
    pub fn merge_with(
        &self,
        right: &DataFrame,
        on: &[&str],
        options: MergeOptions,
    ) -> Result<DataFrame> {
        if on.is_empty() {
            return Err(Error::invalid("on", "merge needs at least one key column"));
        }
        check_columns("merge (left side)", on, &self.meta)?;
        check_columns("merge (right side)", on, &right.meta)?;
        for k in on {
            let (l, r) = (self.meta.get(k), right.meta.get(k));
            if l != r {
                return Err(Error::invalid(
                    "on",
                    format!(
                        "the key `{k}` is {} on the left side and {} on the right side: cast one \
                         side with `astype` so both have the same dtype",
                        l.map_or("missing".into(), |d| d.to_string()),
                        r.map_or("missing".into(), |d| d.to_string())
                    ),
                ));
            }
        }
        if let Some(n) = options.npartitions {
            check_npartitions("npartitions", n)?;
        }
        let how = options.how;
        let keys: Vec<Expr> = on.iter().map(|k| pl::col(*k)).collect();
        let meta = join(self.meta(), right.meta(), &keys, how)
            .map_err(|e| Error::polars(format!("merge on {on:?}"), e))?;
        let schema = meta.schema().clone();
        let (nl, nr) = (self.npartitions(), right.npartitions());
        let on: Vec<String> = on.iter().map(|k| (*k).to_owned()).collect();
        let join_op = |swap: bool| -> Arc<dyn Op> {
            Arc::new(Join {
                on: on.clone(),
                how,
                swap,
            })
        };

        // The side to broadcast, if any.
        let can_broadcast = |side: Side| !how.keeps(side);
        let small = if nl < nr { Side::Left } else { Side::Right };
        let broadcast = match options.strategy {
            JoinStrategy::Shuffle => None,
            JoinStrategy::Broadcast => {
                if nl == 1 && nr == 1 {
                    Some(Side::Right)
                } else if can_broadcast(small) {
                    Some(small)
                } else if can_broadcast(other(small)) {
                    Some(other(small))
                } else {
                    return Err(Error::invalid(
                        "strategy",
                        format!(
                            "an outer join keeps the unmatched rows of both sides, so neither \
                             side ({nl} and {nr} partitions) can be broadcast: use \
                             JoinStrategy::Shuffle or Auto"
                        ),
                    ));
                }
            }
            JoinStrategy::Auto => {
                let n_of = |s: Side| if s == Side::Left { nl } else { nr };
                if nl == 1 && nr == 1 {
                    Some(Side::Right)
                } else if n_of(small) == 1 && can_broadcast(small) {
                    Some(small)
                } else if n_of(other(small)) == 1 && can_broadcast(other(small)) {
                    Some(other(small))
                } else {
                    let (n_low, n_high) = (nl.min(nr) as f64, nl.max(nr) as f64);
                    (can_broadcast(small) && n_low < n_high.log2() * options.broadcast_bias)
                        .then_some(small)
                }
            }
        };
        let parts = match broadcast {
            Some(Side::Right) => {
                let one = gather(&right.parts, right.meta.clone());
                self.parts.zip_broadcast(&one, "merge", join_op(false))
            }
            Some(Side::Left) => {
                let one = gather(&self.parts, self.meta.clone());
                right.parts.zip_broadcast(&one, "merge", join_op(true))
            }
            None => {
                let nout = options.npartitions.unwrap_or(nl.max(nr));
                let l = self
                    .parts
                    .hash_shuffle("shuffle-left", &on, nout, self.meta.clone());
                let r = right
                    .parts
                    .hash_shuffle("shuffle-right", &on, nout, right.meta.clone());
                l.zip(&r, "hash-join", join_op(false))?
            }
        };
        let mut out = self.derived(parts, schema, Divisions::Unknown);
        if self.origin.is_some() || right.origin.is_some() {
            out.origin = Some(Arc::new(Origin::Merge {
                left: self.clone(),
                right: right.clone(),
                on,
                options,
            }));
        }
        Ok(out)
    }
}

fn other(side: Side) -> Side {
    match side {
        Side::Left => Side::Right,
        Side::Right => Side::Left,
    }
}
