//! Tasks that submit tasks: [`get_client`] gives a task running on a worker a
//! [`Client`] of the same scheduler, and [`secede`] / [`rejoin`] let a task
//! that waits on other tasks give its thread back to the worker meanwhile,
//! like Dask's `get_client`, `secede` and `rejoin`.
//!
//! Blocking waits of any client inside a task ([`Future::result`](crate::Future::result),
//! [`Client::gather`], [`Client::wait`], `compute_with(&client)`) secede
//! for the time they wait and rejoin after, so a task that submits subtasks
//! and gathers them finishes even on a worker with one thread. A task that
//! waits on something else (a coordination primitive, a channel) can call
//! [`secede`] itself. A seceded task is *long-running* for the scheduler: it
//! no longer counts towards its worker's saturation, so queued tasks go there.
//! [`rejoin`] waits for a free thread of the worker (the task then runs as
//! any other); a task that ends seceded needs no rejoin.
//!
//! The worker client is made once per scheduler address and process, and
//! shared by every task there (it is not reconnected per task). When the
//! scheduler was started in this process by a [`LocalCluster`](crate::LocalCluster)
//! (thread workers), the worker client hands tasks over in-process like the
//! client that owns the cluster: closures work. Otherwise (a `dask worker`
//! process) submitted functions must be registered
//! ([`register_op!`](dask_core::register_op)).
//!
//! ```
//! use dask_distributed::{get_client, Client, LocalCluster};
//!
//! // One worker with one thread: the task gives its thread to its subtasks.
//! let cluster = LocalCluster::builder().n_workers(1).threads_per_worker(1).start()?;
//! let client = Client::with_cluster(cluster)?;
//! let sum_of_squares = |n: u64| -> u64 {
//!     let client = get_client().expect("in a task");
//!     let futures = client.map(|x: u64| x * x, 0..n).expect("submitted");
//!     client.gather(&futures).expect("gathered").into_iter().sum()
//! };
//! let total = client.submit(sum_of_squares, (10u64,))?.result()?;
//! assert_eq!(total, (0..10u64).map(|x| x * x).sum::<u64>());
//! assert!(get_client().is_err(), "not in a task here");
//! # Ok::<(), dask_distributed::Error>(())
//! ```

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use dask_core::Key;
use tokio::sync::mpsc::{UnboundedSender, WeakUnboundedSender};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::client::Inner;
use crate::messages::{self, ToScheduler};
use crate::protocol::Message;
use crate::{Client, Error, Result};

/// One task attempt's hold on a worker thread, shared by the worker (which
/// ends it when the attempt ends or is aborted) and the task's thread (which
/// gives the thread back and takes one again).
pub(crate) struct TaskSlot {
    key: Key,
    slots: Arc<Semaphore>,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    /// The attempt is over: a rejoin takes no thread any more.
    ended: AtomicBool,
    /// Wakes a rejoin waiting for a thread when the attempt ends.
    ended_notify: Notify,
    /// Whether the scheduler was told the task is long-running.
    told: AtomicBool,
    /// The worker's connection to the scheduler (weak: a task thread that
    /// outlives its killed worker must not keep the connection open).
    tx: WeakUnboundedSender<Message>,
    /// The worker's runtime, to wait for a thread on.
    runtime: tokio::runtime::Handle,
}

impl TaskSlot {
    /// The slot of an attempt of `key` that holds no thread yet (see
    /// [`TaskSlot::hold`]).
    pub(crate) fn waiting(
        key: Key,
        slots: Arc<Semaphore>,
        tx: UnboundedSender<Message>,
        runtime: tokio::runtime::Handle,
    ) -> Arc<TaskSlot> {
        Arc::new(TaskSlot {
            key,
            slots,
            permit: Mutex::new(None),
            ended: AtomicBool::new(false),
            ended_notify: Notify::new(),
            told: AtomicBool::new(false),
            tx: tx.downgrade(),
            runtime,
        })
    }

