//! The registered ops of elementwise layers: serializable kernels that worker
//! processes rebuild from their tag and parameters.
//!
//! A kernel names its function as data (an enum and its scalars), not as a
//! closure: [`MapOp`] applies a [`UnaryKernel`] to a block, [`ZipOp`] a
//! [`BinaryKernel`] to two broadcast blocks. A fused chain of elementwise
//! layers is a tree of nested tasks whose ops are all kernels, so the whole
//! fused expression travels to a worker process as data. The function is
//! chosen once per block (a `match` outside the element loop), so each loop is
//! a plain ndarray `mapv` / `Zip` the compiler vectorizes.

use std::marker::PhantomData;

use dask_core::{BoxError, Op, Value};
use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::array::chunk_arg;
use crate::element::{CastTo, Element, Float, Number};

/// A function of one block, elementwise.
pub(crate) trait UnaryKernel: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The input element type.
    type In: Element;
    /// The output element type.
    type Out: Element;
    /// The op's name in diagnostics.
    fn name(&self) -> &'static str;
    /// The output block.
    fn apply(&self, block: &ArrayD<Self::In>) -> ArrayD<Self::Out>;
}

/// A function of two blocks of one shape, elementwise.
pub(crate) trait BinaryKernel: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The left element type.
    type A: Element;
    /// The right element type.
    type B: Element;
    /// The output element type.
    type Out: Element;
    /// The op's name in diagnostics.
    fn name(&self) -> &'static str;
    /// The output block from two views of equal shape.
    fn apply(&self, a: ArrayViewD<'_, Self::A>, b: ArrayViewD<'_, Self::B>) -> ArrayD<Self::Out>;
}

/// The op applying a [`UnaryKernel`] to its one block argument.
#[derive(Serialize, Deserialize)]
pub(crate) struct MapOp<K>(pub K);

impl<K: UnaryKernel> Op for MapOp<K> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        Ok(Value::new(self.0.apply(chunk_arg::<K::In>(args, 0)?)))
    }
}

/// The op applying a [`BinaryKernel`] to two blocks, broadcast against each other.
#[derive(Serialize, Deserialize)]
pub(crate) struct ZipOp<K>(pub K);

impl<K: BinaryKernel> Op for ZipOp<K> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let (x, y) = (chunk_arg::<K::A>(args, 0)?, chunk_arg::<K::B>(args, 1)?);
        Ok(Value::new(zip_views(&self.0, x.view(), y.view())?))
    }
}

/// `kernel` applied to two views broadcast against each other.
pub(crate) fn zip_views<K: BinaryKernel>(
    kernel: &K,
    x: ArrayViewD<'_, K::A>,
    y: ArrayViewD<'_, K::B>,
) -> Result<ArrayD<K::Out>, BoxError> {
    let shape = co_shape(&[x.shape(), y.shape()]);
    Ok(kernel.apply(broadcast_view(&x, &shape)?, broadcast_view(&y, &shape)?))
}

/// Right-aligned co-broadcast shape of block shapes known to be compatible.
pub(crate) fn co_shape(shapes: &[&[usize]]) -> Vec<usize> {
    let n = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    (0..n)
        .map(|i| {
            shapes
                .iter()
                .filter_map(|s| (i + s.len()).checked_sub(n).map(|j| s[j]))
                .find(|&d| d != 1)
                .unwrap_or(1)
        })
        .collect()
}

/// `a` (an array or a view) broadcast to `shape`, or an error naming both
/// shapes.
pub(crate) fn broadcast_view<'a, S: ndarray::Data>(
    a: &'a ndarray::ArrayBase<S, IxDyn>,
    shape: &[usize],
) -> Result<ArrayViewD<'a, S::Elem>, BoxError> {
    a.broadcast(IxDyn(shape)).ok_or_else(|| -> BoxError {
        format!(
            "block of shape {:?} does not broadcast to {:?} (bug in dask-array)",
            a.shape(),
            shape
        )
        .into()
    })
}

/// `+ - * /`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

impl Arith {
    fn name(self) -> &'static str {
        match self {
            Arith::Add => "dask_array::add",
            Arith::Sub => "dask_array::sub",
            Arith::Mul => "dask_array::mul",
            Arith::Div => "dask_array::div",
        }
    }
}

/// `> >= < <= == !=`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) enum Cmp {
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    Equal,
    NotEqual,
}

impl Cmp {
    fn name(self) -> &'static str {
        match self {
            Cmp::Greater => "dask_array::greater",
            Cmp::GreaterEqual => "dask_array::greater_equal",
            Cmp::Less => "dask_array::less",
            Cmp::LessEqual => "dask_array::less_equal",
            Cmp::Equal => "dask_array::equal",
            Cmp::NotEqual => "dask_array::not_equal",
        }
    }

    fn fun<T: Element>(self) -> fn(&T, &T) -> bool {
        match self {
            Cmp::Greater => |a, b| a > b,
            Cmp::GreaterEqual => |a, b| a >= b,
            Cmp::Less => |a, b| a < b,
            Cmp::LessEqual => |a, b| a <= b,
            Cmp::Equal => |a, b| a == b,
            Cmp::NotEqual => |a, b| a != b,
        }
    }
}

