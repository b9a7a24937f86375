//! `repartition`: change the number of partitions without a shuffle.
//!
//! Fewer partitions: neighbours are concatenated. More partitions: each
//! partition is cut into nearly equal slices (by its row count, found when
//! the task runs). Row order is kept either way.

use dask_core::op::{fn_op, try_fn_op};
use dask_core::{Arg, Task, Value};
use polars::prelude as pl;

use crate::frame::{concat_frames, DataFrame, Divisions};
use crate::parts::Parts;
use crate::{Error, Result};

impl DataFrame {
    /// The same rows, in the same order, in `npartitions` partitions.
    /// Known divisions stay known when partitions are merged.
    ///
    /// Errors: [`Error::InvalidArgument`] if `npartitions` is 0.
    pub fn repartition(&self, npartitions: usize) -> Result<DataFrame> {
        if npartitions == 0 {
            return Err(Error::invalid(
                "npartitions",
                "a dataframe needs at least one partition, got 0: pass 1 or more",
            ));
        }
        let n = self.npartitions();
        let k = npartitions;
        if k <= n {
            let meta = self.meta.clone();
            let op = try_fn_op(move |parts: Vec<Value>| -> Result<pl::DataFrame> {
                let frames = parts
                    .into_iter()
                    .map(|v| v.take::<pl::DataFrame>())
                    .collect::<dask_core::Result<Vec<_>>>()?;
                concat_frames(&meta, frames).map_err(|e| Error::polars("repartition", e))
            });
            let bounds: Vec<usize> = (0..=k).map(|j| j * n / k).collect();
            let tasks = bounds
                .windows(2)
                .map(|w| {
                    let keys = (w[0]..w[1]).map(|i| Arg::Key(self.parts.key(i))).collect();
                    Task::new(op.clone(), vec![Arg::List(keys)])
                })
                .collect();
            let divisions = match &self.divisions {
                Divisions::Known(d) => Divisions::Known(bounds.iter().map(|&b| d[b]).collect()),
                Divisions::Index {
                    column,
                    bounds: values,
                } => Divisions::Index {
                    column: column.clone(),
                    bounds: bounds.iter().map(|&b| values[b].clone()).collect(),
                },
                Divisions::Unknown => Divisions::Unknown,
            };
            let parts = Parts::from_tasks("repartition", tasks, &[&self.parts.graph]);
            Ok(self.derived(parts, self.meta.clone(), divisions))
        } else {
            let op = fn_op(|df: pl::DataFrame, piece: usize, pieces: usize| {
                let len = df.height();
                let (a, b) = (piece * len / pieces, (piece + 1) * len / pieces);
                df.slice(a as i64, b - a)
            });
            let mut tasks = Vec::with_capacity(k);
            for i in 0..n {
                let pieces = (i + 1) * k / n - i * k / n;
                for j in 0..pieces {
                    tasks.push(Task::new(
                        op.clone(),
                        vec![
                            Arg::Key(self.parts.key(i)),
                            Arg::value(j),
                            Arg::value(pieces),
                        ],
                    ));
                }
            }
            let parts = Parts::from_tasks("repartition", tasks, &[&self.parts.graph]);
            Ok(self.derived(parts, self.meta.clone(), Divisions::Unknown))
        }
    }
}
