//! Reductions as tree reductions: [`Array::sum`], `prod`, `min`, `max`,
//! `mean`, `var`, `std`, `argmin`, `argmax`, [`Array::any`], [`Array::all`].
//!
//! Each block is reduced to a small partial result (keeping reduced axes with
//! length 1), then partials are combined `split_every` at a time along the
//! reduced axes, level by level, until one partial per output block is left and
//! finalized. Memory per task is bounded by `split_every` partials, and the
//! depth of the tree is `log_split_every(blocks)`.

use std::marker::PhantomData;
use std::sync::Arc;

use dask_core::{tokenize, Arg, BoxError, Graph, HighLevelGraph, Key, Op, Task, Value};
use ndarray::{ArrayD, Axis, IxDyn, Zip};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::array::{block_key, chunk_arg, new_layer, value_arg, Array, Source};
use crate::chunks::{grid_indices, Chunks};
use crate::codec::serde_chunk;
use crate::element::{Element, Number};
use crate::error::{Error, Result};

/// The default number of partial results combined by one task.
pub const DEFAULT_SPLIT_EVERY: usize = 8;

/// Which axes a reduction covers, and how wide its tree is.
///
/// `From<usize>` reduces one axis, `From<Option<usize>>` one axis or (with
/// `None`) all of them, and `From<[usize; N]>` / `From<&[usize]>` several
/// axes, like dask's `axis=` argument. Axes are checked against the array when
/// the reduction is built (out of range, or named twice: typed errors).
/// `split_every` (default [`DEFAULT_SPLIT_EVERY`]) bounds how many partials
/// one task combines; over `k` axes each axis gets `split_every^(1/k)` (at
/// least 2).
///
/// ```
/// use dask_array::{ones, Collection, Reduce};
/// let x = ones::<f64>(&[4, 6], 2).unwrap();
/// let total = x.sum(None).unwrap();               // 0-d array
/// let cols = x.sum(0).unwrap();                   // shape (6,)
/// let rows = x.sum(Reduce::axis(1).split_every(2)).unwrap();
/// let both = x.sum([0, 1]).unwrap();              // same as None here
/// assert_eq!((total.ndim(), cols.shape(), rows.shape()), (0, &[6][..], &[4][..]));
/// assert_eq!(both.ndim(), 0);
/// # use dask_sync_scheduler::SyncScheduler;
/// assert_eq!(total.compute_scalar_with(&SyncScheduler::new()).unwrap(), 24.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reduce {
    axes: AxisSel,
    split_every: usize,
    ddof: usize,
}

/// Which axes, before they are checked against an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AxisSel {
    All,
    /// A bit per reduced axis.
    Mask(u64),
    /// An axis that cannot be represented (>= 64): always out of range.
    TooLarge(usize),
    /// An axis named twice.
    Duplicate(usize),
}

impl Default for Reduce {
    fn default() -> Self {
        Reduce::all()
    }
}

impl Reduce {
    /// Over all axes.
    pub fn all() -> Reduce {
        Reduce {
            axes: AxisSel::All,
            split_every: DEFAULT_SPLIT_EVERY,
            ddof: 0,
        }
    }

    /// Over one axis.
    pub fn axis(axis: usize) -> Reduce {
        Reduce::axes(&[axis])
    }

    /// Over several axes (NumPy's `axis=(0, 2)`); each at most once. Not for
    /// `argmin`/`argmax`, which take one axis or all, as in NumPy.
    pub fn axes(axes: &[usize]) -> Reduce {
        let mut mask = 0u64;
        let mut sel = AxisSel::Mask(0);
        for &a in axes {
            if a >= 64 {
                sel = AxisSel::TooLarge(a);
                break;
            }
            if mask & (1 << a) != 0 {
                sel = AxisSel::Duplicate(a);
                break;
            }
            mask |= 1 << a;
            sel = AxisSel::Mask(mask);
        }
        Reduce {
            axes: sel,
            ..Reduce::all()
        }
    }

    /// Combines `n` partial results per task (at least 2).
    pub fn split_every(self, n: usize) -> Reduce {
        Reduce {
            split_every: n,
            ..self
        }
    }

    /// Delta degrees of freedom for `var`/`std`.
    pub fn ddof(self, ddof: usize) -> Reduce {
        Reduce { ddof, ..self }
    }

    /// The reduced axes in increasing order, or `None` for all axes.
    pub fn reduced_axes(&self) -> Option<Vec<usize>> {
        match self.axes {
            AxisSel::All => None,
            AxisSel::Mask(m) => Some((0..64).filter(|&k| m & (1 << k) != 0).collect()),
            AxisSel::TooLarge(a) | AxisSel::Duplicate(a) => Some(vec![a]),
        }
    }

    /// The number of partial results one task combines.
    pub fn get_split_every(&self) -> usize {
        self.split_every
    }

    /// The delta degrees of freedom of `var`/`std`.
    pub fn get_ddof(&self) -> usize {
        self.ddof
    }
}

impl From<usize> for Reduce {
    fn from(axis: usize) -> Reduce {
        Reduce::axis(axis)
    }
}

impl From<Option<usize>> for Reduce {
    fn from(axis: Option<usize>) -> Reduce {
        axis.map_or_else(Reduce::all, Reduce::axis)
    }
}

impl From<&[usize]> for Reduce {
    fn from(axes: &[usize]) -> Reduce {
        Reduce::axes(axes)
    }
}

