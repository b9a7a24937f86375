//! The foundation's random-DAG properties on a LocalCluster (in-process
//! workers, real TCP): the same values as the sync scheduler, and with one
//! failing or panicking task, the same failing key; with several, a failing
//! task the outputs need.

use dask_core::Scheduler;
use dask_distributed::{Client, LocalCluster};
use dask_sync_scheduler::SyncScheduler;
use dask_testing::check_property;
use dask_testing::graphs::{random_dag, u64s, Failures, RandomDag};
use proptest::prelude::*;

const MAX_TASKS: usize = 1000;

fn client() -> Client {
    let cluster = LocalCluster::builder()
        .n_workers(2)
        .threads_per_worker(2)
        .start()
        .unwrap();
    Client::with_cluster(cluster).unwrap()
}

#[test]
fn same_results_as_sync() {
    let client = client();
    check_property(
        24,
        || random_dag(MAX_TASKS, Failures::None),
        move |dag: RandomDag| {
            let want = dag.expected().expect("no failing task");
            let got = client.compute(&dag.graph, &dag.outputs);
            prop_assert!(got.is_ok(), "{:?}", got.err());
            prop_assert_eq!(u64s(&got.unwrap()), want);
            Ok(())
        },
    );
}

#[test]
fn one_failing_task_gives_the_same_key_as_sync() {
    let client = client();
    check_property(
        24,
        || random_dag(MAX_TASKS, Failures::AtMostOne),
        move |dag: RandomDag| {
            let sync = SyncScheduler::new().compute(&dag.graph, &dag.outputs);
            let got = client.compute(&dag.graph, &dag.outputs);
            match (&sync, &got) {
                (Ok(a), Ok(b)) => prop_assert_eq!(u64s(a), u64s(b)),
                (Err(a), Err(b)) => prop_assert_eq!(
                    a.failed_key(),
                    b.failed_key(),
                    "sync: {}, distributed: {}",
                    a,
                    b
                ),
                _ => prop_assert!(
                    false,
                    "sync {:?} vs distributed {:?}",
                    sync.is_ok(),
                    got.is_ok()
                ),
            }
            Ok(())
        },
    );
}

#[test]
fn several_failures_report_a_needed_failing_task() {
    let client = client();
    check_property(
        16,
        || random_dag(MAX_TASKS, Failures::Several),
        move |dag: RandomDag| {
            let got = client.compute(&dag.graph, &dag.outputs);
            match (dag.expected(), got) {
                (Ok(want), Ok(v)) => prop_assert_eq!(u64s(&v), want),
                (Err(needed), Err(e)) => prop_assert!(
                    e.failed_key().is_some_and(|k| needed.contains(k)),
                    "{e} not among {needed:?}"
                ),
                (want, got) => prop_assert!(
                    false,
                    "oracle ok={} vs distributed ok={}",
                    want.is_ok(),
                    got.is_ok()
                ),
            }
            Ok(())
        },
    );
}
