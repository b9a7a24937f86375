//! Actors: a stateful object living on one worker, whose methods run there,
//! one call at a time, like Dask's actors (`client.submit(Cls, actor=True)`).
//!
//! [`Client::submit_actor`] sends the initial state to one worker (picked
//! round robin among the connected workers) and returns an [`ActorHandle`]
//! once the actor exists. [`ActorHandle::call`] runs a method on it and
//! returns an [`ActorFuture`] at once: `.result()` blocks, `.await` does not.
//! Calls go from the caller straight to the worker's data port (no scheduler
//! hop, as in Dask), over one connection per worker and process: the calls
//! of one caller run in the order they were made; calls of several callers
//! interleave, but never overlap (the state is behind a lock).
//!
//! Methods are plain functions `fn(&mut A, args..) -> R` (usually `&mut self`
//! methods), registered with the type by [`register_actor!`](crate::register_actor),
//! on thread workers too: a call names its method by a registered tag and
//! carries its arguments with their codecs, so a method the actor does not
//! have is refused before anything is sent ([`Error::UnknownActorMethod`]),
//! and a worker of another binary that lacks it refuses it the same way.
//! Arguments and results need codecs (`dask_core::register_codec!`; common
//! std types have them). [`ActorHandle::state`] reads a copy of the whole
//! state (Dask's attribute access).
//!
//! Lifetime: the actor lives while any clone of the client's handle lives
//! (reference counted by the client, like futures); dropping the last one
//! releases it on the cluster and the worker drops the state. A handle can
//! be passed to tasks: in-process (a [`LocalCluster`](crate::LocalCluster)
//! owned by the client) it is the same handle; to worker processes it
//! travels by its codec (registered by `register_actor!`) and the copy does
//! not keep the actor alive by itself: keep the client's handle while tasks
//! use it.
//!
//! Failure: an actor is never recreated. If its worker dies, calls in flight
//! and later calls give [`Error::ActorLost`]; a method that fails or panics
//! gives [`Error::ActorCallFailed`] and the actor takes further calls.
//!
//! ```
//! use dask_distributed::{Client, LocalCluster};
//!
//! #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
//! struct Counter {
//!     n: u64,
//! }
//!
//! impl Counter {
//!     fn increment(&mut self) -> u64 {
//!         self.n += 1;
//!         self.n
//!     }
//!     fn add(&mut self, x: u64) -> u64 {
//!         self.n += x;
//!         self.n
//!     }
//! }
//! dask_distributed::register_actor!(Counter { increment, add });
//!
//! let cluster = LocalCluster::builder().n_workers(1).threads_per_worker(1).start()?;
//! let client = cluster.client()?;
//! let counter = client.submit_actor(Counter::default())?;
//! let first = counter.call(Counter::increment, ())?;
//! let second = counter.call(Counter::add, (10u64,))?;
//! assert_eq!(first.result()?, 1);
//! assert_eq!(second.result()?, 11);
//! assert_eq!(counter.state()?.result()?.n, 11);
//! # Ok::<(), dask_distributed::Error>(())
//! ```

use std::any::{type_name, Any, TypeId};
use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use dask_core::op::{op_name, registry};
use dask_core::{codec, Arg, BoxError, Key, Op, Task, Value};
use tokio::runtime::Runtime;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use crate::client::{Inner, NewTask, Reported, TaskOptions};
use crate::local::Memory;
use crate::messages::{self, PeerReply, PeerRequest};
use crate::protocol::{self, decode_task, encode_task, Limits, Message, Role, WireTask};
use crate::{Client, Error, Result};

/// How long connecting to an actor's worker may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often [`Client::submit_actor`] checks that the chosen worker is
/// still there while the actor is being created.
const CREATE_CHECK: Duration = Duration::from_millis(500);

/// The value an actor's worker holds: the state, behind the lock that makes
/// calls one at a time.
struct ActorCell<A>(Mutex<A>);

