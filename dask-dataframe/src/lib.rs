//! Partitioned dataframes of polars partitions: Dask's `dask.dataframe` on
//! polars.
//!
//! A [`DataFrame`] is a task graph whose partitions are polars
//! [`DataFrame`](polars::prelude::DataFrame)s (a [`Series`]: polars
//! `Series`), plus a schema known without computing (`meta`) and the
//! partition boundaries when known ([`Divisions`]). Operations build graph
//! layers; `compute()` runs them on any `dask_core::Scheduler` and
//! concatenates the partitions.
//!
//! The key design decision: every operation is checked against the schema as
//! it is built, by running the same polars code on an empty frame (Dask's
//! meta). A wrong column name or a bad expression is an error at the call,
//! not in the middle of a compute, and the result's schema is polars' own.
//! Reductions and `groupby().agg()` are tree reductions of partial
//! aggregates (`split_every` wide).
//!
//! ```
//! use dask_core::Collection;
//! use dask_dataframe::{Agg, DataFrame};
//! use dask_sync_scheduler::SyncScheduler;
//! use polars::prelude::*;
//!
//! let pdf = df!("k" => [1i64, 2, 1, 2], "x" => [1.0, 2.0, 3.0, 4.0]).unwrap();
//! let ddf = DataFrame::from_polars(pdf, 2).unwrap();
//! let means = ddf.groupby(&["k"]).unwrap().agg(&[("x", Agg::Mean)]).unwrap();
//! let out = means.compute_with(&SyncScheduler::new()).unwrap();
//! assert_eq!(out.column("x").unwrap().f64().unwrap().get(0), Some(2.0));
//! println!("{ddf}"); // npartitions=2, columns and dtypes, number of tasks
//! ```
//!
//! Modules: `frame` ([`DataFrame`], per-partition ops, `head`/`tail`),
//! `series` ([`Series`] and its element-wise ops), `reduce` ([`Scalar`],
//! reductions, `unique`, `value_counts`), `groupby` ([`GroupBy`]), `csv`
//! ([`read_csv`]), `io` (parquet, writers), `merge` (broadcast and
//! hash-shuffle joins: [`MergeOptions`]), `shuffle` (hash and range
//! shuffles as task graphs), `sort` (`sort_values`, `set_index`, `loc`),
//! `describe`, `repartition`, `codec` (Arrow IPC for worker processes),
//! `ops` (the registered op structs every built-in task uses, so `dask
//! worker` processes run them; closures and polars `Expr` arguments stay
//! in-process), `wire` (polars values in op parameters, codecs for shuffle
//! pieces and scalars).
#![warn(missing_docs)]

pub mod codec;
mod csv;
mod describe;
mod error;
mod frame;
mod groupby;
mod io;
mod merge;
mod ops;
mod parts;
mod plain_csv;
mod reduce;
mod repartition;
mod series;
mod shuffle;
mod sort;
mod wire;

pub use csv::{read_csv, CsvOptions};
pub use dask_core::Collection;
pub use describe::DESCRIBE_SAMPLES;
pub use error::{Error, Result};
pub use frame::{DataFrame, Divisions};
pub use groupby::GroupBy;
pub use io::{expand_paths, read_parquet};
pub use merge::{How, JoinStrategy, MergeOptions};
pub use parts::DEFAULT_SPLIT_EVERY;
pub use polars;
pub use reduce::{Agg, Scalar};
pub use series::{Operand, Series};
pub use sort::SORT_SAMPLES;
