//! [`Bag`]: the collection, its constructors and its element-wise operations.

use std::marker::PhantomData;
use std::sync::Arc;

use dask_core::tokenize::unique_token;
use dask_core::{Arg, Collection, Delayed, Graph, HighLevelGraph, Key, Scheduler, Task, Value};

use crate::portable::{
    step_tag, FilterFn, FlatMapFn, MapFn, Portable, PortableCollect, PortablePipeline,
    PortableSource,
};
use crate::stage::{
    CollectOp, DynStage, Filter, FlatMap, FromVec, HeadOp, Map, MapPartitions, Range, TryMap, Zip,
};
use crate::{Error, Result};

/// The default fan-in of tree reductions (as in Dask).
pub const DEFAULT_SPLIT_EVERY: usize = 8;

/// A lazy, partitioned collection of `T`: Dask's `dask.bag`.
///
/// Each partition is one `Vec<T>` value in the task graph, under the key
/// `(name, i)`. Element-wise operations (`map`, `filter`, `flat_map`,
/// `pluck`, ...) are not separate graph layers: the bag keeps them as a
/// pending per-partition pipeline, so a chain of them, and the reduction or
/// write that consumes it, runs as one task per partition. The pipeline
/// becomes a graph layer only when the bag itself is computed, persisted or
/// looked at ([`Collection::graph`]).
///
/// Items are `Clone` because a materialized partition is a shared value in the
/// graph: a pipeline reading it clones its items (items produced inside a
/// pipeline are moved, never cloned).
///
/// The price of fusing at build time: two consumers of one pending pipeline
/// (say `b.count()` and `b.sum()` computed together) each run the pipeline.
/// [`persist`](Collection::persist) the bag first to compute it once.
pub struct Bag<T> {
    pub(crate) graph: HighLevelGraph,
    pub(crate) name: Arc<str>,
    pub(crate) npartitions: usize,
    pub(crate) split_every: usize,
    pub(crate) pending: Option<Pending<T>>,
}

pub(crate) struct Pending<T> {
    /// The arguments of each partition's task (after the partition index).
    pub(crate) parts: Arc<Vec<Vec<Arg>>>,
    pub(crate) stage: DynStage<T>,
    /// The chain of operations, `read_text|flat_map|map`: the fused op's name.
    pub(crate) label: Arc<str>,
    /// The same pipeline as worker processes rebuild it, if they can.
    pub(crate) portable: Option<Arc<Portable>>,
}

impl<T> Clone for Pending<T> {
    fn clone(&self) -> Self {
        Pending {
            parts: self.parts.clone(),
            stage: self.stage.clone(),
            label: self.label.clone(),
            portable: self.portable.clone(),
        }
    }
}

impl<T> Clone for Bag<T> {
    fn clone(&self) -> Self {
        Bag {
            graph: self.graph.clone(),
            name: self.name.clone(),
            npartitions: self.npartitions,
            split_every: self.split_every,
            pending: self.pending.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Bag<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Bag<{}>({}, npartitions={})",
            std::any::type_name::<T>(),
            self.name,
            self.npartitions
        )
    }
}

/// A pipeline's inputs: the graph, each partition's arguments, the stage, the
/// label, and its portable form.
pub(crate) struct Source<T> {
    pub(crate) graph: HighLevelGraph,
    pub(crate) parts: Arc<Vec<Vec<Arg>>>,
    pub(crate) stage: DynStage<T>,
    pub(crate) label: Arc<str>,
    pub(crate) portable: Option<Arc<Portable>>,
}

impl<T> Source<T> {
    /// The task of partition `i` running `op` on this pipeline.
    pub(crate) fn task(&self, op: Arc<dyn dask_core::Op>, i: usize) -> Task {
        let mut args = Vec::with_capacity(self.parts[i].len() + 1);
        args.push(Arg::value(i));
        args.extend(self.parts[i].iter().cloned());
        Task::new(op, args)
    }

    /// The op name for a consumer `op` of this pipeline: `read_text|map|op`.
    pub(crate) fn op_name(&self, op: &str) -> String {
        if self.label.is_empty() {
            op.to_owned()
        } else {
            format!("{}|{op}", self.label)
        }
    }
}

pub(crate) fn new_name(op: &str) -> Arc<str> {
    format!("{op}-{}", unique_token()).into()
}

fn check_npartitions(npartitions: usize) -> Result<()> {
    if npartitions == 0 {
        return Err(Error::invalid(
            "npartitions",
            "a bag needs at least one partition, got 0: pass 1 or more",
        ));
    }
    Ok(())
}