impl<const N: usize> From<[usize; N]> for Reduce {
    fn from(axes: [usize; N]) -> Reduce {
        Reduce::axes(&axes)
    }
}

/// The axes a reduction covers, as the block functions see them.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) enum Axes {
    All,
    One(usize),
    /// Several axes (not all) or none: a bit per reduced axis.
    Many(u64),
}

impl Axes {
    fn has(self, k: usize) -> bool {
        match self {
            Axes::All => true,
            Axes::One(a) => a == k,
            Axes::Many(m) => k < 64 && m & (1 << k) != 0,
        }
    }
}

/// `block` with the reduced axes moved last and merged into one: (kept
/// lengths..., reduced count), in standard layout.
fn merge_reduced<A: Clone>(block: &ArrayD<A>, axes: Axes) -> Result<ArrayD<A>, BoxError> {
    let ndim = block.ndim();
    let kept: Vec<usize> = (0..ndim).filter(|&k| !axes.has(k)).collect();
    let red: Vec<usize> = (0..ndim).filter(|&k| axes.has(k)).collect();
    let perm: Vec<usize> = kept.iter().chain(&red).copied().collect();
    let mut shape: Vec<usize> = kept.iter().map(|&k| block.shape()[k]).collect();
    shape.push(red.iter().map(|&k| block.shape()[k]).product());
    let view = block.view().permuted_axes(perm);
    let owned = view.as_standard_layout().into_owned();
    Ok(owned.into_shape_with_order(IxDyn(&shape))?)
}

/// The keepdims shape of a block reduced over `axes`.
pub(crate) fn keep_shape(shape: &[usize], axes: Axes) -> Vec<usize> {
    (0..shape.len())
        .map(|k| if axes.has(k) { 1 } else { shape[k] })
        .collect()
}

/// `f` over the elements of each lane along the reduced axes, keeping them as
/// axes of length 1.
fn reduce_keep<A: Clone, B: Clone>(
    block: &ArrayD<A>,
    axes: Axes,
    f: impl Fn(&mut dyn Iterator<Item = (usize, &A)>) -> B,
) -> Result<ArrayD<B>, BoxError> {
    Ok(match axes {
        Axes::All => {
            let b = f(&mut block.iter().enumerate());
            ArrayD::from_elem(IxDyn(&vec![1; block.ndim()]), b)
        }
        Axes::One(a) => block
            .map_axis(Axis(a), |lane| f(&mut lane.iter().enumerate()))
            .insert_axis(Axis(a)),
        Axes::Many(_) => {
            let merged = merge_reduced(block, axes)?;
            let last = Axis(merged.ndim() - 1);
            let v: Vec<B> = merged
                .map_axis(last, |lane| f(&mut lane.iter().enumerate()))
                .into_iter()
                .collect();
            ArrayD::from_shape_vec(IxDyn(&keep_shape(block.shape(), axes)), v)?
        }
    })
}

/// `f` folded over the lanes along the reduced axes (static dispatch; for one
/// axis, ndarray folds whole sub-views), keeping them as axes of length 1.
///
/// A fold over a contiguous run (the whole block, or rows of a standard-layout
/// block folded along its last axis) goes through [`fold_lanes`]: `merge`
/// joins partial folds, so it must agree with `f` (the same operation on two
/// partial results) and `init` must be its identity.
fn fold_keep<A: Clone, B: Clone>(
    block: &ArrayD<A>,
    axes: Axes,
    init: B,
    f: impl Fn(B, &A) -> B,
    merge: impl Fn(B, B) -> B,
) -> Result<ArrayD<B>, BoxError> {
    Ok(match (axes, block.as_slice()) {
        (Axes::All, _) => {
            let v = match block.as_slice_memory_order() {
                Some(xs) => fold_lanes(xs, &init, &f, &merge),
                None => block.iter().fold(init, &f),
            };
            ArrayD::from_elem(IxDyn(&vec![1; block.ndim()]), v)
        }
        (Axes::One(a), Some(xs)) if a + 1 == block.ndim() && !xs.is_empty() => {
            let row = block.shape()[block.ndim() - 1];
            let v: Vec<B> = xs
                .chunks_exact(row)
                .map(|r| fold_lanes(r, &init, &f, &merge))
                .collect();
            ArrayD::from_shape_vec(IxDyn(&keep_shape(block.shape(), axes)), v)?
        }
        (Axes::One(a), _) => block
            .fold_axis(Axis(a), init, |acc, x| f(acc.clone(), x))
            .insert_axis(Axis(a)),
        (Axes::Many(_), _) => {
            let merged = merge_reduced(block, axes)?;
            let last = Axis(merged.ndim() - 1);
            let folded = merged.fold_axis(last, init, |acc, x| f(acc.clone(), x));
            // The same elements in the same order, with reduced axes of length 1.
            let v: Vec<B> = folded.into_iter().collect();
            ArrayD::from_shape_vec(IxDyn(&keep_shape(block.shape(), axes)), v)?
        }
    })
}

