//! Concurrent computes from several threads on one scheduler, and tasks that
//! themselves compute on the same scheduler (nested compute): both finish
//! (watchdog) with the sync scheduler's results.

use std::sync::Arc;

use dask_core::op::fn_op;
use dask_core::{delayed, Arg, Collection, Delayed, Graph, Key, Scheduler, Task, Value};
use dask_sync_scheduler::SyncScheduler;
use dask_testing::graphs::{random_dag, u64s, Failures, RandomDag};
use dask_testing::{test_timeout, within};
use dask_threaded::ThreadedScheduler;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

fn some_dags(n: usize, max_tasks: usize) -> Vec<RandomDag> {
    let mut runner = TestRunner::deterministic();
    let strategy = random_dag(max_tasks, Failures::AtMostOne);
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

#[test]
fn concurrent_computes_on_one_scheduler() {
    dask_testing::silence_intentional_panics();
    within(test_timeout(), || {
        for threads in [1, 2, 4] {
            let s = ThreadedScheduler::with_threads(threads).unwrap();
            let dags = Arc::new(some_dags(24, 1500));
            let callers: Vec<_> = (0..6)
                .map(|c| {
                    let s = s.clone();
                    let dags = dags.clone();
                    std::thread::spawn(move || {
                        for (i, dag) in dags.iter().enumerate() {
                            if i % 6 != c && (i + 1) % 6 != c {
                                continue;
                            }
                            let got = s.compute(&dag.graph, &dag.outputs);
                            let want = SyncScheduler::new().compute(&dag.graph, &dag.outputs);
                            match (got, want) {
                                (Ok(a), Ok(b)) => assert_eq!(u64s(&a), u64s(&b), "dag {i}"),
                                (Err(a), Err(b)) => {
                                    assert_eq!(a.failed_key(), b.failed_key(), "dag {i}")
                                }
                                (a, b) => panic!("dag {i}: threaded {a:?} vs sync {b:?}"),
                            }
                        }
                    })
                })
                .collect();
            for c in callers {
                c.join().expect("a caller thread failed");
            }
        }
    });
}

/// A graph of `width` tasks, each of which computes an inner graph (a sum of
/// squares of its own size) on `s` from inside the task.
fn nested(s: &ThreadedScheduler, width: u64) -> (Graph, Key) {
    let inner_scheduler = s.clone();
    let inner = fn_op(move |n: u64| -> u64 {
        let parts: Vec<Delayed<u64>> = (0..n).map(|i| delayed(|x: u64| x * x).call((i,))).collect();
        let total = parts.iter().fold(Delayed::value(0u64), |acc, p| {
            delayed(|a: u64, b: u64| a + b).call((acc, p))
        });
        total
            .compute_with(&inner_scheduler)
            .expect("the nested compute succeeds")
    });
    let mut g = Graph::new();
    let mut args = Vec::new();
    for i in 0..width {
        g.insert(
            Key::new("outer", [i]),
            Task::new(inner.clone(), vec![Arg::value(i + 1)]),
        );
        args.push(Arg::Key(Key::new("outer", [i])));
    }
    let sum = fn_op(|xs: Vec<Value>| {
        xs.iter()
            .map(|v| *v.downcast_ref::<u64>().unwrap())
            .sum::<u64>()
    });
    g.insert(Key::named("total"), Task::new(sum, vec![Arg::List(args)]));
    (g, Key::named("total"))
}

#[test]
fn nested_compute_on_the_same_scheduler() {
    within(test_timeout(), || {
        for threads in [1, 2, 4] {
            let s = ThreadedScheduler::with_threads(threads).unwrap();
            let width = 16u64;
            let (g, total) = nested(&s, width);
            let out = s.compute(&g, &[total]).unwrap();
            // Plain Rust: sum over n = 1..=width of (0..n).map(square).sum().
            let want: u64 = (1..=width)
                .map(|n| (0..n).map(|i| i * i).sum::<u64>())
                .sum();
            assert_eq!(u64s(&out), vec![want], "{threads} threads");
        }
    });
}

#[test]
fn nested_compute_two_levels_deep_from_several_callers() {
    within(test_timeout(), || {
        let s = ThreadedScheduler::with_threads(2).unwrap();
        let callers: Vec<_> = (0..3u64)
            .map(|c| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let inner = s.clone();
                    // Each outer task computes `nested`, whose tasks compute again.
                    let outer = delayed(move |w: u64| -> u64 {
                        let (g, total) = nested(&inner, w);
                        u64s(&inner.compute(&g, &[total]).unwrap())[0]
                    });
                    let parts: Vec<Delayed<u64>> = (1..=4).map(|w| outer.call((w + c,))).collect();
                    let got = dask_core::compute_with(&parts, &s).unwrap();
                    let want: Vec<u64> = (1..=4u64)
                        .map(|w| {
                            (1..=w + c)
                                .map(|n| (0..n).map(|i| i * i).sum::<u64>())
                                .sum()
                        })
                        .collect();
                    assert_eq!(got, want, "caller {c}");
                })
            })
            .collect();
        for c in callers {
            c.join().expect("a caller thread failed");
        }
    });
}
