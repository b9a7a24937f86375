//! The distributed scheduler of dask-rs (not built yet: see issue 3).
//!
//! This crate will hold the scheduler server (a sans-I/O state machine driven by
//! tokio), workers, the `Client` with futures (which also implements
//! `dask_core::Scheduler`), `LocalCluster`, the wire protocol and coordination
//! primitives. Today it is empty.
#![warn(missing_docs)]