/// Folds `xs` with [`LANES`] independent accumulators, joined by `merge` at
/// the end: the fold vectorizes instead of waiting on one chain of
/// dependent additions (the order of a float sum changes, within rounding).
fn fold_lanes<A, B: Clone>(
    xs: &[A],
    init: &B,
    f: &impl Fn(B, &A) -> B,
    merge: &impl Fn(B, B) -> B,
) -> B {
    const LANES: usize = 8;
    let mut lanes: [B; LANES] = std::array::from_fn(|_| init.clone());
    let mut runs = xs.chunks_exact(LANES);
    for run in &mut runs {
        for (lane, x) in lanes.iter_mut().zip(run) {
            *lane = f(lane.clone(), x);
        }
    }
    let tail = runs.remainder().iter().fold(init.clone(), f);
    lanes.into_iter().fold(tail, merge)
}

/// Elementwise `f` over partials of equal shape.
fn zip_all<A: Clone>(
    parts: Vec<ArrayD<A>>,
    f: impl Fn(&A, &A) -> A,
) -> Result<ArrayD<A>, BoxError> {
    let mut it = parts.into_iter();
    let mut acc = it.next().ok_or("no partial results to combine")?;
    for p in it {
        if p.shape() != acc.shape() {
            return Err("partial results of different shapes (bug in dask-array)".into());
        }
        Zip::from(&mut acc).and(&p).for_each(|a, b| *a = f(a, b));
    }
    Ok(acc)
}

/// Removes the reduced axes (which have length 1 in `a`).
fn drop_axes<A>(a: ArrayD<A>, axes: Axes) -> Result<ArrayD<A>, BoxError> {
    Ok(match axes {
        Axes::One(k) => a.index_axis_move(Axis(k), 0),
        Axes::All | Axes::Many(_) => {
            let shape: Vec<usize> = (0..a.ndim())
                .filter(|&k| !axes.has(k))
                .map(|k| a.shape()[k])
                .collect();
            let v: Vec<A> = a.into_iter().collect();
            ArrayD::from_shape_vec(IxDyn(&shape), v)?
        }
    })
}

/// A tree reduction as data: `chunk` turns a block (and its global start
/// offsets) into a partial, `combine` merges partials, `finalize` gives the
/// output block. Kinds are serializable, so each stage is a registered op
/// ([`TreeOp`]) that worker processes rebuild; partials have codecs.
pub(crate) trait TreeKind:
    Clone + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The element type reduced.
    type In: Element;
    /// The partial result (a registered codec lets it move between workers).
    type Part: Clone + Send + Sync + 'static;
    /// The output element type.
    type Out: Element;
    /// The partial of one block.
    fn chunk(&self, block: &ArrayD<Self::In>, start: &[usize]) -> Result<Self::Part, BoxError>;
    /// Several partials merged into one.
    fn combine(&self, parts: Vec<Self::Part>) -> Result<Self::Part, BoxError>;
    /// The output block of the last partial.
    fn finalize(&self, part: Self::Part) -> Result<ArrayD<Self::Out>, BoxError>;
    /// A chunk task that also does the work of `block` (a nested task of an
    /// `ndim`-dimensional layer), named `name`, when this kind can fuse it
    /// (see [`crate::fused`]); `None`: the plain chunk task.
    fn fused_chunk(&self, _block: &Arg, _ndim: usize, _name: &str) -> Option<Task> {
        None
    }
    /// Rewrites the chunk tasks of a reduction together, each with its block
    /// index (see [`crate::fused::pair_mirrors`]); by default nothing.
    fn pair_chunks(&self, _tasks: &mut [(Vec<usize>, Task)]) {}
}

/// Which stage of a tree reduction a task runs.
#[derive(Clone, Copy, Serialize, Deserialize)]
enum Stage {
    Chunk,
    Combine,
    Final,
}

/// The op of every task of a tree reduction: a kind and a stage.
#[derive(Serialize, Deserialize)]
pub(crate) struct TreeOp<K> {
    kind: K,
    stage: Stage,
    name: String,
}

impl<K: TreeKind> TreeOp<K> {
    fn parts(args: &[Value]) -> Result<Vec<K::Part>, BoxError> {
        value_arg::<Vec<Value>>(args, 0)?
            .iter()
            .map(|v| v.downcast_ref::<K::Part>().cloned())
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }
}

impl<K: TreeKind> Op for TreeOp<K> {
    fn name(&self) -> &str {
        &self.name
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        Ok(match self.stage {
            Stage::Chunk => {
                let block = chunk_arg::<K::In>(args, 0)?;
                let start = value_arg::<Vec<usize>>(args, 1)?;
                if start.len() != block.ndim() {
                    return Err("reduction: block and offsets disagree (bug in dask-array)".into());
                }
                Value::new(self.kind.chunk(block, start)?)
            }
            Stage::Combine => Value::new(self.kind.combine(Self::parts(args)?)?),
            Stage::Final => {
                let part = self.kind.combine(Self::parts(args)?)?;
                Value::new(self.kind.finalize(part)?)
            }
        })
    }
}