impl<T: Clone + Send + Sync + 'static> Bag<T> {
    /// A materialized bag from a graph holding `Vec<T>` values under `(name, i)`.
    pub(crate) fn materialized(graph: HighLevelGraph, name: Arc<str>, npartitions: usize) -> Self {
        Bag {
            graph,
            name,
            npartitions,
            split_every: DEFAULT_SPLIT_EVERY,
            pending: None,
        }
    }

    /// A bag whose partitions are produced by `stage` from `parts`, on top of `graph`.
    pub(crate) fn pending(
        graph: HighLevelGraph,
        op: &str,
        parts: Vec<Vec<Arg>>,
        stage: DynStage<T>,
        portable: Option<Arc<Portable>>,
    ) -> Self {
        Bag {
            graph,
            name: new_name(op),
            npartitions: parts.len(),
            split_every: DEFAULT_SPLIT_EVERY,
            pending: Some(Pending {
                parts: Arc::new(parts),
                stage,
                label: op.into(),
                portable,
            }),
        }
    }

    /// A bag of `items` cut into `npartitions` partitions of nearly equal
    /// length (lengths differ by at most one; with more partitions than items
    /// some partitions are empty). Unlike Dask, the bag has exactly
    /// `npartitions` partitions.
    ///
    /// Errors: [`Error::InvalidArgument`] if `npartitions` is 0.
    pub fn from_sequence(items: impl IntoIterator<Item = T>, npartitions: usize) -> Result<Self> {
        check_npartitions(npartitions)?;
        let mut items: Vec<T> = items.into_iter().collect();
        let len = items.len();
        let mut parts = Vec::with_capacity(npartitions);
        // Cut from the back so each split_off moves only one partition.
        for i in (0..npartitions).rev() {
            let start = i * len / npartitions;
            parts.push(items.split_off(start));
        }
        parts.reverse();
        Ok(Self::from_partitions(parts))
    }

    /// A bag of `items` in partitions of `partition_size` items (the last may be
    /// shorter; an empty sequence gives one empty partition).
    ///
    /// Errors: [`Error::InvalidArgument`] if `partition_size` is 0.
    pub fn from_sequence_with_partition_size(
        items: impl IntoIterator<Item = T>,
        partition_size: usize,
    ) -> Result<Self> {
        if partition_size == 0 {
            return Err(Error::invalid(
                "partition_size",
                "partitions must hold at least one item, got 0: pass 1 or more",
            ));
        }
        let items: Vec<T> = items.into_iter().collect();
        if items.is_empty() {
            return Ok(Self::from_partitions(vec![Vec::new()]));
        }
        let parts = items.chunks(partition_size).map(<[T]>::to_vec).collect();
        Ok(Self::from_partitions(parts))
    }

    fn from_partitions(parts: Vec<Vec<T>>) -> Self {
        let name = new_name("from_sequence");
        let npartitions = parts.len();
        let mut graph = Graph::with_capacity(npartitions);
        for (i, p) in parts.into_iter().enumerate() {
            graph.insert_data(Key::new(name.clone(), [i as u64]), Value::new(p));
        }
        let hlg = HighLevelGraph::from_layer(name.clone(), graph, &[]);
        Self::materialized(hlg, name, npartitions)
    }

    /// A bag whose partitions are the values of `parts` (each a `Vec<T>`), in order.
    ///
    /// Errors: [`Error::InvalidArgument`] if `parts` is empty.
    pub fn from_delayed(parts: impl IntoIterator<Item = Delayed<Vec<T>>>) -> Result<Self> {
        let parts: Vec<Delayed<Vec<T>>> = parts.into_iter().collect();
        check_npartitions(parts.len())?;
        let name = new_name("from_delayed");
        let mut graph = Graph::with_capacity(parts.len());
        let inputs: Vec<HighLevelGraph> = parts.iter().map(Collection::graph).collect();
        for (i, d) in parts.iter().enumerate() {
            graph.insert(
                Key::new(name.clone(), [i as u64]),
                Task::alias(d.key().clone()),
            );
        }
        let inputs: Vec<&HighLevelGraph> = inputs.iter().collect();
        let hlg = HighLevelGraph::from_layer(name.clone(), graph, &inputs);
        Ok(Self::materialized(hlg, name, parts.len()))
    }

    /// The number of partitions.
    pub fn npartitions(&self) -> usize {
        self.npartitions
    }

    /// The name of the bag's partition keys, `(name, i)`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The fan-in of tree reductions built from this bag (default
    /// [`DEFAULT_SPLIT_EVERY`]): each combine task merges at most this many
    /// results. Dask passes it per call; here it is set on the bag.
    ///
    /// Errors: [`Error::InvalidArgument`] if `split_every` < 2.
    pub fn with_split_every(&self, split_every: usize) -> Result<Self> {
        if split_every < 2 {
            return Err(Error::invalid(
                "split_every",
                format!(
                    "a tree reduction must combine at least 2 results per task, got {split_every}"
                ),
            ));
        }
        let mut out = self.clone();
        out.split_every = split_every;
        Ok(out)
    }

    /// The pipeline that produces this bag's partitions.
    pub(crate) fn source(&self) -> Source<T> {
        match &self.pending {
            Some(p) => Source {
                graph: self.graph.clone(),
                parts: p.parts.clone(),
                stage: p.stage.clone(),
                label: p.label.clone(),
                portable: p.portable.clone(),
            },
            None => Source {
                graph: self.graph.clone(),
                parts: Arc::new(
                    (0..self.npartitions)
                        .map(|i| vec![Arg::Key(Key::new(self.name.clone(), [i as u64]))])
                        .collect(),
                ),
                stage: Arc::new(FromVec::<T>(PhantomData)),
                label: "".into(),
                portable: Portable::from_source(PortableSource::Partition),
            },
        }
    }

    /// A new bag adding one step to this bag's pipeline; `step` is the
    /// step's registered tag (see [`register_bag_fn!`](crate::register_bag_fn)),
    /// if it has one.
    fn chain<U: Clone + Send + Sync + 'static>(
        &self,
        op: &str,
        step: Option<&str>,
        stage: impl FnOnce(DynStage<T>) -> DynStage<U>,
    ) -> Bag<U> {
        let src = self.source();
        Bag {
            graph: src.graph.clone(),
            name: new_name(op),
            npartitions: self.npartitions,
            split_every: self.split_every,
            pending: Some(Pending {
                label: src.op_name(op).into(),
                parts: src.parts,
                stage: stage(src.stage),
                portable: Portable::then(src.portable.as_ref(), step),
            }),
        }
    }

    /// Applies `f` to every item.
    pub fn map<U, F>(&self, f: F) -> Bag<U>
    where
        U: Clone + Send + Sync + 'static,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        self.chain("map", step_tag::<MapFn<F>>(), |inner| {
            Arc::new(Map { inner, f })
        })
    }

    /// Keeps the items for which `f` is true.
    pub fn filter<F>(&self, f: F) -> Bag<T>
    where
        F: Fn(&T) -> bool + Send + Sync + 'static,
    {
        self.chain("filter", step_tag::<FilterFn<F>>(), |inner| {
            Arc::new(Filter { inner, f })
        })
    }

    /// Replaces every item by the items `f` returns (`map` then `flatten`).
    ///
    /// `flat_map(words)` (the function [`words`](crate::words) itself, not a
    /// closure calling it) is recognised: a following [`Bag::frequencies`] or
    /// [`Bag::count`] then counts borrowed words without a `String` per word.
    pub fn flat_map<I, F>(&self, f: F) -> Bag<I::Item>
    where
        I: IntoIterator + 'static,
        I::IntoIter: 'static,
        I::Item: Clone + Send + Sync + 'static,
        F: Fn(T) -> I + Send + Sync + 'static,
    {
        if crate::words::is_words::<F>() {
            // `flat_map(words)`: a stage the word reductions can run borrowed.
            return self.chain("flat_map(words)", step_tag::<FlatMapFn<F>>(), |inner| {
                match crate::words::recognise::<T, I::Item>(&inner) {
                    Some(stage) => stage,
                    None => Arc::new(FlatMap { inner, f }),
                }
            });
        }
        self.chain("flat_map", step_tag::<FlatMapFn<F>>(), |inner| {
            Arc::new(FlatMap { inner, f })
        })
    }

    /// Applies `f` to each whole partition (as a `Vec<T>`), in the partition's task.
    pub fn map_partitions<I, F>(&self, f: F) -> Bag<I::Item>
    where
        I: IntoIterator + 'static,
        I::IntoIter: 'static,
        I::Item: Clone + Send + Sync + 'static,
        F: Fn(Vec<T>) -> I + Send + Sync + 'static,
    {
        self.chain("map_partitions", None, |inner| {
            Arc::new(MapPartitions { inner, f })
        })
    }

    /// Applies a fallible `f` to every item. An `Err` fails the partition's
    /// task with [`Error::MapFailed`] naming the partition and the item's
    /// position, with `f`'s error as its source.
    pub fn try_map<U, E, F>(&self, f: F) -> Bag<U>
    where
        U: Clone + Send + Sync + 'static,
        E: Into<dask_core::BoxError>,
        F: Fn(T) -> std::result::Result<U, E> + Send + Sync + 'static,
    {
        self.try_map_indexed("try_map", move |partition, record, x| {
            f(x).map_err(|e| Error::MapFailed {
                partition,
                record,
                source: e.into(),
            })
        })
    }

    /// A fallible per-item step that knows each item's partition and position.
    pub(crate) fn try_map_indexed<U, F>(&self, op: &str, f: F) -> Bag<U>
    where
        U: Clone + Send + Sync + 'static,
        F: Fn(usize, usize, T) -> Result<U> + Send + Sync + 'static,
    {
        self.chain(op, None, |inner| Arc::new(TryMap { inner, f }))
    }

    /// Pairs item `j` of partition `i` of `self` with item `j` of partition `i`
    /// of `other`.
    ///
    /// Errors: [`Error::ZipMismatch`] if the partition counts differ. Partitions
    /// of different lengths fail their task with [`Error::ZipLengthMismatch`].
    pub fn zip<U: Clone + Send + Sync + 'static>(&self, other: &Bag<U>) -> Result<Bag<(T, U)>> {
        if self.npartitions != other.npartitions {
            return Err(Error::ZipMismatch {
                left: self.npartitions,
                right: other.npartitions,
            });
        }
        let (l, r) = (self.source(), other.source());
        let parts = l
            .parts
            .iter()
            .zip(r.parts.iter())
            .map(|(a, b)| vec![Arg::List(a.clone()), Arg::List(b.clone())])
            .collect();
        let graph = HighLevelGraph::merge([&l.graph, &r.graph]);
        let stage = Arc::new(Zip {
            left: l.stage,
            right: r.stage,
        });
        let mut out = Bag::pending(graph, "zip", parts, stage, None);
        out.split_every = self.split_every;
        if let Some(p) = &mut out.pending {
            let side = |label: &str| {
                if label.is_empty() {
                    "partition".to_owned()
                } else {
                    label.to_owned()
                }
            };
            p.label = format!("zip({}, {})", side(&l.label), side(&r.label)).into();
        }
        Ok(out)
    }

    /// The first `n` items, computing only the partitions needed, on the
    /// default scheduler. See [`Bag::take_with`].
    pub fn take(&self, n: usize) -> Result<Vec<T>> {
        self.take_with(n, &*dask_core::scheduler::default_scheduler()?)
    }

    /// The first `n` items (in partition order), on `scheduler`.
    ///
    /// Computes partition 0 first, then the next 1, 2, 4, ... partitions until
    /// `n` items are found; within a partition, the pipeline stops after `n`
    /// items (a text file is not read further). With fewer than `n` items in the
    /// whole bag it returns them all, without a warning (Dask warns): check the
    /// length if it matters.
    pub fn take_with(&self, n: usize, scheduler: &dyn Scheduler) -> Result<Vec<T>> {
        let mut out = Vec::new();
        if n == 0 {
            return Ok(out);
        }
        let src = self.source();
        let op: Arc<dyn dask_core::Op> = Arc::new(HeadOp {
            name: src.op_name("take"),
            stage: src.stage.clone(),
            n,
        });
        let name = new_name("take");
        let (mut start, mut batch) = (0usize, 1usize);
        while out.len() < n && start < self.npartitions {
            let end = (start + batch).min(self.npartitions);
            let mut graph = Graph::with_capacity(end - start);
            let keys: Vec<Key> = (start..end)
                .map(|i| Key::new(name.clone(), [i as u64]))
                .collect();
            for (i, k) in (start..end).zip(&keys) {
                graph.insert(k.clone(), src.task(op.clone(), i));
            }
            let hlg = HighLevelGraph::from_layer(name.clone(), graph, &[&src.graph]);
            let graph = dask_core::fuse(&hlg.cull_layers(&keys).to_graph(), &keys)?;
            for v in scheduler.compute(&graph, &keys)? {
                let items = take_vec::<T>(v)?;
                let room = n - out.len();
                out.extend(items.into_iter().take(room));
                if out.len() == n {
                    break;
                }
            }
            start = end;
            batch *= 2;
        }
        Ok(out)
    }
}

