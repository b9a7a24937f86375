//! Failures on the threaded scheduler: scheduling stops promptly after an
//! error (counted, not timed), and the scheduler stays usable after failing
//! and panicking computes.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use dask_core::op::{fn_op, try_fn_op};
use dask_core::{Arg, Error, Graph, Key, Panicked, Scheduler, Task, Value};
use dask_sync_scheduler::SyncScheduler;
use dask_testing::graphs::{chain, chain_expected, u64s};
use dask_testing::{silence_intentional_panics, test_timeout, within};
use dask_threaded::ThreadedScheduler;

const SLEEPERS: usize = 2000;

/// An output reading `first` (which fails) and then 2000 tasks that each sleep
/// 1 ms and count themselves: `first` is the highest priority (it comes first
/// in the depth-first order from the output).
fn failing_first(started: &Arc<AtomicUsize>, panics: bool) -> (Graph, Key) {
    let mut g = Graph::new();
    let fail = if panics {
        fn_op(|| -> u64 { panic!("intentional panic: first task") })
    } else {
        try_fn_op(|| -> Result<u64, String> { Err("first task failed".into()) })
    };
    g.insert(Key::named("first"), Task::new(fail, vec![]));
    let counter = started.clone();
    let sleep = fn_op(move |i: u64| {
        counter.fetch_add(1, SeqCst);
        std::thread::sleep(Duration::from_millis(1));
        i
    });
    let mut args = vec![Arg::Key(Key::named("first"))];
    for i in 0..SLEEPERS as u64 {
        g.insert(
            Key::new("sleep", [i]),
            Task::new(sleep.clone(), vec![Arg::value(i)]),
        );
        args.push(Arg::Key(Key::new("sleep", [i])));
    }
    let count = fn_op(|xs: Vec<Value>| xs.len() as u64);
    g.insert(Key::named("all"), Task::new(count, vec![Arg::List(args)]));
    (g, Key::named("all"))
}

fn check_stops_promptly(threads: usize, panics: bool) {
    silence_intentional_panics();
    within(test_timeout(), move || {
        let s = ThreadedScheduler::with_threads(threads).unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let (g, out) = failing_first(&started, panics);
        let order = dask_core::order(&g, std::slice::from_ref(&out)).unwrap();
        assert_eq!(
            order[&Key::named("first")],
            0,
            "the failing task has the highest priority"
        );
        let err = s.compute(&g, &[out]).unwrap_err();
        assert_eq!(err.failed_key(), Some(&Key::named("first")), "{err}");
        let n = started.load(SeqCst);
        // The tasks that started before the failure was seen: at most a few per
        // thread, never the bulk of the 2000.
        assert!(
            n <= 20 * threads && n * 10 < SLEEPERS,
            "{threads} threads: {n} of {SLEEPERS} sleepers started after the failure"
        );
        // Same as sync, which stops at once.
        let sync_started = Arc::new(AtomicUsize::new(0));
        let (g, out) = failing_first(&sync_started, panics);
        let sync_err = SyncScheduler::new().compute(&g, &[out]).unwrap_err();
        assert_eq!(sync_err.failed_key(), err.failed_key());
        assert_eq!(sync_started.load(SeqCst), 0);
    });
}

#[test]
fn error_stops_scheduling_promptly_1_thread() {
    check_stops_promptly(1, false);
}

#[test]
fn error_stops_scheduling_promptly_2_threads() {
    check_stops_promptly(2, false);
}

#[test]
fn error_stops_scheduling_promptly_4_threads() {
    check_stops_promptly(4, false);
}

#[test]
fn panic_stops_scheduling_promptly_4_threads() {
    check_stops_promptly(4, true);
}

#[test]
fn usable_after_failing_and_panicking_computes() {
    silence_intentional_panics();
    within(test_timeout(), || {
        for threads in [1, 2, 4] {
            let s = ThreadedScheduler::with_threads(threads).unwrap();
            let (good, last) = chain(500);
            for round in 0..3 {
                let started = Arc::new(AtomicUsize::new(0));
                let (g, out) = failing_first(&started, false);
                let err = s.compute(&g, &[out]).unwrap_err();
                assert!(
                    matches!(&err, Error::TaskFailed { message, .. } if message == "first task failed"),
                    "{err:?}"
                );

                let (g, out) = failing_first(&started, true);
                let err = s.compute(&g, &[out]).unwrap_err();
                let Error::TaskFailed { key, source, .. } = &err else {
                    panic!("{err:?}")
                };
                assert_eq!(key, &Key::named("first"));
                assert!(source.downcast_ref::<Panicked>().is_some(), "{err:?}");

                let out = s.compute(&good, std::slice::from_ref(&last)).unwrap();
                assert_eq!(
                    u64s(&out),
                    vec![chain_expected(500)],
                    "{threads} threads, round {round}"
                );
            }
        }
    });
}

#[test]
fn failure_deep_in_a_wide_graph() {
    // The failing task is the last in priority, below many parallel branches:
    // every branch before it completes, then the error is reported.
    silence_intentional_panics();
    within(test_timeout(), || {
        for threads in [1, 2, 4] {
            let s = ThreadedScheduler::with_threads(threads).unwrap();
            let mut g = Graph::new();
            let square = fn_op(|x: u64| x * x);
            let mut args = Vec::new();
            for i in 0..200u64 {
                g.insert(
                    Key::new("sq", [i]),
                    Task::new(square.clone(), vec![Arg::value(i)]),
                );
                args.push(Arg::Key(Key::new("sq", [i])));
            }
            g.insert(
                Key::named("bad"),
                Task::new(
                    fn_op(|| -> u64 { panic!("intentional panic: last") }),
                    vec![],
                ),
            );
            args.push(Arg::Key(Key::named("bad")));
            let sum = fn_op(|xs: Vec<Value>| {
                xs.iter()
                    .map(|v| *v.downcast_ref::<u64>().unwrap())
                    .sum::<u64>()
            });
            g.insert(Key::named("sum"), Task::new(sum, vec![Arg::List(args)]));
            let err = s.compute(&g, &[Key::named("sum")]).unwrap_err();
            assert_eq!(err.failed_key(), Some(&Key::named("bad")));
            // Without the bad task the same graph computes the plain-Rust sum.
            let mut ok = g.clone();
            ok.insert_data(Key::named("bad"), Value::new(0u64));
            let out = s.compute(&ok, &[Key::named("sum")]).unwrap();
            assert_eq!(u64s(&out), vec![(0..200u64).map(|i| i * i).sum::<u64>()]);
        }
    });
}