impl<T: Element> Array<T> {
    fn reduce_axes(&self, op: &'static str, how: &Reduce, needs_elements: bool) -> Result<Axes> {
        if how.split_every < 2 {
            return Err(Error::InvalidArgument {
                op,
                param: "split_every",
                value: how.split_every.to_string(),
                hint: "combine at least 2 partial results per task",
            });
        }
        let ndim = self.ndim();
        let axes = match how.axes {
            AxisSel::All => Axes::All,
            AxisSel::TooLarge(axis) => {
                self.check_axis(axis)?;
                return Err(Error::InvalidArgument {
                    op,
                    param: "axis",
                    value: axis.to_string(),
                    hint: "reductions support axes below 64",
                });
            }
            AxisSel::Duplicate(axis) => {
                return Err(Error::InvalidArgument {
                    op,
                    param: "axis",
                    value: axis.to_string(),
                    hint: "name each reduced axis once",
                })
            }
            AxisSel::Mask(mask) => {
                for k in 0..64 {
                    if mask & (1 << k) != 0 {
                        self.check_axis(k)?;
                    }
                }
                let count = mask.count_ones() as usize;
                if count == ndim && ndim > 0 {
                    Axes::All
                } else if count == 1 {
                    Axes::One(mask.trailing_zeros() as usize)
                } else {
                    Axes::Many(mask)
                }
            }
        };
        let empty = (0..ndim).any(|k| axes.has(k) && self.shape()[k] == 0)
            || (matches!(axes, Axes::All) && self.size() == 0);
        if needs_elements && empty {
            return Err(Error::EmptyReduction {
                op,
                shape: self.shape().to_vec(),
            });
        }
        Ok(axes)
    }

    fn tree_reduce<K: TreeKind<In = T>>(
        &self,
        op: &'static str,
        how: &Reduce,
        axes: Axes,
        kind: K,
    ) -> Array<K::Out> {
        let m = self.meta();
        let ndim = self.ndim();
        let reduced: Vec<bool> = (0..ndim).map(|k| axes.has(k)).collect();
        let nred = reduced.iter().filter(|&&r| r).count().max(1);
        let split = ((how.split_every as f64).powf(1.0 / nred as f64).floor() as usize).max(2);
        let token = tokenize(&(
            op,
            &*m.name,
            format!("{:?}", how.axes),
            how.split_every,
            how.ddof,
        ));

        // Level 0: one partial per block.
        let source = Source::new(m, true);
        let chunk_name: Arc<str> = format!("{op}-chunk-{token}").into();
        let stage_op = |stage: Stage, name: String| -> Arc<dyn Op> {
            Arc::new(TreeOp {
                kind: kind.clone(),
                stage,
                name,
            })
        };
        let chunk_op = stage_op(Stage::Chunk, format!("dask_array::{op}-chunk"));
        let offsets: Vec<Vec<usize>> = (0..ndim).map(|a| m.chunks.offsets(a)).collect();
        let mut graph = Graph::new();
        let chunk_op_name = chunk_op.name().to_string();
        let mut tasks: Vec<(Vec<usize>, Task)> = m
            .chunks
            .block_indices()
            .into_iter()
            .map(|idx| {
                let start: Vec<usize> = (0..ndim).map(|a| offsets[a][idx[a]]).collect();
                let block = source.arg(&idx);
                let task = kind
                    .fused_chunk(&block, ndim, &chunk_op_name)
                    .unwrap_or_else(|| Task::new(chunk_op.clone(), vec![block, Arg::value(start)]));
                (idx, task)
            })
            .collect();
        kind.pair_chunks(&mut tasks);
        for (idx, task) in tasks {
            graph.insert(block_key(chunk_name.clone(), &idx), task);
        }
        let mut hlg = HighLevelGraph::from_layer(chunk_name.clone(), graph, &[&source.graph()]);
        let mut level_name = chunk_name;
        let mut grid = m.chunks.numblocks();

        let combine_op = stage_op(Stage::Combine, format!("dask_array::{op}-combine"));
        // Group `grid` positions: for a new index, the old indices it combines.
        let group = |grid: &[usize], new_idx: &[usize], width: &[usize]| -> Vec<Vec<usize>> {
            let extents: Vec<usize> = (0..ndim)
                .map(|k| {
                    if reduced[k] {
                        (grid[k] - new_idx[k] * width[k]).min(width[k])
                    } else {
                        1
                    }
                })
                .collect();
            grid_indices(&extents)
                .into_iter()
                .map(|off| {
                    (0..ndim)
                        .map(|k| {
                            if reduced[k] {
                                new_idx[k] * width[k] + off[k]
                            } else {
                                new_idx[k]
                            }
                        })
                        .collect()
                })
                .collect()
        };
        let mut level = 0;
        while (0..ndim).any(|k| reduced[k] && grid[k] > split) {
            level += 1;
            let width: Vec<usize> = (0..ndim)
                .map(|k| if reduced[k] { split } else { 1 })
                .collect();
            let new_grid: Vec<usize> = (0..ndim)
                .map(|k| {
                    if reduced[k] {
                        grid[k].div_ceil(split)
                    } else {
                        grid[k]
                    }
                })
                .collect();
            let name: Arc<str> = format!("{op}-partial{level}-{token}").into();
            let mut graph = Graph::new();
            for idx in grid_indices(&new_grid) {
                let keys: Vec<Arg> = group(&grid, &idx, &width)
                    .iter()
                    .map(|g| Arg::Key(block_key(level_name.clone(), g)))
                    .collect();
                graph.insert(
                    block_key(name.clone(), &idx),
                    Task::new(combine_op.clone(), vec![Arg::List(keys)]),
                );
            }
            hlg = HighLevelGraph::from_layer(name.clone(), graph, &[&hlg]);
            level_name = name;
            grid = new_grid;
        }

        // Final level: combine what is left along the reduced axes and finalize.
        let out_axes: Vec<Vec<usize>> = (0..ndim)
            .filter(|&k| !reduced[k])
            .map(|k| m.chunks.axis(k).to_vec())
            .collect();
        let final_op = stage_op(Stage::Final, format!("dask_array::{op}"));
        let width: Vec<usize> = (0..ndim)
            .map(|k| if reduced[k] { grid[k] } else { 1 })
            .collect();
        let name = format!("{op}-{token}");
        new_layer::<K::Out>(
            name,
            Chunks::from_axes_unchecked(out_axes),
            &[hlg],
            false,
            |out_idx| {
                let mut it = out_idx.iter();
                let full: Vec<usize> = (0..ndim)
                    .map(|k| {
                        if reduced[k] {
                            0
                        } else {
                            *it.next().unwrap_or(&0)
                        }
                    })
                    .collect();
                let keys: Vec<Arg> = group(&grid, &full, &width)
                    .iter()
                    .map(|g| {
                        Arg::Key(Key::new(
                            level_name.clone(),
                            g.iter().map(|&i| i as u64).collect::<Vec<u64>>(),
                        ))
                    })
                    .collect();
                Task::new(final_op.clone(), vec![Arg::List(keys)])
            },
        )
    }

