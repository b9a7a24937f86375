//! dask-rs: Dask for Rust. Lazy task graphs, run by interchangeable schedulers,
//! and (as they land) parallel collections on top: arrays of ndarray chunks,
//! dataframes of polars partitions, bags of plain values.
//!
//! This facade re-exports the pieces: the graph spec ([`core`]), the schedulers
//! ([`SyncScheduler`], [`ThreadedScheduler`]) and each collection behind a cargo
//! feature (`array`, `dataframe`, `bag`, `distributed`, all on by default).
//! Depending on `dask` links every scheduler, so `compute()` works out of the box.
//!
//! Write a computation once, pick the scheduler per call:
//!
//! ```
//! use dask::prelude::*;
//!
//! fn inc(x: i64) -> i64 { x + 1 }
//! fn add(a: i64, b: i64) -> i64 { a + b }
//!
//! let x = delayed(inc).call((1,));
//! let y = delayed(inc).call((2,));
//! let z = delayed(add).call((&x, &y));
//!
//! assert_eq!(z.compute().unwrap(), 5);                            // default: threaded
//! assert_eq!(z.compute_with(&SyncScheduler::new()).unwrap(), 5);  // debugging
//! {
//!     let _scope = dask::config::set(SyncScheduler::new());       // scoped default
//!     assert_eq!(z.compute().unwrap(), 5);
//! }
//! assert_eq!(dask::compute((&x, &y, &z)).unwrap(), (2, 3, 5));   // shared work once
//! ```
//!
//! ## Collections
//!
//! A collection is a lazy graph of chunk tasks; operations add layers, and
//! `compute()` (from [`Collection`]) runs them on the chosen scheduler.
//! Arrays ([`array`](mod@array)) have `ndarray` blocks:
//!
//! ```
//! use dask::prelude::*;
//! use dask::array::{ndarray, from_array, Reduce};
//!
//! let m = ndarray::Array2::from_shape_fn((4, 6), |(i, j)| (i * 6 + j) as f64);
//! let x = from_array(m.clone(), [2, 3]).unwrap();        // 4 blocks of 2x3
//! let col_sums = (&x * 2.0).unwrap().sum(Reduce::axis(0)).unwrap();
//! assert_eq!(col_sums.compute().unwrap(), (&m * 2.0).sum_axis(ndarray::Axis(0)).into_dyn());
//! ```
//!
//! Dataframes ([`dataframe`]) have polars partitions (`read_csv` cuts files
//! into byte blocks, one partition each):
//!
//! ```
//! use dask::prelude::*;
//! use dask::dataframe::{polars::prelude::*, Agg, DataFrame as DaskFrame};
//!
//! let pdf = df!("k" => [1i64, 2, 1, 2], "x" => [1.0, 2.0, 3.0, 4.0]).unwrap();
//! let ddf = DaskFrame::from_polars(pdf, 2).unwrap();      // 2 partitions
//! let big = ddf.filter(col("x").gt(lit(1.5))).unwrap();
//! let sums = big.groupby(&["k"]).unwrap().agg(&[("x", Agg::Sum)]).unwrap();
//! let out = sums.compute().unwrap();                      // a polars DataFrame
//! assert_eq!(out.column("x").unwrap().f64().unwrap().get(0), Some(3.0));
//! ```
//!
//! Bags ([`bag`]) hold plain Rust values, processed like iterators:
//!
//! ```
//! use dask::prelude::*;
//! use dask::bag::Bag;
//!
//! let b = Bag::from_sequence(1..=10u64, 3).unwrap();
//! let evens = b.filter(|x| x % 2 == 0).map(|x| x * 10);
//! assert_eq!(evens.sum().compute().unwrap(), 300);
//! ```
//!
//! ## A cluster
//!
//! [`distributed::Client`] is a scheduler too: `Client::new()` starts a
//! scheduler and workers in this process (`Client::connect(addr)` joins
//! `dask scheduler` / `dask worker` processes), and any collection computes
//! on it with `compute_with(&client)`; `submit` and `map` give futures.
//!
//! ```
//! use dask::prelude::*;
//! use dask::distributed::{Client, LocalCluster};
//!
//! fn inc(x: i64) -> i64 { x + 1 }
//!
//! let cluster = LocalCluster::builder().n_workers(1).no_dashboard().start().unwrap();
//! let client = Client::with_cluster(cluster).unwrap();
//! let f = client.submit(inc, (9i64,)).unwrap();           // runs now
//! assert_eq!(f.result().unwrap(), 10);
//! let y = delayed(inc).call((&delayed(inc).call((1i64,)),));
//! assert_eq!(y.compute_with(&client).unwrap(), 3);
//! client.shutdown();
//! ```
//!
//! The examples in `dask/examples` walk through each collection
//! (`array`, `dataframe`, `bag`) and each scheduler choice (`scheduler_sync`,
//! `scheduler_threaded`, `scheduler_distributed`): `cargo run --example array`.
#![warn(missing_docs)]

pub use dask_core as core;
pub use dask_core::{callbacks, diagnostics};
pub use dask_core::{
    compute, compute_with, delayed, tokenize, try_delayed, Arg, Collection, Delayed, Error, Graph,
    HighLevelGraph, Key, Result, Scheduler, Task, Value,
};
pub use dask_sync_scheduler::SyncScheduler;
pub use dask_threaded::ThreadedScheduler;

#[cfg(feature = "array")]
pub use dask_array as array;
#[cfg(feature = "bag")]
pub use dask_bag as bag;
#[cfg(feature = "dataframe")]
pub use dask_dataframe as dataframe;
#[cfg(feature = "distributed")]
pub use dask_distributed as distributed;

/// Choosing the default scheduler, like `dask.config.set(scheduler=...)`.
pub mod config {
    use std::sync::Arc;

    use dask_core::scheduler::{self, ScopeGuard};
    use dask_core::{Result, Scheduler};

    /// Makes `scheduler` the default on this thread until the guard drops.
    #[must_use = "the scheduler is the default only while the guard lives"]
    pub fn set(scheduler: impl Scheduler + 'static) -> ScopeGuard {
        scheduler::scoped(Arc::new(scheduler))
    }

    /// Makes the scheduler called `name` (`"sync"`, `"threads"`) the default on
    /// this thread until the guard drops.
    pub fn set_by_name(name: &str) -> Result<ScopeGuard> {
        Ok(scheduler::scoped(scheduler::by_name(name)?))
    }

    /// Makes `scheduler` the process-wide default.
    pub fn set_global(scheduler: impl Scheduler + 'static) {
        scheduler::set_global(Arc::new(scheduler))
    }

    pub use dask_core::scheduler::{by_name, clear_global, default_scheduler};
}

/// The names most programs need: `use dask::prelude::*;`.
pub mod prelude {
    pub use dask_core::{compute, delayed, try_delayed, Collection, Delayed, Scheduler};
    pub use dask_sync_scheduler::SyncScheduler;
    pub use dask_threaded::ThreadedScheduler;
}