impl Bag<u64> {
    /// The integers `0..n` in `npartitions` partitions of nearly equal length,
    /// generated inside the tasks (no data in the graph).
    ///
    /// Errors: [`Error::InvalidArgument`] if `npartitions` is 0.
    pub fn range(n: u64, npartitions: usize) -> Result<Bag<u64>> {
        check_npartitions(npartitions)?;
        let np = npartitions as u128;
        let parts = (0..npartitions)
            .map(|i| {
                let start = (i as u128 * n as u128 / np) as u64;
                let end = ((i as u128 + 1) * n as u128 / np) as u64;
                vec![Arg::value((start, end))]
            })
            .collect();
        let stage: DynStage<u64> = Arc::new(Range);
        Ok(Bag::pending(
            HighLevelGraph::new(),
            "range",
            parts,
            stage,
            Portable::from_source(PortableSource::Range),
        ))
    }
}

impl<T, I> Bag<I>
where
    I: IntoIterator<Item = T> + Clone + Send + Sync + 'static,
    I::IntoIter: 'static,
    T: Clone + Send + Sync + 'static,
{
    /// Concatenates the items of every item (`Bag<Vec<T>>` to `Bag<T>`).
    pub fn flatten(&self) -> Bag<T> {
        self.chain("flatten", None, |inner| {
            Arc::new(FlatMap { inner, f: |x: I| x })
        })
    }
}

