//! The messages scheduler, workers and clients exchange (postcard headers; data
//! values travel in the data frames that follow).

use bytes::Bytes;
use dask_core::Key;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::protocol::{self, Message, WireTask};
use crate::scheduler::coordination::{CoordReply, CoordRequest};
use crate::scheduler::state::{Outcome, Priority, Status};
use crate::task_stream::{TaskStreamPage, TaskTiming};
use crate::Result;

/// What workers and clients send the scheduler.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToScheduler {
    /// A worker's first message.
    RegisterWorker {
        /// Task threads.
        nthreads: u32,
        /// Where peers fetch data from it.
        data_addr: String,
    },
    /// A worker computed a task.
    TaskFinished {
        /// The task.
        key: Key,
        /// The attempt, as [`ToWorker::Compute`] numbered it.
        run_id: u64,
        /// Approximate size of the value.
        nbytes: u64,
        /// When and on which thread it ran (for the task stream).
        timing: TaskTiming,
        /// The codec tag of the value, when the value follows in the one
        /// data frame (a small result a client waits for, see
        /// [`ToWorker::Compute::report_value`]).
        value: Option<String>,
    },
    /// A task failed on a worker.
    TaskErred {
        /// The task that failed.
        key: Key,
        /// The attempt, as [`ToWorker::Compute`] numbered it.
        run_id: u64,
        /// Its op.
        op: String,
        /// The failure.
        message: String,
        /// When and on which thread it ran (`None`: it never started).
        timing: Option<TaskTiming>,
    },
    /// A client submits tasks and wants some keys.
    UpdateGraph {
        /// The tasks, in priority order.
        tasks: Vec<SubmittedTask>,
        /// Keys the client waits for.
        wanted: Vec<Key>,
    },
    /// A client no longer needs these keys.
    ReleaseKeys {
        /// The keys.
        keys: Vec<Key>,
    },
    /// A client cancels keys: they (and their dependents) are released for
    /// every client that holds no other claim on them, and those clients told.
    Cancel {
        /// The keys.
        keys: Vec<Key>,
    },
    /// A client reruns these erred keys (and the erred tasks they read).
    Retry {
        /// The keys.
        keys: Vec<Key>,
    },
    /// The scheduler keeps these keys wanted until they finish (memory or
    /// erred), even after every client released them.
    FireAndForget {
        /// The keys.
        keys: Vec<Key>,
    },
    /// A client put values on workers' data ports (scatter): the scheduler
    /// records them as in memory there, wanted by the client.
    UpdateData {
        /// Each key, its size, and the task to run if every copy is lost (an
        /// encoded [`StoredTask`] that fails with a clear message).
        keys: Vec<(Key, u64, Vec<u8>)>,
        /// Data addresses of the workers holding every key.
        workers: Vec<String>,
    },
    /// A client asks the scheduler something; answered by [`ToClient::Answer`].
    Query {
        /// Echoed in the answer.
        id: u64,
        /// The question.
        query: Query,
    },
    /// A client asks where keys are held.
    WhoHas {
        /// Echoed in the reply, to match it to the request.
        id: u64,
        /// The keys.
        keys: Vec<Key>,
    },
    /// A request about a coordination primitive (lock, queue, ...); answered
    /// by [`ToClient::Coordination`].
    Coordination {
        /// Echoed in the reply.
        id: u64,
        /// The request.
        request: CoordRequest,
    },
    /// A worker could not get `dependency` of `key` from `errant` (data
    /// addresses): it dropped `key` and waits for it to be sent again.
    MissingData {
        /// The task that could not start.
        key: Key,
        /// The attempt, as [`ToWorker::Compute`] numbered it.
        run_id: u64,
        /// The dependency it could not get.
        dependency: Key,
        /// Data addresses that did not deliver it.
        errant: Vec<String>,
    },
    /// A worker's periodic sign of life, with its metrics.
    Heartbeat {
        /// Memory, spilling and tasks.
        metrics: crate::metrics::WorkerMetrics,
    },
    /// A worker's answer to [`ToWorker::Steal`].
    StealResponse {
        /// The task.
        key: Key,
        /// True: it had not started, and dropped it. False: it runs or ran here.
        stolen: bool,
    },
    /// A task running on the worker seceded from its thread (it waits on
    /// other tasks): the scheduler stops counting it towards saturation.
    LongRunning {
        /// The task.
        key: Key,
    },
    /// A client's first message on a connection: who it is. Answered by
    /// [`ToClient::Welcome`]. A client reconnecting after its connection
    /// dropped names its old id and the keys it still holds: within the
    /// scheduler's reconnect grace period it gets its id and futures back.
    Identify {
        /// The id the scheduler gave this client before (`None`: a new client).
        client: Option<u64>,
        /// The keys the client holds (reconnecting: re-registered; the
        /// scheduler releases the others it kept for the client).
        wanted: Vec<Key>,
    },
    /// A client checks the scheduler answers; answered by [`ToClient::Pong`].
    Ping,
    /// A client closes: everything it held is released now, without the
    /// reconnect grace period.
    Goodbye,
}

