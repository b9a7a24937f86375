//! The scheduler's dashboard: a [`SchedulerPlugin`] that builds a
//! [`model::DashboardModel`] from transitions, and an HTTP server (axum)
//! around it.
//!
//! Pages and endpoints ([`http`]): `/status` (progress per task group, the
//! worker table, the task stream and the graph of the current computation),
//! `/tasks` (the workers' task stream, one lane per worker thread). Both
//! pages are updated by pushes from the server (server-sent events on
//! `/api/events`, see [`http`]), never by polling or reloading; their assets
//! (`common.js` shared by both) are bundled into the binary. The JSON API
//! stays for scripts: `/api/status`, `/api/graph`, `/api/task-stream`,
//! `/api/workers`; and `/info/workers`, `/metrics` (Prometheus text format),
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
pub mod push;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

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
#[derive(Clone)]
pub struct Dashboard {
    model: Arc<Mutex<DashboardModel>>,
    /// The scheduler's task stream, for `/tasks` (attached once it started).
    task_stream: Arc<Mutex<Option<TaskStream>>>,
    /// Bumped by the plugin after every change of the model: push streams
    /// compare it without taking the model's lock.
    version: Arc<AtomicU64>,
    /// Plugins alive (held by a scheduler's state).
    plugins: Arc<AtomicUsize>,
    /// `true` once the scheduler is gone (its last plugin dropped) or the
    /// server was shut down: push streams end.
    closed: Arc<watch::Sender<bool>>,
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard {
            model: Arc::new(Mutex::new(DashboardModel::new())),
            task_stream: Arc::default(),
            version: Arc::default(),
            plugins: Arc::default(),
            closed: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl Dashboard {
    /// An empty dashboard.
    pub fn new() -> Self {
        Self::default()
    }

    /// The plugin to register on the scheduler (feeds this dashboard). When
    /// the scheduler drops it (it stopped), the dashboard's push streams end.
    pub fn plugin(&self) -> Box<dyn SchedulerPlugin> {
        self.plugins.fetch_add(1, Ordering::SeqCst);
        self.closed.send_replace(false);
        Box::new(DashboardPlugin {
            model: self.model.clone(),
            version: self.version.clone(),
            plugins: self.plugins.clone(),
            closed: self.closed.clone(),
        })
    }

    /// Changes seen so far (a counter; equal values, equal model).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Ends every push stream (the server is stopping).
    pub(crate) fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Whether the scheduler is gone or the server stopped.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Watches [`Dashboard::is_closed`].
    pub(crate) fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }

    /// The current state, with the newest task-stream entries.
    pub fn snapshot(&self) -> Snapshot {
        self.model().snapshot(PAGE_STREAM_ENTRIES)
    }

    /// The graph view of the current computation (see [`model::GraphJson`]).
    pub fn graph(&self) -> model::GraphJson {
        self.model().graph()
    }

    /// The graph view's node states only.
    pub fn graph_states(&self) -> model::GraphStatesJson {
        self.model().graph_states()
    }

    /// The model.
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each holder leaves the data consistent; a panic elsewhere must not blind it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Feeds a [`Dashboard`] from the scheduler: each transition is applied to
/// the model at once, under its lock (a few counters and, for transitions to
/// and from processing, one lookup in a small table; readers hold the lock
/// only to copy a snapshot).
struct DashboardPlugin {
    model: Arc<Mutex<DashboardModel>>,
    version: Arc<AtomicU64>,
    plugins: Arc<AtomicUsize>,
    closed: Arc<watch::Sender<bool>>,
}

impl DashboardPlugin {
    fn model(&self) -> MutexGuard<'_, DashboardModel> {
        lock(&self.model)
    }

    fn changed(&self) {
        self.version.fetch_add(1, Ordering::Release);
    }
}

impl SchedulerPlugin for DashboardPlugin {
    fn name(&self) -> &str {
        "dashboard"
    }

    fn on_task_transition(&mut self, transition: &TaskTransition<'_>) {
        self.model().apply(transition);
        self.changed();
    }

    fn add_worker(&mut self, worker: WorkerId, nthreads: u32) {
        self.model().add_worker(worker, nthreads);
        self.changed();
    }

    fn remove_worker(&mut self, worker: WorkerId) {
        self.model().remove_worker(worker);
        self.changed();
    }

    fn worker_address(&mut self, worker: WorkerId, address: &str) {
        self.model().worker_address(worker, address);
        self.changed();
    }
}

impl Drop for DashboardPlugin {
    fn drop(&mut self) {
        // The scheduler that held it stopped: end the push streams.
        if self.plugins.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.closed.send_replace(true);
        }
    }
}
