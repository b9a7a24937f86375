//! Integration tests of the threaded scheduler, against the sync scheduler and
//! plain Rust as oracles: random DAGs (with failing and panicking tasks) on 1,
//! 2 and 4 threads, peak live intermediates, prompt stop on errors, reuse
//! after failures, concurrent and nested computes, very large graphs.
//!
//! Every test runs under a watchdog (`dask_testing::within`): a deadlock fails
//! the test instead of hanging the suite.

mod basics;
mod concurrency;
mod errors;
mod large;
mod memory;
mod properties;
