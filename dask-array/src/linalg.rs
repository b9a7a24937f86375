//! Linear algebra: [`Array::matmul`] / [`Array::dot`] for 2-D arrays.

use std::marker::PhantomData;

use dask_core::{tokenize, Arg, BoxError, Op, Task, Value};
use ndarray::{Array2, Ix2};
use serde::{Deserialize, Serialize};

use crate::array::{op, value_arg, Array};
use crate::chunks::{refine, Chunks};
use crate::element::Number;
use crate::error::{Error, Result};
use crate::rechunk::rechunk_meta;

/// The op of a matmul output block: the sum over `k` of `left[k] . right[k]`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Matmul<T>(#[serde(skip)] PhantomData<T>);

impl<T: Number> Op for Matmul<T> {
    fn name(&self) -> &str {
        "dask_array::matmul"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let lefts = value_arg::<Vec<Value>>(args, 0)?;
        let rights = value_arg::<Vec<Value>>(args, 1)?;
        let &(rows, cols) = value_arg::<(usize, usize)>(args, 2)?;
        let mut acc = Array2::<T>::zeros((rows, cols));
        for (x, y) in lefts.iter().zip(rights) {
            let x = x
                .downcast_ref::<ndarray::ArrayD<T>>()?
                .view()
                .into_dimensionality::<Ix2>()?;
            let y = y
                .downcast_ref::<ndarray::ArrayD<T>>()?
                .view()
                .into_dimensionality::<Ix2>()?;
            if x.nrows() != rows || y.ncols() != cols || x.ncols() != y.nrows() {
                return Err(format!(
                    "matmul: blocks {:?} and {:?} for an output block of ({rows}, {cols}) (bug in dask-array)",
                    x.shape(),
                    y.shape()
                )
                .into());
            }
            ndarray::linalg::general_mat_mul(T::ONE, &x, &y, T::ONE, &mut acc);
        }
        Ok(Value::new(acc.into_dyn()))
    }
}
register_each!(Matmul: f64, f32, i64, i32);

impl<T: Number> Array<T> {
    /// The matrix product of two 2-D arrays, like `numpy.matmul`.
    ///
    /// The inner axis chunks of both operands are unified first; output block
    /// `(i, j)` is one task summing the products of row block `i` of `self` and
    /// column block `j` of `other`. Errors unless both are 2-D with equal inner
    /// lengths.
    ///
    /// ```
    /// use dask_array::{from_array, Collection};
    /// let a = ndarray::arr2(&[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]);
    /// let x = from_array(a.clone(), 2).unwrap();
    /// let y = x.matmul(&x.t()).unwrap();
    /// # use dask_sync_scheduler::SyncScheduler;
    /// assert_eq!(y.compute_with(&SyncScheduler::new()).unwrap(), a.dot(&a.t()).into_dyn());
    /// ```
    pub fn matmul(&self, other: &Array<T>) -> Result<Array<T>> {
        let (l, r) = (self.shape(), other.shape());
        let err = |hint| Error::MatmulShapes {
            left: l.to_vec(),
            right: r.to_vec(),
            hint,
        };
        if l.len() != 2 || r.len() != 2 {
            return Err(err(
                "both operands must be 2-D (reshape them, or use elementwise `*`)",
            ));
        }
        if l[1] != r[0] {
            return Err(err(
                "the left operand's columns must equal the right operand's rows",
            ));
        }
        let inner = refine(self.chunks().axis(1), other.chunks().axis(0));
        let a = rechunk_meta::<T>(
            self.meta(),
            &Chunks::from_axes_unchecked(vec![self.chunks().axis(0).to_vec(), inner.clone()]),
        );
        let b = rechunk_meta::<T>(
            other.meta(),
            &Chunks::from_axes_unchecked(vec![inner.clone(), other.chunks().axis(1).to_vec()]),
        );
        let out = Chunks::from_axes_unchecked(vec![
            self.chunks().axis(0).to_vec(),
            other.chunks().axis(1).to_vec(),
        ]);
        let name = format!("matmul-{}", tokenize(&(&*a.name, &*b.name)));
        let nk = inner.len();
        let op = op(Matmul::<T>(PhantomData));
        let deps = [a.graph.clone(), b.graph.clone()];
        let c = out.clone();
        Ok(crate::array::new_layer::<T>(
            name,
            out,
            &deps,
            false,
            |idx| {
                let (i, j) = (idx[0], idx[1]);
                let lefts = (0..nk).map(|k| Arg::Key(a.key(&[i, k]))).collect();
                let rights = (0..nk).map(|k| Arg::Key(b.key(&[k, j]))).collect();
                let shape = c.block_shape(idx);
                Task::new(
                    op.clone(),
                    vec![
                        Arg::List(lefts),
                        Arg::List(rights),
                        Arg::value((shape[0], shape[1])),
                    ],
                )
            },
        ))
    }

    /// The matrix product of two 2-D arrays; see [`Array::matmul`].
    pub fn dot(&self, other: &Array<T>) -> Result<Array<T>> {
        self.matmul(other)
    }

    /// The contraction of 2-D arrays over axis `axes.0` of `self` and axis
    /// `axes.1` of `other`, like `numpy.tensordot(a, b, axes=([i], [j]))`:
    /// the result's axes are the remaining axis of `self`, then that of
    /// `other`. Errors unless both are 2-D, the axes are in range and the
    /// contracted lengths agree.
    pub fn tensordot(&self, other: &Array<T>, axes: (usize, usize)) -> Result<Array<T>> {
        if self.ndim() != 2 || other.ndim() != 2 {
            return Err(Error::MatmulShapes {
                left: self.shape().to_vec(),
                right: other.shape().to_vec(),
                hint: "tensordot supports 2-D operands only for now",
            });
        }
        self.check_axis(axes.0)?;
        other.check_axis(axes.1)?;
        let left = if axes.0 == 1 { self.clone() } else { self.t() };
        let right = if axes.1 == 0 {
            other.clone()
        } else {
            other.t()
        };
        left.matmul(&right)
    }
}
