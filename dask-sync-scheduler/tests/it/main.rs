//! A user crate that depends only on dask-core and dask-sync-scheduler: builds a
//! graph by hand and with `delayed`, computes it, checks against plain Rust.

use dask_core::{delayed, op::fn_op, Arg, Collection, Graph, Key, Scheduler, Task, Value};
use dask_sync_scheduler::SyncScheduler;

#[test]
fn hand_built_graph_computes() {
    let mut g = Graph::new();
    for i in 0..10u64 {
        g.insert_data(Key::new("x", [i]), Value::new(i as i64));
    }
    let sum = fn_op(|xs: Vec<Value>| {
        xs.iter()
            .map(|v| *v.downcast_ref::<i64>().unwrap())
            .sum::<i64>()
    });
    let args = (0..10u64).map(|i| Arg::Key(Key::new("x", [i]))).collect();
    g.insert(Key::named("total"), Task::new(sum, vec![Arg::List(args)]));
    let out = SyncScheduler::new()
        .compute(&g, &[Key::named("total")])
        .unwrap();
    assert_eq!(*out[0].downcast_ref::<i64>().unwrap(), (0..10).sum::<i64>());
}

#[test]
fn delayed_and_default_scheduler_compute() {
    let xs: Vec<_> = (0..20i64)
        .map(|i| delayed(|x: i64| x * x).call((i,)))
        .collect();
    let total = xs.iter().fold(dask_core::Delayed::value(0i64), |acc, x| {
        delayed(|a: i64, b: i64| a + b).call((acc, x))
    });
    let expected: i64 = (0..20i64).map(|i| i * i).sum();
    assert_eq!(total.compute_with(&SyncScheduler::new()).unwrap(), expected);
    // Only the sync scheduler is linked: it is the default.
    assert_eq!(
        dask_core::scheduler::default_scheduler().unwrap().name(),
        "sync"
    );
    assert_eq!(total.compute().unwrap(), expected);
}