/// The op that creates an actor on its worker: it moves the initial state
/// into the actor's cell, once (an actor is never recreated: its state
/// would be lost silently).
#[doc(hidden)]
pub struct ActorInit<A> {
    init: Mutex<Option<A>>,
    name: String,
}

impl<A: Send + 'static> ActorInit<A> {
    fn new(init: A) -> ActorInit<A> {
        ActorInit {
            init: Mutex::new(Some(init)),
            name: format!("actor-{}", short_type_name::<A>()),
        }
    }
}

impl<A: Send + 'static> Op for ActorInit<A> {
    fn name(&self) -> &str {
        &self.name
    }

    fn call(&self, args: &[Value]) -> std::result::Result<Value, BoxError> {
        if !args.is_empty() {
            return Err(format!("{} takes no arguments, got {}", self.name, args.len()).into());
        }
        let state = self
            .init
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| -> BoxError {
                format!(
                    "actor {} was created once already; its state is not recreated \
                     (create a new actor)",
                    type_name::<A>()
                )
                .into()
            })?;
        Ok(Value::new(ActorCell(Mutex::new(state))))
    }
}

/// Rebuilds an [`ActorInit`] from its initial state's bytes; used by
/// [`register_actor!`](crate::register_actor).
#[doc(hidden)]
pub fn __init_build<A>(params: &[u8]) -> std::result::Result<Arc<dyn Op>, BoxError>
where
    A: serde::de::DeserializeOwned + Send + 'static,
{
    let state: A = postcard::from_bytes(params)
        .map_err(|e| format!("initial state of actor {}: {e}", type_name::<A>()))?;
    Ok(Arc::new(ActorInit::new(state)))
}

/// Encodes an [`ActorInit`]'s initial state; used by
/// [`register_actor!`](crate::register_actor).
#[doc(hidden)]
pub fn __init_encode<A>(op: &dyn Any) -> std::result::Result<Vec<u8>, BoxError>
where
    A: serde::Serialize + Send + 'static,
{
    let op = op
        .downcast_ref::<ActorInit<A>>()
        .ok_or_else(|| -> BoxError {
            format!(
                "op is not an ActorInit<{}> (bug in dask-rs)",
                type_name::<A>()
            )
            .into()
        })?;
    let init = op.init.lock().unwrap_or_else(PoisonError::into_inner);
    let state = init.as_ref().ok_or_else(|| -> BoxError {
        format!("actor {} was created already", type_name::<A>()).into()
    })?;
    Ok(postcard::to_allocvec(state)?)
}

/// A method as an op: argument 0 is the actor's cell, the rest the call's
/// arguments. Built by [`ActorMethod::into_op`].
#[doc(hidden)]
pub struct MethodOp<S, F, M> {
    f: F,
    name: String,
    tag: Option<&'static str>,
    _marker: PhantomData<fn() -> (S, M)>,
}

/// A function that can be called as a method of actor `A`:
/// `Fn(&mut A, A0, ..) -> R` with up to 4 arguments. `M` is its signature
/// marker.
pub trait ActorMethod<A, M>: Send + Sync + 'static {
    /// The arguments, as a tuple type.
    type Args;
    /// What the method returns.
    type Output: Any + Send + Sync;
    /// The method as an op on the actor's cell.
    fn into_op(self) -> Arc<dyn Op>;
}

/// A tuple of method arguments, turned into values.
pub trait MethodArgs {
    /// The values, in order.
    fn into_values(self) -> Vec<Value>;
}

fn arg<T: Any + Clone>(args: &[Value], i: usize) -> std::result::Result<T, BoxError> {
    args[i]
        .downcast_ref::<T>()
        .cloned()
        .map_err(|e| -> BoxError { format!("argument {}: {e}", i - 1).into() })
}

fn cell<'a, S: Send + 'static>(
    args: &'a [Value],
    expected: usize,
    name: &str,
) -> std::result::Result<&'a ActorCell<S>, BoxError> {
    if args.len() != expected + 1 {
        return Err(format!(
            "method `{name}` takes {expected} arguments, the call gave {}",
            args.len().saturating_sub(1)
        )
        .into());
    }
    args[0]
        .downcast_ref::<ActorCell<S>>()
        .map_err(|_| -> BoxError {
            format!(
                "method `{name}` belongs to actor {}, and this actor is not one",
                type_name::<S>()
            )
            .into()
        })
}

