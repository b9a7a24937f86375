//! `repartition`: change the number of partitions without a shuffle.
//!
//! Fewer partitions: neighbours are concatenated. More partitions: each
//! partition is cut into nearly equal slices (by its row count, found when
//! the task runs). Row order is kept either way.

use std::sync::Arc;

use dask_core::{Arg, Op, Task};

use crate::frame::{DataFrame, Divisions};
use crate::ops::{CombineFrames, Kernel, MapFrame};
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
            let op: Arc<dyn Op> = Arc::new(CombineFrames {
                label: "repartition".into(),
                kernel: Kernel::Keep,
                schema: self.meta.clone(),
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
            let mut tasks = Vec::with_capacity(k);
            for i in 0..n {
                let pieces = (i + 1) * k / n - i * k / n;
                for j in 0..pieces {
                    let op: Arc<dyn Op> = Arc::new(MapFrame {
                        label: "repartition".into(),
                        kernel: Kernel::Piece { piece: j, pieces },
                    });
                    tasks.push(Task::new(op, vec![Arg::Key(self.parts.key(i))]));
                }
            }
            let parts = Parts::from_tasks("repartition", tasks, &[&self.parts.graph]);
            Ok(self.derived(parts, self.meta.clone(), Divisions::Unknown))
        }
    }
}
