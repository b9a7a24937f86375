//! Reordering and selecting: [`Array::transpose`], [`Array::t`],
//! [`Array::slice`] (basic slicing with steps), [`Array::index_axis`] (one
//! integer index, dropping the axis), [`Array::take`] (integer-array
//! indexing on one axis), [`Array::compress`] (boolean indexing on one axis).

use std::marker::PhantomData;

use dask_core::{tokenize, Arg, BoxError, Op, Task, Value};
use ndarray::{ArrayD, IxDyn, Slice};
use serde::{Deserialize, Serialize};

use crate::array::{chunk_arg, new_layer, op, value_arg, Array, Source};
use crate::chunks::{offsets, Chunks};
use crate::element::Element;
use crate::error::{Error, Result};

impl<T: Element> Array<T> {
    /// The axes permuted: axis `k` of the result is axis `axes[k]` of `self`,
    /// like `numpy.transpose`. Errors unless `axes` is a permutation of
    /// `0..ndim`. The transpose of each block is fused into the next
    /// elementwise operation.
    pub fn transpose(&self, axes: &[usize]) -> Result<Array<T>> {
        let ndim = self.ndim();
        let mut seen = vec![false; ndim];
        for &a in axes {
            self.check_axis(a)?;
            if std::mem::replace(&mut seen[a], true) {
                return Err(Error::InvalidArgument {
                    op: "transpose",
                    param: "axes",
                    value: format!("{axes:?}"),
                    hint: "name every axis exactly once",
                });
            }
        }
        if axes.len() != ndim {
            return Err(Error::InvalidArgument {
                op: "transpose",
                param: "axes",
                value: format!("{axes:?}"),
                hint: "give a permutation of all the array's axes",
            });
        }
        let perm = axes.to_vec();
        let m = self.meta();
        let chunks =
            Chunks::from_axes_unchecked(perm.iter().map(|&a| m.chunks.axis(a).to_vec()).collect());
        let source = Source::new(m, true);
        let name = transpose_name(&m.name, &perm);
        let op = op(Transpose::<T> {
            perm: perm.clone(),
            _t: PhantomData,
        });
        Ok(new_layer::<T>(
            name,
            chunks,
            &[source.graph()],
            true,
            |idx| {
                let mut src = vec![0; ndim];
                for (k, &a) in perm.iter().enumerate() {
                    src[a] = idx[k];
                }
                Task::new(op.clone(), vec![source.arg(&src)])
            },
        ))
    }

    /// The axes reversed (`x.T` in NumPy).
    pub fn t(&self) -> Array<T> {
        let axes: Vec<usize> = (0..self.ndim()).rev().collect();
        // A reversed axis list is always a valid permutation.
        self.transpose(&axes).unwrap_or_else(|_| self.clone())
    }

    /// Basic slicing with steps, one [`ndarray::Slice`] per leading axis (the
    /// remaining axes are kept whole), with ndarray's semantics: negative
    /// `start`/`end` count from the end, and a negative step walks the range
    /// backwards. Errors on a zero step or a range outside the axis.
    ///
    /// ```
    /// use dask_array::{arange, Collection};
    /// use ndarray::Slice;
    /// let x = arange(0i64, 10, 1, 3).unwrap();
    /// let y = x.slice(&[Slice::new(1, Some(-1), 3)]).unwrap();
    /// # use dask_sync_scheduler::SyncScheduler;
    /// assert_eq!(y.compute_with(&SyncScheduler::new()).unwrap().into_raw_vec_and_offset().0, vec![1, 4, 7]);
    /// ```
    pub fn slice(&self, slices: &[Slice]) -> Result<Array<T>> {
        let ndim = self.ndim();
        if slices.len() > ndim {
            return Err(Error::AxisOutOfRange {
                axis: slices.len() - 1,
                ndim,
                shape: self.shape().to_vec(),
            });
        }
        let m = self.meta();
        // Per axis: the output blocks as (input block, local ndarray slice).
        let mut plan: Vec<Vec<Piece>> = Vec::with_capacity(ndim);
        for axis in 0..ndim {
            let dim = self.shape()[axis];
            let s = slices.get(axis).copied().unwrap_or(Slice::from(..));
            plan.push(axis_plan(axis, dim, m.chunks.axis(axis), s)?);
        }
        let chunks = Chunks::from_axes_unchecked(
            plan.iter()
                .map(|blocks| {
                    blocks
                        .iter()
                        .map(|(_, (s, e, st))| selected(*s, *e, *st))
                        .collect()
                })
                .collect(),
        );
        let source = Source::new(m, true);
        let key_slices: Vec<(isize, Option<isize>, isize)> =
            slices.iter().map(|s| (s.start, s.end, s.step)).collect();
        let name = format!("getitem-{}", tokenize(&(&*m.name, &key_slices)));
        let op = op(GetItem::<T>(PhantomData));
        Ok(new_layer::<T>(
            name,
            chunks,
            &[source.graph()],
            true,
            |idx| {
                let src: Vec<usize> = (0..ndim).map(|a| plan[a][idx[a]].0).collect();
                let local: Vec<(isize, isize, isize)> =
                    (0..ndim).map(|a| plan[a][idx[a]].1).collect();
                Task::new(op.clone(), vec![source.arg(&src), Arg::value(local)])
            },
        ))
    }
}