macro_rules! methods {
    ($( $n:literal => ($($a:ident $i:tt),*) );* $(;)?) => {$(
        impl<S, F, R, $($a,)*> Op for MethodOp<S, F, fn(&mut S, $($a,)*) -> R>
        where
            S: Send + 'static,
            F: Fn(&mut S, $($a,)*) -> R + Send + Sync + 'static,
            R: Any + Send + Sync,
            $($a: Any + Send + Sync + Clone,)*
        {
            fn name(&self) -> &str {
                &self.name
            }
            fn call(&self, args: &[Value]) -> std::result::Result<Value, BoxError> {
                let cell = cell::<S>(args, $n, &self.name)?;
                let mut state = cell.0.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(Value::new((self.f)(&mut state, $(arg::<$a>(args, $i + 1)?,)*)))
            }
            fn tag(&self) -> Option<&str> {
                self.tag
            }
        }

        impl<S, F, R, $($a,)*> ActorMethod<S, fn(&mut S, $($a,)*) -> R> for F
        where
            S: Send + 'static,
            F: Fn(&mut S, $($a,)*) -> R + Send + Sync + 'static,
            R: Any + Send + Sync,
            $($a: Any + Send + Sync + Clone,)*
        {
            type Args = ($($a,)*);
            type Output = R;
            fn into_op(self) -> Arc<dyn Op> {
                Arc::new(MethodOp::<S, F, fn(&mut S, $($a,)*) -> R> {
                    name: op_name::<F>(),
                    tag: registry().tag_of(TypeId::of::<F>()),
                    f: self,
                    _marker: PhantomData,
                })
            }
        }

        impl<$($a: Any + Send + Sync,)*> MethodArgs for ($($a,)*) {
            #[allow(non_snake_case, clippy::unused_unit)]
            fn into_values(self) -> Vec<Value> {
                let ($($a,)*) = self;
                vec![$(Value::new($a)),*]
            }
        }
    )*};
}

methods! {
    0 => ();
    1 => (A0 0);
    2 => (A0 0, A1 1);
    3 => (A0 0, A1 1, A2 2);
    4 => (A0 0, A1 1, A2 2, A3 3);
}

/// A method as an op; used by [`register_actor!`](crate::register_actor).
#[doc(hidden)]
pub fn __method_op<S, F: ActorMethod<S, M>, M>(f: F) -> Arc<dyn Op> {
    f.into_op()
}

/// The built-in method behind [`ActorHandle::state`]: a copy of the state.
pub fn state_copy<A: Clone>(state: &mut A) -> A {
    state.clone()
}

/// Encodes an [`ActorHandle`] (its actor's key and worker); used by
/// [`register_actor!`](crate::register_actor).
#[doc(hidden)]
pub fn __handle_encode<A: 'static>(value: &Value) -> std::result::Result<Vec<u8>, BoxError> {
    let handle = value.downcast_ref::<ActorHandle<A>>()?;
    Ok(postcard::to_allocvec(&(
        &handle.shared.key,
        &handle.shared.worker,
    ))?)
}

/// Decodes an [`ActorHandle`] (one that does not keep the actor alive);
/// used by [`register_actor!`](crate::register_actor).
#[doc(hidden)]
pub fn __handle_decode<A: 'static>(bytes: &[u8]) -> std::result::Result<Value, BoxError> {
    let (key, worker): (Key, String) = postcard::from_bytes(bytes)?;
    Ok(Value::new(ActorHandle::<A> {
        shared: Arc::new(HandleShared {
            key,
            worker,
            owner: None,
            security: crate::coordination::task_security(),
        }),
        _type: PhantomData,
    }))
}

