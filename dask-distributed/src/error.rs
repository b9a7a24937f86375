//! The error type of dask-distributed.

/// `Result` with this crate's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a scheduler, worker or client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Could not connect to an address.
    #[error("could not connect to {addr}: {source}; is a scheduler running there? (`dask scheduler` prints its address)")]
    Connect {
        /// The address tried.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An operation did not finish in time.
    #[error("{what} timed out after {seconds:.1} s")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The limit.
        seconds: f64,
    },
    /// The peer closed the connection between two messages.
    #[error("the peer closed the connection")]
    Closed,
    /// The peer closed the connection in the middle of a message.
    #[error("the peer closed the connection in the middle of a message ({got} of {expected} bytes of a frame received)")]
    Truncated {
        /// Bytes the frame should have had.
        expected: u64,
        /// Bytes received before the end.
        got: u64,
    },
    /// A frame is larger than the limit.
    #[error("a frame of {size} bytes exceeds the limit of {max} bytes: raise `Limits::max_frame` on both sides, or send smaller pieces")]
    FrameTooLarge {
        /// The announced size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A message announces more frames than allowed.
    #[error("a message of {count} frames exceeds the limit of {max} frames")]
    TooManyFrames {
        /// The announced number of frames.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// The peer does not speak the dask-rs protocol.
    #[error("the peer is not a dask-rs process (it sent {preview:?} instead of the protocol preamble): check the address and port")]
    NotDaskPeer {
        /// The first bytes received, escaped.
        preview: String,
    },
    /// The peer speaks another version of the protocol.
    #[error("protocol version mismatch: this process speaks version {ours}, the peer speaks {theirs}; run the same dask-rs version everywhere")]
    VersionMismatch {
        /// Our version.
        ours: u32,
        /// The peer's version.
        theirs: u32,
    },
    /// The peer refused this connection (missing or wrong token).
    #[error("{peer} refused this connection: {reason}")]
    Unauthorized {
        /// The peer's address.
        peer: String,
        /// Why, as the peer said it.
        reason: String,
    },
    /// This process refused a peer: it lacks the token this process requires.
    #[error("refused {peer}: {reason}")]
    Refused {
        /// The peer (its role and address).
        peer: String,
        /// Why.
        reason: String,
    },
    /// The TLS handshake failed (untrusted or missing certificate, or one
    /// side without TLS).
    #[error("TLS with {peer} failed: {detail}; every process of the cluster needs a certificate signed by the same CA (--tls-ca-file, --tls-cert, --tls-key)")]
    Tls {
        /// The peer's address.
        peer: String,
        /// What rustls reported.
        detail: String,
    },
    /// The connection to the scheduler is gone and the client could not
    /// get back in time (the scheduler stopped or hangs, the network failed,
    /// or the client was away longer than the scheduler's grace period):
    /// pending futures and new calls fail with this.
    #[error("lost the connection to the scheduler at {addr} and could not get it back in time (it stopped or hangs, the network failed, or this client was away longer than the scheduler's --client-reconnect-timeout): the tasks and results of this client are gone; connect a new Client once it runs again and resubmit (ClientOptions::reconnect_timeout waits longer)")]
    SchedulerLost {
        /// The scheduler's address.
        addr: String,
    },
    /// The scheduler at the client's address is another one than the client
    /// connected to (it restarted): the client's futures are gone.
    #[error("the scheduler at {addr} restarted: the tasks and results this client had there are gone; connect a new Client and resubmit (workers of the old scheduler stopped: restart them, or let their nannies do it)")]
    SchedulerRestarted {
        /// The scheduler's address.
        addr: String,
    },
    /// A task was running on a worker that died, too many times: it is
    /// erred instead of being rescheduled again (Dask's `KilledWorker`).
    #[error("{key} is suspicious: {deaths} workers died while running it (allowed: {allowed}); fix the task (does it crash or exhaust its process?) or raise allowed_failures (`dask scheduler --allowed-failures`)")]
    SuspiciousTask {
        /// The task.
        key: dask_core::Key,
        /// How many workers died while running it.
        deaths: u32,
        /// The scheduler's `allowed_failures`.
        allowed: u32,
    },
    /// A message header could not be decoded.
    #[error("malformed {what} message: {source}")]
    Decode {
        /// Which message was expected.
        what: &'static str,
        /// The decoder's error.
        #[source]
        source: postcard::Error,
    },
    /// A message decoded but its content is inconsistent.
    #[error("malformed {what} message: {detail}")]
    Malformed {
        /// Which message.
        what: &'static str,
        /// What is inconsistent.
        detail: String,
    },
    /// A message could not be encoded.
    #[error("could not encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's error.
        #[source]
        source: postcard::Error,
    },
    /// A setting is out of range.
    #[error("invalid configuration: {message}")]
    InvalidConfig {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A blocking client call was made from inside an async runtime.
    #[error("the blocking Client was called from inside an async runtime, where it would block the executor: use dask_distributed::AsyncClient (or `.await` the future, or the `_async` methods of coordination primitives) in async code, or call the blocking API from a plain std::thread")]
    InsideRuntime,
    /// The future's task was cancelled.
    #[error("{key} was cancelled (Future::cancel or Client::cancel, here or by another client); submit it again to recompute it")]
    Cancelled {
        /// The cancelled key.
        key: dask_core::Key,
    },
    /// A `workers` restriction or scatter target names no connected worker.
    #[error("no worker at {addr} is connected to the scheduler; connected workers: {known:?} (see Client::workers)")]
    UnknownWorker {
        /// The address given.
        addr: String,
        /// The workers connected now.
        known: Vec<String>,
    },
    /// The cluster has no worker to place data on.
    #[error("no worker is connected to the scheduler: start one (`dask worker ADDRESS`) before scattering")]
    NoWorkers,
    /// The scheduler refused a request about a coordination primitive
    /// (lock, semaphore, queue, ...); the message says why and how to fix it.
    #[error("{message}")]
    Coordination {
        /// What was wrong.
        message: String,
    },
    /// A worker's process went above its terminate threshold and stopped.
    #[error("the worker's process used {used} bytes, above its terminate threshold of {threshold} bytes: raise --memory-limit, lower the data per task, or register codecs so values can spill")]
    MemoryExceeded {
        /// Resident memory measured.
        used: u64,
        /// The terminate threshold in bytes.
        threshold: u64,
    },
    /// The worker holding an actor died or dropped it: the actor's state is
    /// gone, and calls in flight or made later fail (see [`crate::actor`]).
    #[error("actor {actor} was lost with its worker at {worker}: {reason}; create a new actor (Client::submit_actor)")]
    ActorLost {
        /// The actor's key.
        actor: String,
        /// The worker that held it.
        worker: String,
        /// What happened.
        reason: String,
    },
    /// A method call names a method the actor does not have: a function not
    /// registered for the actor type, here or on the worker.
    #[error("actor {actor_type} has no method `{method}` that can be called remotely: {detail}")]
    UnknownActorMethod {
        /// The actor's type.
        actor_type: String,
        /// The method's name.
        method: String,
        /// Why, and how to fix it.
        detail: String,
    },
    /// An actor method failed (returned an error or panicked); the actor is
    /// still there and takes further calls.
    #[error("method `{method}` of actor {actor} failed: {message}")]
    ActorCallFailed {
        /// The actor's key.
        actor: String,
        /// The method.
        method: String,
        /// The failure.
        message: String,
    },
    /// An actor type used with a cluster of other processes was not registered.
    #[error("actor type {actor_type} is not registered, so worker processes cannot create it: add `dask_distributed::register_actor!({actor_type} {{ method, .. }})` (it needs serde for the initial state)")]
    ActorNotRegistered {
        /// The actor's type.
        actor_type: String,
    },
    /// An I/O error on an open connection.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// An error from the graph layer.
    #[error(transparent)]
    Core(#[from] dask_core::Error),
    /// The dashboard could not listen (dashboard/http.rs).
    #[error("the dashboard could not listen on {addr}: {source}; choose another port or disable the dashboard")]
    Dashboard {
        /// The address tried.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}
