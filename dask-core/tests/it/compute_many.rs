//! `compute`/`compute_with` of several collections (shared work runs once) and
//! `persist`.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use dask_core::{compute_with, delayed, Collection, Delayed, Scheduler};

/// A delayed `x * 10` that counts how often it runs.
fn counted(counter: &Arc<AtomicUsize>, x: i64) -> Delayed<i64> {
    let counter = counter.clone();
    delayed(move |x: i64| {
        counter.fetch_add(1, SeqCst);
        x * 10
    })
    .call((x,))
}

dask_testing::scheduler_test! {
    fn shared_work_runs_once(s: &dyn Scheduler) {
        let runs = Arc::new(AtomicUsize::new(0));
        let x = counted(&runs, 4);
        let y = delayed(|a: i64, b: i64| a + b).call((&x, 1));
        let z = delayed(|a: i64| a - 1).call((&x,));
        let w = delayed(|a: i64| format!("{a}")).call((&x,));
        let (yv, zv, wv) = compute_with((&y, &z, &w), s).unwrap();
        assert_eq!((yv, zv, wv), (4 * 10 + 1, 4 * 10 - 1, (4 * 10).to_string()));
        assert_eq!(runs.load(SeqCst), 1, "x is shared by y, z and w: it runs once");
        // Separate computes each run it again.
        assert_eq!(y.compute_with(s).unwrap(), 41);
        assert_eq!(z.compute_with(s).unwrap(), 39);
        assert_eq!(runs.load(SeqCst), 3);
    }

    fn same_collection_twice_and_slices(s: &dyn Scheduler) {
        let runs = Arc::new(AtomicUsize::new(0));
        let x = counted(&runs, 2);
        let (a, b) = compute_with((&x, &x), s).unwrap();
        assert_eq!((a, b), (20, 20));
        assert_eq!(runs.load(SeqCst), 1);
        let parts: Vec<Delayed<i64>> = (0..10).map(|i| counted(&runs, i)).collect();
        let values = compute_with(&parts, s).unwrap();
        assert_eq!(values, (0..10).map(|i| i * 10).collect::<Vec<_>>());
        assert_eq!(runs.load(SeqCst), 11);
        let values = compute_with(&parts[2..5], s).unwrap();
        assert_eq!(values, vec![20, 30, 40]);
    }

    fn a_diamond_runs_each_task_once(s: &dyn Scheduler) {
        let runs = Arc::new(AtomicUsize::new(0));
        let root = counted(&runs, 1);
        let mut layer: Vec<Delayed<i64>> = vec![root];
        // Each level combines neighbours, so the root feeds many paths.
        for _ in 0..6 {
            let mut next = Vec::new();
            for i in 0..=layer.len() {
                let a = &layer[i.saturating_sub(1).min(layer.len() - 1)];
                let b = &layer[i.min(layer.len() - 1)];
                let r = runs.clone();
                next.push(delayed(move |a: i64, b: i64| { r.fetch_add(1, SeqCst); a + b }).call((a, b)));
            }
            layer = next;
        }
        let values = compute_with(&layer, s).unwrap();
        // Plain Rust: the same recurrence on numbers.
        let mut expect = vec![10i64];
        for _ in 0..6 {
            expect = (0..=expect.len())
                .map(|i| expect[i.saturating_sub(1).min(expect.len() - 1)] + expect[i.min(expect.len() - 1)])
                .collect();
        }
        assert_eq!(values, expect);
        let tasks = 1 + (2..=7).sum::<usize>();
        assert_eq!(runs.load(SeqCst), tasks, "every task ran exactly once");
    }

    fn persist_equals_compute_and_holds_only_data(s: &dyn Scheduler) {
        let runs = Arc::new(AtomicUsize::new(0));
        let x = counted(&runs, 3);
        let y = delayed(|a: i64| vec![a; 3]).call((&x,));
        let z = delayed(|v: Vec<i64>, k: i64| v.iter().sum::<i64>() * k).call((&y, 2));
        let computed = z.compute_with(s).unwrap();
        assert_eq!(computed, 3 * 10 * 3 * 2);
        assert_eq!(runs.load(SeqCst), 1);

        let persisted = z.persist_with(s).unwrap();
        assert_eq!(runs.load(SeqCst), 2, "persist computes once");
        assert_eq!(persisted.key(), z.key());
        let g = persisted.graph().to_graph();
        assert_eq!(g.sorted_keys(), vec![z.key().clone()]);
        // Local schedulers persist values as literal data; a distributed
        // client keeps them on the workers, held by futures in the graph.
        if s.name() != "distributed" {
            for (key, task) in g.iter() {
                assert!(task.as_data().is_some(), "persisted task {key} is not literal data: {task:?}");
            }
        }
        assert_eq!(persisted.compute_with(s).unwrap(), computed);
        // Work built on the persisted value reuses it: x does not run again.
        let w = delayed(|a: i64| a + 1).call((&persisted,));
        assert_eq!(w.compute_with(s).unwrap(), computed + 1);
        assert_eq!(runs.load(SeqCst), 2);
    }
}