    /// The attempt takes `permit`'s thread; an attempt already over (aborted)
    /// gives it back as `Err`.
    pub(crate) fn hold(&self, permit: OwnedSemaphorePermit) -> Result<(), OwnedSemaphorePermit> {
        let mut held = self.permit.lock().unwrap_or_else(PoisonError::into_inner);
        if self.ended.load(Ordering::Acquire) {
            return Err(permit);
        }
        *held = Some(permit);
        Ok(())
    }

    /// Ends the attempt like [`TaskSlot::end`], but hands the thread's permit
    /// (if the attempt still held it) to the caller, for the next task.
    pub(crate) fn finish(&self) -> Option<OwnedSemaphorePermit> {
        self.ended.store(true, Ordering::Release);
        let permit = self
            .permit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.ended_notify.notify_one();
        permit
    }

    /// The attempt is over (finished or aborted): its thread, if held, is free.
    pub(crate) fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.permit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.ended_notify.notify_one();
    }

    /// Gives the thread back; false if it was not held.
    fn secede(&self) -> bool {
        let permit = self
            .permit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(permit) = permit else {
            return false;
        };
        if !self.told.swap(true, Ordering::AcqRel) {
            let msg = ToScheduler::LongRunning {
                key: self.key.clone(),
            };
            if let (Some(tx), Ok(m)) = (self.tx.upgrade(), messages::message("long-running", &msg))
            {
                let _ = tx.send(m);
            }
        }
        drop(permit);
        true
    }

    /// Waits for a free thread of the worker and takes it (nothing to do if
    /// held, or if the attempt is over).
    fn rejoin(&self) {
        if self.permit_held() {
            return;
        }
        let permit = self.runtime.block_on(async {
            loop {
                if self.ended.load(Ordering::Acquire) {
                    return None;
                }
                tokio::select! {
                    permit = self.slots.clone().acquire_owned() => return permit.ok(),
                    () = self.ended_notify.notified() => {}
                }
            }
        });
        let mut held = self.permit.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.ended.load(Ordering::Acquire) {
            *held = permit; // else dropped here: the attempt is over
        }
    }

    fn permit_held(&self) -> bool {
        self.permit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

/// What a worker tells the task it runs on this thread.
struct TaskContext {
    scheduler: Arc<str>,
    slot: Arc<TaskSlot>,
}

thread_local! {
    static TASK: RefCell<Option<TaskContext>> = const { RefCell::new(None) };
}

/// Runs `f` (a task) with its context set for [`get_client`], [`secede`],
/// [`rejoin`] and the coordination primitives.
pub(crate) fn in_task<T>(
    scheduler: &Arc<str>,
    security: &crate::Security,
    slot: Arc<TaskSlot>,
    f: impl FnOnce() -> T,
) -> T {
    let context = TaskContext {
        scheduler: scheduler.clone(),
        slot,
    };
    let previous = TASK.with(|t| t.replace(Some(context)));
    let result = crate::coordination::in_task(scheduler, security, f);
    TASK.with(|t| *t.borrow_mut() = previous);
    result
}

/// Whether this thread runs a task of a worker (its blocking waits are
/// allowed inside the worker's runtime).
pub(crate) fn in_task_thread() -> bool {
    TASK.with(|t| t.borrow().is_some())
}

fn current_slot() -> Option<Arc<TaskSlot>> {
    TASK.with(|t| t.borrow().as_ref().map(|c| c.slot.clone()))
}

fn outside_task(what: &str) -> Error {
    Error::InvalidConfig {
        message: format!(
            "{what} was called outside a task running on a worker: \
             use a Client (Client::connect / LocalCluster::client) outside tasks"
        ),
    }
}

/// From inside a task: gives the task's worker thread back, so the worker
/// runs other tasks while this one waits (on other tasks, a queue, an
/// event...), and tells the scheduler the task is long-running, like Dask's
/// `secede`. Does nothing if already seceded. Call [`rejoin`] before heavy
/// work again (optional: a task may end seceded).
///
/// Errors: [`Error::InvalidConfig`] outside a task.
pub fn secede() -> Result<()> {
    let slot = current_slot().ok_or_else(|| outside_task("secede"))?;
    slot.secede();
    Ok(())
}

/// From inside a task that seceded: waits until the worker has a free
/// thread and takes it, like Dask's `rejoin`. Does nothing if the task holds
/// its thread. The wait ends when a thread frees or the task is aborted
/// (freed by the scheduler, worker stopped).
///
/// Errors: [`Error::InvalidConfig`] outside a task.
pub fn rejoin() -> Result<()> {
    let slot = current_slot().ok_or_else(|| outside_task("rejoin"))?;
    slot.rejoin();
    Ok(())
}

/// Secedes for the duration of a blocking wait inside a task, and rejoins
/// when dropped (only if it seceded itself). Outside tasks it does nothing.
pub(crate) struct WaitGuard {
    slot: Option<Arc<TaskSlot>>,
}

impl WaitGuard {
    /// Secedes if this thread runs a task holding its thread.
    pub(crate) fn enter() -> WaitGuard {
        let slot = current_slot().filter(|s| s.secede());
        WaitGuard { slot }
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.rejoin();
        }
    }
}