    /// A reduction by an associative function with an identity (sum, prod,
    /// min, max, any, all): partials are keepdims arrays of `T`, folded with
    /// static dispatch (ndarray's `fold_axis` over whole sub-views for one axis).
    fn fold_reduce<K: TreeKind<In = T, Out = T>>(
        &self,
        op: &'static str,
        how: Reduce,
        needs_elements: bool,
        kind: impl FnOnce(Axes) -> K,
    ) -> Result<Array<T>> {
        let axes = self.reduce_axes(op, &how, needs_elements)?;
        Ok(self.tree_reduce(op, &how, axes, kind(axes)))
    }
}

/// The associative functions of [`Fold`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum FoldFn {
    Sum,
    Prod,
    Min,
    Max,
}

/// Sum, prod, min, max of numbers: partials are keepdims arrays of `T`. The
/// function is chosen once per block, then folded with a static closure.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct Fold<T> {
    pub(crate) f: FoldFn,
    pub(crate) axes: Axes,
    #[serde(skip)]
    _t: PhantomData<T>,
}

impl<T: Number> TreeKind for Fold<T> {
    type In = T;
    type Part = ArrayD<T>;
    type Out = T;
    fn chunk(&self, b: &ArrayD<T>, _: &[usize]) -> Result<ArrayD<T>, BoxError> {
        let axes = self.axes;
        match self.f {
            FoldFn::Sum => fold_keep(b, axes, T::ZERO, |a, &x| a + x, |a, b| a + b),
            FoldFn::Prod => fold_keep(b, axes, T::ONE, |a, &x| a * x, |a, b| a * b),
            FoldFn::Min => fold_keep(b, axes, T::HIGHEST, |a, &x| min_nan(a, x), min_nan),
            FoldFn::Max => fold_keep(b, axes, T::LOWEST, |a, &x| max_nan(a, x), max_nan),
        }
    }
    fn combine(&self, parts: Vec<ArrayD<T>>) -> Result<ArrayD<T>, BoxError> {
        match self.f {
            FoldFn::Sum => zip_all(parts, |&a, &b| a + b),
            FoldFn::Prod => zip_all(parts, |&a, &b| a * b),
            FoldFn::Min => zip_all(parts, |&a, &b| min_nan(a, b)),
            FoldFn::Max => zip_all(parts, |&a, &b| max_nan(a, b)),
        }
    }
    fn finalize(&self, part: ArrayD<T>) -> Result<ArrayD<T>, BoxError> {
        drop_axes(part, self.axes)
    }
    fn fused_chunk(&self, block: &Arg, ndim: usize, name: &str) -> Option<Task> {
        crate::fused::fold_chunk(self, ndim, block, name)
    }
    fn pair_chunks(&self, tasks: &mut [(Vec<usize>, Task)]) {
        crate::fused::pair_mirrors(self, tasks)
    }
}

/// `any` (or, with `all`, every) of booleans.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct BoolFold {
    all: bool,
    axes: Axes,
}

impl TreeKind for BoolFold {
    type In = bool;
    type Part = ArrayD<bool>;
    type Out = bool;
    fn chunk(&self, b: &ArrayD<bool>, _: &[usize]) -> Result<ArrayD<bool>, BoxError> {
        if self.all {
            fold_keep(b, self.axes, true, |a, &x| a && x, |a, b| a && b)
        } else {
            fold_keep(b, self.axes, false, |a, &x| a || x, |a, b| a || b)
        }
    }
    fn combine(&self, parts: Vec<ArrayD<bool>>) -> Result<ArrayD<bool>, BoxError> {
        if self.all {
            zip_all(parts, |&a, &b| a && b)
        } else {
            zip_all(parts, |&a, &b| a || b)
        }
    }
    fn finalize(&self, part: ArrayD<bool>) -> Result<ArrayD<bool>, BoxError> {
        drop_axes(part, self.axes)
    }
}

/// NaN-propagating minimum (NumPy's `min`): the first NaN wins.
pub(crate) fn min_nan<T: Element>(a: T, b: T) -> T {
    if a.is_nan() || b.is_nan() {
        if a.is_nan() {
            a
        } else {
            b
        }
    } else if b < a {
        b
    } else {
        a
    }
}

