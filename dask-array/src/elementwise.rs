//! Elementwise operations with NumPy broadcasting: arithmetic (`+ - * /`),
//! comparisons, unary math, [`Array::map`], [`Array::zip_with`], [`blockwise`]
//! and [`Array::map_blocks`].
//!
//! Fusion: every elementwise layer is marked fusable, and the next elementwise
//! operation inlines its tasks (as nested tasks) instead of referencing their
//! keys, so a chain like `((x + 1) * 2).sqrt()` is one task per block on top of
//! `x`. An input is inlined only when each of its blocks is read exactly once
//! (same block grid, not repeated among the inputs), so nothing is computed twice.

use std::marker::PhantomData;
use std::ops::{Add, Div, Mul, Neg, Sub};
use std::sync::Arc;

use dask_core::{tokenize, tokenize::unique_token, Op, Task, Value};
use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::array::{block_op, chunk_arg, new_layer, op, Array, Meta, Source};
use crate::chunks::{refine, Chunks};
use crate::element::{CastTo, Element, Float, Number};
use crate::error::{Error, Result};
use crate::kernels::{
    broadcast_view, co_shape, Arith, ArithKernel, Astype, Cmp, CmpKernel, CmpScalar, FloatFn,
    FloatKernel, Logical, MapOp, Not, NumFn, NumKernel, ScalarArith, ToF64, ZipOp,
};
use crate::rechunk::rechunk_meta;

/// One operand of an elementwise operation, with a way to rechunk it.
pub(crate) struct In<'a> {
    pub meta: &'a Meta,
    pub rechunk: fn(&Meta, &Chunks) -> Meta,
}

impl<T: Element> Array<T> {
    pub(crate) fn input(&self) -> In<'_> {
        In {
            meta: self.meta(),
            rechunk: rechunk_meta::<T>,
        }
    }
}

/// The shape NumPy's broadcasting gives `a` and `b`.
///
/// ```
/// use dask_array::broadcast_shapes;
/// assert_eq!(broadcast_shapes(&[3, 1], &[4]).unwrap(), vec![3, 4]);
/// let err = broadcast_shapes(&[3, 4], &[5]).unwrap_err();
/// assert!(err.to_string().starts_with("cannot broadcast shapes (3, 4) and (5,)"));
/// ```
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for (i, o) in out.iter_mut().enumerate() {
        let da = (i + a.len()).checked_sub(n).map_or(1, |j| a[j]);
        let db = (i + b.len()).checked_sub(n).map_or(1, |j| b[j]);
        *o = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::Broadcast {
                left: a.to_vec(),
                right: b.to_vec(),
            });
        };
    }
    Ok(out)
}

