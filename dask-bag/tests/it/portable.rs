//! Portable pipelines: `map`, `filter` and `flat_map` steps of functions
//! registered with `register_bag_fn!` have a wire form. Here every op of the
//! graph is rebuilt from its wire form (as a worker process does) and the
//! rebuilt graph runs on the sync scheduler; the result must equal std
//! iterators on the whole data and the fused in-process pipeline. Worker
//! processes themselves are exercised in `dask/tests/it/bag_processes.rs`.

use std::sync::Arc;

use dask_bag::{read_text, register_bag_fn, words, Bag};
use dask_core::op::{build_op, wire_form};
use dask_core::{Collection, Graph, Scheduler, Task};
use dask_sync_scheduler::SyncScheduler;
use proptest::prelude::*;

use crate::common::{check, data_and_parts, TempDir};

fn square(x: i64) -> i64 {
    x * x
}
fn below_900(x: &i64) -> bool {
    *x < 900
}
fn with_negation(x: i64) -> Vec<i64> {
    vec![x, -x]
}
fn shout(line: String) -> String {
    line.to_uppercase()
}
fn half(x: u64) -> u64 {
    x / 2
}
register_bag_fn!(map square);
register_bag_fn!(filter below_900);
register_bag_fn!(flat_map with_negation);
register_bag_fn!(map shout);
register_bag_fn!(map half);

/// The bag's graph with every op rebuilt from its wire form, or `None` if
/// some op has none (a closure somewhere).
fn rebuilt<T: Clone + Send + Sync + 'static>(bag: &Bag<T>) -> Option<Graph> {
    let graph = bag.graph().to_graph();
    let mut out = Graph::with_capacity(graph.len());
    for (key, task) in graph.iter() {
        let (tag, params) = wire_form(&*task.op).unwrap()?;
        let op = build_op(tag, &params).unwrap();
        out.insert(key.clone(), Task::new(op, task.args.clone()));
    }
    Some(out)
}

/// Computes `bag` from its rebuilt graph on the sync scheduler.
fn compute_rebuilt<T: Clone + Send + Sync + 'static>(bag: &Bag<T>) -> Vec<T> {
    let graph = rebuilt(bag).expect("every op has a wire form");
    let keys = bag.keys();
    let values = SyncScheduler::new().compute(&graph, &keys).unwrap();
    bag.finalize(values).unwrap()
}

#[test]
fn registered_steps_rebuild_to_the_oracles_partitions() {
    check(data_and_parts(), |(data, n)| {
        let bag = Bag::from_sequence(data.clone(), n)
            .unwrap()
            .map(square)
            .filter(below_900)
            .flat_map(with_negation);
        let oracle: Vec<i64> = data
            .iter()
            .map(|&x| square(x))
            .filter(below_900)
            .flat_map(with_negation)
            .collect();
        prop_assert_eq!(compute_rebuilt(&bag), oracle.clone());
        prop_assert_eq!(bag.compute().unwrap(), oracle);
        Ok(())
    });
}

#[test]
fn range_and_read_text_sources_are_portable() {
    let range = Bag::range(1001, 4).unwrap().map(half);
    let oracle: Vec<u64> = (0..1001).map(half).collect();
    assert_eq!(compute_rebuilt(&range), oracle);

    let dir = TempDir::new("portable");
    let text = "a b\nc  d é\n\nlast line";
    std::fs::write(dir.path().join("t.txt"), text).unwrap();
    let lines = read_text(dir.join("t.txt"), Some(4)).unwrap();
    let loud = lines.map(shout);
    let oracle: Vec<String> = text.lines().map(|l| shout(l.to_owned())).collect();
    assert_eq!(compute_rebuilt(&loud), oracle);
    // `flat_map(words)` is registered by dask-bag itself.
    let all = lines.flat_map(words);
    let oracle: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    assert_eq!(compute_rebuilt(&all), oracle);
}

#[test]
fn a_closure_or_an_unportable_step_leaves_no_wire_form() {
    let base = Bag::from_sequence(0..10i64, 3).unwrap();
    assert!(rebuilt(&base.map(square)).is_some());
    assert!(rebuilt(&base.map(|x| x + 1)).is_none());
    assert!(rebuilt(&base.map(|x| x + 1).map(square)).is_none());
    assert!(rebuilt(&base.map(square).filter(|x| *x > 3)).is_none());
    // A step with no portable form breaks the chain for the steps after it.
    let parts = base.map_partitions(|p| p.into_iter().rev().collect::<Vec<_>>());
    assert!(rebuilt(&parts.map(square)).is_none());
    let zipped = base.zip(&base).unwrap().map(|(a, b)| a + b);
    assert!(rebuilt(&zipped).is_none());
}

#[test]
fn a_step_of_the_wrong_type_fails_the_task_naming_both_types() {
    // `square` takes i64. Only a hand-built graph can feed it a partition of
    // u64 (the types line up in any bag), as here: a task error, no panic.
    let ints = Bag::from_sequence(vec![1i64, 2], 1).unwrap().map(square);
    let squares = rebuilt(&ints).unwrap();
    let (_, square_task) = squares.iter().find(|(_, t)| t.as_data().is_none()).unwrap();
    let unsigned = Bag::from_sequence(vec![1u64, 2], 1).unwrap().map(half);
    let mut graph = rebuilt(&unsigned).unwrap();
    let key = unsigned.keys()[0].clone();
    let args = graph.get(&key).unwrap().args.clone();
    graph.insert(key.clone(), Task::new(Arc::clone(&square_task.op), args));
    let err = SyncScheduler::new()
        .compute(&graph, &[key])
        .unwrap_err()
        .to_string();
    assert!(err.contains("i64") && err.contains("u64"), "{err}");
}
