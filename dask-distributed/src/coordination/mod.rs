//! Coordination primitives shared by every client and task of a cluster,
//! held on the scheduler: [`Lock`], [`Semaphore`], [`Queue`], [`Variable`],
//! [`Event`], and publish/subscribe ([`Pub`], [`Sub`]).
//!
//! Each primitive is named: two handles with the same name, in any client or
//! task, are the same primitive (each kind has its own namespace). Every
//! blocking call takes a timeout and gives [`Error::Timeout`] when it
//! passes; the scheduler parks waiting requests and answers them when the
//! resource frees or the deadline passes. Whatever a client holds (locks,
//! semaphore leases) is released when its connection to the scheduler ends,
//! so another client can proceed; a live holder that stops responding but
//! keeps its connection open is not detected.
//!
//! Values put in a [`Queue`] or [`Variable`] cross processes: their type
//! needs a codec (`dask_core::register_codec!`); one without gives
//! `dask_core::Error::NoCodec` before anything is sent.
//!
//! Every wait has a blocking form (like the blocking [`Client`]) and an
//! async one (`acquire_async`, `get_async`, `wait_async`, ..., for
//! [`AsyncClient`](crate::AsyncClient) users): the async forms wait on the
//! client's own runtime, never blocking the caller's.
//!
//! [`Queue`] and [`Variable`] also hold futures ([`Queue::put_future`],
//! [`Variable::set_future`]): the scheduler keeps the future's value while
//! the queue or variable holds it, even if every client drops its own
//! future; a client that gets it ([`Queue::get_future`],
//! [`Variable::get_future`]) holds it from then on, like Dask.
//!
//! Handles are made from a [`Client`] (they use its connection), from a
//! scheduler address, or, inside a task running on a worker, from
//! [`Coordinator::for_task`] (the worker tells its tasks the scheduler's
//! address: [`worker_scheduler_address`]). Tasks of one process share one
//! connection per scheduler, so what a task holds is released when its
//! worker *process* dies, not when a thread worker of a
//! [`LocalCluster`](crate::LocalCluster) is killed: in tasks, prefer [`Lock::lock`] and
//! [`Semaphore::lease`], whose guards release even when the task fails.
//!
//! ```
//! use std::time::Duration;
//! use dask_distributed::coordination::{Coordinator, Lock};
//!
//! /// A task body: runs under the cluster-wide lock "db".
//! fn write_row(row: u64) -> Result<u64, dask_distributed::Error> {
//!     let coord = Coordinator::for_task()?; // Err outside a task
//!     let lock = Lock::new(&coord, "db")?;
//!     let _held = lock.lock(Duration::from_secs(30))?;
//!     Ok(row) // ... write while holding it
//! }
//! assert!(write_row(1).is_err(), "not in a task here");
//! ```
//!
//! ```
//! use std::time::Duration;
//! use dask_distributed::coordination::{Lock, Variable};
//! use dask_distributed::LocalCluster;
//!
//! let cluster = LocalCluster::builder().n_workers(1).threads_per_worker(1).start()?;
//! let client = cluster.client()?;
//! let lock = Lock::new(&client, "counter-lock")?;
//! let counter = Variable::new(&client, "counter")?;
//! counter.set(0u64)?;
//! lock.acquire(Duration::from_secs(5))?;
//! let n: u64 = counter.get(Duration::from_secs(5))?;
//! counter.set(n + 1)?;
//! lock.release()?;
//! assert_eq!(counter.get::<u64>(Duration::from_secs(5))?, 1);
//! # Ok::<(), dask_distributed::Error>(())
//! ```

mod event;
mod lock;
mod pubsub;
mod queue;
mod semaphore;
mod variable;

pub use event::Event;
pub use lock::{Lock, LockGuard};
pub use pubsub::{Pub, Sub};
pub use queue::Queue;
pub use semaphore::{Semaphore, SemaphoreGuard};
pub use variable::Variable;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dask_core::Value;

use crate::client::Inner;
use crate::scheduler::coordination::{CoordReply, CoordRequest, Encoded, FUTURE_TAG};
use crate::{Client, Error, Result};

/// How much longer than a request's own timeout the client waits for the
/// scheduler's answer before giving up on an unresponsive scheduler.
const GRACE: Duration = Duration::from_secs(10);

thread_local! {
    static TASK_SCHEDULER: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
    /// The running task's worker's credentials, for its connection to the scheduler.
    static TASK_SECURITY: RefCell<Option<crate::Security>> = const { RefCell::new(None) };
}

