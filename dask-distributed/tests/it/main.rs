//! Integration tests of dask-distributed, over real TCP on 127.0.0.1.

mod cluster;
mod dashboard;
#[cfg(unix)]
mod dashboard_browser;
mod properties;
mod protocol;
mod scheduler_state;
mod task_encoding;
