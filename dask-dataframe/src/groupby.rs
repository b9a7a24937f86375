//! [`GroupBy`]: `df.groupby(keys).agg(..)` as a tree reduction.
//!
//! Each partition is grouped and aggregated into partial aggregates (a sum
//! and a count for a mean), combine tasks concatenate at most `split_every`
//! partial frames and group them again, and the last task finishes the
//! aggregates and sorts the groups by their keys (Dask sorts the groups when
//! the result is one partition). The result is one partition, or with
//! [`GroupBy::split_out`] `n` partitions: the per-partition partial
//! aggregates are hash-shuffled by the group keys into `n` partitions, each
//! of which combines and finishes its groups (sorted within the partition,
//! not across partitions).

use std::sync::Arc;

use dask_core::Op;
use polars::prelude as pl;
use polars::prelude::Expr;

use crate::frame::{check_columns, DataFrame, Divisions};
use crate::ops::{Kernel, MapFrame};
use crate::reduce::{agg_stages, reduce_frames, result_dtypes, Agg, AggSpec, Stages};
use crate::shuffle::check_npartitions;
use crate::{Error, Result};

/// A grouping of a [`DataFrame`] by key columns; see [`DataFrame::groupby`].
#[derive(Clone, Debug)]
pub struct GroupBy {
    frame: DataFrame,
    keys: Vec<String>,
    split_out: usize,
}

impl DataFrame {
    /// Groups the rows by the values of the `keys` columns.
    ///
    /// Errors: [`Error::UnknownColumn`]; [`Error::InvalidArgument`] for no key.
    pub fn groupby(&self, keys: &[&str]) -> Result<GroupBy> {
        if keys.is_empty() {
            return Err(Error::invalid(
                "keys",
                "groupby needs at least one key column",
            ));
        }
        check_columns("groupby", keys, &self.meta)?;
        Ok(GroupBy {
            frame: self.clone(),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            split_out: 1,
        })
    }
}

impl GroupBy {
    /// The number of output partitions of the aggregations (Dask's
    /// `split_out`, default 1). With more than one, the partial aggregates
    /// of every input partition are hash-shuffled by the group keys, so each
    /// group is finished in exactly one output partition; use it when the
    /// groups are too many for one partition. Groups are sorted by key within
    /// each output partition only.
    ///
    /// Errors: [`Error::InvalidArgument`] if `n` is 0.
    pub fn split_out(&self, n: usize) -> Result<GroupBy> {
        check_npartitions("split_out", n)?;
        let mut out = self.clone();
        out.split_out = n;
        Ok(out)
    }

    /// Aggregates: one output column per `(column, agg)` pair, named after the
    /// column, or `column_agg` when the column is aggregated more than once.
    /// The result has the key columns first, one row per group, sorted by key
    /// (within each output partition with [`split_out`](Self::split_out)).
    ///
    /// Errors: [`Error::UnknownColumn`]; [`Error::Polars`] if an aggregation
    /// does not apply to a column's dtype; [`Error::InvalidArgument`] for no
    /// aggregation.
    pub fn agg(&self, aggs: &[(&str, Agg)]) -> Result<DataFrame> {
        if aggs.is_empty() {
            return Err(Error::invalid(
                "aggs",
                "agg needs at least one (column, Agg) pair",
            ));
        }
        let columns: Vec<&str> = aggs.iter().map(|a| a.0).collect();
        check_columns("groupby.agg", &columns, &self.frame.meta)?;
        let mut needed: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        for c in &columns {
            if !needed.contains(c) {
                needed.push(c);
            }
        }
        if let Some(narrow) = self.frame.projected(&needed)? {
            let narrow = GroupBy {
                frame: narrow,
                keys: self.keys.clone(),
                split_out: self.split_out,
            };
            return narrow.agg(aggs);
        }
        let specs: Vec<AggSpec> = aggs
            .iter()
            .map(|&(column, agg)| {
                let repeated = columns.iter().filter(|c| **c == column).count() > 1;
                AggSpec {
                    column: column.to_owned(),
                    agg,
                    out: if repeated {
                        format!("{column}_{}", agg.name())
                    } else {
                        column.to_owned()
                    },
                }
            })
            .collect();
        if let Some(clash) = specs.iter().find(|s| self.keys.contains(&s.out)) {
            return Err(Error::invalid(
                "aggs",
                format!(
                    "`{}` is a group key and cannot also be aggregated under the same name",
                    clash.out
                ),
            ));
        }
        let keys: Vec<Expr> = self.keys.iter().map(|k| pl::col(k.as_str())).collect();
        let meta = self.frame.meta();
        let dtypes = result_dtypes("groupby.agg", &meta, &keys, &specs)?;
        let stages = agg_stages(&self.keys, &specs, &dtypes);
        if self.split_out > 1 {
            return self.agg_split_out(&meta, stages);
        }
        let (parts, schema) = reduce_frames(
            &self.frame.parts,
            "groupby-agg",
            &meta,
            stages,
            self.frame.split_every,
        )?;
        Ok(self.frame.derived(parts, schema, Divisions::Unknown))
    }

    /// `agg` into `split_out` partitions: chunk, hash shuffle of the partial
    /// aggregates by key, then combine and finish per output partition.
    fn agg_split_out(&self, meta: &pl::DataFrame, stages: Stages) -> Result<DataFrame> {
        let label = "groupby-agg";
        let chunk_schema = stages.chunk.on_meta(label, meta.schema())?;
        let finish = Kernel::Chain(vec![stages.combine, stages.finish]);
        let out_schema = finish.on_meta(label, &chunk_schema)?;
        let chunk: Arc<dyn Op> = Arc::new(MapFrame {
            label: "groupby-chunk".into(),
            kernel: stages.chunk,
        });
        let chunked = self.frame.parts.map("groupby-chunk", chunk, &[]);
        let shuffled =
            chunked.hash_shuffle("groupby-shuffle", &self.keys, self.split_out, chunk_schema);
        let finish: Arc<dyn Op> = Arc::new(MapFrame {
            label: label.into(),
            kernel: finish,
        });
        let parts = shuffled.map(label, finish, &[]);
        Ok(self.frame.derived(parts, out_schema, Divisions::Unknown))
    }

    /// `agg` of one column.
    fn one(&self, column: &str, agg: Agg) -> Result<DataFrame> {
        self.agg(&[(column, agg)])
    }

    /// Per-group sum of `column`.
    pub fn sum(&self, column: &str) -> Result<DataFrame> {
        self.one(column, Agg::Sum)
    }

    /// Per-group mean of `column`.
    pub fn mean(&self, column: &str) -> Result<DataFrame> {
        self.one(column, Agg::Mean)
    }

    /// Per-group minimum of `column`.
    pub fn min(&self, column: &str) -> Result<DataFrame> {
        self.one(column, Agg::Min)
    }

    /// Per-group maximum of `column`.
    pub fn max(&self, column: &str) -> Result<DataFrame> {
        self.one(column, Agg::Max)
    }

    /// Per-group count of non-null values of `column`.
    pub fn count(&self, column: &str) -> Result<DataFrame> {
        self.one(column, Agg::Count)
    }
}