pub(crate) fn max_nan<T: Element>(a: T, b: T) -> T {
    if a.is_nan() || b.is_nan() {
        if a.is_nan() {
            a
        } else {
            b
        }
    } else if b > a {
        b
    } else {
        a
    }
}

/// Partial of `mean`: running sum and count.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct MeanPart {
    #[serde(with = "serde_chunk")]
    sum: ArrayD<f64>,
    count: f64,
}

impl MeanPart {
    /// The partial of `count` elements summing to `sum` (keepdims shape).
    pub(crate) fn new(sum: ArrayD<f64>, count: f64) -> Self {
        MeanPart { sum, count }
    }
}

/// Partial of `var`: count, mean and sum of squared deviations (Chan et al.'s
/// parallel algorithm, numerically stable when partials are merged).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct VarPart {
    n: f64,
    #[serde(with = "serde_chunk")]
    mean: ArrayD<f64>,
    #[serde(with = "serde_chunk")]
    m2: ArrayD<f64>,
}

/// Partial of `argmin`/`argmax`: best values and their global indices.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound = "T: Element")]
pub(crate) struct ArgPart<T> {
    #[serde(with = "serde_chunk")]
    vals: ArrayD<T>,
    #[serde(with = "serde_chunk")]
    idx: ArrayD<i64>,
}

dask_core::register_codec!(MeanPart);
dask_core::register_codec!(VarPart);
dask_core::register_codec!(ArgPart<f64>);
dask_core::register_codec!(ArgPart<f32>);
dask_core::register_codec!(ArgPart<i64>);
dask_core::register_codec!(ArgPart<i32>);

/// `a + b` in `f64`: the merge of sums.
fn add(a: f64, b: f64) -> f64 {
    a + b
}

pub(crate) fn reduced_count(shape: &[usize], axes: Axes) -> f64 {
    (0..shape.len())
        .filter(|&k| axes.has(k))
        .map(|k| shape[k])
        .product::<usize>() as f64
}

pub(crate) fn fold<T: Number>(f: FoldFn) -> impl FnOnce(Axes) -> Fold<T> {
    move |axes| Fold {
        f,
        axes,
        _t: PhantomData,
    }
}

/// The mean in `f64`: partials are sums and counts.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct Mean<T> {
    axes: Axes,
    #[serde(skip)]
    _t: PhantomData<T>,
}

impl<T: Number> TreeKind for Mean<T> {
    type In = T;
    type Part = MeanPart;
    type Out = f64;
    fn chunk(&self, block: &ArrayD<T>, _: &[usize]) -> Result<MeanPart, BoxError> {
        Ok(MeanPart {
            sum: fold_keep(block, self.axes, 0.0, |acc, x| acc + x.to_f64(), add)?,
            count: reduced_count(block.shape(), self.axes),
        })
    }
    fn combine(&self, parts: Vec<MeanPart>) -> Result<MeanPart, BoxError> {
        let count = parts.iter().map(|p| p.count).sum();
        let sum = zip_all(parts.into_iter().map(|p| p.sum).collect(), |a, b| a + b)?;
        Ok(MeanPart { sum, count })
    }
    fn finalize(&self, p: MeanPart) -> Result<ArrayD<f64>, BoxError> {
        Ok(drop_axes(p.sum, self.axes)?.mapv(|s| s / p.count))
    }
    fn fused_chunk(&self, block: &Arg, ndim: usize, name: &str) -> Option<Task> {
        crate::fused::mean_chunk::<T>(self.axes, ndim, block, name)
    }
    fn pair_chunks(&self, tasks: &mut [(Vec<usize>, Task)]) {
        crate::fused::pair_mean_mirrors::<T>(self.axes, tasks)
    }
}

/// The variance in `f64` (Chan et al.'s parallel algorithm).
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct Var<T> {
    axes: Axes,
    ddof: f64,
    #[serde(skip)]
    _t: PhantomData<T>,
}

impl<T: Number> TreeKind for Var<T> {
    type In = T;
    type Part = VarPart;
    type Out = f64;
    fn chunk(&self, block: &ArrayD<T>, _: &[usize]) -> Result<VarPart, BoxError> {
        let axes = self.axes;
        let n = reduced_count(block.shape(), axes);
        let sum = fold_keep(block, axes, 0.0, |acc, x| acc + x.to_f64(), add)?;
        let mean = sum.mapv(|s| if n > 0.0 { s / n } else { 0.0 });
        let dev = block.mapv(|x| x.to_f64()) - &mean;
        let m2 = fold_keep(&dev, axes, 0.0, |acc, d| acc + d * d, add)?;
        Ok(VarPart { n, mean, m2 })
    }
    fn combine(&self, parts: Vec<VarPart>) -> Result<VarPart, BoxError> {
        let mut it = parts.into_iter();
        let mut acc = it.next().ok_or("no partial results to combine")?;
        for p in it {
            let n = acc.n + p.n;
            if p.n == 0.0 {
                continue;
            }
            if acc.n == 0.0 {
                acc = p;
                continue;
            }
            let delta = &p.mean - &acc.mean;
            let mean = &acc.mean + &delta.mapv(|d| d * p.n / n);
            let m2 = &acc.m2 + &p.m2 + delta.mapv(|d| d * d * acc.n * p.n / n);
            acc = VarPart { n, mean, m2 };
        }
        Ok(acc)
    }
    fn finalize(&self, p: VarPart) -> Result<ArrayD<f64>, BoxError> {
        let ddof = self.ddof;
        Ok(drop_axes(p.m2, self.axes)?.mapv(|m2| m2 / (p.n - ddof)))
    }
}

