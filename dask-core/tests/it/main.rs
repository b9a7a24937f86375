//! Integration tests of dask-core: the graph spec, `Delayed`, compute and
//! persist, optimizations and ordering, default-scheduler selection, every
//! typed error. Cross-scheduler tests run on sync and threaded (1 and 4
//! threads) through `dask_testing::scheduler_test!`; every asserted value is
//! checked against plain Rust, `reference::get` or the random DAGs' own oracle.

mod compute_many;
mod default_scheduler;
mod delayed;
mod diagnostics;
mod errors;
mod properties;
mod visualize;