/// One task of a client's submission.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmittedTask {
    /// The key.
    pub key: Key,
    /// Its dependencies.
    pub dependencies: Vec<Key>,
    /// The encoded task ([`StoredTask`]).
    pub run_spec: Vec<u8>,
    /// Position in the graph's order.
    pub order: u64,
    /// User priority: higher runs first among ready tasks.
    pub priority: i64,
    /// How many times a failure is rerun.
    pub retries: u32,
    /// Data addresses of the only workers allowed to run it (`None`: any).
    pub workers: Option<Vec<String>>,
}

impl SubmittedTask {
    /// A task with default options (priority 0, no retries, any worker).
    pub fn new(key: Key, dependencies: Vec<Key>, run_spec: Vec<u8>, order: u64) -> Self {
        SubmittedTask {
            key,
            dependencies,
            run_spec,
            order,
            priority: 0,
            retries: 0,
            workers: None,
        }
    }
}

/// A question a client asks the scheduler.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Query {
    /// The connected workers.
    Workers,
    /// The scheduler-side state of these keys.
    TaskStatus {
        /// The keys.
        keys: Vec<Key>,
    },
    /// Task-stream records from sequence number `since` on, at most `limit`.
    TaskStream {
        /// The first sequence number wanted.
        since: u64,
        /// Most records in the answer (the scheduler caps it too).
        limit: u64,
    },
    /// Bytes of results each worker holds, as the scheduler counts them.
    WorkerMemory,
}

/// The scheduler's answer to a [`Query`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Answer {
    /// Connected workers: data address and task threads.
    Workers(Vec<(String, u32)>),
    /// The state of each key asked (`None`: unknown, e.g. forgotten).
    TaskStatus(Vec<Option<Status>>),
    /// A page of the task stream.
    TaskStream(TaskStreamPage),
    /// Per worker: data address, task threads, bytes held.
    WorkerMemory(Vec<(String, u32, u64)>),
}

/// A task as the scheduler stores and forwards it (opaque to the scheduler).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum StoredTask {
    /// Encoded: the wire task and its literal values' bytes.
    Wire {
        /// The task.
        task: WireTask,
        /// Its data frames.
        frames: Vec<Vec<u8>>,
    },
    /// Held in the in-process table of process `pid` under `token`
    /// (see [`crate::local`]): only workers in that process can run it.
    Local {
        /// The process holding the task.
        pid: u32,
        /// Its token there.
        token: u64,
    },
}

/// What the scheduler sends a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToWorker {
    /// Run a task.
    Compute {
        /// The task's key.
        key: Key,
        /// Numbers this attempt: the worker's report carries it back, and a
        /// report of an older attempt (one that crossed a `Free`) is ignored.
        run_id: u64,
        /// The scheduler's order: of the tasks waiting for a thread, the
        /// worker starts the lowest first.
        priority: Priority,
        /// The encoded [`StoredTask`].
        run_spec: Vec<u8>,
        /// For each dependency, the data addresses of the workers holding it.
        who_has: Vec<(Key, Vec<String>)>,
        /// A client waits for this key: if the value is small and has a
        /// codec, send it with the report, so the scheduler passes it on
        /// and the client need not fetch it (two round trips fewer).
        report_value: bool,
    },
    /// Drop these keys.
    Free {
        /// The keys.
        keys: Vec<Key>,
    },
    /// Give up `key` if it has not started (work stealing); answer with
    /// [`ToScheduler::StealResponse`].
    Steal {
        /// The task.
        key: Key,
    },
    /// The scheduler got a heartbeat: it is alive and answering.
    HeartbeatAck,
}

