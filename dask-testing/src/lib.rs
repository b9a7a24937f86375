//! Test support shared by the tests of every dask-rs crate (not published).
//!
//! The key design decision: one test body, every scheduler. Cross-scheduler
//! tests are written once with [`scheduler_test!`] and stamped into a module per
//! scheduler flavor ([`Flavor`]); every such test runs under a watchdog
//! ([`within`]), so a scheduler that deadlocks fails the test instead of hanging
//! the suite. Results are always checked against an independent oracle:
//! [`dask_core::reference::get`], the sync scheduler, or plain Rust
//! ([`graphs::RandomDag::expected`]).
//!
//! - [`graphs`]: proptest strategies for random DAGs (with failing and
//!   panicking tasks) and an independent evaluator for them.
//! - [`tracked`]: values that count how many of them are alive, to measure the
//!   peak memory a scheduler needs from outside it.
//! - [`pki`]: a certificate authority made at run time, for TLS tests.
//! - [`Rng`]: a tiny seeded generator.
//! - [`within`], [`check_property`], [`silence_intentional_panics`]: watchdogs
//!   and quiet test output.
//!
//! ```
//! use dask_core::{delayed, Collection, Scheduler};
//!
//! dask_testing::scheduler_test! {
//!     fn adds(s: &dyn Scheduler) {
//!         let x = delayed(|a: i64, b: i64| a + b).call((2, 3));
//!         assert_eq!(x.compute_with(s).unwrap(), 2 + 3);
//!     }
//! }
//! # fn main() {}
//! ```
#![warn(missing_docs)]

pub mod graphs;
mod macros;
pub mod pki;
pub mod rng;
mod schedulers;
pub mod tracked;
mod watchdog;

pub use graphs::{random_dag, Failures, RandomDag};
pub use rng::Rng;
pub use schedulers::{run_scheduler_test, Flavor};
pub use tracked::{LiveCounter, Tracked};
pub use watchdog::{
    check_property, silence_intentional_panics, test_timeout, within, INTENTIONAL_PANIC,
};

#[cfg(test)]
mod tests;
