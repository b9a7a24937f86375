//! Chunked n-dimensional arrays of ndarray blocks (not built yet: see issue 4).
//!
//! This crate will hold `Array<T>`: a grid of ndarray chunks with creation,
//! elementwise arithmetic, reductions, slicing, rechunking and linear algebra,
//! computed on any `dask_core::Scheduler`. Today it is empty.
#![warn(missing_docs)]
