//! Shuffles: move every row to the output partition its key decides, as a
//! task graph that runs on any scheduler.
//!
//! A shuffle of `n` input partitions into `nout` output partitions is two
//! layers of tasks: a *split* task per input partition cuts it into `nout`
//! pieces (a `Vec` of frames, row order kept within each piece), then a
//! *concat* task per output partition `j` concatenates piece `j` of every
//! split, in input order. Rows with equal keys therefore land in the same
//! output partition, in their original relative order. The graph is
//! all-to-all (`n x nout` dependencies); on in-process schedulers the pieces
//! are shared `Arc`s, nothing is copied.
//!
//! Two ways to pick the piece of a row:
//! - hash ([`hash_split`]): a seeded polars hash of the key columns (the
//!   same seed in every task and process), modulo `nout`; used by merges and
//!   `groupby(..).agg` with `split_out`;
//! - range ([`range_split`]): the number of boundaries at or below the
//!   row's value of one column (sorted boundaries found by sampling); nulls go
//!   to the last partition; used by `sort_values` and `set_index`.

use std::sync::Arc;

use dask_core::op::try_fn_op;
use dask_core::{Arg, Graph, HighLevelGraph, Key, Op, Task, Value};
use polars::prelude as pl;
use polars::prelude::{
    ChunkCompareIneq, IdxSize, PlSeedableRandomStateQuality, PolarsResult, SchemaRef,
    SeedableFromU64SeedExt,
};

use crate::frame::concat_frames;
use crate::parts::{new_name, Parts};
use crate::{Error, Result};

/// The hash seed of every hash shuffle: equal keys must hash equally in
/// every task, on both sides of a merge, in every process.
const HASH_SEED: u64 = 0x0064_6173_6b2d_7273; // "dask-rs"

/// The output partition (`0..nout`) of every row of `df`, by the hash of the
/// columns `on`.
pub(crate) fn hash_partitions(
    df: &pl::DataFrame,
    on: &[String],
    nout: usize,
) -> PolarsResult<Vec<usize>> {
    let state = PlSeedableRandomStateQuality::seed_from_u64(HASH_SEED);
    let mut hashes: Vec<u64> = Vec::with_capacity(df.height());
    for (i, name) in on.iter().enumerate() {
        let c = df.column(name.as_str())?;
        if i == 0 {
            c.vec_hash(state.clone(), &mut hashes)?;
        } else {
            c.vec_hash_combine(state.clone(), &mut hashes)?;
        }
    }
    if on.is_empty() {
        hashes.resize(df.height(), 0);
    }
    Ok(hashes
        .into_iter()
        .map(|h| (h % nout as u64) as usize)
        .collect())
}

/// Cuts `df` into `nout` pieces: row `r` goes to piece `target[r]`; the rows
/// of a piece keep their order.
fn take_pieces(
    df: &pl::DataFrame,
    target: &[usize],
    nout: usize,
) -> PolarsResult<Vec<pl::DataFrame>> {
    let mut rows: Vec<Vec<IdxSize>> = vec![Vec::new(); nout];
    for (r, &t) in target.iter().enumerate() {
        rows[t].push(r as IdxSize);
    }
    rows.into_iter()
        .map(|idx| {
            if idx.len() == df.height() {
                Ok(df.clone())
            } else {
                df.take(&pl::IdxCa::from_vec("".into(), idx))
            }
        })
        .collect()
}

/// Splits a frame into `nout` pieces by the hash of the columns `on`.
pub(crate) fn hash_split(
    df: &pl::DataFrame,
    on: &[String],
    nout: usize,
) -> PolarsResult<Vec<pl::DataFrame>> {
    let target = hash_partitions(df, on, nout)?;
    take_pieces(df, &target, nout)
}

/// Boundaries of a range shuffle on one column: `values` holds `nout - 1`
/// values sorted in the output order (ascending, or descending when
/// `descending`).
#[derive(Clone, Debug)]
pub(crate) struct Boundaries {
    pub(crate) column: String,
    pub(crate) values: pl::Series,
    pub(crate) descending: bool,
}

