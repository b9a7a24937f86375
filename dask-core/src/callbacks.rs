//! Callbacks: hooks into local computations, like `dask.callbacks.Callback`.
//!
//! The sync and threaded schedulers call every active [`Callback`] when a
//! compute starts, before and after each task, and when it finishes. Progress
//! bars and profilers ([`crate::diagnostics`]) are callbacks.
//!
//! A callback is active while the guard [`register`] returns is alive, for the
//! computes *started on the registering thread* (the way `with ProgressBar():`
//! scopes a block in Dask, and safe when tests run in parallel threads), or for
//! every compute of the process with [`register_global`].
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use dask_core::callbacks::{self, Callback, TaskEvent};
//! use dask_core::{delayed, Collection};
//! # use dask_sync_scheduler as _;
//!
//! #[derive(Default)]
//! struct Count(AtomicUsize);
//! impl Callback for Count {
//!     fn posttask(&self, _task: &TaskEvent<'_>, _ok: bool) {
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!     }
//! }
//!
//! let count = Arc::new(Count::default());
//! let guard = callbacks::register(count.clone());
//! let x = delayed(|a: i64, b: i64| a + b).call((1, 2));
//! assert_eq!(x.compute().unwrap(), 3);
//! drop(guard);
//! assert_eq!(count.0.load(Ordering::Relaxed), 1);
//! ```

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::Key;

/// What a scheduler tells callbacks when a compute starts.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The scheduler's name (`sync`, `threaded`).
    pub scheduler: String,
    /// Tasks the compute will run (after culling).
    pub n_tasks: usize,
    /// Threads that may run tasks.
    pub n_workers: usize,
    /// When the compute started.
    pub started: Instant,
}

/// One task, as callbacks see it.
#[derive(Debug, Clone, Copy)]
pub struct TaskEvent<'a> {
    /// The task's key.
    pub key: &'a Key,
    /// The name of the task's op (for grouping and colouring).
    pub op: &'a str,
    /// Which thread runs it: 0 is the calling thread, pool threads count from 1.
    pub worker: usize,
}

/// Hooks a scheduler calls during a local compute. Every method has an empty
/// default; implement the ones you need. Methods run on the scheduler's
/// threads, so keep them short (a counter, a push under a mutex).
pub trait Callback: Send + Sync + 'static {
    /// A compute is starting.
    fn start(&self, _info: &RunInfo) {}
    /// A task is about to run.
    fn pretask(&self, _task: &TaskEvent<'_>) {}
    /// A task finished; `ok` is false when it failed or panicked.
    fn posttask(&self, _task: &TaskEvent<'_>, _ok: bool) {}
    /// The compute ended; `ok` is false when it failed.
    fn finish(&self, _info: &RunInfo, _ok: bool) {}
}

type Entry = (u64, Arc<dyn Callback>);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static GLOBAL: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

thread_local! {
    static LOCAL: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// Keeps a callback active; dropping it deactivates the callback.
#[must_use = "the callback is active only while the guard lives"]
pub struct CallbackGuard {
    id: u64,
    global: bool,
}

impl std::fmt::Debug for CallbackGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackGuard")
            .field("global", &self.global)
            .finish()
    }
}

impl Drop for CallbackGuard {
    fn drop(&mut self) {
        let id = self.id;
        if self.global {
            GLOBAL
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|(i, _)| *i != id);
        } else {
            // The thread-local may already be gone when a guard is dropped
            // during thread teardown; then there is nothing to remove.
            let _ = LOCAL.try_with(|l| l.borrow_mut().retain(|(i, _)| *i != id));
        }
    }
}

/// Activates `callback` for computes started on this thread while the guard lives.
pub fn register(callback: Arc<dyn Callback>) -> CallbackGuard {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    LOCAL.with(|l| l.borrow_mut().push((id, callback)));
    CallbackGuard { id, global: false }
}

/// Activates `callback` for every compute in this process while the guard lives.
pub fn register_global(callback: Arc<dyn Callback>) -> CallbackGuard {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    GLOBAL
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((id, callback));
    CallbackGuard { id, global: true }
}

/// The callbacks active for a compute starting on this thread, taken once at
/// its start; schedulers call them through this set.
#[derive(Clone, Default)]
pub struct ActiveCallbacks {
    callbacks: Vec<Arc<dyn Callback>>,
}

impl std::fmt::Debug for ActiveCallbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveCallbacks")
            .field("len", &self.callbacks.len())
            .finish()
    }
}

impl ActiveCallbacks {
    /// The callbacks registered globally and on this thread, in registration order.
    pub fn current() -> ActiveCallbacks {
        let mut callbacks: Vec<Arc<dyn Callback>> = GLOBAL
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(_, c)| c.clone())
            .collect();
        LOCAL.with(|l| callbacks.extend(l.borrow().iter().map(|(_, c)| c.clone())));
        ActiveCallbacks { callbacks }
    }

    /// Whether there is no callback (schedulers then skip every hook).
    pub fn is_empty(&self) -> bool {
        self.callbacks.is_empty()
    }

    /// Calls every callback's [`Callback::start`].
    pub fn start(&self, info: &RunInfo) {
        self.each(|c| c.start(info));
    }

    /// Calls every callback's [`Callback::pretask`].
    pub fn pretask(&self, task: &TaskEvent<'_>) {
        self.each(|c| c.pretask(task));
    }

    /// Calls every callback's [`Callback::posttask`].
    pub fn posttask(&self, task: &TaskEvent<'_>, ok: bool) {
        self.each(|c| c.posttask(task, ok));
    }

    /// Calls every callback's [`Callback::finish`].
    pub fn finish(&self, info: &RunInfo, ok: bool) {
        self.each(|c| c.finish(info, ok));
    }

    /// A panicking callback must not unwind through a scheduler (it would
    /// abandon a pool thread mid-run): the panic is caught and reported once
    /// per call on stderr, and the compute goes on.
    fn each(&self, f: impl Fn(&dyn Callback)) {
        for c in &self.callbacks {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(c.as_ref())));
            if let Err(payload) = r {
                let panicked = crate::Panicked::from_payload(payload);
                eprintln!("dask: a callback {panicked} (ignored)");
            }
        }
    }
}
