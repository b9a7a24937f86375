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
        let plan = Plan::new(graph, outputs)?;
        run(&plan)
    }
}

/// Runs a plan in index order (a topological order), releasing intermediates.
pub fn run(plan: &Plan) -> Result<Vec<Value>> {
    let n = plan.len();
    let mut values: Vec<Option<Value>> = vec![None; n];
    let mut remaining_dependents: Vec<u32> =
        (0..n).map(|i| plan.dependents(i).len() as u32).collect();
    for i in 0..n {
        let mut args = plan.args(i).iter();
        let value = plan.task(i).execute(plan.key(i), |_| {
            let d = *args.next().expect("plan lists every key argument");
            values[d as usize]
                .clone()
                .expect("dependency computed before its dependents")
        })?;
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
