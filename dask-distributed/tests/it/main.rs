//! Integration tests of dask-distributed, over real TCP on 127.0.0.1.

mod cluster;
mod dashboard;
mod properties;
mod protocol;
mod scheduler_state;
mod task_encoding;