impl<A, B> Bag<(A, B)>
where
    A: Clone + Send + Sync + 'static,
    B: Clone + Send + Sync + 'static,
{
    /// Applies `f` to the fields of every pair (Dask's `starmap`).
    pub fn starmap<U, F>(&self, f: F) -> Bag<U>
    where
        U: Clone + Send + Sync + 'static,
        F: Fn(A, B) -> U + Send + Sync + 'static,
    {
        self.chain("starmap", None, |inner| {
            Arc::new(Map {
                inner,
                f: move |(a, b): (A, B)| f(a, b),
            })
        })
    }
}

impl<A, B, C> Bag<(A, B, C)>
where
    A: Clone + Send + Sync + 'static,
    B: Clone + Send + Sync + 'static,
    C: Clone + Send + Sync + 'static,
{
    /// Applies `f` to the fields of every triple.
    pub fn starmap3<U, F>(&self, f: F) -> Bag<U>
    where
        U: Clone + Send + Sync + 'static,
        F: Fn(A, B, C) -> U + Send + Sync + 'static,
    {
        self.chain("starmap", None, |inner| {
            Arc::new(Map {
                inner,
                f: move |(a, b, c): (A, B, C)| f(a, b, c),
            })
        })
    }
}

pub(crate) fn take_vec<T: Clone + Send + Sync + 'static>(v: Value) -> dask_core::Result<Vec<T>> {
    let arc = v.downcast_arc::<Vec<T>>()?;
    Ok(Arc::try_unwrap(arc).unwrap_or_else(|arc| (*arc).clone()))
}