/// Registers an actor type and its methods, so that worker processes can
/// create it and run its methods, and so that calls can name them:
/// `register_actor!(Counter { increment, add })` for methods
/// `Counter::increment` and `Counter::add` (functions `fn(&mut Counter, ..)`).
///
/// The type needs `serde::Serialize + serde::Deserialize` (its initial state
/// travels to the worker, and [`ActorHandle::state`] brings a copy back;
/// this registers its codec) and `Clone`. Handles of the type get a codec
/// too, so they can be passed to tasks on worker processes. Use it once
/// per type, at module level, in a crate that worker processes link.
#[macro_export]
macro_rules! register_actor {
    ($t:ident { $($m:ident),* $(,)? }) => {
        $crate::__dask_core::__private::inventory::submit! {
            $crate::__dask_core::op::OpRegistration {
                tag: || concat!(module_path!(), "::", stringify!($t), "::<actor-init>"),
                type_id: || ::std::any::TypeId::of::<$crate::actor::ActorInit<$t>>(),
                build: $crate::actor::__init_build::<$t>,
                encode: ::std::option::Option::Some($crate::actor::__init_encode::<$t>),
            }
        }
        $crate::__dask_core::__private::inventory::submit! {
            $crate::__dask_core::op::OpRegistration {
                tag: || concat!(module_path!(), "::", stringify!($t), "::<state>"),
                type_id: || $crate::__dask_core::op::type_id_of_val(&$crate::actor::state_copy::<$t>),
                build: |_params| ::std::result::Result::Ok(
                    $crate::actor::__method_op::<$t, _, _>($crate::actor::state_copy::<$t>)
                ),
                encode: ::std::option::Option::None,
            }
        }
        $(
            $crate::__dask_core::__private::inventory::submit! {
                $crate::__dask_core::op::OpRegistration {
                    tag: || concat!(module_path!(), "::", stringify!($t), "::", stringify!($m)),
                    type_id: || $crate::__dask_core::op::type_id_of_val(&$t::$m),
                    build: |_params| ::std::result::Result::Ok(
                        $crate::actor::__method_op::<$t, _, _>($t::$m)
                    ),
                    encode: ::std::option::Option::None,
                }
            }
        )*
        $crate::__dask_core::__private::inventory::submit! {
            $crate::__dask_core::codec::CodecRegistration {
                tag: || ::std::any::type_name::<$crate::actor::ActorHandle<$t>>(),
                type_id: || ::std::any::TypeId::of::<$crate::actor::ActorHandle<$t>>(),
                encode: $crate::actor::__handle_encode::<$t>,
                decode: $crate::actor::__handle_decode::<$t>,
            }
        }
        $crate::__dask_core::register_codec!($t);
    };
}

/// What a handle points at; the client's count on the actor's key is let
/// go when the last clone of an owning handle is dropped.
struct HandleShared {
    key: Key,
    /// The data address of the worker holding the actor.
    worker: String,
    /// The client holding the actor alive (`None`: a copy decoded in a task).
    owner: Option<Arc<Inner>>,
    /// The token and TLS that calls present to the worker.
    security: crate::Security,
}

impl Drop for HandleShared {
    fn drop(&mut self) {
        if let Some(inner) = &self.owner {
            inner.release(std::slice::from_ref(&self.key));
        }
    }
}

/// A handle on an actor of type `A` (see the [module docs](self)). Cheap to
/// clone; the actor lives while a clone of the client's handle lives.
pub struct ActorHandle<A> {
    shared: Arc<HandleShared>,
    _type: PhantomData<fn() -> A>,
}

impl<A> Clone for ActorHandle<A> {
    fn clone(&self) -> Self {
        ActorHandle {
            shared: self.shared.clone(),
            _type: PhantomData,
        }
    }
}

impl<A> std::fmt::Debug for ActorHandle<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ActorHandle<{}>({} on {})",
            short_type_name::<A>(),
            self.shared.key,
            self.shared.worker
        )
    }
}