/// The address of the scheduler of the worker running the current task, or
/// `None` outside a task. Workers set it for every task they run, so a task
/// can reach the cluster's primitives ([`Coordinator::for_task`]).
pub fn worker_scheduler_address() -> Option<String> {
    TASK_SCHEDULER.with(|s| s.borrow().as_deref().map(str::to_owned))
}

/// Runs `f` (a task) with [`worker_scheduler_address`] giving `scheduler`.
/// The worker's `security` is used for the task's connection to it.
pub(crate) fn in_task<T>(
    scheduler: &Arc<str>,
    security: &crate::Security,
    f: impl FnOnce() -> T,
) -> T {
    let previous = TASK_SCHEDULER.with(|s| s.replace(Some(scheduler.clone())));
    let previous_security = TASK_SECURITY.with(|s| s.replace(Some(security.clone())));
    let result = f();
    TASK_SCHEDULER.with(|s| *s.borrow_mut() = previous);
    TASK_SECURITY.with(|s| *s.borrow_mut() = previous_security);
    result
}

/// The token and TLS of the worker running the current task (the default,
/// none, outside tasks).
pub(crate) fn task_security() -> crate::Security {
    TASK_SECURITY
        .with(|s| s.borrow().clone())
        .unwrap_or_default()
}

/// A connection that coordination primitives talk to the scheduler over:
/// a [`Client`]'s, or one shared per scheduler address by this process.
#[derive(Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Coordinator")
    }
}

/// Connections opened by [`Coordinator::connect`], one per address.
static SHARED: Mutex<Option<HashMap<String, Arc<Inner>>>> = Mutex::new(None);

/// The scheduler at `addr` is being shut down in this process: its shared
/// connection (if any) closes on purpose, without reconnecting or saying it
/// lost the scheduler.
pub(crate) fn close_shared(addr: &str) {
    let gone = SHARED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_mut()
        .and_then(|map| map.remove(addr));
    if let Some(inner) = gone {
        inner.mark_closed();
        // Dropped on a plain thread: a runtime may not be dropped inside another.
        std::thread::spawn(move || drop(inner));
    }
}

impl Coordinator {
    /// The connection of `client`: what handles made from it hold is
    /// released when the client (and every handle and future of it) is gone.
    pub fn from_client(client: &Client) -> Coordinator {
        Coordinator {
            inner: client.inner().clone(),
        }
    }

    /// This process's shared connection to the scheduler at `addr` (opened
    /// on first use, reopened if it was lost). Works from any thread,
    /// including a task's.
    pub fn connect(addr: &str) -> Result<Coordinator> {
        Coordinator::connect_with(addr, &crate::Security::default())
    }

    /// [`Coordinator::connect`] with a token or TLS (the first connection
    /// to `addr` decides; later calls share it).
    pub fn connect_with(addr: &str, security: &crate::Security) -> Result<Coordinator> {
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        let map = shared.get_or_insert_with(HashMap::new);
        if let Some(inner) = map.get(addr) {
            if !inner.is_closed() {
                return Ok(Coordinator {
                    inner: inner.clone(),
                });
            }
        }
        // Let go of connections to schedulers that went away (dropped on a
        // plain thread: a runtime may not be dropped inside another).
        let gone: Vec<String> = map
            .iter()
            .filter(|(_, inner)| inner.is_closed())
            .map(|(a, _)| a.clone())
            .collect();
        let gone: Vec<Arc<Inner>> = gone.iter().filter_map(|a| map.remove(a)).collect();
        if !gone.is_empty() {
            std::thread::spawn(move || drop(gone));
        }
        // Connect from a plain thread: a task's thread belongs to a tokio
        // runtime, where the client's own runtime cannot be started.
        let owned = addr.to_owned();
        let security = security.clone();
        let inner = std::thread::spawn(move || {
            Client::connect_with(&owned, security).map(|c| c.inner().clone())
        })
        .join()
        .map_err(|_| Error::Malformed {
            what: "coordination",
            detail: "the connecting thread panicked (bug)".into(),
        })??;
        map.insert(addr.to_owned(), inner.clone());
        Ok(Coordinator { inner })
    }

    /// From inside a task running on a worker: the shared connection to
    /// that worker's scheduler.
    ///
    /// Errors: [`Error::InvalidConfig`] outside a task.
    pub fn for_task() -> Result<Coordinator> {
        let addr = worker_scheduler_address().ok_or_else(|| Error::InvalidConfig {
            message: "Coordinator::for_task was called outside a task running on a worker: \
                      pass a Client or the scheduler's address instead"
                .into(),
        })?;
        Coordinator::connect_with(&addr, &task_security())
    }

