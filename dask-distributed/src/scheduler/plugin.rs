//! Scheduler plugins: code that watches the scheduler without being part of it.
//!
//! A [`SchedulerPlugin`] is told about every task transition and every worker
//! that joins or leaves, like Dask's `SchedulerPlugin.transition`. The
//! dashboard is one. Plugins run inside the scheduler's event loop, so they
//! must be quick; a plugin that panics is disabled (and says so on stderr),
//! the scheduler goes on.
//!
//! ```
//! use dask_distributed::scheduler::plugin::{SchedulerPlugin, TaskTransition};
//! use dask_distributed::scheduler::state::{SchedulerState, Status};
//!
//! #[derive(Default)]
//! struct CountMemory(std::sync::Arc<std::sync::atomic::AtomicU64>);
//! impl SchedulerPlugin for CountMemory {
//!     fn name(&self) -> &str { "count-memory" }
//!     fn on_task_transition(&mut self, t: &TaskTransition<'_>) {
//!         if t.to == Status::Memory {
//!             self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
//!         }
//!     }
//! }
//! let mut state = SchedulerState::new();
//! state.add_plugin(Box::new(CountMemory::default()));
//! assert_eq!(state.plugins().names(), vec!["count-memory".to_owned()]);
//! ```

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use dask_core::Key;

use super::state::{Status, TaskState, WorkerId};

/// One task transition, as a plugin sees it.
///
/// A task's transitions form one chain: it is created by a transition from
/// [`Status::Forgotten`] (to released, or to memory for scattered data),
/// each `from` is the `to` of the one before, and it ends with a transition
/// to [`Status::Forgotten`]. A plugin can keep exact counts by state from
/// `from` and `to` alone, without a table of keys.
#[derive(Debug, Clone, Copy)]
pub struct TaskTransition<'a> {
    /// The task.
    pub key: &'a Key,
    /// Its state before ([`Status::Forgotten`] when it is created).
    pub from: Status,
    /// Its state after ([`Status::Forgotten`] once removed).
    pub to: Status,
    /// The worker concerned: where it now runs (to processing), where it
    /// ran (from processing, e.g. to memory or erred), a worker that held it
    /// (from memory), or where a client scattered it.
    pub worker: Option<WorkerId>,
    /// Size of the value in bytes: its size in memory when it enters or
    /// leaves memory, else what the scheduler knows (often 0).
    pub nbytes: u64,
    /// Whether this is the task's first arrival in memory (a value lost with
    /// its worker and computed again arrives a second time).
    pub first_result: bool,
    /// The keys the task reads (empty once forgotten).
    pub dependencies: &'a [Key],
    /// Why the scheduler made the transition.
    pub why: &'static str,
}

/// Watches the scheduler; every method has a do-nothing default.
///
/// Called on the scheduler's event loop: keep each call short (no I/O, no
/// blocking locks held for long).
pub trait SchedulerPlugin: Send + 'static {
    /// A name for diagnostics.
    fn name(&self) -> &str;

    /// A task changed state.
    fn on_task_transition(&mut self, _transition: &TaskTransition<'_>) {}

    /// A worker joined with `nthreads` task threads.
    fn add_worker(&mut self, _worker: WorkerId, _nthreads: u32) {}

    /// A worker left or died.
    fn remove_worker(&mut self, _worker: WorkerId) {}

    /// The address a worker serves its data on (told by the network layer
    /// when the worker registers).
    fn worker_address(&mut self, _worker: WorkerId, _address: &str) {}
}

struct Entry {
    plugin: Box<dyn SchedulerPlugin>,
    disabled: bool,
}

/// The plugins registered on a scheduler; a panicking plugin is disabled.
#[derive(Default)]
pub struct Plugins {
    entries: Vec<Entry>,
}

impl fmt::Debug for Plugins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Plugins {
    /// Registers `plugin`; it sees what happens from now on.
    pub fn add(&mut self, plugin: Box<dyn SchedulerPlugin>) {
        self.entries.push(Entry {
            plugin,
            disabled: false,
        });
    }

    /// Whether no plugin is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Names of the registered plugins, in order.
    pub fn names(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| e.plugin.name().to_owned())
            .collect()
    }

    /// Names of plugins disabled because they panicked.
    pub fn disabled(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| e.disabled)
            .map(|e| e.plugin.name().to_owned())
            .collect()
    }

    fn each(&mut self, hook: &str, mut call: impl FnMut(&mut dyn SchedulerPlugin)) {
        for e in self.entries.iter_mut().filter(|e| !e.disabled) {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| call(e.plugin.as_mut()))) {
                e.disabled = true;
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".into());
                eprintln!(
                    "dask-rs scheduler: plugin {:?} panicked in {hook} ({message}); \
                     it is disabled, the scheduler goes on",
                    e.plugin.name()
                );
            }
        }
    }

    /// Tells the plugins that `key` went from `from` to its current state
    /// (`task`, `None` once forgotten). `was_on` is where it was processing
    /// (or, when created in memory, where it was scattered); `held` is, when
    /// it leaves memory, a worker that held it and its size.
    pub(crate) fn task_transition(
        &mut self,
        key: &Key,
        from: Status,
        was_on: Option<WorkerId>,
        held: Option<(Option<WorkerId>, u64)>,
        task: Option<&TaskState>,
        why: &'static str,
    ) {
        if self.entries.is_empty() {
            return;
        }
        let to = task.map_or(Status::Forgotten, |t| t.status);
        if to == from {
            return;
        }
        let worker = match (to, held) {
            (Status::Processing, _) => task.and_then(|t| t.processing_on),
            (_, Some((holder, _))) => holder,
            _ => was_on,
        };
        let nbytes = match held {
            Some((_, nbytes)) => nbytes,
            None => task.map_or(0, |t| t.nbytes),
        };
        let first_result = to == Status::Memory
            && task.is_some_and(|t| t.story.iter().filter(|s| s.1 == Status::Memory).count() == 1);
        let transition = TaskTransition {
            key,
            from,
            to,
            worker,
            nbytes,
            first_result,
            dependencies: task.map_or(&[], |t| &t.dependencies),
            why,
        };
        self.each("on_task_transition", |p| p.on_task_transition(&transition));
    }

    pub(crate) fn add_worker(&mut self, worker: WorkerId, nthreads: u32) {
        self.each("add_worker", |p| p.add_worker(worker, nthreads));
    }

    pub(crate) fn remove_worker(&mut self, worker: WorkerId) {
        self.each("remove_worker", |p| p.remove_worker(worker));
    }

    /// Tells the plugins where `worker` serves its data.
    pub fn worker_address(&mut self, worker: WorkerId, address: &str) {
        self.each("worker_address", |p| p.worker_address(worker, address));
    }
}
