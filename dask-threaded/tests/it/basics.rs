//! Construction, naming, registration.

use dask_core::scheduler::{by_name, default_scheduler};
use dask_core::{delayed, Collection, Error, Scheduler};
use dask_threaded::ThreadedScheduler;

#[test]
fn zero_threads_is_a_typed_error() {
    match ThreadedScheduler::with_threads(0) {
        Err(Error::Scheduler { scheduler, message }) => {
            assert_eq!(scheduler, "threaded");
            assert!(message.contains('0'), "{message}");
        }
        Err(other) => panic!("expected Error::Scheduler, got {other:?}"),
        Ok(_) => panic!("a pool of 0 threads was accepted"),
    }
}

#[test]
fn thread_counts_and_name() {
    for n in [1, 2, 3, 8] {
        let s = ThreadedScheduler::with_threads(n).unwrap();
        assert_eq!(s.num_threads(), n);
        assert_eq!(s.name(), "threaded");
        assert_eq!(s.clone().num_threads(), n, "a clone shares the pool");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(ThreadedScheduler::new().num_threads(), cores);
}

#[test]
fn registered_as_the_default_over_sync() {
    // This binary links both sync (dev-dependency) and threaded; nothing here
    // sets a global default.
    assert_eq!(default_scheduler().unwrap().name(), "threaded");
    assert_eq!(by_name("threads").unwrap().name(), "threaded");
    assert_eq!(by_name("threaded").unwrap().name(), "threaded");
    assert_eq!(by_name("sync").unwrap().name(), "sync");
    let x = delayed(|a: u32, b: u32| a * b).call((6, 7));
    assert_eq!(x.compute().unwrap(), 42);
}

#[test]
fn dropping_the_scheduler_while_idle_is_fine() {
    dask_testing::within(dask_testing::test_timeout(), || {
        for n in 1..=4 {
            let s = ThreadedScheduler::with_threads(n).unwrap();
            let x = delayed(|a: i64| a + 1).call((1,));
            assert_eq!(x.compute_with(&s).unwrap(), 2);
            drop(s);
        }
    });
}
