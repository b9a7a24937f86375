//! The synchronous scheduler: runs a graph in the caller's thread, one task at a
//! time, in [`Plan`] order. Deterministic, the oracle every other scheduler is
//! tested against, and the one to use in a debugger.
//!
//! Each intermediate value is released as soon as its last dependent has run, so
//! memory stays as low as the order allows.
//!
//! ```
//! use dask_core::{delayed, Collection};
//! use dask_sync_scheduler::SyncScheduler;
//!
//! let x = delayed(|a: i64, b: i64| a * b).call((6, 7));
//! assert_eq!(x.compute_with(&SyncScheduler::new()).unwrap(), 42);
//! ```
#![warn(missing_docs)]

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use dask_core::callbacks::{ActiveCallbacks, RunInfo, TaskEvent};
use dask_core::scheduler::SchedulerRegistration;
use dask_core::{Graph, Key, Plan, Result, Scheduler, SchedulerRef, Value};

/// Runs tasks one by one in the calling thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct SyncScheduler;

impl SyncScheduler {
    /// The synchronous scheduler.
    pub fn new() -> Self {
        SyncScheduler
    }
}

impl Scheduler for SyncScheduler {
    fn name(&self) -> &str {
        "sync"
    }

    fn compute(&self, graph: &Graph, outputs: &[Key]) -> Result<Vec<Value>> {
        let callbacks = ActiveCallbacks::current();
        let started = Instant::now();
        let plan = Plan::new(graph, outputs)?;
        if callbacks.is_empty() {
            return run(&plan, None);
        }
        let info = RunInfo {
            scheduler: "sync".into(),
            n_tasks: plan.len(),
            n_workers: 1,
            started,
        };
        callbacks.start(&info);
        let result = run(&plan, Some(&callbacks));
        callbacks.finish(&info, result.is_ok());
        result
    }
}

/// Runs a plan in index order (a topological order), releasing intermediates,
/// calling `callbacks` before and after each task when given.
pub fn run(plan: &Plan, callbacks: Option<&ActiveCallbacks>) -> Result<Vec<Value>> {
    let n = plan.len();
    let mut values: Vec<Option<Value>> = vec![None; n];
    let mut remaining_dependents: Vec<u32> =
        (0..n).map(|i| plan.dependents(i).len() as u32).collect();
    for i in 0..n {
        let mut args = plan.args(i).iter();
        let task = plan.task(i);
        let event = callbacks.map(|c| {
            let event = TaskEvent {
                key: plan.key(i),
                op: task.op.name(),
                worker: 0,
            };
            c.pretask(&event);
            (c, event)
        });
        let result = task.execute(plan.key(i), |_| {
            let d = *args.next().expect("plan lists every key argument");
            values[d as usize]
                .clone()
                .expect("dependency computed before its dependents")
        });
        if let Some((c, event)) = event {
            c.posttask(&event, result.is_ok());
        }
        let value = result?;
        values[i] = Some(value);
        for &d in plan.dependencies(i) {
            let d = d as usize;
            remaining_dependents[d] -= 1;
            if remaining_dependents[d] == 0 && !plan.is_output(d) {
                values[d] = None;
            }
        }
    }
    plan.take_outputs(values)
}

static SHARED: LazyLock<SchedulerRef> = LazyLock::new(|| Arc::new(SyncScheduler));

inventory::submit! {
    SchedulerRegistration {
        name: "sync",
        aliases: &["synchronous", "single-threaded"],
        rank: 10,
        get: || SHARED.clone(),
    }
}
