//! The scheduler flavors every cross-scheduler test runs on.

use std::sync::Arc;

use dask_core::{Scheduler, SchedulerRef};
use dask_sync_scheduler::SyncScheduler;
use dask_threaded::ThreadedScheduler;

use crate::watchdog::{silence_intentional_panics, test_timeout, within};

/// One scheduler configuration a [`scheduler_test!`](crate::scheduler_test) runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// The sync scheduler (the reference).
    Sync,
    /// A fresh threaded scheduler with this many threads.
    Threaded(usize),
    /// A fresh in-process `LocalCluster` (2 workers x 2 threads, real TCP) and
    /// its client.
    Distributed,
}

impl Flavor {
    /// Every flavor the macro stamps tests for, in module order
    /// (`sync`, `threaded_1`, `threaded_4`, `distributed`).
    pub const ALL: [Flavor; 4] = [
        Flavor::Sync,
        Flavor::Threaded(1),
        Flavor::Threaded(4),
        Flavor::Distributed,
    ];

    /// A new scheduler of this flavor (a threaded one gets its own pool).
    pub fn scheduler(self) -> SchedulerRef {
        match self {
            Flavor::Sync => Arc::new(SyncScheduler::new()),
            Flavor::Threaded(n) => Arc::new(
                ThreadedScheduler::with_threads(n)
                    .unwrap_or_else(|e| panic!("cannot start a threaded scheduler: {e}")),
            ),
            Flavor::Distributed => {
                let cluster = dask_distributed::LocalCluster::builder()
                    .n_workers(2)
                    .threads_per_worker(2)
                    .start()
                    .unwrap_or_else(|e| panic!("cannot start a local cluster: {e}"));
                Arc::new(
                    dask_distributed::Client::with_cluster(cluster)
                        .unwrap_or_else(|e| panic!("cannot connect to the local cluster: {e}")),
                )
            }
        }
    }
}

/// Runs one test body on a new scheduler of `flavor`, under a watchdog of
/// [`test_timeout`], with intentional panics silenced. What
/// [`scheduler_test!`](crate::scheduler_test) expands to.
pub fn run_scheduler_test<F>(flavor: Flavor, body: F)
where
    F: FnOnce(&dyn Scheduler) + Send + 'static,
{
    silence_intentional_panics();
    within(test_timeout(), move || {
        let scheduler = flavor.scheduler();
        body(&*scheduler);
    });
}
