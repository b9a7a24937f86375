//! [`Array::reshape`]: the same elements (in C order) under another shape.

use std::marker::PhantomData;

use dask_core::{tokenize, Arg, BoxError, Op, Task, Value};
use ndarray::IxDyn;
use serde::{Deserialize, Serialize};

use crate::array::{chunk_arg, new_layer, op, value_arg, Array, Source};
use crate::chunks::Chunks;
use crate::element::Element;
use crate::error::{Error, Result};
use crate::rechunk::rechunk_meta;

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Blocks of `rows` rows along axis 0 and whole along the other axes.
fn row_chunks(shape: &[usize], rows: usize) -> Chunks {
    let mut axes: Vec<Vec<usize>> = shape.iter().map(|&d| vec![d]).collect();
    if let Some(first) = axes.first_mut() {
        let dim = shape[0];
        let mut v = vec![rows; dim / rows];
        if !dim.is_multiple_of(rows) {
            v.push(dim % rows);
        }
        *first = v;
    }
    Chunks::from_axes_unchecked(axes)
}

/// The op of [`Array::reshape`]: a block's elements (C order) under the shape it gets.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Reshape<T>(#[serde(skip)] PhantomData<T>);

impl<T: Element> Op for Reshape<T> {
    fn name(&self) -> &str {
        "dask_array::reshape"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let block = chunk_arg::<T>(args, 0)?;
        let shape = value_arg::<Vec<usize>>(args, 1)?;
        let flat = block.as_standard_layout().into_owned();
        Ok(Value::new(flat.into_shape_with_order(IxDyn(shape))?))
    }
}
register_each!(Reshape: f64, f32, i64, i32, bool);

impl<T: Element> Array<T> {
    /// The same elements, in C (row-major) order, under `shape`, like
    /// `numpy.reshape`. Errors unless `shape` has as many elements.
    ///
    /// Blocks are made of whole rows: the array is first rechunked along its
    /// first axis only (other axes whole), with blocks whose sizes are multiples
    /// of both row lengths, so each input block becomes exactly one output block.
    /// That is always possible, but when the two row lengths share few factors
    /// the blocks grow (up to the whole array); rechunk the result if needed.
    ///
    /// ```
    /// use dask_array::{arange, Collection};
    /// let x = arange(0i64, 12, 1, 4).unwrap();
    /// let y = x.reshape(&[3, 4]).unwrap();
    /// assert_eq!(y.shape(), &[3, 4]);
    /// # use dask_sync_scheduler::SyncScheduler;
    /// let a = ndarray::Array::from_iter(0i64..12).into_shape_with_order((3, 4)).unwrap();
    /// assert_eq!(y.compute_with(&SyncScheduler::new()).unwrap(), a.into_dyn());
    /// ```
    pub fn reshape(&self, shape: &[usize]) -> Result<Array<T>> {
        let size: usize = shape.iter().product();
        if size != self.size() {
            return Err(Error::ShapeMismatch {
                op: "reshape",
                left: self.shape().to_vec(),
                right: shape.to_vec(),
                axis: None,
                hint: "the new shape must have the same number of elements",
            });
        }
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let m = self.meta();
        let (input, output) = if size == 0 || self.ndim() == 0 || shape.is_empty() {
            (Chunks::single(self.shape()), Chunks::single(shape))
        } else {
            let p: usize = self.shape()[1..].iter().product();
            let q: usize = shape[1..].iter().product();
            let l = p / gcd(p, q) * q;
            let biggest = m
                .chunks
                .block_indices()
                .iter()
                .map(|i| m.chunks.block_shape(i).iter().product::<usize>())
                .max()
                .unwrap_or(1);
            let flat = biggest.div_ceil(l).max(1) * l;
            let flat = flat.min(size);
            (
                row_chunks(self.shape(), flat / p),
                row_chunks(shape, flat / q),
            )
        };
        let rechunked = rechunk_meta::<T>(m, &input);
        let source = Source::new(&rechunked, true);
        let name = format!("reshape-{}", tokenize(&(&*m.name, shape)));
        let op = op(Reshape::<T>(PhantomData));
        let ndim_in = self.ndim();
        let out = output.clone();
        Ok(new_layer::<T>(
            name,
            output,
            &[source.graph()],
            true,
            |idx| {
                let mut src = vec![0; ndim_in];
                if let (Some(s), Some(&i)) = (src.first_mut(), idx.first()) {
                    *s = i;
                }
                Task::new(
                    op.clone(),
                    vec![source.arg(&src), Arg::value(out.block_shape(idx))],
                )
            },
        ))
    }
}
