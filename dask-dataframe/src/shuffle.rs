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

use dask_core::{Arg, Graph, HighLevelGraph, Key, Op, Task};
use polars::prelude as pl;
use polars::prelude::{
    ChunkCompareIneq, IdxSize, PlSeedableRandomStateQuality, PolarsResult, SchemaRef,
    SeedableFromU64SeedExt,
};

use serde::{Deserialize, Serialize};

use crate::ops::{ConcatPieces, Split, SplitBy};
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
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Boundaries {
    pub(crate) column: String,
    #[serde(with = "crate::wire::series")]
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

impl Parts {
    /// Shuffles these frame partitions into `by.nout()` partitions: a split
    /// task cuts each input partition into that many pieces, and output partition `j`
    /// concatenates piece `j` of every input, in input order. `meta` is the
    /// frames' schema (for an output that receives no rows).
    pub(crate) fn shuffle(&self, label: &str, by: SplitBy, meta: SchemaRef) -> Parts {
        let nout = by.nout();
        let name = new_name(label);
        let split_name: Arc<str> = format!("{name}-split").into();
        let split_op: Arc<dyn Op> = Arc::new(Split {
            label: format!("{label}-split"),
            by,
        });
        let concat_op: Arc<dyn Op> = Arc::new(ConcatPieces {
            label: format!("{label}-concat"),
            schema: meta,
        });
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
        let by = SplitBy::Hash {
            on: on.to_vec(),
            nout,
        };
        self.shuffle(label, by, meta)
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