/// The output partition of every row for a range shuffle: the number of
/// boundaries `b` with `b <= value` (ascending) or `b >= value` (descending);
/// nulls go to the last partition.
pub(crate) fn range_partitions(df: &pl::DataFrame, b: &Boundaries) -> PolarsResult<Vec<usize>> {
    let col = df.column(b.column.as_str())?.as_materialized_series();
    let nout = b.values.len() + 1;
    let mut target = vec![0usize; df.height()];
    if df.height() == 0 {
        return Ok(target);
    }
    for k in 0..b.values.len() {
        let bound = b.values.slice(k as i64, 1);
        let past = if b.descending {
            col.lt_eq(&bound)?
        } else {
            col.gt_eq(&bound)?
        };
        for (t, p) in target.iter_mut().zip(past.iter()) {
            if p == Some(true) {
                *t += 1;
            }
        }
    }
    if col.null_count() > 0 {
        for (t, valid) in target.iter_mut().zip(col.is_not_null().iter()) {
            if valid != Some(true) {
                *t = nout - 1;
            }
        }
    }
    Ok(target)
}

/// Splits a frame into `boundaries.len() + 1` pieces by value ranges.
pub(crate) fn range_split(df: &pl::DataFrame, b: &Boundaries) -> PolarsResult<Vec<pl::DataFrame>> {
    let target = range_partitions(df, b)?;
    take_pieces(df, &target, b.values.len() + 1)
}

/// A function cutting one partition into pieces.
pub(crate) type SplitFn =
    Arc<dyn Fn(&pl::DataFrame) -> PolarsResult<Vec<pl::DataFrame>> + Send + Sync>;

impl Parts {
    /// Shuffles these frame partitions into `nout` partitions: `split` cuts
    /// each input partition into `nout` pieces, and output partition `j`
    /// concatenates piece `j` of every input, in input order. `meta` is the
    /// frames' schema (for an output that receives no rows).
    pub(crate) fn shuffle(
        &self,
        label: &str,
        split: SplitFn,
        nout: usize,
        meta: SchemaRef,
    ) -> Parts {
        let name = new_name(label);
        let split_name: Arc<str> = format!("{name}-split").into();
        let split_label = format!("{label}-split");
        let split_op = try_fn_op(move |df: pl::DataFrame| -> Result<Vec<pl::DataFrame>> {
            let pieces = split(&df).map_err(|e| Error::polars(split_label.clone(), e))?;
            if pieces.len() != nout {
                return Err(Error::Core(dask_core::Error::Internal(format!(
                    "a shuffle split gave {} pieces for {nout} output partitions (bug)",
                    pieces.len()
                ))));
            }
            Ok(pieces)
        });
        let concat_label = format!("{label}-concat");
        let concat_op: Arc<dyn Op> = try_fn_op(
            move |j: usize, splits: Vec<Value>| -> Result<pl::DataFrame> {
                let mut frames = Vec::with_capacity(splits.len());
                for s in &splits {
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
                concat_frames(&meta, frames).map_err(|e| Error::polars(concat_label.clone(), e))
            },
        );
        let mut graph = Graph::with_capacity(self.npartitions + nout);
        let splits: Vec<Arg> = (0..self.npartitions)
            .map(|i| {
                let k = Key::new(split_name.clone(), [i as u64]);
                graph.insert(
                    k.clone(),
                    Task::new(split_op.clone(), vec![Arg::Key(self.key(i))]),
                );
                Arg::Key(k)
            })
            .collect();
        for j in 0..nout {
            graph.insert(
                Key::new(name.clone(), [j as u64]),
                Task::new(
                    concat_op.clone(),
                    vec![Arg::value(j), Arg::List(splits.clone())],
                ),
            );
        }
        Parts {
            graph: HighLevelGraph::from_layer(name.clone(), graph, &[&self.graph]),
            name,
            npartitions: nout,
        }
    }

    /// A hash shuffle of frame partitions by the columns `on` into `nout`
    /// partitions: all rows with equal keys end in one partition.
    pub(crate) fn hash_shuffle(
        &self,
        label: &str,
        on: &[String],
        nout: usize,
        meta: SchemaRef,
    ) -> Parts {
        let on = on.to_vec();
        self.shuffle(
            label,
            Arc::new(move |df: &pl::DataFrame| hash_split(df, &on, nout)),
            nout,
            meta,
        )
    }
}

/// Checks a number of output partitions.
pub(crate) fn check_npartitions(name: &'static str, n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid(
            name,
            "a shuffle needs at least one output partition, got 0: pass 1 or more",
        ));
    }
    Ok(())
}
