//! The threaded scheduler: runs a graph on a pool of threads in this process,
//! highest-priority ready task first, releasing each intermediate as soon as its
//! last dependent has run.
//!
//! The key design decision: the calling thread always works on its own compute,
//! and the pool's threads *help* a compute only while it has more ready tasks
//! than workers. A helper that runs out of ready work goes back to the pool, so
//! computes started from several threads, or from inside a task (nested
//! compute), share the pool without blocking each other and never deadlock. On
//! the first failure no new task starts and `compute` returns at once; tasks
//! already running finish in the background.
//!
//! ```
//! use dask_core::{delayed, Collection};
//! use dask_threaded::ThreadedScheduler;
//!
//! let parts: Vec<_> = (0..8i64).map(|i| delayed(|x: i64| x * x).call((i,))).collect();
//! let total = parts.iter().fold(dask_core::Delayed::value(0i64), |acc, p| {
//!     delayed(|a: i64, b: i64| a + b).call((acc, p))
//! });
//! let pool = ThreadedScheduler::with_threads(2).unwrap();
//! assert_eq!(total.compute_with(&pool).unwrap(), (0..8).map(|i| i * i).sum::<i64>());
//! ```
#![warn(missing_docs)]

mod pool;
mod run;

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use dask_core::callbacks::{ActiveCallbacks, RunInfo};
use dask_core::scheduler::SchedulerRegistration;
use dask_core::{Error, Graph, Key, Plan, Result, Scheduler, SchedulerRef, Value};

use pool::Pool;

/// Runs graphs on a local thread pool. Cloning shares the pool.
#[derive(Clone)]
pub struct ThreadedScheduler {
    pool: Arc<pool::Handle>,
}

impl std::fmt::Debug for ThreadedScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadedScheduler")
            .field("threads", &self.num_threads())
            .finish()
    }
}

impl Default for ThreadedScheduler {
    fn default() -> Self {
        Self::new()
    }
}

impl ThreadedScheduler {
    /// A scheduler using as many threads as the machine has cores.
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_threads(cores).expect("at least one core")
    }

    /// A scheduler running each compute on `threads` threads: the caller plus
    /// `threads - 1` pool threads. Errors if `threads` is 0.
    pub fn with_threads(threads: usize) -> Result<Self> {
        if threads == 0 {
            return Err(Error::Scheduler {
                scheduler: "threaded".into(),
                message: "a thread pool needs at least 1 thread, got 0: pass 1 or more".into(),
            });
        }
        Ok(ThreadedScheduler {
            pool: Arc::new(pool::Handle::new(Pool::start(threads - 1)?)),
        })
    }

    /// Number of threads working on one compute (caller included).
    pub fn num_threads(&self) -> usize {
        self.pool.pool().helpers() + 1
    }
}

impl Scheduler for ThreadedScheduler {
    fn name(&self) -> &str {
        "threaded"
    }

    fn compute(&self, graph: &Graph, outputs: &[Key]) -> Result<Vec<Value>> {
        let callbacks = ActiveCallbacks::current();
        let started = Instant::now();
        let plan = Plan::new(graph, outputs)?;
        if callbacks.is_empty() {
            return run::Run::execute(plan, self.pool.pool(), None);
        }
        let info = RunInfo {
            scheduler: "threaded".into(),
            n_tasks: plan.len(),
            n_workers: self.num_threads(),
            started,
        };
        callbacks.start(&info);
        let result = run::Run::execute(plan, self.pool.pool(), Some(callbacks.clone()));
        callbacks.finish(&info, result.is_ok());
        result
    }
}

static SHARED: LazyLock<SchedulerRef> = LazyLock::new(|| Arc::new(ThreadedScheduler::new()));

inventory::submit! {
    SchedulerRegistration {
        name: "threaded",
        aliases: &["threads", "threading"],
        rank: 20,
        get: || SHARED.clone(),
    }
}