/// `a op b` for two arrays of numbers.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct ArithKernel<T> {
    pub op: Arith,
    #[serde(skip)]
    pub _t: PhantomData<T>,
}

impl<T: Number> BinaryKernel for ArithKernel<T> {
    type A = T;
    type B = T;
    type Out = T;
    fn name(&self) -> &'static str {
        self.op.name()
    }
    fn apply(&self, a: ArrayViewD<'_, T>, b: ArrayViewD<'_, T>) -> ArrayD<T> {
        let z = Zip::from(a).and(b);
        match self.op {
            Arith::Add => z.map_collect(|&p, &q| p + q),
            Arith::Sub => z.map_collect(|&p, &q| p - q),
            Arith::Mul => z.map_collect(|&p, &q| p * q),
            Arith::Div => z.map_collect(|&p, &q| p / q),
        }
    }
}

/// `a op s` (or `s op a` with `scalar_left`) for an array of numbers and a scalar.
#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Element")]
pub(crate) struct ScalarArith<T> {
    pub op: Arith,
    pub scalar: T,
    pub scalar_left: bool,
}

impl<T: Number> UnaryKernel for ScalarArith<T> {
    type In = T;
    type Out = T;
    fn name(&self) -> &'static str {
        self.op.name()
    }
    fn apply(&self, b: &ArrayD<T>) -> ArrayD<T> {
        let s = self.scalar;
        match (self.op, self.scalar_left) {
            (Arith::Add, _) => b.mapv(|x| x + s),
            (Arith::Mul, _) => b.mapv(|x| x * s),
            (Arith::Sub, false) => b.mapv(|x| x - s),
            (Arith::Sub, true) => b.mapv(|x| s - x),
            (Arith::Div, false) => b.mapv(|x| x / s),
            (Arith::Div, true) => b.mapv(|x| s / x),
        }
    }
}

/// `a cmp b` for two arrays.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct CmpKernel<T> {
    pub cmp: Cmp,
    #[serde(skip)]
    pub _t: PhantomData<T>,
}

impl<T: Element> BinaryKernel for CmpKernel<T> {
    type A = T;
    type B = T;
    type Out = bool;
    fn name(&self) -> &'static str {
        self.cmp.name()
    }
    fn apply(&self, a: ArrayViewD<'_, T>, b: ArrayViewD<'_, T>) -> ArrayD<bool> {
        let f = self.cmp.fun::<T>();
        Zip::from(a).and(b).map_collect(f)
    }
}

/// `a cmp s` for an array and a scalar.
#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Element")]
pub(crate) struct CmpScalar<T> {
    pub cmp: Cmp,
    pub scalar: T,
}

impl<T: Element> UnaryKernel for CmpScalar<T> {
    type In = T;
    type Out = bool;
    fn name(&self) -> &'static str {
        self.cmp.name()
    }
    fn apply(&self, b: &ArrayD<T>) -> ArrayD<bool> {
        let f = self.cmp.fun::<T>();
        let s = self.scalar;
        b.map(|x| f(x, &s))
    }
}

/// Logical `and` / `or` of two boolean arrays.
#[derive(Serialize, Deserialize)]
pub(crate) struct Logical {
    pub and: bool,
}

impl BinaryKernel for Logical {
    type A = bool;
    type B = bool;
    type Out = bool;
    fn name(&self) -> &'static str {
        if self.and {
            "dask_array::logical_and"
        } else {
            "dask_array::logical_or"
        }
    }
    fn apply(&self, a: ArrayViewD<'_, bool>, b: ArrayViewD<'_, bool>) -> ArrayD<bool> {
        let z = Zip::from(a).and(b);
        if self.and {
            z.map_collect(|&p, &q| p && q)
        } else {
            z.map_collect(|&p, &q| p || q)
        }
    }
}

/// Logical not.
#[derive(Serialize, Deserialize)]
pub(crate) struct Not;

impl UnaryKernel for Not {
    type In = bool;
    type Out = bool;
    fn name(&self) -> &'static str {
        "dask_array::logical_not"
    }
    fn apply(&self, b: &ArrayD<bool>) -> ArrayD<bool> {
        b.mapv(|x| !x)
    }
}

/// Conversion to another element type (`astype`).
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct Astype<T, U>(#[serde(skip)] pub PhantomData<(T, U)>);

impl<T: CastTo<U>, U: Element> UnaryKernel for Astype<T, U> {
    type In = T;
    type Out = U;
    fn name(&self) -> &'static str {
        "dask_array::astype"
    }
    fn apply(&self, b: &ArrayD<T>) -> ArrayD<U> {
        b.mapv(|x| x.cast())
    }
}