/// `argmin` / `argmax` (with `max`): partials are best values and their
/// global indices.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct ArgReduce<T> {
    axes: Axes,
    /// The one reduced axis, or `None` for the flattened array.
    axis_one: Option<usize>,
    /// The whole array's shape (for flat indices).
    shape: Vec<usize>,
    max: bool,
    #[serde(skip)]
    _t: PhantomData<T>,
}

impl<T: Number> ArgReduce<T> {
    /// Is candidate `(b, j)` better than the current `(a, i)`? NaN wins, then
    /// the better value, then the lower index.
    fn wins(&self, a: T, i: i64, b: T, j: i64) -> bool {
        match (a.is_nan(), b.is_nan()) {
            (true, true) => j < i,
            (true, false) => false,
            (false, true) => true,
            (false, false) => {
                let better = if self.max { b > a } else { b < a };
                better || (a == b && j < i)
            }
        }
    }
}

impl<T: Number> TreeKind for ArgReduce<T> {
    type In = T;
    type Part = ArgPart<T>;
    type Out = i64;
    fn chunk(&self, block: &ArrayD<T>, start: &[usize]) -> Result<ArgPart<T>, BoxError> {
        let bshape = block.shape().to_vec();
        let shape = &self.shape;
        if shape.len() != bshape.len() {
            return Err("arg reduction: block and array disagree (bug in dask-array)".into());
        }
        // The global index of local position p along the lane.
        let global = |p: usize| -> i64 {
            match self.axis_one {
                Some(a) => (start[a] + p) as i64,
                None => {
                    let mut rem = p;
                    let mut local = vec![0; bshape.len()];
                    for k in (0..bshape.len()).rev() {
                        local[k] = rem % bshape[k];
                        rem /= bshape[k];
                    }
                    let mut flat = 0usize;
                    for k in 0..shape.len() {
                        flat = flat * shape[k] + start[k] + local[k];
                    }
                    flat as i64
                }
            }
        };
        let best = reduce_keep(block, self.axes, |it| {
            let mut best: Option<(T, i64)> = None;
            for (p, &x) in it {
                let j = global(p);
                best = match best {
                    Some((a, i)) if !self.wins(a, i, x, j) => Some((a, i)),
                    _ => Some((x, j)),
                };
            }
            best.unwrap_or((T::ZERO, -1))
        })?;
        Ok(ArgPart {
            vals: best.mapv(|(v, _)| v),
            idx: best.mapv(|(_, i)| i),
        })
    }
    fn combine(&self, parts: Vec<ArgPart<T>>) -> Result<ArgPart<T>, BoxError> {
        let mut it = parts.into_iter();
        let mut acc = it.next().ok_or("no partial results to combine")?;
        for p in it {
            if p.vals.shape() != acc.vals.shape() || p.idx.shape() != acc.idx.shape() {
                return Err("partial results of different shapes (bug in dask-array)".into());
            }
            Zip::from(&mut acc.vals)
                .and(&mut acc.idx)
                .and(&p.vals)
                .and(&p.idx)
                .for_each(|a, i, &b, &j| {
                    if j >= 0 && (*i < 0 || self.wins(*a, *i, b, j)) {
                        *a = b;
                        *i = j;
                    }
                });
        }
        Ok(acc)
    }
    fn finalize(&self, p: ArgPart<T>) -> Result<ArrayD<i64>, BoxError> {
        drop_axes(p.idx, self.axes)
    }
}

type FoldOp<T> = TreeOp<Fold<T>>;
type MeanOp<T> = TreeOp<Mean<T>>;
type VarOp<T> = TreeOp<Var<T>>;
type ArgOp<T> = TreeOp<ArgReduce<T>>;
register_each!(FoldOp: f64, f32, i64, i32);
register_each!(MeanOp: f64, f32, i64, i32);
register_each!(VarOp: f64, f32, i64, i32);
register_each!(ArgOp: f64, f32, i64, i32);
dask_core::register_op_type!(TreeOp<BoolFold>);

impl<T: Number> Array<T> {
    /// The sum over all axes (`None`) or one axis, as a tree reduction.
    pub fn sum(&self, how: impl Into<Reduce>) -> Result<Array<T>> {
        self.fold_reduce("sum", how.into(), false, fold(FoldFn::Sum))
    }

    /// The product over all axes or one axis.
    pub fn prod(&self, how: impl Into<Reduce>) -> Result<Array<T>> {
        self.fold_reduce("prod", how.into(), false, fold(FoldFn::Prod))
    }

    /// The minimum (NaN if any element is NaN). Errors on an empty reduction.
    pub fn min(&self, how: impl Into<Reduce>) -> Result<Array<T>> {
        self.fold_reduce("min", how.into(), true, fold(FoldFn::Min))
    }

    /// The maximum (NaN if any element is NaN). Errors on an empty reduction.
    pub fn max(&self, how: impl Into<Reduce>) -> Result<Array<T>> {
        self.fold_reduce("max", how.into(), true, fold(FoldFn::Max))
    }