impl<A: Send + 'static> ActorHandle<A> {
    /// The actor's key on the cluster (what [`Client::task_state`] takes).
    pub fn key(&self) -> &Key {
        &self.shared.key
    }

    /// The data address of the worker holding the actor.
    pub fn worker(&self) -> &str {
        &self.shared.worker
    }

    /// Calls `method` (a registered method of `A`) with `args` (a tuple) on
    /// the actor's worker, and returns its future at once. Calls made one
    /// after the other from this process run in that order.
    ///
    /// Errors: [`Error::UnknownActorMethod`] for a method not registered
    /// with [`register_actor!`](crate::register_actor); an argument without a
    /// codec (in [`Error::Core`]); [`Error::ActorLost`] if the worker is gone.
    pub fn call<F, M>(&self, method: F, args: F::Args) -> Result<ActorFuture<F::Output>>
    where
        F: ActorMethod<A, M>,
        F::Args: MethodArgs,
    {
        let op = method.into_op();
        let name = op.name().to_owned();
        let args = args.into_values().into_iter().map(Arg::Value).collect();
        let task = Task::new(op, args);
        let (wire, frames) = encode_task(&self.shared.key, &task).map_err(|e| match e {
            Error::Core(dask_core::Error::OpNotRegistered { .. }) => Error::UnknownActorMethod {
                actor_type: type_name::<A>().to_owned(),
                method: name.clone(),
                detail: format!(
                    "`{name}` is not registered for it: list it in \
                     `register_actor!({} {{ {name}, .. }})`",
                    short_type_name::<A>()
                ),
            },
            other => other,
        })?;
        let request = PeerRequest::ActorCall {
            key: self.shared.key.clone(),
            task: wire,
        };
        let message = messages::message_with("actor-call", &request, frames)?;
        let rx = connection(&self.shared.worker, &self.shared.security)
            .and_then(|conn| conn.send(message))
            .map_err(|reason| self.lost(reason))?;
        Ok(ActorFuture {
            rx,
            actor: self.shared.key.to_string(),
            worker: self.shared.worker.clone(),
            actor_type: type_name::<A>(),
            method: name,
            _type: PhantomData,
        })
    }

    /// A copy of the actor's whole state, read on its worker between calls
    /// (Dask's attribute access). The type's codec is registered by
    /// [`register_actor!`](crate::register_actor).
    pub fn state(&self) -> Result<ActorFuture<A>>
    where
        A: Clone + Sync,
    {
        self.call(state_copy::<A>, ())
    }

    fn lost(&self, reason: String) -> Error {
        Error::ActorLost {
            actor: self.shared.key.to_string(),
            worker: self.shared.worker.clone(),
            reason,
        }
    }
}

/// The result of an actor method call, on its way: [`ActorFuture::result`]
/// blocks, `.await` does not (inside a tokio runtime).
pub struct ActorFuture<R> {
    rx: oneshot::Receiver<CallReply>,
    actor: String,
    worker: String,
    actor_type: &'static str,
    method: String,
    _type: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for ActorFuture<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ActorFuture({}.{})", self.actor, self.method)
    }
}

impl<R: Any + Clone + Send + Sync> ActorFuture<R> {
    /// Waits for the method's result. Ends with [`Error::ActorLost`] if the
    /// worker dies meanwhile, never hangs on a dead worker.
    pub fn result(self) -> Result<R> {
        self.wait(None)
    }

    /// [`ActorFuture::result`], giving [`Error::Timeout`] if the method has
    /// not answered within `limit` (it keeps running on the worker).
    pub fn result_timeout(self, limit: Duration) -> Result<R> {
        self.wait(Some(limit))
    }

    fn wait(self, limit: Option<Duration>) -> Result<R> {
        if tokio::runtime::Handle::try_current().is_ok() && !crate::worker_client::in_task_thread()
        {
            return Err(Error::InsideRuntime);
        }
        let ActorFuture {
            rx,
            actor,
            worker,
            actor_type,
            method,
            ..
        } = self;
        let context = CallContext {
            actor,
            worker,
            actor_type,
            method,
        };
        let received = runtime()?.block_on(async move {
            match limit {
                Some(limit) => tokio::time::timeout(limit, rx).await.ok(),
                None => Some(rx.await),
            }
        });
        match received {
            Some(reply) => context.decode(reply),
            None => Err(Error::Timeout {
                what: format!("method `{}` of actor {}", context.method, context.actor),
                seconds: limit.unwrap_or_default().as_secs_f64(),
            }),
        }
    }
}

