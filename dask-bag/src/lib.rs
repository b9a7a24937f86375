//! Bags: partitions of plain Rust values, processed like iterators (not built
//! yet: see issue 6).
//!
//! This crate will hold `Bag<T>` with map, filter, fold, frequencies, groupby and
//! text-file input and output, computed on any `dask_core::Scheduler`. Today it
//! is empty.
#![warn(missing_docs)]
