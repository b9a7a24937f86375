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