/// Builds an elementwise layer over broadcast, chunk-aligned inputs. `op` gets
/// the input blocks (broadcastable against each other) and returns the output
/// block.
pub(crate) fn elementwise<R: Element>(
    opname: &str,
    params: &str,
    inputs: &[In<'_>],
    op: Arc<dyn Op>,
) -> Result<Array<R>> {
    let mut shape: Vec<usize> = Vec::new();
    for input in inputs {
        shape = broadcast_shapes(&shape, &input.meta.shape())?;
    }
    let ndim = shape.len();
    // Output chunks: the common refinement of every non-broadcast operand axis.
    let mut axes: Vec<Vec<usize>> = Vec::with_capacity(ndim);
    for (j, &dim) in shape.iter().enumerate() {
        let mut chunks: Option<Vec<usize>> = None;
        for input in inputs {
            let m = input.meta;
            if let Some(k) = (j + m.ndim()).checked_sub(ndim) {
                if m.chunks.shape()[k] == dim {
                    let c = m.chunks.axis(k);
                    chunks = Some(match chunks {
                        None => c.to_vec(),
                        Some(prev) => refine(&prev, c),
                    });
                }
            }
        }
        axes.push(chunks.unwrap_or_else(|| vec![dim]));
    }
    let chunks = Chunks::from_axes_unchecked(axes);
    let numblocks = chunks.numblocks();
    // Rechunk operands to the output chunks (broadcast axes keep one block).
    let metas: Vec<Meta> = inputs
        .iter()
        .map(|input| {
            let m = input.meta;
            let off = ndim - m.ndim();
            let target: Vec<Vec<usize>> = m
                .shape()
                .iter()
                .enumerate()
                .map(|(k, &d)| {
                    if d == shape[k + off] {
                        chunks.axis(k + off).to_vec()
                    } else {
                        vec![d]
                    }
                })
                .collect();
            (input.rechunk)(m, &Chunks::from_axes_unchecked(target))
        })
        .collect();
    let names: Vec<&str> = metas.iter().map(|m| &*m.name).collect();
    let sources: Vec<Source<'_>> = metas
        .iter()
        .map(|m| {
            let once = names.iter().filter(|&&n| n == &*m.name).count() == 1;
            Source::new(
                m,
                once && m.ndim() == ndim && m.chunks.numblocks() == numblocks,
            )
        })
        .collect();
    let name = format!("{opname}-{}", tokenize(&(opname, params, &names, &shape)));
    let deps: Vec<_> = sources.iter().map(Source::graph).collect();
    let shapes: Vec<Vec<usize>> = metas.iter().map(Meta::shape).collect();
    Ok(new_layer::<R>(name, chunks, &deps, true, |idx| {
        let args = sources
            .iter()
            .zip(&shapes)
            .map(|(s, sh)| {
                let off = ndim - sh.len();
                let i: Vec<usize> = sh
                    .iter()
                    .enumerate()
                    .map(|(k, &d)| if d == shape[k + off] { idx[k + off] } else { 0 })
                    .collect();
                s.arg(&i)
            })
            .collect();
        Task::new(op.clone(), args)
    }))
}

/// An elementwise unary layer: `op` applied to every block.
pub(crate) fn unary<T: Element, R: Element>(
    x: &Array<T>,
    opname: &str,
    params: &str,
    op: Arc<dyn Op>,
) -> Array<R> {
    let m = x.meta();
    let source = Source::new(m, true);
    let name = format!("{opname}-{}", tokenize(&(opname, params, &*m.name)));
    new_layer::<R>(name, m.chunks.clone(), &[source.graph()], true, |idx| {
        Task::new(op.clone(), vec![source.arg(idx)])
    })
}

/// An elementwise unary layer of a registered kernel.
pub(crate) fn unary_kernel<K: crate::kernels::UnaryKernel>(
    x: &Array<K::In>,
    opname: &str,
    params: &str,
    kernel: K,
) -> Array<K::Out> {
    unary(x, opname, params, op(MapOp(kernel)))
}

/// An elementwise unary layer of a closure (in-process schedulers only).
fn unary_closure<T: Element, R: Element>(
    x: &Array<T>,
    opname: &str,
    params: &str,
    f: impl Fn(T) -> R + Send + Sync + 'static,
) -> Array<R> {
    let op = block_op(opname, move |args| {
        Ok(Value::new(chunk_arg::<T>(args, 0)?.mapv(&f)))
    });
    unary(x, opname, params, op)
}

/// An elementwise binary layer with broadcasting, of a registered kernel.
pub(crate) fn binary<K: crate::kernels::BinaryKernel>(
    a: &Array<K::A>,
    b: &Array<K::B>,
    opname: &str,
    params: &str,
    kernel: K,
) -> Result<Array<K::Out>> {
    elementwise(opname, params, &[a.input(), b.input()], op(ZipOp(kernel)))
}

fn arith<T: Number>(op: Arith) -> ArithKernel<T> {
    ArithKernel {
        op,
        _t: PhantomData,
    }
}

fn cmp<T: Element>(cmp: Cmp) -> CmpKernel<T> {
    CmpKernel {
        cmp,
        _t: PhantomData,
    }
}

fn num<T: Number>(f: NumFn) -> NumKernel<T> {
    NumKernel { f, _t: PhantomData }
}

/// Elementwise `f` over any number of arrays of one type, broadcast against each
/// other (the elementwise form of dask's `blockwise`): the output element at
/// each position is `f` of the operands' elements there.
///
/// ```
/// use dask_array::{blockwise, from_array, Collection};
/// let a = from_array(ndarray::arr1(&[1.0, 2.0, 3.0]), 2).unwrap();
/// let b = from_array(ndarray::arr2(&[[10.0], [20.0]]), 1).unwrap();
/// let y = blockwise(&[&a, &b, &a], |v: &[f64]| v[0] * v[1] + v[2]).unwrap();
/// # use dask_sync_scheduler::SyncScheduler;
/// let out = y.compute_with(&SyncScheduler::new()).unwrap();
/// assert_eq!(out.shape(), &[2, 3]);
/// assert_eq!(out[[1, 2]], 63.0);
/// ```
pub fn blockwise<T: Element, R: Element>(
    inputs: &[&Array<T>],
    f: impl Fn(&[T]) -> R + Send + Sync + 'static,
) -> Result<Array<R>> {
    if inputs.is_empty() {
        return Err(Error::NoArrays { op: "blockwise" });
    }
    let ins: Vec<In<'_>> = inputs.iter().map(|a| a.input()).collect();
    let n = inputs.len();
    let op = block_op("blockwise", move |args| {
        let blocks: Vec<&ArrayD<T>> = (0..n)
            .map(|i| chunk_arg::<T>(args, i))
            .collect::<Result<_, _>>()?;
        let shapes: Vec<&[usize]> = blocks.iter().map(|b| b.shape()).collect();
        let shape = co_shape(&shapes);
        let views: Vec<ArrayViewD<'_, T>> = blocks
            .iter()
            .map(|b| broadcast_view(b, &shape))
            .collect::<Result<_, _>>()?;
        let mut iters: Vec<_> = views.iter().map(|v| v.iter()).collect();
        let size: usize = shape.iter().product();
        let mut buf = Vec::with_capacity(n);
        let mut out = Vec::with_capacity(size);
        for _ in 0..size {
            buf.clear();
            for it in iters.iter_mut() {
                buf.push(*it.next().ok_or("operand shorter than the block")?);
            }
            out.push(f(&buf));
        }
        Ok(Value::new(ArrayD::from_shape_vec(IxDyn(&shape), out)?))
    });
    elementwise("blockwise", &unique_token(), &ins, op)
}

impl<T: Element> Array<T> {
    /// The elements converted to `U` (NumPy's `astype`), with Rust's `as`
    /// semantics; see [`CastTo`].
    ///
    /// ```
    /// use dask_array::{from_array, Collection};
    /// let x = from_array(ndarray::arr1(&[1.9f64, -1.9, 3.0]), 2).unwrap();
    /// # use dask_sync_scheduler::SyncScheduler;
    /// let y = x.astype::<i32>().compute_with(&SyncScheduler::new()).unwrap();
    /// assert_eq!(y.into_raw_vec_and_offset().0, vec![1, -1, 3]);
    /// ```
    pub fn astype<U: Element>(&self) -> Array<U>
    where
        T: CastTo<U>,
    {
        unary_kernel(self, "astype", U::DTYPE, Astype::<T, U>(PhantomData))
    }

    /// `f` applied to every element (a closure: its layer gets a unique name).
    pub fn map<R: Element>(&self, f: impl Fn(T) -> R + Send + Sync + 'static) -> Array<R> {
        unary_closure(self, "map", &unique_token(), f)
    }

    /// `f` applied to the elements of `self` and `other` at each position, with
    /// broadcasting. Errors if the shapes do not broadcast.
    pub fn zip_with<U: Element, R: Element>(
        &self,
        other: &Array<U>,
        f: impl Fn(T, U) -> R + Send + Sync + 'static,
    ) -> Result<Array<R>> {
        let op = block_op("zip_with", move |args| {
            let (x, y) = (chunk_arg::<T>(args, 0)?, chunk_arg::<U>(args, 1)?);
            let shape = co_shape(&[x.shape(), y.shape()]);
            let (xv, yv) = (broadcast_view(x, &shape)?, broadcast_view(y, &shape)?);
            Ok(Value::new(
                ndarray::Zip::from(xv).and(yv).map_collect(|&p, &q| f(p, q)),
            ))
        });
        elementwise(
            "zip_with",
            &unique_token(),
            &[self.input(), other.input()],
            op,
        )
    }

    /// `f` applied to every block. `f` must return a block of the same shape as
    /// it got; a block of another shape fails the task with an error naming both
    /// shapes.
    pub fn map_blocks<R: Element>(
        &self,
        f: impl Fn(&ArrayD<T>) -> ArrayD<R> + Send + Sync + 'static,
    ) -> Array<R> {
        let m = self.meta();
        let source = Source::new(m, true);
        let name = format!("map_blocks-{}", unique_token());
        let op = block_op("map_blocks", move |args| {
            let block = chunk_arg::<T>(args, 0)?;
            let out = f(block);
            if out.shape() != block.shape() {
                return Err(format!(
                    "map_blocks: the function returned a block of shape {:?} for a block of shape {:?}; it must keep the shape",
                    out.shape(),
                    block.shape()
                )
                .into());
            }
            Ok(Value::new(out))
        });
        new_layer::<R>(name, m.chunks.clone(), &[source.graph()], true, |idx| {
            Task::new(op.clone(), vec![source.arg(idx)])
        })
    }
}

/// The right-hand side of a comparison: an array or a scalar.
pub enum Operand<'a, T: Element> {
    /// An array, broadcast against the left side.
    Array(&'a Array<T>),
    /// One value compared with every element.
    Scalar(T),
}

impl<'a, T: Element> From<&'a Array<T>> for Operand<'a, T> {
    fn from(a: &'a Array<T>) -> Self {
        Operand::Array(a)
    }
}

