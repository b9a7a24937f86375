//! Peak live intermediates, measured from outside the scheduler with
//! `Tracked` values: a binary tree reduction of 1024 leaves stays within a
//! bound derived from the tree's depth and the thread count, and after compute
//! returns only the outputs are alive.

use dask_core::{Scheduler, Value};
use dask_sync_scheduler::SyncScheduler;
use dask_testing::tracked::tree_reduction;
use dask_testing::{test_timeout, within, LiveCounter, Tracked};
use dask_threaded::ThreadedScheduler;

const LEAVES: usize = 1024;

/// Computes the tree on `scheduler` and checks the result (plain-Rust sum),
/// the peak and what stays alive; returns the peak.
fn reduce_tree(scheduler: &dyn Scheduler, threads: usize) -> usize {
    let counter = LiveCounter::new();
    let (graph, root, depth) = tree_reduction(&counter, LEAVES);
    assert_eq!(1 << depth, LEAVES);
    let out = scheduler
        .compute(&graph, std::slice::from_ref(&root))
        .unwrap();
    let total = out[0].downcast_ref::<Tracked>().unwrap().value();
    assert_eq!(total, (0..LEAVES as u64).sum::<u64>());
    assert_eq!(
        counter.created(),
        2 * LEAVES - 1,
        "each task made one value, nothing was cloned"
    );

    // Depth-first priorities on one thread: along the path to the running
    // task, one finished value per level waits for its sibling; with the
    // running sum's two inputs and its fresh result that is at most depth + 2.
    // Each further thread runs on its own path, and may still hold the two
    // inputs it just released while others create values: depth + 3 each.
    let bound = if threads == 1 {
        depth + 2
    } else {
        threads * (depth + 3)
    };
    let peak = counter.peak();
    assert!(
        peak <= bound,
        "{} on {threads} thread(s): peak {peak} live values, bound {bound}",
        scheduler.name()
    );
    assert!(peak * 10 < LEAVES, "peak {peak} is not far below {LEAVES}");

    // Only the output is alive once compute returned.
    assert_eq!(
        counter.live(),
        1,
        "{} on {threads} thread(s): values outlived compute",
        scheduler.name()
    );
    drop(out);
    assert_eq!(counter.live(), 0);
    peak
}

#[test]
fn tree_reduction_peak_on_sync() {
    within(test_timeout(), || {
        reduce_tree(&SyncScheduler::new(), 1);
    });
}

#[test]
fn tree_reduction_peak_on_one_thread() {
    within(test_timeout(), || {
        let s = ThreadedScheduler::with_threads(1).unwrap();
        for _ in 0..5 {
            reduce_tree(&s, 1);
        }
    });
}

#[test]
fn tree_reduction_peak_on_two_threads() {
    within(test_timeout(), || {
        let s = ThreadedScheduler::with_threads(2).unwrap();
        for _ in 0..20 {
            reduce_tree(&s, 2);
        }
    });
}

#[test]
fn tree_reduction_peak_on_four_threads() {
    within(test_timeout(), || {
        let s = ThreadedScheduler::with_threads(4).unwrap();
        for _ in 0..20 {
            reduce_tree(&s, 4);
        }
    });
}

#[test]
fn intermediates_are_released_and_outputs_kept() {
    // Several outputs, one of them also an intermediate of another: outputs
    // stay alive until returned, everything else is freed.
    within(test_timeout(), || {
        let s = ThreadedScheduler::with_threads(2).unwrap();
        let counter = LiveCounter::new();
        let (graph, root, _) = tree_reduction(&counter, 64);
        let mid = dask_core::Key::new("sum-3", [1]);
        let leaf = dask_core::Key::new("leaf", [5]);
        let out = s
            .compute(
                &graph,
                &[mid.clone(), root.clone(), leaf.clone(), mid.clone()],
            )
            .unwrap();
        let values: Vec<u64> = out
            .iter()
            .map(|v: &Value| v.downcast_ref::<Tracked>().unwrap().value())
            .collect();
        // ("sum-3", 1) sums leaves 8..16; the root all 64; leaf 5 is 5.
        let mid_sum: u64 = (8..16).sum();
        assert_eq!(values, vec![mid_sum, (0..64).sum(), 5, mid_sum]);
        assert_eq!(counter.live(), 3, "three distinct outputs alive");
        drop(out);
        assert_eq!(counter.live(), 0);
    });
}
