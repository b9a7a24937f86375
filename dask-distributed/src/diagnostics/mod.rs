//! Diagnostics of a distributed run, as a client sees them: the task stream
//! ([`Client::get_task_stream`]), progress bars over futures
//! ([`Client::progress`]) and standalone HTML performance reports
//! ([`Client::performance_report`]).
//!
//! ```no_run
//! use dask_distributed::Client;
//! # fn run() -> dask_distributed::Result<()> {
//! let client = Client::new()?;
//! let futures = client.map(|x: i64| x * x, 0..100i64)?;
//! let progress = client.progress(&futures)?; // draws on stderr
//! let counts = progress.wait(std::time::Duration::from_secs(60))?;
//! assert_eq!(counts.finished, 100);
//! client.performance_report("report.html", || client.gather(&futures))??;
//! for r in client.get_task_stream()? {
//!     println!("{} ran on {} thread {} for {:.3} ms", r.key, r.worker, r.thread, r.duration() * 1e3);
//! }
//! # Ok(()) }
//! ```

mod progress;
mod report;

pub use progress::{Progress, ProgressCounts};
pub use report::{PerformanceReport, ReportSummary};

use crate::client::Inner;
use crate::messages::{Answer, Query};
use crate::task_stream::{TaskStreamPage, TaskStreamRecord, TASK_STREAM_PAGE};
use crate::{Client, Error, Result};

/// Bytes of results a worker holds, as the scheduler counts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerMemory {
    /// The worker's data address.
    pub addr: String,
    /// Its task threads.
    pub nthreads: u32,
    /// Bytes of the results it holds (sizes its tasks reported).
    pub bytes: u64,
}

fn unexpected(answer: &Answer) -> Error {
    Error::Malformed {
        what: "answer",
        detail: format!("unexpected answer to a diagnostics query: {answer:?}"),
    }
}

impl Inner {
    /// Every record from `since` on, paging through the scheduler's answers.
    pub(crate) async fn task_stream_since(&self, since: u64) -> Result<TaskStreamPage> {
        let mut out = TaskStreamPage {
            records: Vec::new(),
            first: since,
            next: since,
        };
        let mut first = None;
        // Bounded: the ring holds at most its capacity, so a few pages more
        // than it only happen while tasks keep finishing; stop there.
        for _ in 0..64 {
            let query = Query::TaskStream {
                since: out.next,
                limit: TASK_STREAM_PAGE as u64,
            };
            let page = match self.query(query).await? {
                Answer::TaskStream(page) => page,
                other => return Err(unexpected(&other)),
            };
            first.get_or_insert(page.first);
            let n = page.records.len();
            out.next = page.next;
            out.records.extend(page.records);
            if n < TASK_STREAM_PAGE {
                break;
            }
        }
        out.first = first.unwrap_or(since);
        Ok(out)
    }

    /// The scheduler's count of bytes held per worker.
    pub(crate) async fn worker_memory(&self) -> Result<Vec<WorkerMemory>> {
        match self.query(Query::WorkerMemory).await? {
            Answer::WorkerMemory(list) => Ok(list
                .into_iter()
                .map(|(addr, nthreads, bytes)| WorkerMemory {
                    addr,
                    nthreads,
                    bytes,
                })
                .collect()),
            other => Err(unexpected(&other)),
        }
    }
}

impl Client {
    /// Every task-stream record the scheduler holds (the newest
    /// [`DEFAULT_TASK_STREAM_CAPACITY`](crate::task_stream::DEFAULT_TASK_STREAM_CAPACITY)
    /// by default), oldest first, like Dask's `client.get_task_stream()`:
    /// each task a worker ran, with its key, prefix, worker, thread, start,
    /// stop and status.
    pub fn get_task_stream(&self) -> Result<Vec<TaskStreamRecord>> {
        Ok(self.task_stream_since(0)?.records)
    }

    /// The records from sequence number `since` on (those still held), and
    /// the number to ask from next time: poll with it to follow the stream.
    pub fn task_stream_since(&self, since: u64) -> Result<TaskStreamPage> {
        let inner = self.inner().clone();
        self.inner()
            .block_on(async move { inner.task_stream_since(since).await })?
    }

    /// Bytes of results each worker holds, as the scheduler counts them,
    /// sorted by address.
    pub fn worker_memory(&self) -> Result<Vec<WorkerMemory>> {
        let inner = self.inner().clone();
        self.inner()
            .block_on(async move { inner.worker_memory().await })?
    }
}
