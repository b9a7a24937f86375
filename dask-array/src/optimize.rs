//! The graph optimization dask-array adds before a compute: cheap creation
//! blocks are inlined into the tasks that read them.
//!
//! A creation block (seeded [`random`](crate::random), [`full`](crate::full),
//! `zeros`, `ones`, [`arange`](crate::arange), [`linspace`](crate::linspace))
//! is a pure function of literal arguments: its task reads no other key and
//! computes the same values wherever and however often it runs. When such a
//! block is read by several tasks, a scheduler must hold it until the last of
//! them has run. In `(x + x.T).sum(0)` block `(i, j)` of `x` is read by the
//! sums of `(i, j)` and `(j, i)`, so in any order a large part of `x` waits in
//! memory (3.6 chunk rows measured on 10 x 10 blocks; a sum over all axes
//! pairs those two tasks into one, see [`crate::fused`]). Inlining the creation
//! task into each reader (as a nested task, like Dask's `inline_functions`
//! does for its cheap getters) makes every reader generate its own copy and
//! free it at once: nothing is held between tasks, at the price of computing
//! the block once per reader.
//!
//! Rules ([`inline_creation`]): a creation task that is not an output is
//! inlined when it has one use, or when it is read by at least two tasks and
//! at most `max_uses` times in all (default [`DEFAULT_MAX_USES`]); a block
//! read many times (a rechunk cutting it into small pieces, a matmul row)
//! stays a task, so recomputation costs at most `max_uses` times the
//! creation. Results are bit-identical: the inlined task is the same op on the
//! same literals. The graph an array shows ([`Collection::graph`]) is not
//! changed; [`Array::inline_creation`] sets `max_uses` for one compute (`0`
//! turns the optimization off).
//!
//! [`Collection::graph`]: dask_core::Collection::graph

use std::any::Any;
use std::sync::Arc;

use dask_core::{Arg, Graph, Key, KeyMap, Plan, Task};

use crate::array::Array;
use crate::element::Element;

/// The default `max_uses` of [`inline_creation`]: a creation block read at
/// most this many times is recomputed by each reader instead of held.
pub const DEFAULT_MAX_USES: usize = 4;

/// Whether `task` makes a creation block: a registered creation op (random,
/// full, arange, linspace) whose arguments are literals only.
pub fn is_creation_task(task: &Task) -> bool {
    let mut reads_keys = false;
    task.for_each_key(&mut |_| reads_keys = true);
    let op: &dyn Any = &*task.op;
    !reads_keys && (crate::random::is_random_op(op) || crate::creation::is_creation_op(op))
}

/// `graph` culled to `outputs`, with every creation task that is not an output
/// inlined as a nested task into the tasks that read it, when it has one use,
/// or at least two distinct readers and at most `max_uses` uses in all (a task
/// reading it twice counts twice). `max_uses == 0` only culls.
///
/// Errors as [`Plan::new`]: no outputs, a missing output or dependency, a cycle.
///
/// ```
/// use dask_array::{optimize, random, Collection};
/// let x = random::random(&[4, 4], 2, 7).unwrap();
/// let y = (&x + &x.t()).unwrap().sum(None).unwrap();
/// let raw = dask_core::cull(&y.graph().to_graph(), &y.keys()).unwrap();
/// let inlined = optimize::inline_creation(&raw, &y.keys(), 4).unwrap();
/// // The off-diagonal random blocks are gone (each reader makes its own);
/// // the two diagonal ones are read twice by one task each and stay.
/// assert_eq!(raw.len() - inlined.len(), 2);
/// assert!(inlined.iter().filter(|(_, t)| optimize::is_creation_task(t)).count() == 2);
/// ```
pub fn inline_creation(
    graph: &Graph,
    outputs: &[Key],
    max_uses: usize,
) -> dask_core::Result<Graph> {
    let plan = Plan::new(graph, outputs)?;
    let n = plan.len();
    let mut uses = vec![0usize; n];
    if max_uses > 0 {
        for i in 0..n {
            for &d in plan.args(i) {
                uses[d as usize] += 1;
            }
        }
    }
    let inline: Vec<bool> = (0..n)
        .map(|i| {
            let readers = plan.dependents(i).len();
            let cheap_enough = uses[i] == 1 || (readers >= 2 && uses[i] <= max_uses);
            max_uses > 0 && !plan.is_output(i) && cheap_enough && is_creation_task(plan.task(i))
        })
        .collect();
    let inlined: KeyMap<&Task> = (0..n)
        .filter(|&i| inline[i])
        .map(|i| (plan.key(i).clone(), plan.task(i)))
        .collect();
    let mut out = Graph::with_capacity(n - inlined.len());
    for i in (0..n).filter(|&i| !inline[i]) {
        let mut task: Arc<Task> = plan.shared_task(i).clone();
        if plan.dependencies(i).iter().any(|&d| inline[d as usize]) {
            Arc::make_mut(&mut task)
                .map_keys(|k| inlined.get(k).map(|t| Arg::Task(Box::new(Task::clone(t)))));
        }
        out.insert_shared(plan.key(i).clone(), task);
    }
    Ok(out)
}

/// dask-array's whole optimization of a graph culled to `outputs`:
/// [`inline_creation`] with `max_uses`, then dask-core's linear
/// [`fuse`](dask_core::fuse). What [`Collection::compute`] hands a scheduler.
///
/// [`Collection::compute`]: dask_core::Collection::compute
pub fn optimize(graph: &Graph, outputs: &[Key], max_uses: usize) -> dask_core::Result<Graph> {
    let inlined = inline_creation(graph, outputs, max_uses)?;
    dask_core::fuse(&inlined, outputs)
}

impl<T: Element> Array<T> {
    /// The same array, computed with creation blocks inlined into their
    /// readers when read at most `max_uses` times (see [`optimize`](self)):
    /// `0` turns the inlining off, `1` inlines only blocks read once (never
    /// recomputes anything). The default is [`DEFAULT_MAX_USES`]. Only the
    /// graph handed to the scheduler changes, never the results. The setting
    /// belongs to this array's computes: arrays built from it start from the
    /// default again (set it on the array you compute).
    ///
    /// ```
    /// use dask_array::{random, Collection};
    /// let x = random::random(&[6, 6], 3, 1).unwrap();
    /// let y = (&x + &x.t()).unwrap().sum(None).unwrap();
    /// let held = y.inline_creation(0);
    /// assert!(held.optimized_graph().unwrap().len() > y.optimized_graph().unwrap().len());
    /// ```
    pub fn inline_creation(&self, max_uses: usize) -> Array<T> {
        let mut meta = self.meta().clone();
        meta.inline_uses = max_uses;
        Array::from_meta(meta)
    }

    /// The `max_uses` this array is computed with (see [`Array::inline_creation`]).
    pub fn inline_creation_uses(&self) -> usize {
        self.meta().inline_uses
    }
}
