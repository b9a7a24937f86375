//! The scheduler: which task runs where, and when.
//!
//! [`state::SchedulerState`] is a pure state machine in the manner of Dask's
//! `distributed/scheduler.py`: events in ([`state::Event`]), instructions out
//! ([`state::Action`]), no I/O inside. The network layer only turns messages into
//! events and actions into messages, so every transition lives in one place and
//! tests can drive a simulated cluster of any size without sockets.

pub mod coordination;
mod coordination_service;
pub mod plugin;
pub mod server;
pub mod state;
