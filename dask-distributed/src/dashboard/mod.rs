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
use std::time::Instant;

use tokio::sync::watch;

use crate::scheduler::plugin::{SchedulerPlugin, TaskTransition};
use crate::scheduler::state::WorkerId;
use crate::task_stream::TaskStream;
use model::{DashboardModel, RecordedTransition, Snapshot};

pub use http::{serve, DashboardHandle};

/// The dashboard's default port, as in Dask.
pub const DEFAULT_DASHBOARD_PORT: u16 = 8787;

/// How many task-stream entries the page asks for.
pub const PAGE_STREAM_ENTRIES: usize = 300;

/// A dashboard: its model, shared by the scheduler plugin and the server.
#[derive(Clone)]
pub struct Dashboard {
    model: Arc<Mutex<DashboardModel>>,
    /// Transitions the plugin recorded and no reader applied yet (see
    /// [`Dashboard::model`]); locked after `model`, never before.
    pending: Arc<Mutex<Vec<RecordedTransition>>>,
    /// When the model started (the plugin times transitions against it).
    started: Instant,
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
        let model = DashboardModel::new();
        Dashboard {
            started: model.started(),
            model: Arc::new(Mutex::new(model)),
            pending: Arc::default(),
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
            pending: self.pending.clone(),
            started: self.started,
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

    /// The model, up to date: the transitions recorded since the last
    /// reader are applied first.
    pub(crate) fn model(&self) -> MutexGuard<'_, DashboardModel> {
        up_to_date(&self.model, &self.pending)
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

/// Most transitions recorded before the plugin applies them itself: small
/// batches, applied while their keys are still in cache (a batch of 64k,
/// left to the page's reader, measured slower: +35% against +20% on the
/// state-machine benchmark).
const PENDING_LIMIT: usize = 256;

/// Locks the model and applies what is pending, in order (the model's lock
/// is taken first, so two readers cannot apply out of order).
fn up_to_date<'a>(
    model: &'a Mutex<DashboardModel>,
    pending: &Mutex<Vec<RecordedTransition>>,
) -> MutexGuard<'a, DashboardModel> {
    let mut model = lock(model);
    let batch = {
        let mut pending = lock(pending);
        let keep = pending.capacity().min(PENDING_LIMIT);
        std::mem::replace(&mut *pending, Vec::with_capacity(keep))
    };
    model.apply_recorded(&batch);
    model
}

/// Feeds a [`Dashboard`] from the scheduler. A transition costs the
/// scheduler a push onto a vector; the model (key table, counts, graph view)
/// is updated in batches, taking its lock once per batch.
///
/// Transitions are recorded in `pending` (a push under a short lock) and
/// applied to `model` by the plugin every [`PENDING_LIMIT`], or by a reader
/// that comes first (so a read is up to date).
struct DashboardPlugin {
    model: Arc<Mutex<DashboardModel>>,
    pending: Arc<Mutex<Vec<RecordedTransition>>>,
    started: Instant,
    version: Arc<AtomicU64>,
    plugins: Arc<AtomicUsize>,
    closed: Arc<watch::Sender<bool>>,
}

impl DashboardPlugin {
    fn up_to_date(&self) -> MutexGuard<'_, DashboardModel> {
        up_to_date(&self.model, &self.pending)
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
        let record = RecordedTransition::new(transition, || self.started.elapsed().as_secs_f64());
        let full = {
            let mut pending = lock(&self.pending);
            pending.push(record);
            pending.len() >= PENDING_LIMIT
        };
        if full {
            drop(self.up_to_date());
        }
        self.changed();
    }

    fn add_worker(&mut self, worker: WorkerId, nthreads: u32) {
        self.up_to_date().add_worker(worker, nthreads);
        self.changed();
    }

    fn remove_worker(&mut self, worker: WorkerId) {
        self.up_to_date().remove_worker(worker);
        self.changed();
    }

    fn worker_address(&mut self, worker: WorkerId, address: &str) {
        self.up_to_date().worker_address(worker, address);
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