    /// Sends `request` and waits for the answer. `wait` is the request's
    /// own timeout (None: answered at once); `what` names the wait in
    /// timeout errors.
    fn request(
        &self,
        request: CoordRequest,
        wait: Option<Duration>,
        what: &dyn Fn() -> String,
    ) -> Result<CoordReply> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.inner.coordination(
            request,
            Box::new(move |reply| {
                let _ = tx.send(reply);
            }),
        )?;
        let limit = grace_limit(wait);
        let reply = match rx.recv_timeout(limit) {
            Ok(reply) => reply,
            Err(RecvTimeoutError::Disconnected) => return Err(self.inner.lost()),
            Err(RecvTimeoutError::Timeout) => CoordReply::TimedOut,
        };
        self.claim(&reply)?;
        checked(reply, wait, limit, &what())
    }

    /// [`Coordinator::request`] for async code: the wait runs on the
    /// client's runtime, so the caller's runtime is never blocked (and needs
    /// no timer of its own). If the caller stops waiting (drops the
    /// future) and the request succeeds later, `undo` is sent (a lock or
    /// lease granted to nobody is given back) and a future received is let
    /// go; an item taken from a queue that way is lost, as in Dask.
    async fn request_async(
        &self,
        request: CoordRequest,
        wait: Option<Duration>,
        what: String,
        undo: Option<CoordRequest>,
    ) -> Result<CoordReply> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner.coordination(
            request,
            Box::new(move |reply| {
                let _ = tx.send(reply);
            }),
        )?;
        let limit = grace_limit(wait);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Result<CoordReply>>();
        let coord = self.clone();
        self.inner.spawn(async move {
            let reply = match tokio::time::timeout(limit, rx).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(_)) => {
                    let _ = done_tx.send(Err(coord.inner.lost()));
                    return;
                }
                Err(_) => CoordReply::TimedOut,
            };
            let claimed = coord.claim(&reply).map(|()| reply);
            if let Err(Ok(reply)) = done_tx.send(claimed) {
                coord.abandon(reply, undo);
            }
        });
        let reply = done_rx.await.map_err(|_| self.inner.lost())??;
        checked(reply, wait, limit, &what)
    }

    /// A future received in `reply`: the scheduler made this client want
    /// its key; count it here too (the caller's `Future` owns the count).
    fn claim(&self, reply: &CoordReply) -> Result<()> {
        if let CoordReply::Value(v) = reply {
            if let Some((key, _)) = future_parts(v) {
                self.inner.want_known(&key)?;
            }
        }
        Ok(())
    }

    /// The caller of an async request went away before its answer came.
    fn abandon(&self, reply: CoordReply, undo: Option<CoordRequest>) {
        match reply {
            CoordReply::Done => {
                if let Some(undo) = undo {
                    self.send(undo);
                }
            }
            CoordReply::Value(v) => {
                if let Some((key, _)) = future_parts(&v) {
                    self.inner.release(&[key]);
                }
            }
            _ => {}
        }
    }

    /// The value of a get's reply. A future found instead is let go
    /// (the item is consumed) and refused.
    fn value(&self, reply: CoordReply, what: &str) -> Result<Value> {
        match reply {
            CoordReply::Value(e) => match future_parts(&e) {
                Some((key, type_name)) => {
                    self.inner.release(std::slice::from_ref(&key));
                    Err(Error::Coordination {
                        message: format!(
                            "{what} holds a future ({key}, of {type_name}), not a value: get it \
                             with get_future (the item was consumed)"
                        ),
                    })
                }
                None => Ok(dask_core::codec::decode_value(&e.tag, &e.bytes)?),
            },
            other => Err(unexpected(other)),
        }
    }

    /// The future of a get's reply, held by this connection's client. A
    /// plain value, or a future of another type, is refused.
    fn future<T>(&self, reply: CoordReply, what: &str) -> Result<crate::Future<T>> {
        match reply {
            CoordReply::Value(e) => match future_parts(&e) {
                Some((key, type_name)) => {
                    let future = crate::Future {
                        key,
                        inner: self.inner.clone(),
                        _type: std::marker::PhantomData,
                    };
                    if type_name != std::any::type_name::<T>() {
                        return Err(Error::Coordination {
                            message: format!(
                                "{what} holds a future of {type_name}, not of {}: ask for the \
                                 type that was put (the item was consumed)",
                                std::any::type_name::<T>()
                            ),
                        });
                    }
                    Ok(future)
                }
                None => Err(Error::Coordination {
                    message: format!(
                        "{what} holds a value ({}), not a future: get it with get (the item \
                         was consumed)",
                        e.tag
                    ),
                }),
            },
            other => Err(unexpected(other)),
        }
    }

    /// Sends `request` without waiting for the answer (best-effort
    /// releases from `Drop`).
    fn send(&self, request: CoordRequest) {
        let _ = self.inner.coordination(request, Box::new(|_| {}));
    }

    /// Gives a lock or lease back from a guard's `Drop`: waits (at most
    /// [`GRACE`]) until the scheduler has it, as Dask's `with`
    /// blocks do, where this thread may block (a plain thread or a task's
    /// thread), so whatever this thread does next (a task returning its
    /// result, say) happens after the release. Inside an async runtime
    /// (a guard of `lease_async`/`acquire_async` dropped there) it is sent
    /// without waiting: blocking would stall the runtime.
    fn release_from_drop(&self, request: CoordRequest) {
        let may_block = tokio::runtime::Handle::try_current().is_err()
            || crate::worker_client::in_task_thread();
        if may_block {
            let _ = self.request(request, None, &|| "a release".into());
        } else {
            self.send(request);
        }
    }
}

