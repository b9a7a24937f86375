//! Reductions as tree reductions: [`Array::sum`], `prod`, `min`, `max`,
//! `mean`, `var`, `std`, `argmin`, `argmax`, [`Array::any`], [`Array::all`].
//!
//! Each block is reduced to a small partial result (keeping reduced axes with
//! length 1), then partials are combined `split_every` at a time along the
//! reduced axes, level by level, until one partial per output block is left and
//! finalized. Memory per task is bounded by `split_every` partials, and the
//! depth of the tree is `log_split_every(blocks)`.

use std::sync::Arc;

use dask_core::{tokenize, Arg, BoxError, Graph, HighLevelGraph, Key, Task, Value};
use ndarray::{ArrayD, Axis, IxDyn, Zip};

use crate::array::{block_key, block_op, chunk_arg, new_layer, value_arg, Array, Source};
use crate::chunks::{grid_indices, Chunks};
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
#[derive(Clone, Copy)]
enum Axes {
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
fn keep_shape(shape: &[usize], axes: Axes) -> Vec<usize> {
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
fn fold_keep<A: Clone, B: Clone>(
    block: &ArrayD<A>,
    axes: Axes,
    init: B,
    f: impl Fn(B, &A) -> B,
) -> Result<ArrayD<B>, BoxError> {
    Ok(match axes {
        Axes::All => {
            let v = block.iter().fold(init, &f);
            ArrayD::from_elem(IxDyn(&vec![1; block.ndim()]), v)
        }
        Axes::One(a) => block
            .fold_axis(Axis(a), init, |acc, x| f(acc.clone(), x))
            .insert_axis(Axis(a)),
        Axes::Many(_) => {
            let merged = merge_reduced(block, axes)?;
            let last = Axis(merged.ndim() - 1);
            let folded = merged.fold_axis(last, init, |acc, x| f(acc.clone(), x));
            // The same elements in the same order, with reduced axes of length 1.
            let v: Vec<B> = folded.into_iter().collect();
            ArrayD::from_shape_vec(IxDyn(&keep_shape(block.shape(), axes)), v)?
        }
    })
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

type ChunkFn<T, I> = dyn Fn(&ArrayD<T>, &[usize]) -> Result<I, BoxError> + Send + Sync;
type CombineFn<I> = dyn Fn(Vec<I>) -> Result<I, BoxError> + Send + Sync;
type FinalizeFn<I, R> = dyn Fn(I) -> Result<ArrayD<R>, BoxError> + Send + Sync;

/// A tree reduction: `chunk` turns a block (and its global start offsets) into a
/// partial, `combine` merges partials, `finalize` gives the output block.
struct Tree<T, I, R> {
    chunk: Arc<ChunkFn<T, I>>,
    combine: Arc<CombineFn<I>>,
    finalize: Arc<FinalizeFn<I, R>>,
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

    fn tree_reduce<I, R>(
        &self,
        op: &'static str,
        how: &Reduce,
        axes: Axes,
        tree: Tree<T, I, R>,
    ) -> Array<R>
    where
        I: Clone + Send + Sync + 'static,
        R: Element,
    {
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
        let Tree {
            chunk,
            combine,
            finalize,
        } = tree;
        let chunk_op = block_op(&format!("{op}-chunk"), move |args| {
            let block = chunk_arg::<T>(args, 0)?;
            let start = value_arg::<Vec<usize>>(args, 1)?;
            Ok(Value::new(chunk(block, start)?))
        });
        let offsets: Vec<Vec<usize>> = (0..ndim).map(|a| m.chunks.offsets(a)).collect();
        let mut graph = Graph::new();
        for idx in m.chunks.block_indices() {
            let start: Vec<usize> = (0..ndim).map(|a| offsets[a][idx[a]]).collect();
            graph.insert(
                block_key(chunk_name.clone(), &idx),
                Task::new(chunk_op.clone(), vec![source.arg(&idx), Arg::value(start)]),
            );
        }
        let mut hlg = HighLevelGraph::from_layer(chunk_name.clone(), graph, &[&source.graph()]);
        let mut level_name = chunk_name;
        let mut grid = m.chunks.numblocks();

        let combine_op = {
            let combine = combine.clone();
            block_op(&format!("{op}-combine"), move |args| {
                let parts = value_arg::<Vec<Value>>(args, 0)?;
                let parts: Vec<I> = parts
                    .iter()
                    .map(|v| v.downcast_ref::<I>().cloned())
                    .collect::<Result<_, _>>()?;
                Ok(Value::new(combine(parts)?))
            })
        };
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
        let final_op = block_op(op, move |args| {
            let parts = value_arg::<Vec<Value>>(args, 0)?;
            let parts: Vec<I> = parts
                .iter()
                .map(|v| v.downcast_ref::<I>().cloned())
                .collect::<Result<_, _>>()?;
            Ok(Value::new(finalize(combine(parts)?)?))
        });
        let width: Vec<usize> = (0..ndim)
            .map(|k| if reduced[k] { grid[k] } else { 1 })
            .collect();
        let name = format!("{op}-{token}");
        new_layer::<R>(
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

    /// A reduction by an associative `f` with identity `identity`: partials
    /// are keepdims arrays of `T`, folded with static dispatch (ndarray's
    /// `fold_axis` over whole sub-views for one axis).
    fn fold_reduce(
        &self,
        op: &'static str,
        how: Reduce,
        needs_elements: bool,
        identity: T,
        f: fn(T, T) -> T,
    ) -> Result<Array<T>> {
        let axes = self.reduce_axes(op, &how, needs_elements)?;
        Ok(self.tree_reduce(
            op,
            &how,
            axes,
            Tree {
                chunk: Arc::new(move |block: &ArrayD<T>, _: &[usize]| {
                    fold_keep(block, axes, identity, |acc, &x| f(acc, x))
                }),
                combine: Arc::new(move |parts: Vec<ArrayD<T>>| zip_all(parts, |&a, &b| f(a, b))),
                finalize: Arc::new(move |a: ArrayD<T>| drop_axes(a, axes)),
            },
        ))
    }
}

/// NaN-propagating minimum (NumPy's `min`): the first NaN wins.
fn min_nan<T: Element>(a: T, b: T) -> T {
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

fn max_nan<T: Element>(a: T, b: T) -> T {
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
#[derive(Clone)]
struct MeanPart {
    sum: ArrayD<f64>,
    count: f64,
}

/// Partial of `var`: count, mean and sum of squared deviations (Chan et al.'s
/// parallel algorithm, numerically stable when partials are merged).
#[derive(Clone)]
struct VarPart {
    n: f64,
    mean: ArrayD<f64>,
    m2: ArrayD<f64>,
}

/// Partial of `argmin`/`argmax`: best values and their global indices.
#[derive(Clone)]
struct ArgPart<T> {
    vals: ArrayD<T>,
    idx: ArrayD<i64>,
}

fn reduced_count(shape: &[usize], axes: Axes) -> f64 {
    (0..shape.len())
        .filter(|&k| axes.has(k))
        .map(|k| shape[k])
        .product::<usize>() as f64
}

impl<T: Number> Array<T> {
    /// The sum over all axes (`None`) or one axis, as a tree reduction.
    pub fn sum(&self, how: impl Into<Reduce>) -> Result<Array<T>> {
        self.fold_reduce("sum", how.into(), false, T::ZERO, |a, b| a + b)
    }

    /// The product over all axes or one axis.
    pub fn prod(&self, how: impl Into<Reduce>) -> Result<Array<T>> {
        self.fold_reduce("prod", how.into(), false, T::ONE, |a, b| a * b)
    }

    /// The minimum (NaN if any element is NaN). Errors on an empty reduction.
    pub fn min(&self, how: impl Into<Reduce>) -> Result<Array<T>> {
        self.fold_reduce("min", how.into(), true, T::HIGHEST, min_nan)
    }

    /// The maximum (NaN if any element is NaN). Errors on an empty reduction.
    pub fn max(&self, how: impl Into<Reduce>) -> Result<Array<T>> {
        self.fold_reduce("max", how.into(), true, T::LOWEST, max_nan)
    }

    /// The arithmetic mean, computed in `f64` (NaN for an empty reduction, as in NumPy).
    pub fn mean(&self, how: impl Into<Reduce>) -> Result<Array<f64>> {
        let how = how.into();
        let axes = self.reduce_axes("mean", &how, false)?;
        Ok(self.tree_reduce(
            "mean",
            &how,
            axes,
            Tree {
                chunk: Arc::new(move |block: &ArrayD<T>, _: &[usize]| {
                    Ok(MeanPart {
                        sum: fold_keep(block, axes, 0.0, |acc, x| acc + x.to_f64())?,
                        count: reduced_count(block.shape(), axes),
                    })
                }),
                combine: Arc::new(|parts: Vec<MeanPart>| {
                    let count = parts.iter().map(|p| p.count).sum();
                    let sum = zip_all(parts.into_iter().map(|p| p.sum).collect(), |a, b| a + b)?;
                    Ok(MeanPart { sum, count })
                }),
                finalize: Arc::new(move |p: MeanPart| {
                    Ok(drop_axes(p.sum, axes)?.mapv(|s| s / p.count))
                }),
            },
        ))
    }

    /// The variance, computed in `f64`, dividing by `n - ddof` (set with
    /// [`Reduce::ddof`]; default 0 as in NumPy).
    pub fn var(&self, how: impl Into<Reduce>) -> Result<Array<f64>> {
        let how = how.into();
        let axes = self.reduce_axes("var", &how, false)?;
        let ddof = how.ddof as f64;
        Ok(self.tree_reduce(
            "var",
            &how,
            axes,
            Tree {
                chunk: Arc::new(move |block: &ArrayD<T>, _: &[usize]| {
                    let n = reduced_count(block.shape(), axes);
                    let sum = fold_keep(block, axes, 0.0, |acc, x| acc + x.to_f64())?;
                    let mean = sum.mapv(|s| if n > 0.0 { s / n } else { 0.0 });
                    let dev = block.mapv(|x| x.to_f64()) - &mean;
                    let m2 = fold_keep(&dev, axes, 0.0, |acc, d| acc + d * d)?;
                    Ok(VarPart { n, mean, m2 })
                }),
                combine: Arc::new(|parts: Vec<VarPart>| {
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
                }),
                finalize: Arc::new(move |p: VarPart| {
                    Ok(drop_axes(p.m2, axes)?.mapv(|m2| m2 / (p.n - ddof)))
                }),
            },
        ))
    }

    /// The standard deviation: the square root of [`Array::var`].
    pub fn std(&self, how: impl Into<Reduce>) -> Result<Array<f64>> {
        let how = how.into();
        let var = self.var(how)?;
        Ok(crate::elementwise::unary(&var, "std", "", f64::sqrt))
    }

    /// The index of the minimum: along `axis`, or into the flattened (C order)
    /// array for a full reduction. The first occurrence wins; NaN counts as the
    /// minimum, as in NumPy. Errors on an empty reduction.
    pub fn argmin(&self, how: impl Into<Reduce>) -> Result<Array<i64>> {
        self.arg_reduce("argmin", how.into(), |a, b| b < a)
    }

    /// The index of the maximum; see [`Array::argmin`].
    pub fn argmax(&self, how: impl Into<Reduce>) -> Result<Array<i64>> {
        self.arg_reduce("argmax", how.into(), |a, b| b > a)
    }

    fn arg_reduce(
        &self,
        op: &'static str,
        how: Reduce,
        better: fn(T, T) -> bool,
    ) -> Result<Array<i64>> {
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
        let shape = self.shape().to_vec();
        // Is candidate (b, j) better than the current (a, i)?
        let wins = move |a: T, i: i64, b: T, j: i64| -> bool {
            match (a.is_nan(), b.is_nan()) {
                (true, true) => j < i,
                (true, false) => false,
                (false, true) => true,
                (false, false) => better(a, b) || (a == b && j < i),
            }
        };
        Ok(self.tree_reduce(
            op,
            &how,
            axes,
            Tree {
                chunk: Arc::new(move |block: &ArrayD<T>, start: &[usize]| {
                    let bshape = block.shape().to_vec();
                    // The global index of local position p along the lane.
                    let global = |p: usize| -> i64 {
                        match axis_one {
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
                    let best = reduce_keep(block, axes, |it| {
                        let mut best: Option<(T, i64)> = None;
                        for (p, &x) in it {
                            let j = global(p);
                            best = match best {
                                Some((a, i)) if !wins(a, i, x, j) => Some((a, i)),
                                _ => Some((x, j)),
                            };
                        }
                        best.unwrap_or((T::ZERO, -1))
                    })?;
                    Ok(ArgPart {
                        vals: best.mapv(|(v, _)| v),
                        idx: best.mapv(|(_, i)| i),
                    })
                }),
                combine: Arc::new(move |parts: Vec<ArgPart<T>>| {
                    let mut it = parts.into_iter();
                    let mut acc = it.next().ok_or("no partial results to combine")?;
                    for p in it {
                        Zip::from(&mut acc.vals)
                            .and(&mut acc.idx)
                            .and(&p.vals)
                            .and(&p.idx)
                            .for_each(|a, i, &b, &j| {
                                if j >= 0 && (*i < 0 || wins(*a, *i, b, j)) {
                                    *a = b;
                                    *i = j;
                                }
                            });
                    }
                    Ok(acc)
                }),
                finalize: Arc::new(move |p: ArgPart<T>| drop_axes(p.idx, axes)),
            },
        ))
    }
}

impl Array<bool> {
    /// Whether any element is true (false for an empty reduction).
    pub fn any(&self, how: impl Into<Reduce>) -> Result<Array<bool>> {
        self.fold_reduce("any", how.into(), false, false, |a, b| a || b)
    }

    /// Whether every element is true (true for an empty reduction).
    pub fn all(&self, how: impl Into<Reduce>) -> Result<Array<bool>> {
        self.fold_reduce("all", how.into(), false, true, |a, b| a && b)
    }
}
