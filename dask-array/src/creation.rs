//! Creating arrays: [`from_array`], [`full`], [`zeros`], [`ones`], [`arange`],
//! [`linspace`], [`from_delayed`], [`concatenate`], [`stack`].

use std::marker::PhantomData;

use dask_core::{
    tokenize, tokenize::Tokenizer, Arg, BoxError, Collection, Delayed, Op, Task, Value,
};
use ndarray::{ArrayD, Axis, Dimension, IxDyn, Slice};
use serde::{Deserialize, Serialize};

use crate::array::{chunk_arg, new_layer, op, value_arg, Array, Meta};
use crate::chunks::{refine, ChunkSpec, Chunks};
use crate::element::{Element, Float, Number};
use crate::error::{Error, Result};
use crate::rechunk::rechunk_meta;

/// A dask array cut from an in-memory ndarray (any dimensionality).
///
/// The name is a token of the data, shape and chunks, so the same data gives the
/// same keys. Errors if `chunks` does not fit the shape.
///
/// ```
/// use dask_array::from_array;
/// let x = from_array(ndarray::Array2::<f64>::zeros((4, 6)), [2, 3]).unwrap();
/// assert_eq!(x.numblocks(), vec![2, 2]);
/// ```
pub fn from_array<T: Element, D: Dimension>(
    data: ndarray::Array<T, D>,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array<T>> {
    let data = data.into_dyn();
    let chunks = Chunks::new(data.shape(), chunks)?;
    let mut t = Tokenizer::default();
    t.add(data.shape()).add(&chunks);
    for x in data.iter() {
        t.add(x);
    }
    let name = format!("array-{}", t.finish());
    let offsets: Vec<Vec<usize>> = (0..chunks.ndim()).map(|a| chunks.offsets(a)).collect();
    Ok(new_layer::<T>(name, chunks.clone(), &[], false, |idx| {
        let block = data
            .slice_each_axis(|ax| {
                let a = ax.axis.index();
                Slice::from(offsets[a][idx[a]]..offsets[a][idx[a] + 1])
            })
            .to_owned();
        Task::data(Value::new(block))
    }))
}

/// An array of `shape` filled with `value`.
pub fn full<T: Element>(
    shape: &[usize],
    value: T,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array<T>> {
    let chunks = Chunks::new(shape, chunks)?;
    let name = format!("full-{}", tokenize(&(T::DTYPE, value, &chunks)));
    let op = op(Full { value });
    let c = chunks.clone();
    Ok(new_layer::<T>(name, chunks, &[], false, |idx| {
        Task::new(op.clone(), vec![Arg::value(c.block_shape(idx))])
    }))
}

/// An array of zeros.
pub fn zeros<T: Number>(shape: &[usize], chunks: impl Into<ChunkSpec>) -> Result<Array<T>> {
    full(shape, T::ZERO, chunks)
}

/// An array of ones.
pub fn ones<T: Number>(shape: &[usize], chunks: impl Into<ChunkSpec>) -> Result<Array<T>> {
    full(shape, T::ONE, chunks)
}

/// The 1-D array `start, start + step, ...` up to `stop` (excluded), like
/// `numpy.arange`. Errors on a zero (or non-finite) step.
///
/// ```
/// use dask_array::{arange, Collection};
/// let x = arange(0i64, 10, 3, 2).unwrap();
/// # use dask_sync_scheduler::SyncScheduler;
/// assert_eq!(x.compute_with(&SyncScheduler::new()).unwrap().into_raw_vec_and_offset().0, vec![0, 3, 6, 9]);
/// ```
pub fn arange<T: Number>(
    start: T,
    stop: T,
    step: T,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array<T>> {
    let n = T::arange_len(start, stop, step).ok_or_else(|| Error::InvalidArgument {
        op: "arange",
        param: "step",
        value: format!("{step:?}"),
        hint: "use a nonzero, finite step",
    })?;
    let chunks = Chunks::new(&[n], chunks)?;
    let name = format!(
        "arange-{}",
        tokenize(&(T::DTYPE, start, stop, step, &chunks))
    );
    Ok(one_d(name, chunks, op(Arange { start, step })))
}

/// `num` evenly spaced values from `start` to `stop` (both included), like
/// `numpy.linspace`: element `i` is `start + i * (stop - start) / (num - 1)`.
pub fn linspace<T: Float>(
    start: T,
    stop: T,
    num: usize,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array<T>> {
    let chunks = Chunks::new(&[num], chunks)?;
    let step = if num > 1 {
        (stop - start) / T::from_f64((num - 1) as f64)
    } else {
        T::ZERO
    };
    let name = format!(
        "linspace-{}",
        tokenize(&(T::DTYPE, start, stop, num, &chunks))
    );
    Ok(one_d(name, chunks, op(Linspace { start, step })))
}

/// The op of [`full`]: a block of the shape it gets, filled with `value`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Element")]
struct Full<T> {
    value: T,
}

impl<T: Element> Op for Full<T> {
    fn name(&self) -> &str {
        "dask_array::full"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let shape = value_arg::<Vec<usize>>(args, 0)?;
        Ok(Value::new(ArrayD::from_elem(IxDyn(shape), self.value)))
    }
}

/// The 1-D block of elements `offset..offset + len` of `element`.
fn fill_1d<T: Element>(args: &[Value], element: impl Fn(usize) -> T) -> Result<Value, BoxError> {
    let &(offset, len) = value_arg::<(usize, usize)>(args, 0)?;
    let v: Vec<T> = (offset..offset + len).map(element).collect();
    Ok(Value::new(ArrayD::from_shape_vec(IxDyn(&[len]), v)?))
}

/// The op of [`arange`]: element `i` is `start + i * step`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Element")]
struct Arange<T> {
    start: T,
    step: T,
}

impl<T: Number> Op for Arange<T> {
    fn name(&self) -> &str {
        "dask_array::arange"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        fill_1d(args, |i| T::arange_at(self.start, self.step, i))
    }
}

/// The op of [`linspace`]: element `i` is `start + i * step`, in floats.
#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Element")]
struct Linspace<T> {
    start: T,
    step: T,
}

impl<T: Float> Op for Linspace<T> {
    fn name(&self) -> &str {
        "dask_array::linspace"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        fill_1d(args, |i| self.start + T::from_f64(i as f64) * self.step)
    }
}

/// The op of [`from_delayed`]: checks the delayed block's shape.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct CheckShape<T> {
    expected: Vec<usize>,
    #[serde(skip)]
    _t: PhantomData<T>,
}

impl<T: Element> Op for CheckShape<T> {
    fn name(&self) -> &str {
        "dask_array::from_delayed"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let block = chunk_arg::<T>(args, 0)?;
        if block.shape() != self.expected.as_slice() {
            return Err(format!(
                "from_delayed: the delayed array has shape {:?}, but the array was declared with shape {:?}",
                block.shape(),
                self.expected
            )
            .into());
        }
        Ok(args[0].clone())
    }
}

/// The op of [`stack`]: a block with a new axis of length 1.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct ExpandDims<T> {
    axis: usize,
    #[serde(skip)]
    _t: PhantomData<T>,
}

impl<T: Element> Op for ExpandDims<T> {
    fn name(&self) -> &str {
        "dask_array::expand_dims"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let block = chunk_arg::<T>(args, 0)?;
        Ok(Value::new(block.clone().insert_axis(Axis(self.axis))))
    }
}

/// Whether `op` makes a block from literals alone, cheaply: the op of
/// [`full`] (and `zeros`, `ones`), [`arange`] or [`linspace`] for any dtype
/// (see [`crate::optimize`]).
pub(crate) fn is_creation_op(op: &dyn std::any::Any) -> bool {
    macro_rules! any_of {
        ($op:ident: $($t:ty),*) => { false $(|| op.is::<$op<$t>>())* };
    }
    any_of!(Full: f64, f32, i64, i32, bool)
        || any_of!(Arange: f64, f32, i64, i32)
        || any_of!(Linspace: f64, f32)
}

register_each!(Full: f64, f32, i64, i32, bool);
register_each!(Arange: f64, f32, i64, i32);
register_each!(Linspace: f64, f32);
register_each!(CheckShape: f64, f32, i64, i32, bool);
register_each!(ExpandDims: f64, f32, i64, i32, bool);

/// A 1-D array layer of `op`: each block task gets its offset and length and
/// fills its range.
fn one_d<T: Element>(name: String, chunks: Chunks, op: std::sync::Arc<dyn Op>) -> Array<T> {
    let offsets = chunks.offsets(0);
    let c = chunks.clone();
    new_layer::<T>(name, chunks, &[], false, |idx| {
        let arg = (offsets[idx[0]], c.axis(0)[idx[0]]);
        Task::new(op.clone(), vec![Arg::value(arg)])
    })
}

/// A one-block array from a delayed ndarray of the given `shape`. The shape is
/// checked when the block is computed: a delayed value of another shape fails
/// its task with both shapes in the message.
pub fn from_delayed<T: Element>(value: &Delayed<ArrayD<T>>, shape: &[usize]) -> Array<T> {
    let expected = shape.to_vec();
    let name = format!(
        "from_delayed-{}",
        tokenize(&(value.key(), &expected, T::DTYPE))
    );
    let op = op(CheckShape::<T> {
        expected,
        _t: PhantomData,
    });
    let key = value.key().clone();
    new_layer::<T>(name, Chunks::single(shape), &[value.graph()], false, |_| {
        Task::new(op.clone(), vec![Arg::Key(key.clone())])
    })
}

/// The chunks of `arrays` refined to agree on every axis except `skip`, and the
/// arrays rechunked to them.
fn unify<T: Element>(arrays: &[&Array<T>], skip: Option<usize>) -> Vec<Meta> {
    let ndim = arrays[0].ndim();
    let mut common: Vec<Vec<usize>> = arrays[0].chunks().axes().to_vec();
    for a in &arrays[1..] {
        for (k, c) in common.iter_mut().enumerate() {
            if Some(k) != skip {
                *c = refine(c, a.chunks().axis(k));
            }
        }
    }
    arrays
        .iter()
        .map(|a| {
            let target: Vec<Vec<usize>> = (0..ndim)
                .map(|k| {
                    if Some(k) == skip {
                        a.chunks().axis(k).to_vec()
                    } else {
                        common[k].clone()
                    }
                })
                .collect();
            rechunk_meta::<T>(a.meta(), &Chunks::from_axes_unchecked(target))
        })
        .collect()
}

/// Joins arrays along an existing `axis`, like `numpy.concatenate`. Shapes must
/// agree on every other axis; chunks there are unified first.
pub fn concatenate<T: Element>(arrays: &[&Array<T>], axis: usize) -> Result<Array<T>> {
    let first = arrays
        .first()
        .ok_or(Error::NoArrays { op: "concatenate" })?;
    first.check_axis(axis)?;
    for a in &arrays[1..] {
        let (s0, s1) = (first.shape(), a.shape());
        let agree = s0.len() == s1.len()
            && s0
                .iter()
                .zip(s1)
                .enumerate()
                .all(|(k, (x, y))| k == axis || x == y);
        if !agree {
            return Err(Error::ShapeMismatch {
                op: "concatenate",
                left: s0.to_vec(),
                right: s1.to_vec(),
                axis: Some(axis),
                hint: "arrays must have the same number of axes and equal lengths on every axis but the concatenation axis",
            });
        }
    }
    // Arrays of length 0 along the axis add nothing (keep one if all are empty).
    let mut kept: Vec<&Array<T>> = arrays
        .iter()
        .copied()
        .filter(|a| a.shape()[axis] > 0)
        .collect();
    if kept.is_empty() {
        kept.push(first);
    }
    let metas = unify(&kept, Some(axis));
    let mut axes: Vec<Vec<usize>> = metas[0].chunks.axes().to_vec();
    axes[axis] = metas
        .iter()
        .flat_map(|m| m.chunks.axis(axis).iter().copied())
        .collect();
    // Output block j along the axis comes from (array, its block) = owner[j].
    let owner: Vec<(usize, usize)> = metas
        .iter()
        .enumerate()
        .flat_map(|(i, m)| (0..m.chunks.numblocks()[axis]).map(move |b| (i, b)))
        .collect();
    let names: Vec<&str> = metas.iter().map(|m| &*m.name).collect();
    let name = format!("concatenate-{}", tokenize(&(&names, axis)));
    let deps: Vec<_> = metas.iter().map(|m| m.graph.clone()).collect();
    Ok(new_layer::<T>(
        name,
        Chunks::from_axes_unchecked(axes),
        &deps,
        false,
        |idx| {
            let (i, b) = owner[idx[axis]];
            let mut src = idx.to_vec();
            src[axis] = b;
            Task::alias(metas[i].key(&src))
        },
    ))
}

/// Joins arrays of equal shape along a new `axis` (`0..=ndim`), like
/// `numpy.stack`; each input becomes one block along the new axis.
pub fn stack<T: Element>(arrays: &[&Array<T>], axis: usize) -> Result<Array<T>> {
    let first = arrays.first().ok_or(Error::NoArrays { op: "stack" })?;
    if axis > first.ndim() {
        return Err(Error::AxisOutOfRange {
            axis,
            ndim: first.ndim() + 1,
            shape: first.shape().to_vec(),
        });
    }
    for a in &arrays[1..] {
        if a.shape() != first.shape() {
            return Err(Error::ShapeMismatch {
                op: "stack",
                left: first.shape().to_vec(),
                right: a.shape().to_vec(),
                axis: None,
                hint: "every stacked array must have the same shape",
            });
        }
    }
    let metas = unify(arrays, None);
    let mut axes: Vec<Vec<usize>> = metas[0].chunks.axes().to_vec();
    axes.insert(axis, vec![1; arrays.len()]);
    let names: Vec<&str> = metas.iter().map(|m| &*m.name).collect();
    let name = format!("stack-{}", tokenize(&(&names, axis)));
    let deps: Vec<_> = metas.iter().map(|m| m.graph.clone()).collect();
    let op = op(ExpandDims::<T> {
        axis,
        _t: PhantomData,
    });
    Ok(new_layer::<T>(
        name,
        Chunks::from_axes_unchecked(axes),
        &deps,
        false,
        |idx| {
            let mut src = idx.to_vec();
            let i = src.remove(axis);
            Task::new(op.clone(), vec![Arg::Key(metas[i].key(&src))])
        },
    ))
}
