//! Element types: [`Element`] (every dtype), [`Number`] and [`Float`].

use std::fmt::Debug;

use dask_core::Tokenize;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f64 {}
    impl Sealed for f32 {}
    impl Sealed for i64 {}
    impl Sealed for i32 {}
    impl Sealed for bool {}
}

/// A type an [`Array`](crate::Array) can hold: `f64`, `f32`, `i64`, `i32`, `bool`.
///
/// Sealed: the set of dtypes is fixed so chunks can later cross process
/// boundaries as raw little-endian buffers tagged by [`Element::DTYPE`].
pub trait Element:
    sealed::Sealed
    + Copy
    + Default
    + PartialOrd
    + Debug
    + Send
    + Sync
    + Tokenize
    + serde::Serialize
    + serde::de::DeserializeOwned
    + 'static
{
    /// The NumPy name of the dtype (`"float64"`, `"int32"`, `"bool"`, ...).
    const DTYPE: &'static str;

    /// Whether the value is a NaN (always false for integers and booleans).
    fn is_nan(self) -> bool;

    /// The NumPy `.npy` type descriptor (`"<f8"`, `"|b1"`, ...).
    const NPY_DESCR: &'static str;

    /// Appends the value's little-endian bytes.
    fn write_le(self, out: &mut Vec<u8>);

    /// Reads a value from exactly `size_of::<Self>()` little-endian bytes
    /// (`None` for a bad length or, for `bool`, a byte other than 0 or 1).
    fn read_le(bytes: &[u8]) -> Option<Self>;

    /// Appends the little-endian bytes of every element of `values` (a bulk
    /// copy the compiler vectorizes; no per-element serde).
    fn write_le_slice(values: &[Self], out: &mut Vec<u8>) {
        out.reserve(std::mem::size_of_val(values));
        for &v in values {
            v.write_le(out);
        }
    }

    /// Reads `bytes` (a whole number of little-endian elements) into `out`;
    /// `None` for a bad length or an invalid element.
    fn read_le_slice(bytes: &[u8], out: &mut Vec<Self>) -> Option<()> {
        let size = std::mem::size_of::<Self>();
        if !bytes.len().is_multiple_of(size) {
            return None;
        }
        out.reserve(bytes.len() / size);
        for b in bytes.chunks_exact(size) {
            out.push(Self::read_le(b)?);
        }
        Some(())
    }
}

/// Numeric element types (`f64`, `f32`, `i64`, `i32`): arithmetic and
/// reductions.
pub trait Number:
    Element
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + ndarray::LinalgScalar
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// The lowest value (`-inf` for floats): the identity of `max`.
    const LOWEST: Self;
    /// The highest value (`+inf` for floats): the identity of `min`.
    const HIGHEST: Self;
    /// The absolute value.
    fn abs(self) -> Self;
    /// The value as `f64` (rounded for large integers).
    fn to_f64(self) -> f64;
    /// `f64` converted to this type (truncated toward zero for integers).
    fn from_f64(v: f64) -> Self;
    /// The number of elements of `arange(start, stop, step)`, `None` for a zero
    /// or non-finite step.
    fn arange_len(start: Self, stop: Self, step: Self) -> Option<usize>;
    /// `start + i * step`.
    fn arange_at(start: Self, step: Self, i: usize) -> Self;
}

/// Floating-point element types (`f64`, `f32`): the unary math functions.
pub trait Float: Number {
    /// Square root.
    fn sqrt(self) -> Self;
    /// `e^x`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Sine.
    fn sin(self) -> Self;
    /// Cosine.
    fn cos(self) -> Self;
    /// Tangent.
    fn tan(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Largest integer not above the value.
    fn floor(self) -> Self;
    /// Smallest integer not below the value.
    fn ceil(self) -> Self;
    /// `self^e`.
    fn powf(self, e: Self) -> Self;
}

impl Element for bool {
    const DTYPE: &'static str = "bool";
    const NPY_DESCR: &'static str = "|b1";
    fn is_nan(self) -> bool {
        false
    }
    fn write_le(self, out: &mut Vec<u8>) {
        out.push(self as u8);
    }
    fn read_le(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [0] => Some(false),
            [1] => Some(true),
            _ => None,
        }
    }
}