macro_rules! scalar_operand {
    ($($t:ty),*) => {$(
        impl<'a> From<$t> for Operand<'a, $t> {
            fn from(v: $t) -> Self {
                Operand::Scalar(v)
            }
        }
    )*};
}
scalar_operand!(f64, f32, i64, i32, bool);

macro_rules! comparisons {
    ($($method:ident => $name:literal, $cmp:ident, $op:tt;)*) => {
        impl<T: Element> Array<T> {$(
            #[doc = concat!("Elementwise `self ", stringify!($op), " other` (an array, broadcast, or a scalar), as `Array<bool>`.")]
            pub fn $method<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<Array<bool>> {
                match other.into() {
                    Operand::Array(b) => binary(self, b, $name, "", cmp::<T>(Cmp::$cmp)),
                    Operand::Scalar(s) => Ok(unary_kernel(
                        self,
                        concat!($name, "_scalar"),
                        &tokenize(&s),
                        CmpScalar { cmp: Cmp::$cmp, scalar: s },
                    )),
                }
            }
        )*}
    };
}
comparisons! {
    greater => "greater", Greater, >;
    greater_equal => "greater_equal", GreaterEqual, >=;
    less => "less", Less, <;
    less_equal => "less_equal", LessEqual, <=;
    equal => "equal", Equal, ==;
    not_equal => "not_equal", NotEqual, !=;
}

