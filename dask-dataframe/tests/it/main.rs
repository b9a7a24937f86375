//! Integration tests of dask-dataframe: every operation checked against
//! polars computing the same thing on the whole frame, on the sync, threaded
//! and distributed (in-process `LocalCluster`) schedulers.

mod common;

mod csv;
mod describe;
mod errors;
mod frame;
mod io;
mod reduce;
mod shuffle;
mod sort;
mod taxi;
