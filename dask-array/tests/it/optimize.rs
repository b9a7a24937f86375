//! dask-array's graph optimization (creation blocks inlined into their
//! readers): results bit-identical to the unoptimized graph on the sync
//! scheduler and close to ndarray, and the structure that bounds the memory of
//! the fused `(x + x.T).sum()`.

use dask_array::optimize::{inline_creation, is_creation_task, DEFAULT_MAX_USES};
use dask_array::{arange, ones, random, Array, Collection, Element, Reduce};
use dask_core::{Graph, Key, Plan, Scheduler};
use dask_sync_scheduler::SyncScheduler;
use ndarray::{ArrayD, Axis, Ix2, IxDyn};
use proptest::prelude::*;

use crate::common::*;

/// `y` computed from its raw graph (every layer, no optimization at all) on
/// the sync scheduler: the oracle for the optimized graph.
fn raw<T: Element>(y: &Array<T>) -> ArrayD<T> {
    let keys = y.keys();
    let values = SyncScheduler::new()
        .compute(&y.graph().to_graph(), &keys)
        .unwrap();
    y.finalize(values).unwrap()
}

/// The most creation blocks alive at once when the sync scheduler runs `graph`
/// (in plan order, each value released after its last reader).
fn peak_live_creation_blocks(graph: &Graph, outputs: &[Key]) -> usize {
    let plan = Plan::new(graph, outputs).unwrap();
    let mut left: Vec<usize> = (0..plan.len()).map(|i| plan.dependents(i).len()).collect();
    let (mut live, mut peak) = (0usize, 0usize);
    for i in 0..plan.len() {
        if is_creation_task(plan.task(i)) {
            live += 1;
            peak = peak.max(live);
        }
        for &d in plan.dependencies(i) {
            let d = d as usize;
            left[d] -= 1;
            if left[d] == 0 && is_creation_task(plan.task(d)) && !plan.is_output(d) {
                live -= 1;
            }
        }
    }
    peak
}

/// For every creation task of `graph`: how many distinct tasks read it.
fn creation_readers(graph: &Graph, outputs: &[Key]) -> Vec<usize> {
    let plan = Plan::new(graph, outputs).unwrap();
    (0..plan.len())
        .filter(|&i| is_creation_task(plan.task(i)))
        .map(|i| plan.dependents(i).len())
        .collect()
}

fn square_case() -> BoxedStrategy<(usize, Vec<Vec<usize>>, u64)> {
    (1usize..10)
        .prop_flat_map(|n| (Just(n), chunks(&[n, n]), any::<u64>()))
        .boxed()
}

proptest! {
    #![proptest_config(config())]

    /// `(x + x.T).sum()`, `x + x.T`, `x - x.mean(axis=0)` and creation arrays
    /// broadcast into random ones: every scheduler on the optimized graph
    /// gives exactly what the sync scheduler gives on the raw graph, for any
    /// `max_uses`, and that agrees with ndarray on the whole array.
    #[test]
    fn inlined_graphs_give_bit_identical_results(
        (n, c, seed) in square_case(),
        max_uses in 0usize..6,
        split in 2usize..6,
    ) {
        let x = random::random(&[n, n], c.clone(), seed).unwrap();
        let xa = raw(&x).into_dimensionality::<Ix2>().unwrap();

        let sym = (&x + &x.t()).unwrap();
        let total = sym.sum(Reduce::all().split_every(split)).unwrap();
        let centered = (&x - &x.mean(0).unwrap()).unwrap();
        let row = arange(0.0f64, n as f64, 1.0, vec![c[1].clone()]).unwrap();
        let mixed = ((&x * &row).unwrap() + &ones::<f64>(&[n, n], c.clone()).unwrap()).unwrap();
        let mixed_sum = mixed.sum(Reduce::axis(1).split_every(split)).unwrap();

        let expected_sym = raw(&sym);
        let expected_total = raw(&total);
        let expected_centered = raw(&centered);
        let expected_mixed_sum = raw(&mixed_sum);
        for (y, expected) in [
            (&sym, &expected_sym),
            (&centered, &expected_centered),
            (&mixed_sum, &expected_mixed_sum),
        ] {
            assert_exact(&y.inline_creation(max_uses), expected);
            assert_exact(y, expected);
        }
        assert_exact(&total.inline_creation(max_uses), &expected_total);
        assert_exact(&total, &expected_total);

        // The oracle itself against ndarray on the whole array.
        let nd_sym = &xa + &xa.t();
        prop_assert!(expected_sym == nd_sym.clone().into_dyn());
        let t = expected_total.iter().next().copied().unwrap();
        prop_assert!(close(t, nd_sym.sum()), "{} vs {}", t, nd_sym.sum());
        let nd_centered = &xa - &xa.mean_axis(Axis(0)).unwrap();
        for (g, e) in expected_centered.iter().zip(nd_centered.iter()) {
            prop_assert!(close(*g, *e), "{} vs {}", g, e);
        }
        let r = ndarray::Array1::from_shape_fn(n, |j| j as f64);
        let nd_mixed = (&xa * &r + 1.0).sum_axis(Axis(1));
        for (g, e) in expected_mixed_sum.iter().zip(nd_mixed.iter()) {
            prop_assert!(close(*g, *e), "{} vs {}", g, e);
        }
    }
}