impl<T: Element> Array<T> {
    /// The elements at `indices` along `axis` (in that order, repeats allowed),
    /// like `numpy.take`. Consecutive indices that fall in the same block form
    /// one output block. Errors on an index out of bounds or a bad axis.
    ///
    /// ```
    /// use dask_array::{arange, Collection};
    /// let x = arange(0i64, 10, 1, 4).unwrap();
    /// let y = x.take(&[9, 0, 1, 1], 0).unwrap();
    /// # use dask_sync_scheduler::SyncScheduler;
    /// assert_eq!(y.compute_with(&SyncScheduler::new()).unwrap().into_raw_vec_and_offset().0, vec![9, 0, 1, 1]);
    /// ```
    pub fn take(&self, indices: &[usize], axis: usize) -> Result<Array<T>> {
        self.check_axis(axis)?;
        let dim = self.shape()[axis];
        if let Some(&index) = indices.iter().find(|&&i| i >= dim) {
            return Err(Error::IndexOutOfBounds { axis, index, dim });
        }
        let m = self.meta();
        let off = offsets(m.chunks.axis(axis));
        let block_of = |i: usize| off.partition_point(|&o| o <= i) - 1;
        // Runs of indices in one block: (block, local indices).
        let mut runs: Vec<(usize, Vec<usize>)> = Vec::new();
        for &i in indices {
            let b = block_of(i);
            match runs.last_mut() {
                Some((rb, local)) if *rb == b => local.push(i - off[b]),
                _ => runs.push((b, vec![i - off[b]])),
            }
        }
        let mut axes = m.chunks.axes().to_vec();
        axes[axis] = if runs.is_empty() {
            vec![0]
        } else {
            runs.iter().map(|(_, l)| l.len()).collect()
        };
        let name = format!("take-{}", tokenize(&(&*m.name, indices, axis)));
        let op = op(Take::<T> {
            axis,
            _t: PhantomData,
        });
        // An input block may feed several runs: reference it by key.
        Ok(new_layer::<T>(
            name,
            Chunks::from_axes_unchecked(axes),
            std::slice::from_ref(&m.graph),
            false,
            |idx| {
                let (src_block, local) = runs.get(idx[axis]).cloned().unwrap_or((0, Vec::new()));
                let mut src = idx.to_vec();
                src[axis] = src_block;
                Task::new(op.clone(), vec![Arg::Key(m.key(&src)), Arg::value(local)])
            },
        ))
    }

    /// The sub-array at `index` along `axis`, with that axis removed, like
    /// `x[:, i]` in NumPy or ndarray's `index_axis`. Errors on a bad axis or an
    /// index out of bounds. Only the blocks holding the index are read.
    pub fn index_axis(&self, axis: usize, index: usize) -> Result<Array<T>> {
        self.check_axis(axis)?;
        let dim = self.shape()[axis];
        if index >= dim {
            return Err(Error::IndexOutOfBounds { axis, index, dim });
        }
        let m = self.meta();
        let off = offsets(m.chunks.axis(axis));
        let block = off.partition_point(|&o| o <= index) - 1;
        let local = index - off[block];
        let mut axes = m.chunks.axes().to_vec();
        axes.remove(axis);
        let source = Source::new(m, true);
        let name = format!("index_axis-{}", tokenize(&(&*m.name, axis, index)));
        let op = op(IndexAxis::<T> {
            axis,
            index: local,
            _t: PhantomData,
        });
        Ok(new_layer::<T>(
            name,
            Chunks::from_axes_unchecked(axes),
            &[source.graph()],
            true,
            |idx| {
                let mut src = idx.to_vec();
                src.insert(axis, block);
                Task::new(op.clone(), vec![source.arg(&src)])
            },
        ))
    }

