//! Random DAGs: the threaded scheduler on 1, 2 and 4 threads gives what the
//! sync scheduler (and the generator's own oracle) gives; with one failing or
//! panicking task, the same failing key; with several, a failing task the
//! outputs need.

use dask_core::{Error, Result, Scheduler, Value};
use dask_sync_scheduler::SyncScheduler;
use dask_testing::check_property;
use dask_testing::graphs::{random_dag, u64s, Failures, RandomDag};
use dask_threaded::ThreadedScheduler;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const MAX_TASKS: usize = 2000;

fn pools() -> Vec<ThreadedScheduler> {
    [1, 2, 4]
        .into_iter()
        .map(|n| ThreadedScheduler::with_threads(n).unwrap())
        .collect()
}

fn describe(r: &Result<Vec<Value>>) -> String {
    match r {
        Ok(v) => format!("Ok({:?})", u64s(v)),
        Err(e) => format!("Err({e})"),
    }
}

#[test]
fn same_results_as_sync() {
    let threaded = pools();
    check_property(
        64,
        || random_dag(MAX_TASKS, Failures::None),
        move |dag: RandomDag| {
            let want = dag.expected().expect("no failing task");
            let sync = SyncScheduler::new()
                .compute(&dag.graph, &dag.outputs)
                .unwrap();
            prop_assert_eq!(&u64s(&sync), &want);
            for s in &threaded {
                let got = s.compute(&dag.graph, &dag.outputs);
                prop_assert!(
                    got.is_ok(),
                    "{} threads: {}",
                    s.num_threads(),
                    describe(&got)
                );
                prop_assert_eq!(
                    u64s(&got.unwrap()),
                    want.clone(),
                    "{} threads",
                    s.num_threads()
                );
            }
            Ok(())
        },
    );
}

#[test]
fn one_failing_task_gives_the_same_key_as_sync() {
    let threaded = pools();
    check_property(
        64,
        || random_dag(MAX_TASKS, Failures::AtMostOne),
        move |dag: RandomDag| {
            let sync = SyncScheduler::new().compute(&dag.graph, &dag.outputs);
            match (&sync, dag.expected()) {
                (Ok(v), Ok(want)) => prop_assert_eq!(u64s(v), want),
                (Err(e), Err(needed)) => prop_assert!(
                    e.failed_key().is_some_and(|k| needed.contains(k)),
                    "sync: {e} not among {needed:?}"
                ),
                _ => {
                    return Err(TestCaseError::fail(format!(
                        "sync {} vs oracle {:?}",
                        describe(&sync),
                        dag.expected()
                    )))
                }
            }
            for s in &threaded {
                let got = s.compute(&dag.graph, &dag.outputs);
                match (&sync, &got) {
                    (Ok(a), Ok(b)) => {
                        prop_assert_eq!(u64s(a), u64s(b), "{} threads", s.num_threads())
                    }
                    (Err(a), Err(b)) => {
                        prop_assert_eq!(
                            a.failed_key(),
                            b.failed_key(),
                            "{} threads: {} vs {}",
                            s.num_threads(),
                            a,
                            b
                        );
                        let (
                            Error::TaskFailed {
                                message: ma,
                                op: oa,
                                ..
                            },
                            Error::TaskFailed {
                                message: mb,
                                op: ob,
                                ..
                            },
                        ) = (a, b)
                        else {
                            return Err(TestCaseError::fail(format!("{a:?} vs {b:?}")));
                        };
                        prop_assert_eq!((ma, oa), (mb, ob));
                    }
                    _ => {
                        return Err(TestCaseError::fail(format!(
                            "{} threads: sync {} vs threaded {}",
                            s.num_threads(),
                            describe(&sync),
                            describe(&got)
                        )))
                    }
                }
            }
            Ok(())
        },
    );
}

#[test]
fn several_failing_tasks_report_one_the_outputs_need() {
    let threaded = pools();
    check_property(
        64,
        || random_dag(MAX_TASKS, Failures::Several),
        move |dag: RandomDag| {
            let expected = dag.expected();
            for s in &threaded {
                let got = s.compute(&dag.graph, &dag.outputs);
                match (&expected, &got) {
                    (Ok(want), Ok(v)) => {
                        prop_assert_eq!(&u64s(v), want, "{} threads", s.num_threads())
                    }
                    (Err(needed), Err(e)) => prop_assert!(
                        e.failed_key().is_some_and(|k| needed.contains(k)),
                        "{} threads: {} is not among the needed failing {:?}",
                        s.num_threads(),
                        e,
                        needed
                    ),
                    _ => {
                        return Err(TestCaseError::fail(format!(
                            "{} threads: expected {:?}, got {}",
                            s.num_threads(),
                            expected,
                            describe(&got)
                        )))
                    }
                }
            }
            Ok(())
        },
    );
}

#[test]
fn one_scheduler_many_graphs_in_a_row() {
    // The same pool across many computes (errors included) keeps giving the
    // sync scheduler's answers: no state leaks from one compute to the next.
    let s = ThreadedScheduler::with_threads(3).unwrap();
    check_property(
        60,
        || random_dag(300, Failures::AtMostOne),
        move |dag: RandomDag| {
            let sync = SyncScheduler::new().compute(&dag.graph, &dag.outputs);
            let got = s.compute(&dag.graph, &dag.outputs);
            match (&sync, &got) {
                (Ok(a), Ok(b)) => prop_assert_eq!(u64s(a), u64s(b)),
                (Err(a), Err(b)) => prop_assert_eq!(a.failed_key(), b.failed_key()),
                _ => {
                    return Err(TestCaseError::fail(format!(
                        "sync {} vs threaded {}",
                        describe(&sync),
                        describe(&got)
                    )))
                }
            }
            Ok(())
        },
    );
}
