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

/// One record, its key's name and index kept in the ring's own buffers: the
/// ring holds no `Key` and makes no allocation per task. (Holding 100k keys
/// of finished tasks, each an allocation of its own, measured +26% to +50%
/// on a 100k-task run against a ring of 1000: the allocator slowed with the
/// old keys scattered between new ones.)
struct Stored {
    /// Where its name starts, counted from the first byte ever stored.
    name_start: u64,
    name_len: usize,
    /// Where its index starts, counted likewise.
    index_start: u64,
    index_len: usize,
    worker: u32,
    timing: TaskTiming,
    ok: bool,
}

struct Ring {
    capacity: usize,
    records: VecDeque<Stored>,
    /// The records' key names, back to back, oldest first.
    names: VecDeque<u8>,
    /// The records' key indices, back to back, oldest first.
    indices: VecDeque<u64>,
    /// How many name bytes and index numbers fell out before `names[0]`
    /// and `indices[0]`.
    names_dropped: u64,
    indices_dropped: u64,
    /// Worker addresses the records point into.
    workers: Vec<Arc<str>>,
    /// Sequence number of `records[0]`.
    first: u64,
}

impl Ring {
    fn worker_number(&mut self, worker: &Arc<str>) -> u32 {
        let found = self
            .workers
            .iter()
            .position(|w| Arc::ptr_eq(w, worker) || w == worker);
        let i = found.unwrap_or_else(|| {
            self.workers.push(worker.clone());
            self.workers.len() - 1
        });
        u32::try_from(i).unwrap_or(u32::MAX)
    }

    fn pop_oldest(&mut self) {
        if let Some(old) = self.records.pop_front() {
            self.names.drain(..old.name_len);
            self.indices.drain(..old.index_len);
            self.names_dropped += old.name_len as u64;
            self.indices_dropped += old.index_len as u64;
            self.first += 1;
        }
    }
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
                names: VecDeque::new(),
                indices: VecDeque::new(),
                names_dropped: 0,
                indices_dropped: 0,
                workers: Vec::new(),
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
            r.pop_oldest();
        }
        let worker = r.worker_number(worker);
        let (name, index) = (key.name(), key.index());
        let name_start = r.names_dropped + r.names.len() as u64;
        let index_start = r.indices_dropped + r.indices.len() as u64;
        r.names.extend(name.as_bytes());
        r.indices.extend(index);
        r.records.push_back(Stored {
            name_start,
            index_start,
            name_len: name.len(),
            index_len: index.len(),
            worker,
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
        let mut records = Vec::new();
        for (i, s) in r.records.iter().enumerate().skip(skip).take(limit) {
            let name_from = usize::try_from(s.name_start - r.names_dropped).unwrap_or(0);
            let index_from = usize::try_from(s.index_start - r.indices_dropped).unwrap_or(0);
            let name_at = name_from + s.name_len;
            let index_at = index_from + s.index_len;
            let name: Vec<u8> = r.names.range(name_from..name_at).copied().collect();
            let name = String::from_utf8_lossy(&name).into_owned();
            let index: Vec<u64> = r.indices.range(index_from..index_at).copied().collect();
            records.push(TaskStreamRecord {
                seq: r.first + i as u64,
                prefix: task_group(&name).to_owned(),
                key: Key::new(name, index),
                worker: r
                    .workers
                    .get(s.worker as usize)
                    .map_or_else(String::new, |w| w.to_string()),
                thread: s.timing.thread,
                start: s.timing.start,
                stop: s.timing.stop,
                status: if s.ok {
                    RunStatus::Ok
                } else {
                    RunStatus::Error
                },
            });
        }
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

#[cfg(test)]
mod ring_tests {
    use super::*;

    /// The compact ring against a plain deque of whole records, over random
    /// keys (names and indices of many lengths), workers and capacities.
    #[test]
    fn the_compact_ring_answers_like_a_deque_of_records() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n.max(1)
        };
        let workers: Vec<Arc<str>> = vec!["127.0.0.1:1".into(), "127.0.0.1:22".into()];
        for capacity in [0usize, 1, 2, 7, 50] {
            let stream = TaskStream::new(capacity);
            let mut oracle: VecDeque<(u64, Key, String, bool)> = VecDeque::new();
            for seq in 0..300u64 {
                let name = format!("t{}-{}", next(5), "x".repeat(next(40) as usize));
                let index: Vec<u64> = (0..next(4)).map(|_| next(1 << 40)).collect();
                let key = Key::new(name, index);
                let worker = &workers[next(2) as usize];
                let ok = next(2) == 0;
                let timing = TaskTiming {
                    start: seq as f64,
                    stop: seq as f64 + 0.5,
                    thread: 0,
                };
                stream.push(key.clone(), worker, timing, ok);
                if capacity > 0 {
                    if oracle.len() == capacity {
                        oracle.pop_front();
                    }
                    oracle.push_back((seq, key, worker.to_string(), ok));
                }
                let since = next(seq + 2);
                let limit = 1 + next(10) as usize;
                let page = stream.since(since, limit);
                let want: Vec<_> = oracle.iter().filter(|r| r.0 >= since).take(limit).collect();
                assert_eq!(
                    page.records.len(),
                    want.len(),
                    "capacity {capacity} seq {seq}"
                );
                for (got, want) in page.records.iter().zip(want) {
                    assert_eq!(got.seq, want.0);
                    assert_eq!(got.key, want.1);
                    assert_eq!(got.prefix, task_group(want.1.name()));
                    assert_eq!(got.worker, want.2);
                    assert_eq!(got.status == RunStatus::Ok, want.3);
                    assert_eq!(got.start, want.0 as f64);
                }
                assert_eq!(stream.next_seq(), seq + 1);
            }
        }
    }
}
