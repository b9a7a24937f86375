//! The distributed scheduler of dask-rs (in progress: see issue 3).
//!
//! What exists today:
//!
//! - [`protocol`]: length-prefixed frames over TCP, postcard-encoded message
//!   headers, raw data frames, and a versioned handshake that refuses foreign
//!   peers before reading anything they say; tasks on the wire
//!   ([`protocol::encode_task`]) with registered ops and codecs.
//! - [`scheduler::state`]: the scheduler as a pure state machine (events in,
//!   actions out, Dask's task states and named transitions, placement by data
//!   locality and occupancy, queuing of root tasks, recomputation of what a lost
//!   worker held, suspicious tasks, retries, client reference counts), and
//!   [`scheduler::server`], the tokio server around it.
//! - [`worker`]: runs tasks on a bounded blocking pool, fetches dependencies
//!   from peers (a missing one is reported to the scheduler at once), serves
//!   its data, sends heartbeats with [`metrics`], gives up tasks not started
//!   to work stealing; [`spill`]: its memory limit, spilling least recently
//!   used values to disk, pausing above Dask's thresholds.
//! - [`Client`]: submits graphs, gathers results from workers; implements
//!   `dask_core::Scheduler`, so `x.compute_with(&client)` works.
//!
//! - [`LocalCluster`] and [`Client::new`]: a scheduler and workers in this
//!   process (threads), over real TCP on 127.0.0.1.
//! - [`Future`]s: [`Client::submit`] (values or futures as arguments),
//!   `status`, `result`, `.await`, [`Client::gather`], [`Client::map`];
//!   dropping the last clone releases the value on the cluster.
//! - [`SubmitOptions`] ([`Client::submit_with`], [`Client::map_with`]): pure
//!   keys by default (same registered op and encodable arguments: same key,
//!   computed once), `priority`, `retries`, `workers` restrictions, explicit
//!   `key`.
//! - [`Future::cancel`] / [`Client::cancel`], [`Future::retry`]; [`Client::wait`] with
//!   [`ReturnWhen`] and a timeout; [`Client::as_completed`];
//!   [`Client::fire_and_forget`].
//! - [`scatter`]: values straight to workers' data ports, as futures.
//! - [`persist`]: [`Client::persist`] keeps a collection's results on the
//!   workers, referenced by futures in the returned collection.
//! - [`process`]: the `dask scheduler` and `dask worker` processes.
//! - [`coordination`]: [`Lock`], [`Semaphore`], [`Queue`], [`Variable`],
//!   [`Event`], [`Pub`]/[`Sub`], held on the scheduler and shared by every
//!   client and task.
//! - [`scheduler::plugin`]: scheduler plugins told about every transition and
//!   worker; [`dashboard`], one of them, served over HTTP (axum) at
//!   `/status`, with a JSON API, `/metrics` (Prometheus) and `/health`; on
//!   port 8787, or a free one when it is taken
//!   ([`LocalCluster::dashboard_link`]).
//! - [`task_stream`]: workers time every task (start, stop, thread) and the
//!   scheduler keeps the newest records in a ring; [`diagnostics`]:
//!   [`Client::get_task_stream`], [`Client::progress`] (a console bar over
//!   futures) and [`Client::performance_report`] (a standalone HTML file).
//! - `Client::map`, and `.await` on futures inside an existing tokio runtime.
//! - [`security`]: an optional shared-secret token and mutual TLS (rustls)
//!   on every connection ([`Security`], [`Client::connect_with`],
//!   [`LocalClusterBuilder::security`]); a peer without them is refused in
//!   the handshake.
//! - [`actor`]: [`Client::submit_actor`], stateful objects on one worker
//!   whose registered methods run there one call at a time
//!   ([`ActorHandle`], [`ActorFuture`], [`register_actor!`]).
//! - [`worker_client`]: tasks that submit tasks ([`get_client`]), and
//!   [`secede`] / [`rejoin`]: a task waiting on others gives its thread back.
//!
//! - [`AsyncClient`]: the same API for async code, inside any tokio runtime
//!   without blocking it; [`AsCompletedStream`] (a `futures_core::Stream`);
//!   `_async` forms of every coordination wait; futures held by queues and
//!   variables ([`Queue::put_future`], [`Variable::set_future`]).
//!
//! Not built yet (issue 3): `LocalCluster` with worker processes (use
//! `dask scheduler` / `dask worker`).
//!
//! ```
//! use dask_distributed::protocol::{self, Message, Role};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let addr = listener.local_addr().unwrap();
//! let server = tokio::spawn(async move {
//!     let (stream, _) = listener.accept().await.unwrap();
//!     let mut conn = protocol::accept(stream, Role::Scheduler, Default::default()).await.unwrap();
//!     let msg = conn.recv().await.unwrap();
//!     conn.send(&msg).await.unwrap(); // echo
//! });
//! let mut conn = protocol::connect(&addr.to_string(), Role::Client, Default::default()).await.unwrap();
//! conn.send(&Message::new(b"hello".to_vec(), vec![vec![1u8, 2, 3].into()])).await.unwrap();
//! let echo = conn.recv().await.unwrap();
//! assert_eq!(&echo.header[..], b"hello");
//! assert_eq!(&echo.frames[0][..], &[1, 2, 3]);
//! server.await.unwrap();
//! # });
//! ```
#![warn(missing_docs)]

pub mod actor;
mod alloc;
pub mod async_client;
pub mod client;
pub mod cluster;
pub mod coordination;
pub mod dashboard;
pub mod diagnostics;
mod error;
pub mod futures;
#[doc(hidden)]
pub mod fuzz;
pub mod local;
pub mod messages;
pub mod metrics;
pub mod options;
pub mod persist;
pub mod process;
pub mod protocol;
pub mod scatter;
pub mod scheduler;
pub mod security;
pub mod spill;
pub mod task_stream;
pub mod waiting;
pub mod worker;
pub mod worker_client;

pub use actor::{ActorFuture, ActorHandle};
pub use async_client::AsyncClient;
pub use client::{Client, ClientOptions, WorkerInfo};
pub use cluster::{LocalCluster, LocalClusterBuilder};
pub use coordination::{
    worker_scheduler_address, Coordinator, Event, Lock, Pub, Queue, Semaphore, Sub, Variable,
};
pub use diagnostics::{PerformanceReport, Progress, ProgressCounts};
pub use error::{Error, Result};
pub use futures::{Future, FutureStatus};
pub use options::SubmitOptions;
pub use scatter::ScatterOptions;
pub use security::Security;
pub use waiting::{
    as_completed_stream, AsCompleted, AsCompletedStream, DoneAndNotDone, ResultsStream, ReturnWhen,
};
pub use worker_client::{get_client, rejoin, secede};

/// dask-core, for the expansion of [`register_actor!`].
#[doc(hidden)]
pub use dask_core as __dask_core;
