//! The messages scheduler, workers and clients exchange (postcard headers; data
//! values travel in the data frames that follow).

use bytes::Bytes;
use dask_core::Key;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::protocol::{self, Message, WireTask};
use crate::scheduler::state::Outcome;
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
        /// Approximate size of the value.
        nbytes: u64,
    },
    /// A task failed on a worker.
    TaskErred {
        /// The task that failed.
        key: Key,
        /// Its op.
        op: String,
        /// The failure.
        message: String,
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
    /// A client asks where keys are held.
    WhoHas {
        /// Echoed in the reply, to match it to the request.
        id: u64,
        /// The keys.
        keys: Vec<Key>,
    },
    /// A worker could not get `dependency` of `key` from `errant` (data
    /// addresses): it dropped `key` and waits for it to be sent again.
    MissingData {
        /// The task that could not start.
        key: Key,
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
        /// The encoded [`StoredTask`].
        run_spec: Vec<u8>,
        /// For each dependency, the data addresses of the workers holding it.
        who_has: Vec<(Key, Vec<String>)>,
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
    },
    /// Answer to [`ToScheduler::WhoHas`].
    WhoHas {
        /// The request's id.
        id: u64,
        /// Data addresses per key.
        who_has: Vec<(Key, Vec<String>)>,
    },
}

/// Requests to a worker's data port.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PeerRequest {
    /// Send these values.
    GetData {
        /// The keys.
        keys: Vec<Key>,
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
    /// A value could not be encoded.
    Failed {
        /// Why.
        message: String,
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