/// The structure behind the memory bound of `(x + x.T).sum()` with `x`
/// generated in the graph: after optimization no creation block has two
/// readers (each reader generates its own), so in plan order at most one
/// block (a diagonal one, read twice by its one task) is alive at a time.
/// Without the inlining, and where mirrored chunk tasks do not pair up (a sum
/// over one axis), blocks wait for their mirror image: many are alive.
#[test]
fn transpose_sum_holds_no_creation_block_between_tasks() {
    let x = random::random(&[40, 40], 4, 42).unwrap(); // 10 x 10 blocks
    let total = (&x + &x.t()).unwrap().sum(None).unwrap();
    let keys = total.keys();

    let optimized = total.optimized_graph().unwrap();
    let readers = creation_readers(&optimized, &keys);
    assert_eq!(readers.len(), 10, "only the 10 diagonal blocks stay tasks");
    assert!(readers.iter().all(|&r| r == 1), "{readers:?}");
    assert_eq!(peak_live_creation_blocks(&optimized, &keys), 1);

    // The mirrored chunk tasks of a sum over everything pair up (one task
    // reads both blocks, `dask_array::fused`): even held, every block has
    // one reader.
    let held = total.inline_creation(0).optimized_graph().unwrap();
    let readers = creation_readers(&held, &keys);
    assert_eq!(readers.len(), 100);
    assert!(readers.iter().all(|&r| r == 1), "{readers:?}");

    // A sum over one axis keeps the positions apart: without the inlining,
    // blocks wait for their mirror image; with it, none does.
    let rows = (&x + &x.t()).unwrap().sum(0).unwrap();
    let row_keys = rows.keys();
    let optimized = rows.optimized_graph().unwrap();
    assert_eq!(creation_readers(&optimized, &row_keys).len(), 10);
    assert_eq!(peak_live_creation_blocks(&optimized, &row_keys), 1);
    let held = rows.inline_creation(0).optimized_graph().unwrap();
    let readers = creation_readers(&held, &row_keys);
    assert_eq!(readers.len(), 100);
    assert_eq!(readers.iter().filter(|&&r| r == 2).count(), 90);
    let peak = peak_live_creation_blocks(&held, &row_keys);
    assert!(peak >= 20, "without inlining {peak} blocks at most");
    // Both compute the same value.
    let sync = SyncScheduler::new();
    assert_eq!(
        total.compute_scalar_with(&sync).unwrap(),
        total.inline_creation(0).compute_scalar_with(&sync).unwrap()
    );
}

#[test]
fn max_uses_bounds_what_is_recomputed() {
    let x = random::random(&[8, 8], 8, 3).unwrap(); // one block
    let keys_of = |y: &Array<f64>| (y.keys(), y.optimized_graph().unwrap());
    // Cut into 16 pieces: the block has 16 readers, more than the default.
    let small = x.rechunk(2).unwrap();
    const { assert!(16 > DEFAULT_MAX_USES) };
    let (keys, g) = keys_of(&small);
    assert_eq!(creation_readers(&g, &keys), vec![16]);
    assert_exact(&small, &raw(&x));
    // Allowed 16 uses, every piece regenerates the block.
    let (keys, g) = keys_of(&small.inline_creation(16));
    assert!(creation_readers(&g, &keys).is_empty());
    assert_exact(&small.inline_creation(16), &raw(&x));
    // An output is never inlined: computing x keeps its blocks.
    let (keys, g) = keys_of(&x);
    assert_eq!(g.len(), 1);
    assert!(is_creation_task(g.get(&keys[0]).unwrap()));
    // 1: only single readers; the block read by two tasks stays.
    let two = random::random(&[4, 4], 2, 9).unwrap();
    let sym = (&two + &two.t()).unwrap().sum(0).unwrap();
    let (keys, g) = keys_of(&sym.inline_creation(1));
    assert_eq!(creation_readers(&g, &keys), vec![1, 2, 2, 1]);
    assert_eq!(sym.inline_creation(1).inline_creation_uses(), 1);
    assert_eq!(sym.inline_creation_uses(), DEFAULT_MAX_USES);
}

#[test]
fn inline_creation_reports_bad_graphs() {
    let x = ones::<f64>(&[4], 2).unwrap();
    let g = x.graph().to_graph();
    let err = inline_creation(&g, &[Key::new("nope", [0u64])], 4).unwrap_err();
    assert!(
        matches!(err, dask_core::Error::MissingOutput { .. }),
        "{err}"
    );
    let err = inline_creation(&g, &[], 4).unwrap_err();
    assert!(matches!(err, dask_core::Error::NoOutputs), "{err}");
    // A graph without creation tasks is only culled.
    let a = ArrayD::from_shape_fn(IxDyn(&[4]), |i| i[0] as f64);
    let y = (&dask_array::from_array(a, 2).unwrap() + 1.0).unwrap();
    let culled = dask_core::cull(&y.graph().to_graph(), &y.keys()).unwrap();
    let same = inline_creation(&culled, &y.keys(), 4).unwrap();
    assert_eq!(same.sorted_keys(), culled.sorted_keys());
}
