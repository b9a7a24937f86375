//! The [`Collection`] trait and [`compute`] of several collections at once.

use crate::{optimize, scheduler, Error, Graph, HighLevelGraph, Key, Result, Scheduler, Value};

/// Anything backed by a task graph: arrays, dataframes, bags, [`Delayed`](crate::Delayed).
///
/// Implement [`graph`](Collection::graph), [`keys`](Collection::keys),
/// [`finalize`](Collection::finalize) and [`rebuild`](Collection::rebuild); the
/// rest is provided.
pub trait Collection {
    /// What computing gives (an `ArrayD`, a `DataFrame`, a `Vec<T>`, a `T`).
    type Output;

    /// The collection's task graph.
    fn graph(&self) -> HighLevelGraph;

    /// The keys whose values make up the result.
    fn keys(&self) -> Vec<Key>;

    /// Turns the computed values of [`keys`](Collection::keys), in order, into the result.
    fn finalize(&self, values: Vec<Value>) -> Result<Self::Output>;

    /// The same collection on another graph with the same keys (used by [`persist`](Collection::persist)).
    fn rebuild(&self, graph: HighLevelGraph) -> Self
    where
        Self: Sized;

    /// The graph a scheduler gets: culled to the keys, linear chains fused.
    /// Collections override this to add their own optimizations.
    fn optimized_graph(&self) -> Result<Graph> {
        let keys = self.keys();
        let graph = self.graph().cull_layers(&keys).to_graph();
        optimize::fuse(&graph, &keys)
    }

    /// Computes on the default scheduler (see [`scheduler::default_scheduler`]).
    fn compute(&self) -> Result<Self::Output> {
        self.compute_with(&*scheduler::default_scheduler()?)
    }

    /// Computes on the given scheduler.
    fn compute_with(&self, scheduler: &dyn Scheduler) -> Result<Self::Output> {
        let keys = self.keys();
        let values = scheduler.compute(&self.optimized_graph()?, &keys)?;
        check_len(keys.len(), values.len())?;
        self.finalize(values)
    }

    /// Computes on the default scheduler and returns the collection backed by the
    /// results, so later work starts from them.
    fn persist(&self) -> Result<Self>
    where
        Self: Sized,
    {
        self.persist_with(&*scheduler::default_scheduler()?)
    }

    /// [`persist`](Collection::persist) on the given scheduler.
    fn persist_with(&self, scheduler: &dyn Scheduler) -> Result<Self>
    where
        Self: Sized,
    {
        let keys = self.keys();
        let graph = scheduler.persist(&self.optimized_graph()?, &keys)?;
        Ok(self.rebuild(HighLevelGraph::from_layer(
            persisted_layer_name(&keys),
            graph,
            &[],
        )))
    }

    /// The graph in graphviz dot format (render with `dot -Tsvg`).
    fn visualize(&self) -> String {
        crate::visualize::to_dot(&self.graph().to_graph())
    }
}

fn persisted_layer_name(keys: &[Key]) -> String {
    format!("persisted-{}", crate::tokenize(keys))
}

fn check_len(expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::WrongNumberOfValues { expected, found })
    }
}

/// Several collections computed together: tuples of references to collections
/// (`(&a, &b)`) and slices of one collection type.
pub trait ComputeMany {
    /// The tuple (or `Vec`) of results.
    type Output;
    /// The graphs, one per collection.
    fn graphs(&self) -> Vec<HighLevelGraph>;
    /// The keys, one list per collection.
    fn key_lists(&self) -> Vec<Vec<Key>>;
    /// Finalizes each collection's share of the values.
    fn finalize_all(&self, values: Vec<Vec<Value>>) -> Result<Self::Output>;
}

/// Computes several collections in one graph on the default scheduler: tasks they
/// share (equal keys) run once.
///
/// ```
/// use dask_core::{compute, delayed, Collection};
/// use dask_sync_scheduler as _; // link a scheduler
/// let x = delayed(|a: i64| a * 10).call((4,));
/// let y = delayed(|a: i64, b: i64| a + b).call((&x, 1));
/// let z = delayed(|a: i64| a - 1).call((&x,));
/// assert_eq!(compute((&y, &z)).unwrap(), (41, 39));
/// ```
pub fn compute<C: ComputeMany>(collections: C) -> Result<C::Output> {
    compute_with(collections, &*scheduler::default_scheduler()?)
}

/// [`compute`] on the given scheduler.
pub fn compute_with<C: ComputeMany>(
    collections: C,
    scheduler: &dyn Scheduler,
) -> Result<C::Output> {
    let key_lists = collections.key_lists();
    let all_keys: Vec<Key> = key_lists.iter().flatten().cloned().collect();
    let graphs = collections.graphs();
    let merged = HighLevelGraph::merge(graphs.iter())
        .cull_layers(&all_keys)
        .to_graph();
    let graph = optimize::fuse(&merged, &all_keys)?;
    let mut values = scheduler.compute(&graph, &all_keys)?.into_iter();
    check_len(all_keys.len(), values.len())?;
    let split = key_lists
        .iter()
        .map(|keys| values.by_ref().take(keys.len()).collect())
        .collect();
    collections.finalize_all(split)
}

macro_rules! compute_many_tuples {
    ($(($($n:tt $c:ident),+))*) => {$(
        impl<$($c: Collection),+> ComputeMany for ($(&$c,)+) {
            type Output = ($($c::Output,)+);
            fn graphs(&self) -> Vec<HighLevelGraph> {
                vec![$(self.$n.graph()),+]
            }
            fn key_lists(&self) -> Vec<Vec<Key>> {
                vec![$(self.$n.keys()),+]
            }
            fn finalize_all(&self, values: Vec<Vec<Value>>) -> Result<Self::Output> {
                let mut values = values.into_iter();
                Ok(($(self.$n.finalize(values.next().unwrap_or_default())?,)+))
            }
        }
    )*};
}
compute_many_tuples! {
    (0 A)
    (0 A, 1 B)
    (0 A, 1 B, 2 C)
    (0 A, 1 B, 2 C, 3 D)
    (0 A, 1 B, 2 C, 3 D, 4 E)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H)
}

impl<C: Collection> ComputeMany for &[C] {
    type Output = Vec<C::Output>;
    fn graphs(&self) -> Vec<HighLevelGraph> {
        self.iter().map(Collection::graph).collect()
    }
    fn key_lists(&self) -> Vec<Vec<Key>> {
        self.iter().map(Collection::keys).collect()
    }
    fn finalize_all(&self, values: Vec<Vec<Value>>) -> Result<Self::Output> {
        self.iter()
            .zip(values)
            .map(|(c, v)| c.finalize(v))
            .collect()
    }
}

impl<C: Collection> ComputeMany for &Vec<C> {
    type Output = Vec<C::Output>;
    fn graphs(&self) -> Vec<HighLevelGraph> {
        self.as_slice().graphs()
    }
    fn key_lists(&self) -> Vec<Vec<Key>> {
        self.as_slice().key_lists()
    }
    fn finalize_all(&self, values: Vec<Vec<Value>>) -> Result<Self::Output> {
        self.as_slice().finalize_all(values)
    }
}