    /// The elements along `axis` where `mask` is true, like `numpy.compress`
    /// (boolean indexing on one axis). Errors unless the mask has one entry per
    /// element of the axis.
    pub fn compress(&self, mask: &[bool], axis: usize) -> Result<Array<T>> {
        self.check_axis(axis)?;
        let dim = self.shape()[axis];
        if mask.len() != dim {
            return Err(Error::MaskLength {
                axis,
                expected: dim,
                found: mask.len(),
            });
        }
        let indices: Vec<usize> = (0..dim).filter(|&i| mask[i]).collect();
        self.take(&indices, axis)
    }
}

/// The transpose of a C-order `rows x cols` matrix, in C order. Copied tile
/// by tile, so reads and writes both stay within a few cache lines and pages
/// (an element-by-element strided copy misses the cache on every read once a
/// block is larger than the cache).
fn transpose_2d<T: Copy + Default>(src: &[T], rows: usize, cols: usize) -> Vec<T> {
    const TILE: usize = 32;
    let mut out = vec![T::default(); rows * cols];
    for i0 in (0..rows).step_by(TILE) {
        let i1 = (i0 + TILE).min(rows);
        for j0 in (0..cols).step_by(TILE) {
            let j1 = (j0 + TILE).min(cols);
            for i in i0..i1 {
                let row = &src[i * cols + j0..i * cols + j1];
                for (j, &v) in (j0..j1).zip(row) {
                    out[j * rows + i] = v;
                }
            }
        }
    }
    out
}

/// The op of [`Array::transpose`]: a block with its axes permuted.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Transpose<T> {
    perm: Vec<usize>,
    #[serde(skip)]
    _t: PhantomData<T>,
}

impl<T: Element> Op for Transpose<T> {
    fn name(&self) -> &str {
        "dask_array::transpose"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let block = chunk_arg::<T>(args, 0)?;
        if self.perm.len() != block.ndim() {
            return Err(format!(
                "transpose: permutation {:?} for a block of shape {:?} (bug in dask-array)",
                self.perm,
                block.shape()
            )
            .into());
        }
        if let (Some(src), [r, c], [1, 0]) = (block.as_slice(), block.shape(), &self.perm[..]) {
            let data = transpose_2d(src, *r, *c);
            return Ok(Value::new(ArrayD::from_shape_vec(IxDyn(&[*c, *r]), data)?));
        }
        let t = block.view().permuted_axes(self.perm.clone());
        Ok(Value::new(t.as_standard_layout().into_owned()))
    }
}

/// The block a nested 2-D transpose task reads, if `task` is one.
/// The name of the layer [`Array::transpose`] makes of the array `name`:
/// the same source and permutation give the same name.
pub(crate) fn transpose_name(name: &str, perm: &[usize]) -> String {
    format!("transpose-{}", tokenize(&(name, perm)))
}

/// A task transposing the 2-D block `arg`.
pub(crate) fn transpose_2d_task<T: Element>(arg: Arg) -> Task {
    let t = Transpose::<T> {
        perm: vec![1, 0],
        _t: PhantomData,
    };
    Task::new(op(t), vec![arg])
}

pub(crate) fn transpose_2d_input<T: Element>(task: &Task) -> Option<&Arg> {
    let op: &dyn std::any::Any = &*task.op;
    match (op.downcast_ref::<Transpose<T>>(), &task.args[..]) {
        (Some(t), [arg]) if t.perm == [1, 0] => Some(arg),
        _ => None,
    }
}

/// The op of [`Array::slice`]: the local `(start, end, step)` of every axis.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct GetItem<T>(#[serde(skip)] PhantomData<T>);

impl<T: Element> Op for GetItem<T> {
    fn name(&self) -> &str {
        "dask_array::getitem"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let block = chunk_arg::<T>(args, 0)?;
        let s = value_arg::<Vec<(isize, isize, isize)>>(args, 1)?;
        if s.len() != block.ndim() {
            return Err(format!(
                "getitem: {} slices for a block of shape {:?} (bug in dask-array)",
                s.len(),
                block.shape()
            )
            .into());
        }
        let view = block.slice_each_axis(|ax| {
            let (a, b, st) = s[ax.axis.index()];
            Slice::new(a, Some(b), st)
        });
        Ok(Value::new(view.to_owned()))
    }
}