impl Array<bool> {
    /// Elementwise logical and, with broadcasting.
    pub fn logical_and(&self, other: &Array<bool>) -> Result<Array<bool>> {
        binary(self, other, "logical_and", "", Logical { and: true })
    }
    /// Elementwise logical or, with broadcasting.
    pub fn logical_or(&self, other: &Array<bool>) -> Result<Array<bool>> {
        binary(self, other, "logical_or", "", Logical { and: false })
    }
    /// Elementwise logical not.
    pub fn logical_not(&self) -> Array<bool> {
        unary_kernel(self, "logical_not", "", Not)
    }
}

macro_rules! float_unary {
    ($($method:ident => $f:ident),*) => {
        impl<T: Float> Array<T> {$(
            #[doc = concat!("Elementwise `", stringify!($method), "`.")]
            pub fn $method(&self) -> Array<T> {
                unary_kernel(self, stringify!($method), "", FloatKernel { f: FloatFn::$f })
            }
        )*}
    };
}
float_unary!(sqrt => Sqrt, exp => Exp, ln => Ln, sin => Sin, cos => Cos, tan => Tan,
    tanh => Tanh, floor => Floor, ceil => Ceil);

impl<T: Float> Array<T> {
    /// Elementwise `x^e`.
    pub fn powf(&self, e: T) -> Array<T> {
        unary_kernel(
            self,
            "powf",
            &tokenize(&e),
            FloatKernel {
                f: FloatFn::Powf(e),
            },
        )
    }
}

impl<T: Number> Array<T> {
    /// Elementwise absolute value.
    pub fn abs(&self) -> Array<T> {
        unary_kernel(self, "abs", "", num::<T>(NumFn::Abs))
    }

    /// Elementwise square.
    pub fn square(&self) -> Array<T> {
        unary_kernel(self, "square", "", num::<T>(NumFn::Square))
    }

    /// The elements converted to `f64`.
    pub fn to_f64(&self) -> Array<f64> {
        unary_kernel(self, "to_f64", "", ToF64::<T>(PhantomData))
    }
}

