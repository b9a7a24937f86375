//! [`Profiler`]: records when each task ran, on which thread.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::callbacks::{self, Callback, CallbackGuard, RunInfo, TaskEvent};
use crate::Key;

/// One task run, as the [`Profiler`] saw it.
#[derive(Debug, Clone)]
pub struct TaskRecord {
    /// The task's key.
    pub key: Key,
    /// Its op's name.
    pub op: String,
    /// The thread that ran it (0: the caller; pool threads from 1).
    pub worker: usize,
    /// Start, since the profiler's first compute started.
    pub start: Duration,
    /// End, on the same clock.
    pub end: Duration,
    /// Whether it succeeded.
    pub ok: bool,
}

/// Records every task of the computes it watches, like Dask's `Profiler`;
/// render the records with [`super::write_report`] or [`super::render_tasks_svg`].
///
/// ```
/// use dask_core::diagnostics::Profiler;
/// use dask_core::{delayed, Collection};
/// # use dask_sync_scheduler as _;
/// let prof = Profiler::new();
/// let guard = prof.register();
/// let a = delayed(|x: i64| x + 1).call((1,));
/// let b = delayed(|x: i64, y: i64| x * y).call((&a, 10));
/// assert_eq!(dask_core::compute((&a, &b)).unwrap(), (2, 20));
/// drop(guard);
/// assert_eq!(prof.results().len(), 2);
/// ```
#[derive(Clone, Default)]
pub struct Profiler {
    inner: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    origin: Option<Instant>,
    running: HashMap<(usize, Key), Instant>,
    records: Vec<TaskRecord>,
}

impl std::fmt::Debug for Profiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profiler")
            .field("records", &self.lock().records.len())
            .finish()
    }
}

impl Profiler {
    /// An empty profiler.
    pub fn new() -> Profiler {
        Profiler::default()
    }

    /// Activates the profiler for computes started on this thread while the guard lives.
    pub fn register(&self) -> CallbackGuard {
        callbacks::register(Arc::new(self.clone()))
    }

    /// The tasks recorded so far, in the order they finished.
    pub fn results(&self) -> Vec<TaskRecord> {
        self.lock().records.clone()
    }

    /// When the first watched compute started (the records' clock origin).
    pub fn origin(&self) -> Option<Instant> {
        self.lock().origin
    }

    /// Forgets every record.
    pub fn clear(&self) {
        *self.lock() = State::default();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Callback for Profiler {
    fn start(&self, info: &RunInfo) {
        self.lock().origin.get_or_insert(info.started);
    }

    fn pretask(&self, task: &TaskEvent<'_>) {
        let now = Instant::now();
        self.lock()
            .running
            .insert((task.worker, task.key.clone()), now);
    }

    fn posttask(&self, task: &TaskEvent<'_>, ok: bool) {
        let now = Instant::now();
        let mut state = self.lock();
        let origin = *state.origin.get_or_insert(now);
        let started = state
            .running
            .remove(&(task.worker, task.key.clone()))
            .unwrap_or(now);
        state.records.push(TaskRecord {
            key: task.key.clone(),
            op: task.op.to_owned(),
            worker: task.worker,
            start: started.saturating_duration_since(origin),
            end: now.saturating_duration_since(origin),
            ok,
        });
    }
}