/// The op of [`Array::take`]: the local indices it gets, along `axis`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Take<T> {
    axis: usize,
    #[serde(skip)]
    _t: PhantomData<T>,
}

impl<T: Element> Op for Take<T> {
    fn name(&self) -> &str {
        "dask_array::take"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let block = chunk_arg::<T>(args, 0)?;
        let local = value_arg::<Vec<usize>>(args, 1)?;
        Ok(Value::new(block.select(ndarray::Axis(self.axis), local)))
    }
}

/// The op of [`Array::index_axis`]: one index along `axis`, which is dropped.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct IndexAxis<T> {
    axis: usize,
    index: usize,
    #[serde(skip)]
    _t: PhantomData<T>,
}

impl<T: Element> Op for IndexAxis<T> {
    fn name(&self) -> &str {
        "dask_array::index_axis"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let b = chunk_arg::<T>(args, 0)?;
        Ok(Value::new(
            b.index_axis(ndarray::Axis(self.axis), self.index)
                .to_owned(),
        ))
    }
}

register_each!(Transpose: f64, f32, i64, i32, bool);
register_each!(GetItem: f64, f32, i64, i32, bool);
register_each!(Take: f64, f32, i64, i32, bool);
register_each!(IndexAxis: f64, f32, i64, i32, bool);

/// One output block of an axis: the input block and the local
/// `(start, end, step)` slice of it.
type Piece = (usize, (isize, isize, isize));

/// How many elements `Slice::new(s, Some(e), step)` selects from a range of `e - s`.
fn selected(s: isize, e: isize, step: isize) -> usize {
    let len = (e - s).max(0) as usize;
    len.div_ceil(step.unsigned_abs())
}

/// The output blocks of one axis: for each, the input block and the local slice.
fn axis_plan(axis: usize, dim: usize, chunks: &[usize], s: Slice) -> Result<Vec<Piece>> {
    if s.step == 0 {
        return Err(Error::InvalidArgument {
            op: "slice",
            param: "step",
            value: "0".into(),
            hint: "use a nonzero step",
        });
    }
    let resolve = |i: isize| if i < 0 { i + dim as isize } else { i };
    let start = resolve(s.start);
    let end = resolve(s.end.unwrap_or(dim as isize));
    if start < 0 || end < 0 || start > dim as isize || end > dim as isize {
        return Err(Error::SliceOutOfBounds {
            axis,
            start: s.start,
            end: s.end.unwrap_or(dim as isize),
            dim,
        });
    }
    // As in ndarray, an end before the start selects nothing.
    let (start, end) = (start as usize, (end as usize).max(start as usize));
    let stride = s.step.unsigned_abs();
    // The selected indices, in output order: a negative step starts at the back.
    let picked: Vec<usize> = if s.step > 0 {
        (start..end).step_by(stride).collect()
    } else {
        (start..end).rev().step_by(stride).collect()
    };
    if picked.is_empty() {
        return Ok(vec![(0, (0, 0, 1))]);
    }
    let off = offsets(chunks);
    let block_of = |i: usize| off.partition_point(|&o| o <= i) - 1;
    let mut out = Vec::new();
    let mut run: Vec<usize> = Vec::new();
    let mut run_block = block_of(picked[0]);
    let flush = |block: usize, run: &mut Vec<usize>, out: &mut Vec<_>| {
        let lo = run.iter().min().copied().unwrap_or(0) - off[block];
        let hi = run.iter().max().copied().unwrap_or(0) - off[block] + 1;
        out.push((block, (lo as isize, hi as isize, s.step)));
        run.clear();
    };
    for &i in &picked {
        let b = block_of(i);
        if b != run_block {
            flush(run_block, &mut run, &mut out);
            run_block = b;
        }
        run.push(i);
    }
    flush(run_block, &mut run, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::transpose_2d;

    /// The tiled copy against ndarray's transposed view, across tile edges.
    #[test]
    fn tiled_transpose_matches_ndarray() {
        for (r, c) in [(1, 1), (1, 70), (70, 1), (31, 33), (32, 64), (65, 97)] {
            let a = ndarray::Array2::from_shape_fn((r, c), |(i, j)| (i * 1000 + j) as i64);
            let t = transpose_2d(a.as_slice().unwrap(), r, c);
            let expected: Vec<i64> = a.t().iter().copied().collect();
            assert_eq!(t, expected, "{r} x {c}");
        }
    }
}