/// `fut.await` inside a tokio runtime: the method's result.
impl<R: Any + Clone + Send + Sync> std::future::IntoFuture for ActorFuture<R> {
    type Output = Result<R>;
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<R>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let ActorFuture {
            rx,
            actor,
            worker,
            actor_type,
            method,
            ..
        } = self;
        let context = CallContext {
            actor,
            worker,
            actor_type,
            method,
        };
        Box::pin(async move { context.decode(rx.await) })
    }
}

/// A call's names, for its errors.
struct CallContext {
    actor: String,
    worker: String,
    actor_type: &'static str,
    method: String,
}

impl CallContext {
    fn decode<R: Any + Clone + Send + Sync>(
        self,
        reply: std::result::Result<CallReply, oneshot::error::RecvError>,
    ) -> Result<R> {
        let lost = |reason: String| Error::ActorLost {
            actor: self.actor.clone(),
            worker: self.worker.clone(),
            reason,
        };
        let message = reply
            .map_err(|_| lost("the connection to its worker was dropped".into()))?
            .map_err(lost)?;
        match messages::header::<PeerReply>("actor-reply", &message)? {
            PeerReply::Data { values } if values.len() == 1 && message.frames.len() == 1 => {
                let value = codec::decode_value(&values[0].1, &message.frames[0])?;
                Ok(value.take::<R>()?)
            }
            PeerReply::Missing { .. } => Err(lost(
                "its worker does not hold it (released, or the worker restarted)".into(),
            )),
            PeerReply::ActorFailed {
                unknown_method: true,
                message,
            } => Err(Error::UnknownActorMethod {
                actor_type: self.actor_type.to_owned(),
                method: self.method,
                detail: format!("its worker refused it: {message}"),
            }),
            PeerReply::ActorFailed {
                unknown_method: false,
                message,
            } => Err(Error::ActorCallFailed {
                actor: self.actor,
                method: self.method,
                message,
            }),
            other => Err(Error::Malformed {
                what: "actor-reply",
                detail: format!("unexpected reply {other:?}"),
            }),
        }
    }
}

