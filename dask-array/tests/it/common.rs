//! Shared helpers: the schedulers, proptest strategies, float comparison.

use std::sync::{Arc, OnceLock};

use dask_array::{Array, Collection, Element};
use dask_core::SchedulerRef;
use dask_sync_scheduler::SyncScheduler;
use dask_threaded::ThreadedScheduler;
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;

/// The schedulers every test computes on: sync, threaded with 1 thread and
/// threaded with 4 threads, shared by all tests (each property case computes
/// on all of them and compares with the oracle).
///
/// The distributed entry is an in-process `LocalCluster` (2 workers x 2
/// threads, real TCP for control): tasks and blocks use the in-process
/// transport, so closures work without registered ops or codecs.
pub fn schedulers() -> &'static [(&'static str, SchedulerRef)] {
    static S: OnceLock<Vec<(&'static str, SchedulerRef)>> = OnceLock::new();
    S.get_or_init(|| {
        vec![
            ("sync", Arc::new(SyncScheduler::new()) as SchedulerRef),
            (
                "threaded-1",
                Arc::new(ThreadedScheduler::with_threads(1).unwrap()),
            ),
            (
                "threaded-4",
                Arc::new(ThreadedScheduler::with_threads(4).unwrap()),
            ),
            (
                "distributed",
                Arc::new(
                    dask_distributed::Client::with_cluster(
                        dask_distributed::LocalCluster::builder()
                            .n_workers(2)
                            .threads_per_worker(2)
                            .start()
                            .unwrap(),
                    )
                    .unwrap(),
                ),
            ),
        ]
    })
}

/// Computes `x` on the sync scheduler.
pub fn sync<T: Element>(x: &Array<T>) -> ArrayD<T> {
    x.compute_with(&*schedulers()[0].1).unwrap()
}

/// Computes a 0-d `x` on the sync scheduler and returns its element.
pub fn scalar<T: Element>(x: &Array<T>) -> T {
    x.compute_scalar_with(&*schedulers()[0].1).unwrap()
}

/// Computes `x` on every scheduler and checks each result exactly against `expected`.
pub fn assert_exact<T: Element + PartialEq>(x: &Array<T>, expected: &ArrayD<T>) {
    for (name, s) in schedulers() {
        let got = x
            .compute_with(&**s)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.shape(), expected.shape(), "{name}: shape");
        assert_eq!(&got, expected, "{name}: {x}");
    }
}

/// Relative tolerance for float results: 1e-9. Our tree reductions add the
/// same numbers in another order than ndarray's loop; with at most a few
/// hundred elements of magnitude <= 10 the rounding difference stays below
/// n * eps * sum|x| ~ 1e-10, so 1e-9 leaves a margin while still catching any
/// real mistake (a missing or doubled element changes the result by >= 1e-3).
pub const REL_TOL: f64 = 1e-9;

pub fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= REL_TOL * (1.0 + a.abs().max(b.abs()))
}

/// Computes `x` on every scheduler and checks it against `expected` within [`REL_TOL`].
pub fn assert_close<T: Element + Into<f64>>(x: &Array<T>, expected: &ArrayD<T>) {
    for (name, s) in schedulers() {
        let got = x
            .compute_with(&**s)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.shape(), expected.shape(), "{name}: shape of {x}");
        for (g, e) in got.iter().zip(expected.iter()) {
            let (g, e): (f64, f64) = ((*g).into(), (*e).into());
            assert!(close(g, e), "{name}: {g} != {e} in {x}");
        }
    }
}

/// Shapes of 1 to 3 axes of length 1 to `max`.
pub fn shape(max: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1..=max, 1..=3)
}

/// A random chunking of one axis: regular with a random block length, or an
/// irregular random partition (which includes blocks of length 1).
pub fn axis_chunks(dim: usize) -> BoxedStrategy<Vec<usize>> {
    let regular = (1..=dim.max(1)).prop_map(move |n| {
        let mut v = vec![n; dim / n];
        if !dim.is_multiple_of(n) {
            v.push(dim % n);
        }
        v
    });
    let irregular =
        prop::collection::vec(any::<bool>(), dim.saturating_sub(1)).prop_map(move |cuts| {
            let mut v = Vec::new();
            let mut len = 1;
            for cut in cuts {
                if cut {
                    v.push(len);
                    len = 1;
                } else {
                    len += 1;
                }
            }
            v.push(len);
            v
        });
    prop_oneof![regular, irregular].boxed()
}

/// Random chunks for a shape.
pub fn chunks(shape: &[usize]) -> BoxedStrategy<Vec<Vec<usize>>> {
    shape
        .iter()
        .map(|&d| axis_chunks(d))
        .collect::<Vec<_>>()
        .boxed()
}

/// Data for a shape: small floats (magnitude <= 10).
pub fn data(shape: &[usize]) -> BoxedStrategy<ArrayD<f64>> {
    let shape = shape.to_vec();
    let n: usize = shape.iter().product();
    prop::collection::vec(-10.0f64..10.0, n)
        .prop_map(move |v| ArrayD::from_shape_vec(IxDyn(&shape), v).unwrap())
        .boxed()
}

/// Data and the chunks to cut it into.
pub type Case = (ArrayD<f64>, Vec<Vec<usize>>);

/// Two arrays and their chunks.
pub type PairCase = (ArrayD<f64>, Vec<Vec<usize>>, ArrayD<f64>, Vec<Vec<usize>>);

/// A shape, data of that shape and a random chunking.
pub fn array_case(max: usize) -> BoxedStrategy<Case> {
    shape(max).prop_flat_map(|s| (data(&s), chunks(&s))).boxed()
}

/// Proptest configuration: a moderate number of cases keeps the suite fast.
pub fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    }
}
