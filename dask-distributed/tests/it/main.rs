//! Integration tests of dask-distributed, over real TCP on 127.0.0.1.

mod actors;
mod async_client;
mod batching;
mod cluster;
mod coordination;
mod dashboard;
#[cfg(unix)]
mod dashboard_browser;
mod dashboard_push;
mod diagnostics;
mod futures_api;
mod futures_state;
mod gather;
mod hostile;
mod properties;
mod protocol;
mod reconnect;
mod resilience;
mod scheduler_state;
mod security;
mod state_properties;
mod task_encoding;
mod worker_client;
