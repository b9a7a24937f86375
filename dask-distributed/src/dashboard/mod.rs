//! The scheduler's dashboard: a [`SchedulerPlugin`] that builds a
//! [`model::DashboardModel`] from transitions, and an HTTP server (axum)
//! around it.
//!
//! Pages and endpoints ([`http`]): `/status` (one page; progress per task
//! group, the worker table and the task stream, refreshed by polling
//! `/api/status`, assets bundled into the binary), `/tasks` (the workers'
//! task stream, one lane per worker thread, polling `/api/task-stream`),
//! `/api/status`,
//! `/api/workers`, `/info/workers`, `/metrics` (Prometheus text format) and
//! `/health`. The dashboard listens on port [`DEFAULT_DASHBOARD_PORT`] and
//! moves to a free port when it is taken, saying so on stderr.
//!
//! ```
//! use dask_distributed::dashboard::Dashboard;
//! use dask_distributed::scheduler::state::SchedulerState;
//!
//! let dashboard = Dashboard::new();
//! let mut state = SchedulerState::new();
//! state.add_plugin(dashboard.plugin());
//! assert_eq!(dashboard.snapshot().tasks_seen, 0);
//! ```

pub mod http;
pub mod metrics;
pub mod model;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::scheduler::plugin::{SchedulerPlugin, TaskTransition};
use crate::scheduler::state::WorkerId;
use crate::task_stream::TaskStream;
use model::{DashboardModel, Snapshot};

pub use http::{serve, DashboardHandle};

/// The dashboard's default port, as in Dask.
pub const DEFAULT_DASHBOARD_PORT: u16 = 8787;

/// How many task-stream entries the page asks for.
pub const PAGE_STREAM_ENTRIES: usize = 300;

/// A dashboard: its model, shared by the scheduler plugin and the server.
#[derive(Clone, Default)]
pub struct Dashboard {
    model: Arc<Mutex<DashboardModel>>,
    /// The scheduler's task stream, for `/tasks` (attached once it started).
    task_stream: Arc<Mutex<Option<TaskStream>>>,
}

impl Dashboard {
    /// An empty dashboard.
    pub fn new() -> Self {
        Self::default()
    }

    /// The plugin to register on the scheduler (feeds this dashboard).
    pub fn plugin(&self) -> Box<dyn SchedulerPlugin> {
        Box::new(DashboardPlugin {
            model: self.model.clone(),
        })
    }

    /// The current state, with the newest task-stream entries.
    pub fn snapshot(&self) -> Snapshot {
        lock(&self.model).snapshot(PAGE_STREAM_ENTRIES)
    }

    pub(crate) fn model(&self) -> MutexGuard<'_, DashboardModel> {
        lock(&self.model)
    }

    /// Shows `stream` (the scheduler's, [`SchedulerHandle::task_stream`](crate::scheduler::server::SchedulerHandle::task_stream))
    /// on `/tasks` and `/api/task-stream`.
    pub fn attach_task_stream(&self, stream: TaskStream) {
        *self
            .task_stream
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(stream);
    }

    /// The attached task stream, if any.
    pub fn task_stream(&self) -> Option<TaskStream> {
        self.task_stream
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn lock(model: &Mutex<DashboardModel>) -> MutexGuard<'_, DashboardModel> {
    // The model stays consistent per call; a panic elsewhere must not blind it.
    model.lock().unwrap_or_else(PoisonError::into_inner)
}

struct DashboardPlugin {
    model: Arc<Mutex<DashboardModel>>,
}

impl SchedulerPlugin for DashboardPlugin {
    fn name(&self) -> &str {
        "dashboard"
    }

    fn on_task_transition(&mut self, transition: &TaskTransition<'_>) {
        lock(&self.model).apply(transition);
    }

    fn add_worker(&mut self, worker: WorkerId, nthreads: u32) {
        lock(&self.model).add_worker(worker, nthreads);
    }

    fn remove_worker(&mut self, worker: WorkerId) {
        lock(&self.model).remove_worker(worker);
    }

    fn worker_address(&mut self, worker: WorkerId, address: &str) {
        lock(&self.model).worker_address(worker, address);
    }
}
