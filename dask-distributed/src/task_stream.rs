//! The task stream: when each task ran, where, on which thread, like Dask's
//! `get_task_stream`.
//!
//! Workers time every task they run (wall clock, seconds since the Unix
//! epoch, so records of several processes on one machine line up) and send
//! the [`TaskTiming`] with the task-finished (or erred) message. The
//! scheduler keeps the newest records in a bounded ring buffer, a
//! [`TaskStream`] (default [`DEFAULT_TASK_STREAM_CAPACITY`]); clients read it
//! with [`Client::get_task_stream`](crate::Client::get_task_stream) and the
//! dashboard draws it at `/tasks`.
//!
//! ```
//! use dask_core::Key;
//! use dask_distributed::task_stream::{TaskStream, TaskTiming};
//!
//! let stream = TaskStream::new(2);
//! let worker: std::sync::Arc<str> = "127.0.0.1:4000".into();
//! for i in 0..3u64 {
//!     let timing = TaskTiming { start: 1.0, stop: 2.0, thread: 0 };
//!     stream.push(Key::new("inc-ab12cd34ef", [i]), &worker, timing, true);
//! }
//! let page = stream.since(0, usize::MAX);
//! assert_eq!(page.records.len(), 2); // the oldest fell out of the ring
//! assert_eq!(page.records[0].prefix, "inc");
//! assert_eq!((page.first, page.next), (1, 3));
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use dask_core::Key;
use serde::{Deserialize, Serialize};

use crate::dashboard::model::task_group;

/// How many records the scheduler keeps by default (the newest).
pub const DEFAULT_TASK_STREAM_CAPACITY: usize = 100_000;

/// Most records one answer to a client carries (a client pages through more).
pub const TASK_STREAM_PAGE: usize = 20_000;

/// Seconds since the Unix epoch, now (0 if the clock is before it).
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// When and where a worker ran one task.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TaskTiming {
    /// Start of the computation, seconds since the Unix epoch (worker's clock).
    pub start: f64,
    /// End of the computation, same clock.
    pub stop: f64,
    /// The worker's task thread (0 .. nthreads) that ran it.
    pub thread: u32,
}

/// How a recorded task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunStatus {
    /// It produced a value.
    Ok,
    /// It failed (error or panic).
    Error,
}

/// One task run, as [`Client::get_task_stream`](crate::Client::get_task_stream)
/// returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStreamRecord {
    /// Position in the scheduler's stream (0 for the first task it heard of).
    pub seq: u64,
    /// The task.
    pub key: Key,
    /// Its task group: the key's name without tokens (`inc-3f2a..` -> `inc`).
    pub prefix: String,
    /// Data address of the worker that ran it.
    pub worker: String,
    /// The worker's task thread (0 .. nthreads).
    pub thread: u32,
    /// Start, seconds since the Unix epoch (worker's clock).
    pub start: f64,
    /// Stop, same clock.
    pub stop: f64,
    /// How it ended.
    pub status: RunStatus,
}

impl TaskStreamRecord {
    /// How long it ran, in seconds.
    pub fn duration(&self) -> f64 {
        (self.stop - self.start).max(0.0)
    }
}

/// A page of the stream: records `first .. next` that are still held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStreamPage {
    /// The records, oldest first.
    pub records: Vec<TaskStreamRecord>,
    /// Sequence number of the oldest record still held (records asked for
    /// below it fell out of the ring).
    pub first: u64,
    /// Sequence number the next record will get: ask `since(next)` for newer.
    pub next: u64,
}

struct Stored {
    key: Key,
    worker: Arc<str>,
    timing: TaskTiming,
    ok: bool,
}

struct Ring {
    capacity: usize,
    records: VecDeque<Stored>,
    /// Sequence number of `records[0]`.
    first: u64,
}

/// The scheduler's bounded ring buffer of task records; cheap to clone (shared).
#[derive(Clone)]
pub struct TaskStream {
    ring: Arc<Mutex<Ring>>,
}

impl std::fmt::Debug for TaskStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.lock();
        f.debug_struct("TaskStream")
            .field("capacity", &r.capacity)
            .field("held", &r.records.len())
            .field("first", &r.first)
            .finish()
    }
}

impl TaskStream {
    /// An empty stream keeping the newest `capacity` records (0: keeps none).
    pub fn new(capacity: usize) -> TaskStream {
        TaskStream {
            ring: Arc::new(Mutex::new(Ring {
                capacity,
                records: VecDeque::with_capacity(capacity.min(4096)),
                first: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // Every method leaves the ring consistent: a panic elsewhere must not blind it.
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `worker` ran `key` (`ok`: it produced a value).
    pub fn push(&self, key: Key, worker: &Arc<str>, timing: TaskTiming, ok: bool) {
        let mut r = self.lock();
        if r.capacity == 0 {
            r.first += 1;
            return;
        }
        if r.records.len() == r.capacity {
            r.records.pop_front();
            r.first += 1;
        }
        r.records.push_back(Stored {
            key,
            worker: worker.clone(),
            timing,
            ok,
        });
    }

    /// How many records it keeps at most.
    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// Sequence number the next record will get (= records seen so far).
    pub fn next_seq(&self) -> u64 {
        let r = self.lock();
        r.first + r.records.len() as u64
    }

    /// At most `limit` records from sequence number `since` on (or from the
    /// oldest held, if `since` fell out of the ring), oldest first.
    pub fn since(&self, since: u64, limit: usize) -> TaskStreamPage {
        let r = self.lock();
        let skip = usize::try_from(since.saturating_sub(r.first)).unwrap_or(usize::MAX);
        let records: Vec<TaskStreamRecord> = r
            .records
            .iter()
            .enumerate()
            .skip(skip)
            .take(limit)
            .map(|(i, s)| TaskStreamRecord {
                seq: r.first + i as u64,
                prefix: task_group(s.key.name()).to_owned(),
                key: s.key.clone(),
                worker: s.worker.to_string(),
                thread: s.timing.thread,
                start: s.timing.start,
                stop: s.timing.stop,
                status: if s.ok {
                    RunStatus::Ok
                } else {
                    RunStatus::Error
                },
            })
            .collect();
        let next = records
            .last()
            .map_or(r.first + r.records.len() as u64, |l| l.seq + 1);
        TaskStreamPage {
            records,
            first: r.first,
            next,
        }
    }
}

/// A worker's task threads, numbered: a task takes the lowest free number
/// when it starts and gives it back when it ends, so the records of one
/// number never overlap in time (one lane per thread on the dashboard).
#[derive(Debug)]
pub(crate) struct Lanes {
    free: Mutex<Vec<u32>>,
}

impl Lanes {
    /// `n` lanes, 0 .. n.
    pub(crate) fn new(n: u32) -> Lanes {
        Lanes {
            free: Mutex::new((0..n).rev().collect()),
        }
    }

    /// Takes a free lane (callers hold one of `n` permits, so one is free;
    /// if not, a number past the end keeps the record apart).
    pub(crate) fn take(&self) -> Lane<'_> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        let number = free.pop().unwrap_or(u32::MAX);
        Lane {
            lanes: self,
            number,
        }
    }
}

/// A lane in use; given back on drop.
pub(crate) struct Lane<'a> {
    lanes: &'a Lanes,
    pub(crate) number: u32,
}

impl Drop for Lane<'_> {
    fn drop(&mut self) {
        if self.number != u32::MAX {
            let mut free = self
                .lanes
                .free
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Kept descending, so `pop` gives the lowest free lane: a worker
            // running one task at a time uses lane 0.
            let at = free.partition_point(|&n| n > self.number);
            free.insert(at, self.number);
        }
    }
}