/// Scheduler addresses of [`LocalCluster`](crate::LocalCluster)s running in
/// this process: their workers are all here, so their worker clients hand
/// tasks over in-process.
static LOCAL_SCHEDULERS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Marks `addr` as the scheduler of a cluster of thread workers in this process.
pub(crate) fn register_local_scheduler(addr: &str) {
    LOCAL_SCHEDULERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashSet::new)
        .insert(addr.to_owned());
}

/// The cluster at `addr` is stopping: its worker client and shared
/// coordination connection (if tasks opened them) close on purpose, so they
/// neither reconnect nor say they lost the scheduler.
pub(crate) fn unregister_local_scheduler(addr: &str) {
    if let Some(set) = LOCAL_SCHEDULERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_mut()
    {
        set.remove(addr);
    }
    let gone = WORKER_CLIENTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_mut()
        .and_then(|map| map.remove(addr));
    if let Some(inner) = gone {
        inner.mark_closed();
        // Dropped on a plain thread: a runtime may not be dropped inside another.
        std::thread::spawn(move || drop(inner));
    }
    crate::coordination::close_shared(addr);
}

fn is_local_scheduler(addr: &str) -> bool {
    LOCAL_SCHEDULERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .is_some_and(|s| s.contains(addr))
}

/// Worker clients, one per scheduler address.
static WORKER_CLIENTS: Mutex<Option<HashMap<String, Arc<Inner>>>> = Mutex::new(None);

/// From inside a task running on a worker: a [`Client`] of that worker's
/// scheduler, to submit, map, gather and wait (Dask's `get_client`). One
/// connection per scheduler and process, shared by every task and reopened
/// only if it was lost. Its blocking waits secede (see the module docs).
///
/// Futures it makes belong to this worker client: drop or gather them in
/// the task (they are released when dropped, like any future).
///
/// Errors: [`Error::InvalidConfig`] outside a task; connection errors.
pub fn get_client() -> Result<Client> {
    let scheduler = TASK
        .with(|t| t.borrow().as_ref().map(|c| c.scheduler.clone()))
        .ok_or_else(|| outside_task("get_client"))?;
    Ok(Client::from_inner(worker_client(&scheduler)?))
}

/// The shared worker client of the scheduler at `addr`.
pub(crate) fn worker_client(addr: &str) -> Result<Arc<Inner>> {
    let mut clients = WORKER_CLIENTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let map = clients.get_or_insert_with(HashMap::new);
    if let Some(inner) = map.get(addr) {
        if !inner.is_closed() {
            return Ok(inner.clone());
        }
    }
    // A lost connection is dropped on a plain thread (a runtime may not be
    // dropped inside another).
    if let Some(gone) = map.remove(addr) {
        std::thread::spawn(move || drop(gone));
    }
    let in_process = is_local_scheduler(addr);
    let owned = addr.to_owned();
    let security = crate::coordination::task_security();
    // Connect from a plain thread: a task's thread belongs to the worker's
    // runtime, where the client's own runtime cannot be started.
    let inner = std::thread::spawn(move || Inner::connect_shared(&owned, in_process, security))
        .join()
        .map_err(|_| Error::Malformed {
            what: "worker client",
            detail: "the connecting thread panicked (bug)".into(),
        })??;
    map.insert(addr.to_owned(), inner.clone());
    Ok(inner)
}