/// What the scheduler sends a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToClient {
    /// A wanted key finished or failed.
    Report {
        /// The key.
        key: Key,
        /// What happened.
        outcome: Outcome,
        /// The codec tag of the value, when the value follows in the one
        /// data frame (a small result, sent on as the worker reported it).
        value: Option<String>,
    },
    /// These keys were cancelled (by this or another client).
    Cancelled {
        /// The keys.
        keys: Vec<Key>,
    },
    /// Answer to [`ToScheduler::Query`].
    Answer {
        /// The query's id.
        id: u64,
        /// The answer.
        answer: Answer,
    },
    /// Answer to [`ToScheduler::WhoHas`].
    WhoHas {
        /// The request's id.
        id: u64,
        /// Data addresses per key.
        who_has: Vec<(Key, Vec<String>)>,
    },
    /// Answer to [`ToScheduler::Coordination`].
    Coordination {
        /// The request's id.
        id: u64,
        /// The answer.
        reply: CoordReply,
    },
    /// Answer to [`ToScheduler::Identify`].
    Welcome {
        /// The client's id (its old one when `resumed`).
        client: u64,
        /// The scheduler's instance id, random per scheduler start: a
        /// reconnecting client that finds another one knows the scheduler
        /// restarted and its futures are gone.
        scheduler: u64,
        /// True: the client reconnected within the grace period and keeps
        /// its futures.
        resumed: bool,
    },
    /// Answer to [`ToScheduler::Ping`].
    Pong,
}

/// Requests to a worker's data port.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PeerRequest {
    /// Send these values.
    GetData {
        /// The keys.
        keys: Vec<Key>,
    },
    /// Store these values (scatter); they follow as data frames, in order.
    PutData {
        /// Key and codec tag of each frame.
        values: Vec<(Key, String)>,
    },
    /// Call a method of the actor held under `key`: `task` is the method op
    /// and its arguments (literal values in the data frames). Answered with
    /// [`PeerReply::Data`] (the result), [`PeerReply::Missing`] (no such
    /// actor here) or [`PeerReply::ActorFailed`].
    ActorCall {
        /// The actor's key.
        key: Key,
        /// The method and its arguments.
        task: WireTask,
    },
}

/// Replies on a worker's data port; values follow as data frames, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PeerReply {
    /// The values, with their codec tags.
    Data {
        /// Key and codec tag of each frame.
        values: Vec<(Key, String)>,
    },
    /// The worker does not hold some of the keys.
    Missing {
        /// The keys it lacks.
        keys: Vec<Key>,
    },
    /// The values of a [`PeerRequest::PutData`] are stored.
    Stored,
    /// A value could not be encoded or decoded.
    Failed {
        /// Why.
        message: String,
    },
    /// An actor call failed: the method is unknown here, or it failed.
    ActorFailed {
        /// True: this worker cannot build the method (not registered).
        unknown_method: bool,
        /// Why.
        message: String,
    },
    /// The values of a [`PeerRequest::GetData`], each in two data frames:
    /// the meta and data parts of its codec's split encoding
    /// (`dask_core::codec::encode_parts`), so a large buffer is sent as it
    /// is held and received in place.
    Parts {
        /// Key and codec tag of each value (two frames each).
        values: Vec<(Key, String)>,
    },
}

/// A header-only message.
pub fn message<T: Serialize>(what: &'static str, header: &T) -> Result<Message> {
    Ok(Message::new(protocol::encode(what, header)?, Vec::new()))
}

/// A message with data frames.
pub fn message_with<T: Serialize>(
    what: &'static str,
    header: &T,
    frames: Vec<Bytes>,
) -> Result<Message> {
    Ok(Message::new(protocol::encode(what, header)?, frames))
}

/// Decodes a message's header.
pub fn header<T: DeserializeOwned>(what: &'static str, m: &Message) -> Result<T> {
    protocol::decode(what, &m.header)
}