    /// The arithmetic mean, computed in `f64` (NaN for an empty reduction, as in NumPy).
    pub fn mean(&self, how: impl Into<Reduce>) -> Result<Array<f64>> {
        let how = how.into();
        let axes = self.reduce_axes("mean", &how, false)?;
        let kind = Mean::<T> {
            axes,
            _t: PhantomData,
        };
        Ok(self.tree_reduce("mean", &how, axes, kind))
    }

    /// The variance, computed in `f64`, dividing by `n - ddof` (set with
    /// [`Reduce::ddof`]; default 0 as in NumPy).
    pub fn var(&self, how: impl Into<Reduce>) -> Result<Array<f64>> {
        let how = how.into();
        let axes = self.reduce_axes("var", &how, false)?;
        let kind = Var::<T> {
            axes,
            ddof: how.ddof as f64,
            _t: PhantomData,
        };
        Ok(self.tree_reduce("var", &how, axes, kind))
    }

    /// The standard deviation: the square root of [`Array::var`].
    pub fn std(&self, how: impl Into<Reduce>) -> Result<Array<f64>> {
        let how = how.into();
        let var = self.var(how)?;
        let sqrt = crate::kernels::FloatKernel {
            f: crate::kernels::FloatFn::Sqrt,
        };
        Ok(crate::elementwise::unary_kernel(&var, "std", "", sqrt))
    }

    /// The index of the minimum: along `axis`, or into the flattened (C order)
    /// array for a full reduction. The first occurrence wins; NaN counts as the
    /// minimum, as in NumPy. Errors on an empty reduction.
    pub fn argmin(&self, how: impl Into<Reduce>) -> Result<Array<i64>> {
        self.arg_reduce("argmin", how.into(), false)
    }

    /// The index of the maximum; see [`Array::argmin`].
    pub fn argmax(&self, how: impl Into<Reduce>) -> Result<Array<i64>> {
        self.arg_reduce("argmax", how.into(), true)
    }

    fn arg_reduce(&self, op: &'static str, how: Reduce, max: bool) -> Result<Array<i64>> {
        let axes = self.reduce_axes(op, &how, true)?;
        // One axis, or None for all (as in NumPy, no tuple of axes).
        let axis_one = match axes {
            Axes::All => None,
            Axes::One(a) => Some(a),
            Axes::Many(_) => {
                return Err(Error::InvalidArgument {
                    op,
                    param: "axis",
                    value: format!("{:?}", how.reduced_axes().unwrap_or_default()),
                    hint: "reduce over one axis or all of them (axis None)",
                })
            }
        };
        let kind = ArgReduce::<T> {
            axes,
            axis_one,
            shape: self.shape().to_vec(),
            max,
            _t: PhantomData,
        };
        Ok(self.tree_reduce(op, &how, axes, kind))
    }
}

impl Array<bool> {
    /// Whether any element is true (false for an empty reduction).
    pub fn any(&self, how: impl Into<Reduce>) -> Result<Array<bool>> {
        self.fold_reduce("any", how.into(), false, |axes| BoolFold {
            all: false,
            axes,
        })
    }

    /// Whether every element is true (true for an empty reduction).
    pub fn all(&self, how: impl Into<Reduce>) -> Result<Array<bool>> {
        self.fold_reduce("all", how.into(), false, |axes| BoolFold {
            all: true,
            axes,
        })
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, Axis, IxDyn};

    use super::{fold_keep, max_nan, Axes};

    /// Integer-valued floats: every order of summation gives the same sum, so
    /// the lane folds must match ndarray's sequential ones exactly, over
    /// lengths around the lane count, empty axes and transposed layouts.
    #[test]
    fn lane_folds_match_sequential_folds() {
        for shape in [
            [0, 5],
            [3, 0],
            [1, 1],
            [2, 7],
            [3, 8],
            [5, 9],
            [4, 17],
            [9, 33],
        ] {
            let a = ArrayD::from_shape_fn(IxDyn(&shape), |i| ((i[0] * 7 + i[1] * 3) % 11) as f64);
            for block in [
                a.clone(),
                a.t().to_owned(),
                a.t().as_standard_layout().into_owned(),
            ] {
                let sum = |axes| fold_keep(&block, axes, 0.0, |s, &x| s + x, |s, t| s + t).unwrap();
                assert_eq!(sum(Axes::All).into_iter().next(), Some(block.sum()));
                for axis in 0..2 {
                    let want = block.sum_axis(Axis(axis)).insert_axis(Axis(axis));
                    assert_eq!(sum(Axes::One(axis)), want, "{shape:?} axis {axis}");
                }
            }
        }
    }

    #[test]
    fn a_nan_in_any_lane_or_the_tail_wins_a_max() {
        for at in [0, 5, 8, 15, 16, 18] {
            let mut v = vec![1.0; 19];
            v[at] = f64::NAN;
            let block = ArrayD::from_shape_vec(IxDyn(&[1, 19]), v).unwrap();
            for axes in [Axes::All, Axes::One(1)] {
                let m = fold_keep(
                    &block,
                    axes,
                    f64::NEG_INFINITY,
                    |a, &x| max_nan(a, x),
                    max_nan,
                )
                .unwrap();
                assert!(m.iter().all(|x| x.is_nan()), "NaN at {at}");
            }
        }
    }
}
