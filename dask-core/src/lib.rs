//! The task-graph specification of dask-rs, and the traits that connect
//! collections to schedulers.
//!
//! A computation is a [`Graph`]: a map from [`Key`] to [`Task`], a task being an
//! [`Op`] applied to [`Arg`]s (literal [`Value`]s, other keys, nested tasks,
//! lists). This is Dask's graph spec kept as plain data, so any scheduler can run
//! any graph, and custom graphs are as first-class as the ones collections build.
//!
//! The key design decision: dask-core depends on no scheduler. Collections build
//! graphs and call [`Collection::compute`]; a [`Scheduler`] (sync, threaded,
//! distributed, each in its own crate) runs them. Schedulers register
//! themselves, so `compute()` uses the best one linked, unless a call or a scope
//! says otherwise ([`scheduler::default_scheduler`]).
//!
//! ```
//! use dask_core::{delayed, Collection};
//! use dask_sync_scheduler::SyncScheduler;
//!
//! fn inc(x: i64) -> i64 { x + 1 }
//! fn add(a: i64, b: i64) -> i64 { a + b }
//!
//! let x = delayed(inc).call((1,));
//! let y = delayed(inc).call((2,));
//! let z = delayed(add).call((&x, &y));
//! assert_eq!(z.compute_with(&SyncScheduler::new()).unwrap(), 5);
//! println!("{}", z.visualize()); // graphviz dot
//! ```
//!
//! Modules: [`codec`] (values across processes), [`key`], [`tokenize`](mod@tokenize), [`value`], [`op`], [`task`],
//! [`graph`], [`hlg`], [`plan`] (validation, culling and ordering for
//! schedulers), [`optimize`] (cull, fuse), [`scheduler`], [`collection`],
//! [`delayed`](mod@delayed), [`visualize`], [`reference`](mod@reference) (the oracle evaluator).
#![warn(missing_docs)]

pub mod alloc;
pub mod callbacks;
pub mod codec;
pub mod collection;
pub mod delayed;
pub mod diagnostics;
mod error;
pub mod graph;
pub mod hlg;
pub mod key;
pub mod op;
pub mod optimize;
pub mod plan;
pub mod reference;
pub mod scheduler;
pub mod sizeof;
pub mod task;
pub mod tokenize;
pub mod value;
pub mod visualize;

pub use collection::{compute, compute_with, Collection, ComputeMany};
pub use delayed::{delayed, try_delayed, Delayed, DelayedFn};
pub use error::{BoxError, Error, Panicked, Result};
pub use graph::Graph;
pub use hlg::{HighLevelGraph, Layer};
pub use key::{Key, KeyBuildHasher, KeyMap, KeySet};
pub use op::Op;
pub use optimize::{cull, fuse};
pub use plan::{order, Plan};
pub use scheduler::{Scheduler, SchedulerRef};
pub use task::{Arg, Task};
pub use tokenize::{tokenize, Tokenize};
pub use value::{Shared, Value};

#[doc(hidden)]
pub mod __private {
    pub use inventory;
}
