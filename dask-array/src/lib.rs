//! Chunked n-dimensional arrays for dask-rs: [`Array<T>`], a lazy grid of
//! [`ndarray`] blocks that computes in parallel on any dask-rs scheduler and
//! can describe arrays larger than memory.
//!
//! Every operation (creation, arithmetic, reductions, slicing, rechunking,
//! matmul) adds one layer of tasks to a [`dask_core::HighLevelGraph`]: one
//! task per output block, named `(<op>-<token>, i, j, ..)` where the token is a
//! hash of the inputs, so equal work gets equal keys and is computed once.
//! Nothing runs until [`Collection::compute`] / `compute_with`, which hands the
//! graph to a scheduler (sync, threaded, later distributed) and assembles the
//! blocks into an [`ndarray::ArrayD`].
//!
//! The key design decision: **blocks are plain `ndarray::ArrayD<T>` values and
//! every shape decision is made when the expression is built.** Chunks,
//! broadcasting, axes and slice bounds are checked while building, so bad input
//! is a typed [`Error`] naming the shapes, never a failure halfway through a
//! compute; the tasks themselves only do block arithmetic with ndarray.
//! Elementwise layers are fused while building (a chain like
//! `((x + 1) * 2).sqrt()` is one task per block, see [`elementwise`]), and
//! reductions over all axes, one or several are tree reductions with a
//! bounded fan-in ([`Reduce`]).
//!
//! ```
//! use dask_array::{random, Collection, Reduce};
//! use dask_threaded::ThreadedScheduler;
//!
//! # fn main() -> dask_array::Result<()> {
//! let x = random::random(&[1000, 1000], 250, 42)?; // 16 blocks of 250x250
//! let y = (&x + &x.t())?;                           // fused: 16 tasks on top of x
//! let total = y.sum(None)?;                         // a 0-d array
//! println!("{y}");                                  // dask.array<add, shape=(1000, 1000), ...>
//! let s = total.compute_scalar_with(&ThreadedScheduler::with_threads(2)?)?;
//! assert!((s / 1e6 - 1.0).abs() < 0.01);            // mean of x + x.T is 1
//! let col_means = x.mean(Reduce::axis(0).split_every(4))?.compute_with(&ThreadedScheduler::new())?;
//! assert_eq!(col_means.shape(), &[1000]);
//! # Ok(())
//! # }
//! ```
//!
//! Arrays run on worker processes too (`dask worker`, a distributed `Client`):
//! every chunk task's op is a registered, serializable struct the workers
//! rebuild from its tag and parameters, and blocks travel by the raw
//! little-endian [`codec`]. Only user closures ([`Array::map`],
//! [`Array::zip_with`], [`Array::map_blocks`], [`blockwise`]) are limited to
//! in-process schedulers and workers; a client refuses them for worker
//! processes before sending anything.
//!
//! Modules by job: [`chunks`] (how arrays are cut), [`array`](mod@array) (the `Array` type
//! and its `Collection` impl), [`creation`], [`random`], [`elementwise`]
//! (arithmetic, comparisons, math, `map_blocks`, `blockwise`, fusion),
//! [`reduction`], [`cumulative`], [`slicing`] (transpose, slices),
//! [`rechunk`], [`linalg`], [`optimize`] (the graph a compute runs:
//! creation blocks inlined into their readers), [`store`], [`element`] (the
//! dtypes), [`codec`] (chunks across processes) and [`error`].
#![warn(missing_docs)]

/// Registers the generic op type `$op` once per listed element type, so worker
/// processes can rebuild it (`register_each!(Transpose: f64, f32)`).
macro_rules! register_each {
    ($op:ident: $($t:ty),* $(,)?) => {
        $(dask_core::register_op_type!($op<$t>);)*
    };
}

pub mod array;
pub mod chunks;
pub mod codec;
pub mod creation;
pub mod cumulative;
pub mod element;
pub mod elementwise;
pub mod error;
mod fused;
mod gemm;
mod kernels;
pub mod linalg;
pub mod optimize;
pub mod random;
pub mod rechunk;
pub mod reduction;
pub mod reshape;
pub mod slicing;
pub mod store;

pub use array::Array;
pub use chunks::{ChunkSpec, Chunks};
pub use creation::{
    arange, concatenate, from_array, from_delayed, full, linspace, ones, stack, zeros,
};
pub use dask_core::Collection;
pub use element::{CastTo, Element, Float, Number};
pub use elementwise::{blockwise, broadcast_shapes, Operand};
pub use error::{Error, Result};
pub use ndarray;
pub use ndarray::Slice;
pub use reduction::Reduce;
