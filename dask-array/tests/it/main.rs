//! Integration tests of dask-array: every operation checked against ndarray
//! computing the same thing on the whole array, on every scheduler.

mod common;

mod chunks;
mod composite;
mod creation;
mod elementwise;
mod errors;
mod linalg;
mod optimize;
mod reduction;
mod slicing;
mod store;
mod wire;