impl<T: Number> Neg for &Array<T> {
    type Output = Array<T>;
    fn neg(self) -> Array<T> {
        unary_kernel(self, "neg", "", num::<T>(NumFn::Neg))
    }
}

impl<T: Number> Neg for Array<T> {
    type Output = Array<T>;
    fn neg(self) -> Array<T> {
        -&self
    }
}

macro_rules! arithmetic {
    ($($Trait:ident $method:ident $name:literal $kind:ident;)*) => {$(
        impl<T: Number> $Trait<&Array<T>> for &Array<T> {
            type Output = Result<Array<T>>;
            fn $method(self, rhs: &Array<T>) -> Result<Array<T>> {
                binary(self, rhs, $name, "", arith::<T>(Arith::$kind))
            }
        }
        impl<T: Number> $Trait<Array<T>> for &Array<T> {
            type Output = Result<Array<T>>;
            fn $method(self, rhs: Array<T>) -> Result<Array<T>> {
                self.$method(&rhs)
            }
        }
        impl<T: Number> $Trait<&Array<T>> for Array<T> {
            type Output = Result<Array<T>>;
            fn $method(self, rhs: &Array<T>) -> Result<Array<T>> {
                (&self).$method(rhs)
            }
        }
        impl<T: Number> $Trait<Array<T>> for Array<T> {
            type Output = Result<Array<T>>;
            fn $method(self, rhs: Array<T>) -> Result<Array<T>> {
                (&self).$method(&rhs)
            }
        }
        impl<T: Number> $Trait<T> for &Array<T> {
            type Output = Result<Array<T>>;
            fn $method(self, rhs: T) -> Result<Array<T>> {
                let kernel = ScalarArith { op: Arith::$kind, scalar: rhs, scalar_left: false };
                Ok(unary_kernel(self, concat!($name, "_scalar"), &tokenize(&rhs), kernel))
            }
        }
        impl<T: Number> $Trait<T> for Array<T> {
            type Output = Result<Array<T>>;
            fn $method(self, rhs: T) -> Result<Array<T>> {
                (&self).$method(rhs)
            }
        }
        impl<T: Number> $Trait<&Array<T>> for Result<Array<T>> {
            type Output = Result<Array<T>>;
            fn $method(self, rhs: &Array<T>) -> Result<Array<T>> {
                (&self?).$method(rhs)
            }
        }
        impl<T: Number> $Trait<Array<T>> for Result<Array<T>> {
            type Output = Result<Array<T>>;
            fn $method(self, rhs: Array<T>) -> Result<Array<T>> {
                (&self?).$method(&rhs)
            }
        }
        impl<T: Number> $Trait<Result<Array<T>>> for &Array<T> {
            type Output = Result<Array<T>>;
            fn $method(self, rhs: Result<Array<T>>) -> Result<Array<T>> {
                self.$method(&rhs?)
            }
        }
        impl<T: Number> $Trait<Result<Array<T>>> for Array<T> {
            type Output = Result<Array<T>>;
            fn $method(self, rhs: Result<Array<T>>) -> Result<Array<T>> {
                (&self).$method(&rhs?)
            }
        }
    )*};
}
arithmetic! {
    Add add "add" Add;
    Sub sub "sub" Sub;
    Mul mul "mul" Mul;
    Div div "div" Div;
}

macro_rules! scalar_lhs {
    ($($t:ty),*) => {$(
        scalar_lhs!(@one $t, Add add "radd" Add);
        scalar_lhs!(@one $t, Sub sub "rsub" Sub);
        scalar_lhs!(@one $t, Mul mul "rmul" Mul);
        scalar_lhs!(@one $t, Div div "rdiv" Div);
    )*};
    (@one $t:ty, $Trait:ident $method:ident $name:literal $kind:ident) => {
        impl $Trait<&Array<$t>> for $t {
            type Output = Result<Array<$t>>;
            fn $method(self, rhs: &Array<$t>) -> Result<Array<$t>> {
                let kernel = ScalarArith { op: Arith::$kind, scalar: self, scalar_left: true };
                Ok(unary_kernel(rhs, $name, &tokenize(&self), kernel))
            }
        }
        impl $Trait<Array<$t>> for $t {
            type Output = Result<Array<$t>>;
            fn $method(self, rhs: Array<$t>) -> Result<Array<$t>> {
                self.$method(&rhs)
            }
        }
    };
}
scalar_lhs!(f64, f32, i64, i32);