impl Client {
    /// Creates an actor with initial state `init` on one worker (round robin
    /// among the connected workers) and returns its handle once it exists,
    /// like Dask's `client.submit(Cls, actor=True).result()`. See
    /// [`crate::actor`].
    ///
    /// Errors: [`Error::ActorNotRegistered`] on a cluster of other processes
    /// if `A` is not registered ([`register_actor!`](crate::register_actor));
    /// [`Error::NoWorkers`]; [`Error::ActorLost`] if the worker dies before
    /// the actor exists.
    pub fn submit_actor<A: Send + 'static>(&self, init: A) -> Result<ActorHandle<A>> {
        let inner = self.inner();
        let op: Arc<dyn Op> = Arc::new(ActorInit::new(init));
        if !inner.in_process() && op.tag().is_none() {
            return Err(Error::ActorNotRegistered {
                actor_type: short_type_name::<A>(),
            });
        }
        let workers = inner.block_on(inner.workers())??;
        if workers.is_empty() {
            return Err(Error::NoWorkers);
        }
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let pick = NEXT.fetch_add(1, Ordering::Relaxed) as usize % workers.len();
        let worker = workers[pick].addr.clone();
        let key = Key::named(format!(
            "actor-{}-{}",
            short_type_name::<A>().to_lowercase(),
            dask_core::tokenize::unique_token()
        ));
        // Restricted to its worker: if that worker dies, the actor is not
        // recreated elsewhere (its state is gone); handles report it lost.
        let options = TaskOptions {
            workers: Some(vec![worker.clone()]),
            ..TaskOptions::default()
        };
        let task = NewTask {
            key: key.clone(),
            task: Task::new(op, Vec::new()),
            dependencies: Vec::new(),
        };
        inner.submit_tasks(vec![task], &options)?;
        // The handle holds the key from here on: an error below releases it.
        let handle = ActorHandle {
            shared: Arc::new(HandleShared {
                key: key.clone(),
                worker: worker.clone(),
                owner: Some(inner.clone()),
                security: inner.security().clone(),
            }),
            _type: PhantomData,
        };
        let mut waiter = match inner.outcome_or_waiter(&key)? {
            Ok(outcome) => return self.created(handle, outcome),
            Err(waiter) => waiter,
        };
        loop {
            let waited =
                inner.wait_on(async { tokio::time::timeout(CREATE_CHECK, &mut waiter).await })?;
            match waited {
                Ok(Ok(outcome)) => return self.created(handle, outcome),
                Ok(Err(_)) => return Err(Error::Closed),
                Err(_) => {
                    let alive = inner.block_on(inner.workers())??;
                    if !alive.iter().any(|w| w.addr == worker) {
                        return Err(
                            handle.lost("its worker left before the actor was created".into())
                        );
                    }
                }
            }
        }
    }

    fn created<A: Send + 'static>(
        &self,
        handle: ActorHandle<A>,
        outcome: Reported,
    ) -> Result<ActorHandle<A>> {
        match outcome {
            Reported::Memory => Ok(handle),
            Reported::Erred(e) => Err(Error::Core(self.inner().failure(e))),
            Reported::Cancelled => Err(Error::Cancelled {
                key: handle.key().clone(),
            }),
        }
    }
}

/// Runs an actor call on the worker holding the actor (called from the
/// worker's data port, on a blocking thread): the reply message.
pub(crate) fn serve_call(key: &Key, task: &WireTask, frames: &[Bytes], memory: &Memory) -> Message {
    let failed = |unknown_method: bool, message: String| {
        messages::message(
            "actor-reply",
            &PeerReply::ActorFailed {
                unknown_method,
                message,
            },
        )
    };
    let reply = match memory.get(key) {
        Ok(Some(actor)) => match decode_task(task, frames) {
            Ok(call) => run_call(actor, &call),
            Err(e) => {
                let unknown = matches!(e, Error::Core(dask_core::Error::UnknownOp { .. }));
                failed(unknown, e.to_string())
            }
        },
        Ok(None) => messages::message(
            "actor-reply",
            &PeerReply::Missing {
                keys: vec![key.clone()],
            },
        ),
        Err(e) => failed(false, e.to_string()),
    };
    reply.unwrap_or_default()
}

fn run_call(actor: Value, call: &Task) -> crate::Result<Message> {
    let failed = |message: String| {
        messages::message(
            "actor-reply",
            &PeerReply::ActorFailed {
                unknown_method: false,
                message,
            },
        )
    };
    let mut args = Vec::with_capacity(call.args.len() + 1);
    args.push(actor);
    for a in &call.args {
        match a {
            Arg::Value(v) => args.push(v.clone()),
            _ => return failed("actor method arguments must be values".into()),
        }
    }
    let op = call.op.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op.call(&args)));
    let value = match result {
        Ok(Ok(value)) => value,
        Ok(Err(e)) => return failed(e.to_string()),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panicked".into());
            return failed(format!("panicked: {message}"));
        }
    };
    match codec::encode_value(&value) {
        Ok((tag, bytes)) => messages::message_with(
            "actor-reply",
            &PeerReply::Data {
                values: vec![(Key::named("result"), tag.to_owned())],
            },
            vec![Bytes::from(bytes)],
        ),
        Err(e) => failed(format!("its result cannot travel back: {e}")),
    }
}

/// A call's reply, or why the connection ended.
type CallReply = std::result::Result<Message, String>;

/// The runtime actor connections live on (one per process).
fn runtime() -> Result<&'static Runtime> {
    static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("dask-actor")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::InvalidConfig {
            message: format!("could not start the actor runtime: {e}"),
        })
}