/// What coordination handles can be made from: a [`Client`], a
/// [`Coordinator`], or a scheduler address (`str`/`String`).
pub trait CoordinationTarget {
    /// The connection to use.
    fn coordinator(&self) -> Result<Coordinator>;
}

impl CoordinationTarget for Client {
    fn coordinator(&self) -> Result<Coordinator> {
        Ok(Coordinator::from_client(self))
    }
}

impl CoordinationTarget for Coordinator {
    fn coordinator(&self) -> Result<Coordinator> {
        Ok(self.clone())
    }
}

impl CoordinationTarget for str {
    fn coordinator(&self) -> Result<Coordinator> {
        Coordinator::connect(self)
    }
}

impl CoordinationTarget for String {
    fn coordinator(&self) -> Result<Coordinator> {
        Coordinator::connect(self)
    }
}

/// A primitive's name, checked.
fn checked_name(kind: &str, name: String) -> Result<String> {
    if name.is_empty() {
        return Err(Error::InvalidConfig {
            message: format!(
                "a {kind} needs a non-empty name: every handle with the same name shares it"
            ),
        });
    }
    Ok(name)
}

/// A fresh holder / lease id, unique in this process.
fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A timeout as the wire's milliseconds (a nonzero wait is at least 1 ms).
fn millis(timeout: Duration) -> u64 {
    if timeout.is_zero() {
        return 0;
    }
    u64::try_from(timeout.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// How long a client waits for the scheduler's answer to a request that
/// may wait `wait`.
fn grace_limit(wait: Option<Duration>) -> Duration {
    wait.unwrap_or(Duration::ZERO).saturating_add(GRACE)
}

/// A reply as the caller's result: timeouts and refusals as errors.
fn checked(
    reply: CoordReply,
    wait: Option<Duration>,
    limit: Duration,
    what: &str,
) -> Result<CoordReply> {
    match reply {
        CoordReply::TimedOut => Err(Error::Timeout {
            what: what.to_owned(),
            seconds: wait.unwrap_or(limit).as_secs_f64(),
        }),
        CoordReply::Refused(message) => Err(Error::Coordination { message }),
        other => Ok(other),
    }
}

/// A future as a queue item or variable value: its key and value type.
fn encode_future<T>(future: &crate::Future<T>) -> Result<Encoded> {
    let bytes =
        postcard::to_allocvec(&(future.key(), std::any::type_name::<T>())).map_err(|source| {
            Error::Encode {
                what: "future",
                source,
            }
        })?;
    Ok(Encoded {
        tag: FUTURE_TAG.to_owned(),
        bytes,
    })
}

/// The key and value type of a future-tagged value.
fn future_parts(value: &Encoded) -> Option<(dask_core::Key, String)> {
    (value.tag == FUTURE_TAG)
        .then(|| postcard::from_bytes(&value.bytes).ok())
        .flatten()
}

/// Encodes a value with its registered codec.
fn encode(value: &Value) -> Result<Encoded> {
    let (tag, bytes) = dask_core::codec::encode_value(value)?;
    Ok(Encoded {
        tag: tag.to_owned(),
        bytes,
    })
}

fn unexpected(reply: CoordReply) -> Error {
    Error::Malformed {
        what: "coordination",
        detail: format!("unexpected reply {reply:?} (bug)"),
    }
}