macro_rules! int_elements {
    ($($t:ty => $name:literal $descr:literal),*) => {$(
        impl Element for $t {
            const DTYPE: &'static str = $name;
            const NPY_DESCR: &'static str = $descr;
            fn is_nan(self) -> bool {
                false
            }
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn read_le(bytes: &[u8]) -> Option<Self> {
                Some(<$t>::from_le_bytes(bytes.try_into().ok()?))
            }
            fn write_le_slice(values: &[Self], out: &mut Vec<u8>) {
                const N: usize = std::mem::size_of::<$t>();
                let start = out.len();
                out.resize(start + values.len() * N, 0);
                for (dst, v) in out[start..].chunks_exact_mut(N).zip(values) {
                    dst.copy_from_slice(&v.to_le_bytes());
                }
            }
            fn read_le_slice(bytes: &[u8], out: &mut Vec<Self>) -> Option<()> {
                const N: usize = std::mem::size_of::<$t>();
                if !bytes.len().is_multiple_of(N) {
                    return None;
                }
                out.extend(bytes.chunks_exact(N).map(|b| {
                    let mut a = [0u8; N];
                    a.copy_from_slice(b);
                    <$t>::from_le_bytes(a)
                }));
                Some(())
            }
        }
        impl Number for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
            fn abs(self) -> Self { self.wrapping_abs() }
            fn to_f64(self) -> f64 { self as f64 }
            fn from_f64(v: f64) -> Self { v as $t }
            fn arange_len(start: Self, stop: Self, step: Self) -> Option<usize> {
                if step == 0 {
                    return None;
                }
                let (start, stop, step) = (start as i128, stop as i128, step as i128);
                let span = stop - start;
                if (span > 0) != (step > 0) || span == 0 {
                    return Some(0);
                }
                // Ceiling division of two numbers of the same sign.
                let n = (span + step - step.signum()) / step;
                usize::try_from(n).ok()
            }
            fn arange_at(start: Self, step: Self, i: usize) -> Self {
                start.wrapping_add(step.wrapping_mul(i as $t))
            }
        }
    )*};
}
int_elements!(i64 => "int64" "<i8", i32 => "int32" "<i4");

macro_rules! float_elements {
    ($($t:ident => $name:literal $descr:literal),*) => {$(
        impl Element for $t {
            const DTYPE: &'static str = $name;
            const NPY_DESCR: &'static str = $descr;
            fn is_nan(self) -> bool {
                $t::is_nan(self)
            }
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn read_le(bytes: &[u8]) -> Option<Self> {
                Some($t::from_le_bytes(bytes.try_into().ok()?))
            }
            fn write_le_slice(values: &[Self], out: &mut Vec<u8>) {
                const N: usize = std::mem::size_of::<$t>();
                let start = out.len();
                out.resize(start + values.len() * N, 0);
                for (dst, v) in out[start..].chunks_exact_mut(N).zip(values) {
                    dst.copy_from_slice(&v.to_le_bytes());
                }
            }
            fn read_le_slice(bytes: &[u8], out: &mut Vec<Self>) -> Option<()> {
                const N: usize = std::mem::size_of::<$t>();
                if !bytes.len().is_multiple_of(N) {
                    return None;
                }
                out.extend(bytes.chunks_exact(N).map(|b| {
                    let mut a = [0u8; N];
                    a.copy_from_slice(b);
                    $t::from_le_bytes(a)
                }));
                Some(())
            }
        }
        impl Number for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const LOWEST: Self = $t::NEG_INFINITY;
            const HIGHEST: Self = $t::INFINITY;
            fn abs(self) -> Self { $t::abs(self) }
            fn to_f64(self) -> f64 { self as f64 }
            fn from_f64(v: f64) -> Self { v as $t }
            fn arange_len(start: Self, stop: Self, step: Self) -> Option<usize> {
                if step == 0.0 || !step.is_finite() || !start.is_finite() || !stop.is_finite() {
                    return None;
                }
                let n = ((stop as f64 - start as f64) / step as f64).ceil();
                Some(if n > 0.0 { n as usize } else { 0 })
            }
            fn arange_at(start: Self, step: Self, i: usize) -> Self {
                start + (i as $t) * step
            }
        }
        impl Float for $t {
            fn sqrt(self) -> Self { $t::sqrt(self) }
            fn exp(self) -> Self { $t::exp(self) }
            fn ln(self) -> Self { $t::ln(self) }
            fn sin(self) -> Self { $t::sin(self) }
            fn cos(self) -> Self { $t::cos(self) }
            fn tan(self) -> Self { $t::tan(self) }
            fn tanh(self) -> Self { $t::tanh(self) }
            fn floor(self) -> Self { $t::floor(self) }
            fn ceil(self) -> Self { $t::ceil(self) }
            fn powf(self, e: Self) -> Self { $t::powf(self, e) }
        }
    )*};
}
float_elements!(f64 => "float64" "<f8", f32 => "float32" "<f4");

/// Element types `Self` converts to `U` with Rust's `as` semantics (what
/// NumPy's `astype` does for these types: floats to integers truncate toward
/// zero and saturate, NaN becomes 0; `bool` becomes 0 or 1).
pub trait CastTo<U: Element>: Element {
    /// The converted value.
    fn cast(self) -> U;
}

macro_rules! casts {
    ($($from:ty => [$($to:ty),*];)*) => {$($(
        impl CastTo<$to> for $from {
            fn cast(self) -> $to {
                self as $to
            }
        }
    )*)*};
}
casts! {
    f64 => [f64, f32, i64, i32];
    f32 => [f64, f32, i64, i32];
    i64 => [f64, f32, i64, i32];
    i32 => [f64, f32, i64, i32];
}

macro_rules! bool_casts {
    ($($to:ty),*) => {$(
        impl CastTo<$to> for bool {
            fn cast(self) -> $to {
                u8::from(self) as $to
            }
        }
    )*};
}
bool_casts!(f64, f32, i64, i32);

impl CastTo<bool> for bool {
    fn cast(self) -> bool {
        self
    }
}