impl<T: Clone + Send + Sync + 'static> Collection for Bag<T> {
    type Output = Vec<T>;

    fn graph(&self) -> HighLevelGraph {
        let Some(pending) = &self.pending else {
            return self.graph.clone();
        };
        let src = self.source();
        let local = CollectOp {
            name: pending.label.to_string(),
            stage: src.stage.clone(),
        };
        let op: Arc<dyn dask_core::Op> = match &src.portable {
            Some(pipeline) => Arc::new(PortableCollect {
                wire: PortablePipeline {
                    name: local.name.clone(),
                    pipeline: (**pipeline).clone(),
                },
                local,
            }),
            None => Arc::new(local),
        };
        let mut graph = Graph::with_capacity(self.npartitions);
        for i in 0..self.npartitions {
            graph.insert(
                Key::new(self.name.clone(), [i as u64]),
                src.task(op.clone(), i),
            );
        }
        HighLevelGraph::from_layer(self.name.clone(), graph, &[&self.graph])
    }

    fn keys(&self) -> Vec<Key> {
        (0..self.npartitions)
            .map(|i| Key::new(self.name.clone(), [i as u64]))
            .collect()
    }

    fn finalize(&self, values: Vec<Value>) -> dask_core::Result<Vec<T>> {
        let mut values = values.into_iter();
        let mut out = match values.next() {
            Some(v) => take_vec::<T>(v)?,
            None => return Ok(Vec::new()),
        };
        for v in values {
            let arc = v.downcast_arc::<Vec<T>>()?;
            match Arc::try_unwrap(arc) {
                Ok(items) => out.extend(items),
                Err(arc) => out.extend(arc.iter().cloned()),
            }
        }
        Ok(out)
    }

    fn rebuild(&self, graph: HighLevelGraph) -> Self {
        Bag {
            graph,
            name: self.name.clone(),
            npartitions: self.npartitions,
            split_every: self.split_every,
            pending: None,
        }
    }
}
