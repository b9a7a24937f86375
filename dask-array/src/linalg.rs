//! Linear algebra: [`Array::matmul`] / [`Array::dot`] for 2-D arrays.

use std::any::TypeId;
use std::marker::PhantomData;
use std::sync::Arc;

use dask_core::{tokenize, Arg, BoxError, Op, Task, Value};
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Ix2};
use serde::{Deserialize, Serialize};

use crate::array::{op, value_arg, Array};
use crate::chunks::{refine, Chunks};
use crate::element::Number;
use crate::error::{Error, Result};
use crate::gemm::Packed;
use crate::rechunk::rechunk_meta;

/// The op of a matmul output block: the sum over `k` of `left[k] . right[k]`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Matmul<T> {
    /// Whether the left and right blocks are read transposed (the `x.T` of a
    /// Gram product, read as a view instead of a transposed copy).
    transposed: [bool; 2],
    /// Whether the output block is symmetric (a diagonal block of a Gram
    /// product): the kernel may skip tiles below the diagonal, and the lower
    /// triangle is then copied from the upper one.
    symmetric: bool,
    #[serde(skip)]
    _t: PhantomData<T>,
}

impl<T: Number> Matmul<T> {
    fn new(transposed: [bool; 2], symmetric: bool) -> Self {
        Matmul {
            transposed,
            symmetric,
            _t: PhantomData,
        }
    }
}

impl<T: Number> Op for Matmul<T> {
    fn name(&self) -> &str {
        "dask_array::matmul"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let lefts = value_arg::<Vec<Value>>(args, 0)?;
        let rights = value_arg::<Vec<Value>>(args, 1)?;
        let &shape = value_arg::<(usize, usize)>(args, 2)?;
        if TypeId::of::<T>() == TypeId::of::<f64>() {
            return self.sum_of_products::<f64>(lefts, rights, shape, f64::add_product);
        }
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            return self.sum_of_products::<f32>(lefts, rights, shape, f32::add_product);
        }
        self.sum_of_products::<T>(lefts, rights, shape, |x, y, mut acc, _| {
            ndarray::linalg::general_mat_mul(T::ONE, &x, &y, T::ONE, &mut acc)
        })
    }
}

impl<T> Matmul<T> {
    /// The `(rows, cols)` block `sum(lefts[k] . rights[k])`, each product
    /// added into one accumulator by `add_product` (`acc += x . y`, its last
    /// argument allowing it to skip tiles below the diagonal).
    fn sum_of_products<E: Number>(
        &self,
        lefts: &[Value],
        rights: &[Value],
        (rows, cols): (usize, usize),
        add_product: impl Fn(ArrayView2<'_, E>, ArrayView2<'_, E>, ArrayViewMut2<'_, E>, bool),
    ) -> Result<Value, BoxError> {
        fn block<E: Number>(v: &Value, transposed: bool) -> Result<ArrayView2<'_, E>, BoxError> {
            let b = v
                .downcast_ref::<ndarray::ArrayD<E>>()?
                .view()
                .into_dimensionality::<Ix2>()?;
            Ok(if transposed { b.reversed_axes() } else { b })
        }
        let symmetric = self.symmetric && rows == cols;
        let mut acc = Array2::<E>::zeros((rows, cols));
        for (x, y) in lefts.iter().zip(rights) {
            let x = block::<E>(x, self.transposed[0])?;
            let y = block::<E>(y, self.transposed[1])?;
            if x.nrows() != rows || y.ncols() != cols || x.ncols() != y.nrows() {
                return Err(format!(
                    "matmul: blocks {:?} and {:?} for an output block of ({rows}, {cols}) (bug in dask-array)",
                    x.shape(),
                    y.shape()
                )
                .into());
            }
            add_product(x, y, acc.view_mut(), symmetric);
        }
        if symmetric {
            for r in 1..rows {
                for c in 0..r {
                    acc[[r, c]] = acc[[c, r]];
                }
            }
        }
        Ok(Value::new(acc.into_dyn()))
    }
}
register_each!(Matmul: f64, f32, i64, i32);

/// A [`Matmul`] task: `op` summing the products of the `lefts` and `rights`
/// blocks into an output block of `shape`.
fn product_task(op: &Arc<dyn Op>, lefts: Vec<Arg>, rights: Vec<Arg>, shape: &[usize]) -> Task {
    Task::new(
        op.clone(),
        vec![
            Arg::List(lefts),
            Arg::List(rights),
            Arg::value((shape[0], shape[1])),
        ],
    )
}

/// The Gram product `x . x.T` (or `x.T . x` when `transposed_first`), which
/// is symmetric: block `(i, j)` above the diagonal multiplies blocks of `x`
/// read as views (one of them transposed; no transposed copies), block
/// `(j, i)` is its transpose, and a diagonal block multiplies only its upper
/// triangle (where the CPU has the packed kernel). About half the work of a
/// general product, as BLAS's `syrk` does for NumPy's `x @ x.T`.
fn gram_product<T: Number>((x, transposed_first): (Array<T>, bool)) -> Array<T> {
    let (outer, inner_axis) = if transposed_first { (1, 0) } else { (0, 1) };
    let m = x.meta();
    let side = m.chunks.axis(outer).to_vec();
    let nk = m.chunks.axis(inner_axis).len();
    let out = Chunks::from_axes_unchecked(vec![side.clone(), side]);
    let name: Arc<str> = format!("gram-{}", tokenize(&(&*m.name, transposed_first))).into();
    let product = |symmetric| {
        op(Matmul::<T>::new(
            [transposed_first, !transposed_first],
            symmetric,
        ))
    };
    let (general, diagonal) = (product(false), product(true));
    let block = |outer_index: usize, k: usize| {
        let idx = if transposed_first {
            [k, outer_index]
        } else {
            [outer_index, k]
        };
        Arg::Key(m.key(&idx))
    };
    let c = out.clone();
    crate::array::new_layer::<T>(
        name.to_string(),
        out,
        std::slice::from_ref(&m.graph),
        false,
        |idx| {
            let (i, j) = (idx[0], idx[1]);
            if i > j {
                let mirror = crate::array::block_key(name.clone(), &[j, i]);
                return crate::slicing::transpose_2d_task::<T>(Arg::Key(mirror));
            }
            let lefts = (0..nk).map(|k| block(i, k)).collect();
            let rights = (0..nk).map(|k| block(j, k)).collect();
            let op = if i == j { &diagonal } else { &general };
            product_task(op, lefts, rights, &c.block_shape(idx))
        },
    )
}

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
        if let Some(gram) = self.gram_operand(other) {
            return Ok(gram_product(gram));
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
        let op = op(Matmul::<T>::new([false, false], false));
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
                product_task(&op, lefts, rights, &c.block_shape(idx))
            },
        ))
    }

    /// `Some((x, transposed_first))` when `self . other` is a Gram product:
    /// `x . x.T` (`self` is `x`) or `x.T . x` (`other` is `x`), recognised by
    /// the name [`Array::t`] gives `x`'s transpose.
    fn gram_operand(&self, other: &Array<T>) -> Option<(Array<T>, bool)> {
        let t_of = |x: &Array<T>| crate::slicing::transpose_name(x.name(), &[1, 0]);
        if other.name() == t_of(self) {
            Some((self.clone(), false))
        } else if self.name() == t_of(other) {
            Some((other.clone(), true))
        } else {
            None
        }
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
