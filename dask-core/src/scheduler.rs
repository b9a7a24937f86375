//! The [`Scheduler`] trait, the one seam between collections and schedulers, and
//! how the default scheduler is chosen.

use std::cell::RefCell;
use std::sync::{Arc, RwLock};

use crate::{Error, Graph, Key, Result, Task, Value};

/// Runs a task graph. Implemented by the sync, threaded and distributed
/// schedulers; every collection computes through it.
pub trait Scheduler: Send + Sync {
    /// A short name (`"sync"`, `"threaded"`, ...).
    fn name(&self) -> &str;

    /// Computes `outputs` of `graph` and returns their values in the same order.
    ///
    /// Only what the outputs need runs. Errors are typed: a failing or panicking
    /// task gives [`Error::TaskFailed`]; a bad graph gives the validation errors
    /// of [`Plan::new`](crate::Plan::new).
    fn compute(&self, graph: &Graph, outputs: &[Key]) -> Result<Vec<Value>>;

    /// Computes `outputs` and returns a graph holding their values under the same
    /// keys. The default keeps the values in this process as literal data; a
    /// distributed scheduler keeps them on its workers instead.
    fn persist(&self, graph: &Graph, outputs: &[Key]) -> Result<Graph> {
        let values = self.compute(graph, outputs)?;
        Ok(outputs
            .iter()
            .cloned()
            .zip(values)
            .map(|(k, v)| (k, Task::data(v)))
            .collect())
    }
}

/// A shared handle to a scheduler.
pub type SchedulerRef = Arc<dyn Scheduler>;

/// A scheduler crate's entry in the registry of linked schedulers.
///
/// Scheduler crates submit one with `inventory::submit!`; dask-core depends on
/// no scheduler, and picks the highest-ranked linked one as the fallback default.
pub struct SchedulerRegistration {
    /// Canonical name (`"threaded"`).
    pub name: &'static str,
    /// Other names it answers to (`"threads"`).
    pub aliases: &'static [&'static str],
    /// Preference as the default: higher wins (threaded 20, sync 10).
    pub rank: u32,
    /// Returns the shared instance.
    pub get: fn() -> SchedulerRef,
}

inventory::collect!(SchedulerRegistration);

fn registrations() -> Vec<&'static SchedulerRegistration> {
    let mut regs: Vec<_> = inventory::iter::<SchedulerRegistration>
        .into_iter()
        .collect();
    regs.sort_by_key(|r| std::cmp::Reverse(r.rank));
    regs
}

/// The linked scheduler called `name` (or one of its aliases), e.g. `"sync"` or
/// `"threads"`, like Dask's `scheduler="threads"`.
pub fn by_name(name: &str) -> Result<SchedulerRef> {
    let regs = registrations();
    regs.iter()
        .find(|r| r.name == name || r.aliases.contains(&name))
        .map(|r| (r.get)())
        .ok_or_else(|| {
            let known: Vec<&str> = regs.iter().map(|r| r.name).collect();
            Error::NoScheduler {
                hint: format!(
                    "no linked scheduler is called `{name}`; linked: [{}]. Add the crate that \
                     provides it (dask-sync-scheduler, dask-threaded, dask-distributed) and use it",
                    known.join(", ")
                ),
            }
        })
}

static GLOBAL: RwLock<Option<SchedulerRef>> = RwLock::new(None);

thread_local! {
    static SCOPED: RefCell<Vec<SchedulerRef>> = const { RefCell::new(Vec::new()) };
}

/// Sets the process-wide default scheduler (below a scoped one; see [`default_scheduler`]).
pub fn set_global(scheduler: SchedulerRef) {
    *GLOBAL.write().unwrap_or_else(|e| e.into_inner()) = Some(scheduler);
}

/// Removes the process-wide default set by [`set_global`].
pub fn clear_global() {
    *GLOBAL.write().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Makes `scheduler` the default on this thread until the guard is dropped, like
/// `with dask.config.set(scheduler=...)`. Scopes nest.
///
/// ```
/// use std::sync::Arc;
/// use dask_core::{scheduler, Scheduler};
/// # struct Mine;
/// # impl Scheduler for Mine {
/// #     fn name(&self) -> &str { "mine" }
/// #     fn compute(&self, g: &dask_core::Graph, o: &[dask_core::Key]) -> dask_core::Result<Vec<dask_core::Value>> { dask_core::reference::get(g, o) }
/// # }
/// {
///     let _guard = scheduler::scoped(Arc::new(Mine));
///     assert_eq!(scheduler::default_scheduler().unwrap().name(), "mine");
/// }
/// ```
#[must_use = "the scheduler is the default only while the guard lives"]
pub fn scoped(scheduler: SchedulerRef) -> ScopeGuard {
    SCOPED.with(|s| s.borrow_mut().push(scheduler));
    ScopeGuard {
        _not_send: std::marker::PhantomData,
    }
}

/// Restores the previous default scheduler when dropped; see [`scoped`].
pub struct ScopeGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        SCOPED.with(|s| {
            s.borrow_mut().pop();
        });
    }
}

/// The scheduler `compute()` uses: the innermost [`scoped`] one on this thread,
/// else the [`set_global`] one, else the highest-ranked linked scheduler crate
/// (threaded over sync). With none linked it says which crate to add.
pub fn default_scheduler() -> Result<SchedulerRef> {
    if let Some(s) = SCOPED.with(|s| s.borrow().last().cloned()) {
        return Ok(s);
    }
    if let Some(s) = GLOBAL.read().unwrap_or_else(|e| e.into_inner()).clone() {
        return Ok(s);
    }
    registrations()
        .first()
        .map(|r| (r.get)())
        .ok_or_else(|| Error::NoScheduler {
            hint:
                "no scheduler crate is linked. Add `dask-threaded` (or `dask-sync-scheduler`) to \
               Cargo.toml and mention it once, e.g. `use dask_threaded as _;`, or pass a \
               scheduler explicitly with `compute_with(&scheduler)`"
                    .into(),
        })
}