/// Unary functions of numbers that keep the type.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) enum NumFn {
    Abs,
    Square,
    Neg,
}

/// A [`NumFn`] on an array of `T`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct NumKernel<T> {
    pub f: NumFn,
    #[serde(skip)]
    pub _t: PhantomData<T>,
}

impl<T: Number> UnaryKernel for NumKernel<T> {
    type In = T;
    type Out = T;
    fn name(&self) -> &'static str {
        match self.f {
            NumFn::Abs => "dask_array::abs",
            NumFn::Square => "dask_array::square",
            NumFn::Neg => "dask_array::neg",
        }
    }
    fn apply(&self, b: &ArrayD<T>) -> ArrayD<T> {
        match self.f {
            NumFn::Abs => b.mapv(|x| x.abs()),
            NumFn::Square => b.mapv(|x| x * x),
            NumFn::Neg => b.mapv(|x| -x),
        }
    }
}

/// Conversion of numbers to `f64`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct ToF64<T>(#[serde(skip)] pub PhantomData<T>);

impl<T: Number> UnaryKernel for ToF64<T> {
    type In = T;
    type Out = f64;
    fn name(&self) -> &'static str {
        "dask_array::to_f64"
    }
    fn apply(&self, b: &ArrayD<T>) -> ArrayD<f64> {
        b.mapv(|x| x.to_f64())
    }
}

/// The math functions of floats.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) enum FloatFn<T> {
    Sqrt,
    Exp,
    Ln,
    Sin,
    Cos,
    Tan,
    Tanh,
    Floor,
    Ceil,
    Powf(T),
}

/// A [`FloatFn`] on an array of `T`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Element")]
pub(crate) struct FloatKernel<T> {
    pub f: FloatFn<T>,
}

impl<T: Float> UnaryKernel for FloatKernel<T> {
    type In = T;
    type Out = T;
    fn name(&self) -> &'static str {
        match self.f {
            FloatFn::Sqrt => "dask_array::sqrt",
            FloatFn::Exp => "dask_array::exp",
            FloatFn::Ln => "dask_array::ln",
            FloatFn::Sin => "dask_array::sin",
            FloatFn::Cos => "dask_array::cos",
            FloatFn::Tan => "dask_array::tan",
            FloatFn::Tanh => "dask_array::tanh",
            FloatFn::Floor => "dask_array::floor",
            FloatFn::Ceil => "dask_array::ceil",
            FloatFn::Powf(_) => "dask_array::powf",
        }
    }
    fn apply(&self, b: &ArrayD<T>) -> ArrayD<T> {
        match self.f {
            FloatFn::Sqrt => b.mapv(T::sqrt),
            FloatFn::Exp => b.mapv(T::exp),
            FloatFn::Ln => b.mapv(T::ln),
            FloatFn::Sin => b.mapv(T::sin),
            FloatFn::Cos => b.mapv(T::cos),
            FloatFn::Tan => b.mapv(T::tan),
            FloatFn::Tanh => b.mapv(T::tanh),
            FloatFn::Floor => b.mapv(T::floor),
            FloatFn::Ceil => b.mapv(T::ceil),
            FloatFn::Powf(e) => b.mapv(|x| x.powf(e)),
        }
    }
}

type ArithOp<T> = ZipOp<ArithKernel<T>>;
type ScalarArithOp<T> = MapOp<ScalarArith<T>>;
type CmpOp<T> = ZipOp<CmpKernel<T>>;
type CmpScalarOp<T> = MapOp<CmpScalar<T>>;
type NumOp<T> = MapOp<NumKernel<T>>;
type ToF64Op<T> = MapOp<ToF64<T>>;
type FloatOp<T> = MapOp<FloatKernel<T>>;

register_each!(ArithOp: f64, f32, i64, i32);
register_each!(ScalarArithOp: f64, f32, i64, i32);
register_each!(CmpOp: f64, f32, i64, i32, bool);
register_each!(CmpScalarOp: f64, f32, i64, i32, bool);
register_each!(NumOp: f64, f32, i64, i32);
register_each!(ToF64Op: f64, f32, i64, i32);
register_each!(FloatOp: f64, f32);
dask_core::register_op_type!(ZipOp<Logical>);
dask_core::register_op_type!(MapOp<Not>);

macro_rules! register_casts {
    ($($from:ty => [$($to:ty),*];)*) => {$($(
        dask_core::register_op_type!(MapOp<Astype<$from, $to>>);
    )*)*};
}
register_casts! {
    f64 => [f64, f32, i64, i32];
    f32 => [f64, f32, i64, i32];
    i64 => [f64, f32, i64, i32];
    i32 => [f64, f32, i64, i32];
    bool => [f64, f32, i64, i32, bool];
}
