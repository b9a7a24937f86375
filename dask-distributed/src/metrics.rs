//! What a worker reports about itself in its heartbeats: memory, spilling and
//! tasks.

use serde::{Deserialize, Serialize};

use crate::spill::StoreStats;

/// Whether a worker starts new tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerStatus {
    /// Runs tasks.
    #[default]
    Running,
    /// Above its pause threshold: starts no task until memory goes down.
    Paused,
}

/// A worker's metrics, sent with every heartbeat and readable on its handle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerMetrics {
    /// Running or paused.
    pub status: WorkerStatus,
    /// The memory limit in bytes, if any.
    pub memory_limit: Option<u64>,
    /// The data it holds: in memory, unspillable, spilled.
    pub store: StoreStats,
    /// The process's resident memory, when the worker measures it (a worker
    /// alone in its process).
    pub process_memory: Option<u64>,
    /// Tasks whose op is running now.
    pub tasks_executing: u64,
    /// Tasks received and not started (fetching inputs or waiting for a thread).
    pub tasks_ready: u64,
    /// Ops executed since the start.
    pub tasks_executed: u64,
    /// Tasks given up to another worker (work stealing).
    pub tasks_stolen: u64,
    /// Tasks started on the thread that received them, with no hand-over
    /// to a task thread: each one that reached an idle worker alone.
    pub tasks_started_inline: u64,
}
