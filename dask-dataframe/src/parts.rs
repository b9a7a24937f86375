//! [`Parts`]: a graph layer of partitions, and the layer builders every
//! collection uses (one task per partition, zips, tree reductions).

use std::sync::Arc;

use dask_core::tokenize::unique_token;
use dask_core::{optimize, Arg, Graph, HighLevelGraph, Key, Op, Scheduler, Task, Value};

use crate::{Error, Result};

/// The default fan-in of tree reductions (as in Dask).
pub const DEFAULT_SPLIT_EVERY: usize = 8;

/// `npartitions` values under the keys `(name, i)` of a graph.
#[derive(Clone, Debug)]
pub(crate) struct Parts {
    pub(crate) graph: HighLevelGraph,
    pub(crate) name: Arc<str>,
    pub(crate) npartitions: usize,
}

/// A fresh layer name: `label-<unique token>`.
pub(crate) fn new_name(label: &str) -> Arc<str> {
    format!("{label}-{}", unique_token()).into()
}

impl Parts {
    /// Partitions given as values.
    pub(crate) fn from_values(label: &str, values: Vec<Value>) -> Parts {
        let name = new_name(label);
        let mut graph = Graph::with_capacity(values.len());
        let npartitions = values.len();
        for (i, v) in values.into_iter().enumerate() {
            graph.insert_data(Key::new(name.clone(), [i as u64]), v);
        }
        Parts {
            graph: HighLevelGraph::from_layer(name.clone(), graph, &[]),
            name,
            npartitions,
        }
    }

    /// Partitions made by tasks: `tasks[i]` computes partition `i`; `inputs`
    /// are the graphs the tasks refer to.
    pub(crate) fn from_tasks(label: &str, tasks: Vec<Task>, inputs: &[&HighLevelGraph]) -> Parts {
        let name = new_name(label);
        let npartitions = tasks.len();
        let mut graph = Graph::with_capacity(npartitions);
        for (i, t) in tasks.into_iter().enumerate() {
            graph.insert(Key::new(name.clone(), [i as u64]), t);
        }
        Parts {
            graph: HighLevelGraph::from_layer(name.clone(), graph, inputs),
            name,
            npartitions,
        }
    }

    /// The key of partition `i`.
    pub(crate) fn key(&self, i: usize) -> Key {
        Key::new(self.name.clone(), [i as u64])
    }

    /// The keys of all partitions, in order.
    pub(crate) fn keys(&self) -> Vec<Key> {
        (0..self.npartitions).map(|i| self.key(i)).collect()
    }

    /// A new layer applying `op` to each partition (and `extra` arguments).
    pub(crate) fn map(&self, label: &str, op: Arc<dyn Op>, extra: &[Arg]) -> Parts {
        let tasks = (0..self.npartitions)
            .map(|i| {
                let mut args = vec![Arg::Key(self.key(i))];
                args.extend(extra.iter().cloned());
                Task::new(op.clone(), args)
            })
            .collect();
        Parts::from_tasks(label, tasks, &[&self.graph])
    }

    /// A new layer applying `op` to partition `i` of `self` and of `other`.
    pub(crate) fn zip(&self, other: &Parts, label: &str, op: Arc<dyn Op>) -> Result<Parts> {
        if self.npartitions != other.npartitions {
            return Err(Error::NotAligned {
                op: label.to_owned(),
                message: format!(
                    "the operands have {} and {} partitions; combine collections derived from \
                     the same dataframe (same partitioning), or repartition one of them",
                    self.npartitions, other.npartitions
                ),
            });
        }
        let tasks = (0..self.npartitions)
            .map(|i| {
                Task::new(
                    op.clone(),
                    vec![Arg::Key(self.key(i)), Arg::Key(other.key(i))],
                )
            })
            .collect();
        Ok(Parts::from_tasks(
            label,
            tasks,
            &[&self.graph, &other.graph],
        ))
    }

    /// A new layer applying `op` to each partition of `self` and the single
    /// partition of `one` (a broadcast).
    pub(crate) fn zip_broadcast(&self, one: &Parts, label: &str, op: Arc<dyn Op>) -> Parts {
        let tasks = (0..self.npartitions)
            .map(|i| {
                Task::new(
                    op.clone(),
                    vec![Arg::Key(self.key(i)), Arg::Key(one.key(0))],
                )
            })
            .collect();
        Parts::from_tasks(label, tasks, &[&self.graph, &one.graph])
    }

    /// A tree reduction: `chunk` on every partition, `combine` on lists of at
    /// most `split_every` results (a task receives a `Vec<Value>`) until one is
    /// left, then `finish` on it. Returns one partition holding the result.
    pub(crate) fn tree_reduce(
        &self,
        label: &str,
        chunk: Arc<dyn Op>,
        combine: Arc<dyn Op>,
        finish: Arc<dyn Op>,
        split_every: usize,
    ) -> Parts {
        let name = new_name(label);
        let mut graph = Graph::new();
        let key = |level: u64, i: usize| Key::new(name.clone(), [level, i as u64]);
        for i in 0..self.npartitions {
            graph.insert(
                key(0, i),
                Task::new(chunk.clone(), vec![Arg::Key(self.key(i))]),
            );
        }
        let mut level = 0u64;
        let mut width = self.npartitions;
        while width > 1 {
            let next = width.div_ceil(split_every);
            for j in 0..next {
                let inputs = (j * split_every..((j + 1) * split_every).min(width))
                    .map(|i| Arg::Key(key(level, i)))
                    .collect();
                graph.insert(
                    key(level + 1, j),
                    Task::new(combine.clone(), vec![Arg::List(inputs)]),
                );
            }
            level += 1;
            width = next;
        }
        let out = Key::new(name.clone(), [0u64]);
        graph.insert(out, Task::new(finish, vec![Arg::Key(key(level, 0))]));
        Parts {
            graph: HighLevelGraph::from_layer(name.clone(), graph, &[&self.graph]),
            name,
            npartitions: 1,
        }
    }

    /// Computes the given keys of this graph on `scheduler` (culled, fused).
    pub(crate) fn compute_keys(
        graph: &HighLevelGraph,
        keys: &[Key],
        scheduler: &dyn Scheduler,
    ) -> Result<Vec<Value>> {
        let g = graph.cull_layers(keys).to_graph();
        let g = optimize::fuse(&g, keys)?;
        Ok(scheduler.compute(&g, keys)?)
    }
}

/// Checks a tree reduction's fan-in.
pub(crate) fn check_split_every(split_every: usize) -> Result<()> {
    if split_every < 2 {
        return Err(Error::invalid(
            "split_every",
            format!("a tree reduction must combine at least 2 results per task, got {split_every}"),
        ));
    }
    Ok(())
}