/// One connection to a worker's data port for actor calls: requests go out
/// in order, replies come back in the same order.
struct ActorConn {
    writer: UnboundedSender<Message>,
    state: Arc<Mutex<ConnState>>,
}

#[derive(Default)]
struct ConnState {
    /// Reply slots of the calls sent, oldest first.
    waiting: VecDeque<oneshot::Sender<CallReply>>,
    /// Why the connection ended, once it did.
    dead: Option<String>,
}

impl ActorConn {
    /// Sends a call; its reply arrives on the receiver.
    fn send(&self, message: Message) -> std::result::Result<oneshot::Receiver<CallReply>, String> {
        let (tx, rx) = oneshot::channel();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(reason) = &state.dead {
            return Err(reason.clone());
        }
        // Slot and message under one lock: replies match calls in order.
        state.waiting.push_back(tx);
        if self.writer.send(message).is_err() {
            state.waiting.pop_back();
            let reason = "the connection to its worker closed".to_owned();
            state.dead = Some(reason.clone());
            return Err(reason);
        }
        Ok(rx)
    }

    fn is_dead(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dead
            .is_some()
    }
}

/// Actor connections of this process, by worker data address.
static CONNECTIONS: Mutex<Option<HashMap<String, Arc<ActorConn>>>> = Mutex::new(None);

/// The live connection to the worker at `addr`, opened if needed; `Err`
/// says why the worker cannot be reached.
fn connection(
    addr: &str,
    security: &crate::Security,
) -> std::result::Result<Arc<ActorConn>, String> {
    let mut conns = CONNECTIONS.lock().unwrap_or_else(PoisonError::into_inner);
    let map = conns.get_or_insert_with(HashMap::new);
    if let Some(conn) = map.get(addr) {
        if !conn.is_dead() {
            return Ok(conn.clone());
        }
    }
    map.remove(addr);
    let rt = runtime().map_err(|e| e.to_string())?;
    // Connected on the actor runtime; waited for on a std channel, which
    // works from plain threads, tasks and async code alike.
    let (tx, rx) = std::sync::mpsc::channel();
    let (owned, security) = (addr.to_owned(), security.clone());
    rt.spawn(async move {
        let _ = tx.send(open(owned, security).await);
    });
    let conn = rx
        .recv_timeout(CONNECT_TIMEOUT + Duration::from_secs(1))
        .map_err(|_| "connecting to its worker timed out".to_owned())??;
    let conn = Arc::new(conn);
    map.insert(addr.to_owned(), conn.clone());
    Ok(conn)
}

/// Connects to a worker's data port and starts the reply reader.
async fn open(addr: String, security: crate::Security) -> std::result::Result<ActorConn, String> {
    let conn = tokio::time::timeout(
        CONNECT_TIMEOUT,
        protocol::connect_with(&addr, Role::Client, Limits::default(), &security),
    )
    .await
    .map_err(|_| "connecting to its worker timed out".to_owned())?
    .map_err(|e| format!("its worker cannot be reached: {e}"))?;
    let (mut reader, writer) = conn.split();
    let writer = writer.spawn();
    let state: Arc<Mutex<ConnState>> = Arc::default();
    let reader_state = state.clone();
    tokio::spawn(async move {
        let reason = loop {
            match reader.recv().await {
                Ok(reply) => {
                    let slot = reader_state
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .waiting
                        .pop_front();
                    if let Some(slot) = slot {
                        let _ = slot.send(Ok(reply));
                    }
                }
                Err(e) => break format!("the connection to its worker ended ({e})"),
            }
        };
        let mut state = reader_state.lock().unwrap_or_else(PoisonError::into_inner);
        state.dead = Some(reason.clone());
        for slot in state.waiting.drain(..) {
            let _ = slot.send(Err(reason.clone()));
        }
    });
    Ok(ActorConn { writer, state })
}

/// `Counter` for `my_crate::Counter`.
fn short_type_name<A>() -> String {
    let full = type_name::<A>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}
