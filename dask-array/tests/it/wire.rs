//! Array graphs across process boundaries: every op of every layer has a wire
//! form (a registered op struct) and every value a codec, so arrays run on
//! `dask worker` processes.
//!
//! `across_processes` evaluates a graph the way worker processes would: each
//! task is encoded for the wire and rebuilt from its tag and parameters
//! through the op registry, and each value (blocks and reduction partials)
//! goes through its codec before a dependent reads it. The oracle is the sync
//! scheduler on the original graph (itself checked against ndarray by the
//! other modules).

use std::collections::HashMap;

use dask_array::{
    arange, concatenate, from_array, full, linspace, ones, random, stack, zeros, Array, Collection,
    Element, Reduce, Slice,
};
use dask_core::{codec, Key, Value};
use dask_distributed::protocol::{decode_task, encode_task};
use dask_distributed::{Client, LocalCluster};
use dask_sync_scheduler::SyncScheduler;
use ndarray::ArrayD;

/// Evaluates `graph` with a process boundary around every task and value.
fn across_processes(graph: &dask_core::Graph, outputs: &[Key]) -> Vec<Value> {
    let deps = graph.dependencies();
    let mut values: HashMap<Key, Value> = HashMap::new();
    let mut pending: Vec<Key> = graph.sorted_keys();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|key| {
            if !deps[key].iter().all(|d| values.contains_key(d)) {
                return true;
            }
            let task = graph.get(key).expect("a key of the graph");
            let (wire, frames) = encode_task(key, task)
                .unwrap_or_else(|e| panic!("task {key} cannot go to a worker process: {e}"));
            let rebuilt = decode_task(&wire, &frames).expect("decode the task");
            let value = rebuilt
                .execute(key, |k| values[k].clone())
                .unwrap_or_else(|e| panic!("task {key} failed after the round trip: {e}"));
            let (tag, bytes) = codec::encode_value(&value)
                .unwrap_or_else(|e| panic!("value of {key} cannot leave its process: {e}"));
            let back = codec::decode_value(tag, &bytes).expect("decode the value");
            values.insert(key.clone(), back);
            false
        });
        assert!(pending.len() < before, "no task became ready: a cycle?");
    }
    outputs.iter().map(|k| values[k].clone()).collect()
}

/// Equal shapes and elements, NaN equal to NaN.
fn same<T: Element>(a: &ArrayD<T>, b: &ArrayD<T>) -> bool {
    a.shape() == b.shape()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
}

fn check<T: Element>(label: &str, x: &Array<T>) {
    let expected = x.compute_with(&SyncScheduler::new()).unwrap();
    let graph = x.optimized_graph().unwrap();
    let got = x.finalize(across_processes(&graph, &x.keys())).unwrap();
    assert!(same(&got, &expected), "{label}: {got:?} != {expected:?}");
}

#[test]
fn every_array_op_runs_across_a_process_boundary() {
    let x = random::random(&[7, 7], [3, 4], 11).unwrap();
    let n = random::normal(1.0, 2.0, &[6, 5], 2, 5).unwrap();
    let u = random::uniform(-1.0, 1.0, &[9], 4, 3).unwrap();
    let sym = (&x + &x.t()).unwrap();
    check("x + x.T", &sym);
    check("(x + x.T).sum()", &sym.sum(None).unwrap());
    check("fused, paired (x + x.T).mean()", &sym.mean(None).unwrap());
    check(
        "fused (x.T - x).max(0)",
        &(&x.t() - &x).unwrap().max(0).unwrap(),
    );
    let y = random::random(&[7, 7], [4, 3], 12).unwrap();
    check(
        "fused (x * y.T).min(1)",
        &(&x * &y.t()).unwrap().min(1).unwrap(),
    );
    check(
        "fused chain",
        &((((&x * 2.0).unwrap() - 1.0).unwrap().abs().sqrt() / &x.t()).unwrap()),
    );
    check("2 - x, neg, powf", &(-(2.0 - &x).unwrap()).powf(3.0));
    check("exp ln sin cos", &x.exp().ln().sin().cos().tan().tanh());
    check(
        "floor ceil square",
        &(&x * 10.0).unwrap().floor().ceil().square(),
    );
    check("mean axis 0", &x.mean(0).unwrap());
    check("var axis 1", &n.var(Reduce::axis(1).ddof(1)).unwrap());
    check("std all", &n.std(None).unwrap());
    check("min/max/prod", &x.min(1).unwrap());
    check(
        "max split_every 2",
        &x.max(Reduce::all().split_every(2)).unwrap(),
    );
    check("prod", &x.prod(0).unwrap());
    check("argmin", &n.argmin(None).unwrap());
    check("argmax axis 1", &n.argmax(1).unwrap());
    check(
        "sum over two axes",
        &x.reshape(&[7, 7, 1]).unwrap().sum([0, 2]).unwrap(),
    );
    let big = x.greater(0.5).unwrap();
    check("greater", &big);
    check("compare arrays", &x.less_equal(&x.t()).unwrap());
    check("any/all", &big.any(0).unwrap());
    check("all", &big.logical_not().all(None).unwrap());
    check(
        "logical ops",
        &big.logical_and(&x.less(0.9).unwrap()).unwrap(),
    );
    check("logical or", &big.logical_or(&big.t()).unwrap());
    check("astype", &x.astype::<i32>());
    check("bool astype", &big.astype::<f32>());
    check("to_f64", &arange(0i64, 20, 3, 4).unwrap().to_f64());
    check("arange", &arange(5i32, -7, -2, 3).unwrap());
    check("linspace", &linspace(0.0f32, 1.0, 11, 4).unwrap());
    check("full", &full(&[3, 4], true, 2).unwrap());
    check(
        "zeros + ones",
        &(zeros::<i64>(&[4], 3).unwrap() + ones::<i64>(&[4], 2).unwrap()).unwrap(),
    );
    let a = ndarray::Array::from_shape_fn((5, 6), |(i, j)| (i * 6 + j) as i64);
    let fa = from_array(a, [2, 4]).unwrap();
    check("from_array", &fa);
    check(
        "slice with steps",
        &fa.slice(&[Slice::new(4, None, -2), Slice::new(1, Some(6), 2)])
            .unwrap(),
    );
    check("take", &fa.take(&[5, 0, 1, 1, 3], 1).unwrap());
    check(
        "compress",
        &fa.compress(&[true, false, true, true, false], 0).unwrap(),
    );
    check("index_axis", &fa.index_axis(1, 4).unwrap());
    check(
        "rechunk",
        &fa.rechunk(vec![vec![1, 4], vec![3, 3]]).unwrap(),
    );
    check("reshape", &fa.reshape(&[3, 10]).unwrap());
    check(
        "concatenate",
        &concatenate(&[&fa, &fa.slice(&[Slice::from(..2)]).unwrap()], 0).unwrap(),
    );
    check("stack", &stack(&[&u, &u], 1).unwrap());
    check("matmul", &x.matmul(&x.t()).unwrap());
    check("tensordot", &n.tensordot(&n, (0, 0)).unwrap());
    check("cumsum", &fa.cumsum(1).unwrap());
    check("cumprod", &(&x + 0.5).unwrap().cumprod(0).unwrap());
}

#[test]
fn npy_store_runs_across_a_process_boundary() {
    let dir = std::env::temp_dir().join(format!("dask-array-wire-{}", std::process::id()));
    let x = arange(0.0f64, 10.0, 1.0, 4).unwrap();
    let store = x.to_npy_dir(&dir).unwrap();
    let graph = store.optimized_graph().unwrap();
    let written = store
        .finalize(across_processes(&graph, &store.keys()))
        .unwrap();
    assert!(written > 0);
    check(
        "from_npy_dir",
        &dask_array::store::from_npy_dir::<f64>(&dir).unwrap(),
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn closures_have_no_wire_form() {
    let x = ones::<f64>(&[4, 4], 2).unwrap();
    let y = x.map_blocks(|b| b * 2.0);
    let graph = y.optimized_graph().unwrap();
    let (key, task) = graph.iter().next().unwrap();
    let err = encode_task(key, task).unwrap_err().to_string();
    assert!(
        err.contains("map_blocks") && err.contains("register_op"),
        "{err}"
    );
}

/// A client that connects to a cluster by address (not the cluster's owner)
/// sends tasks over TCP: ops are rebuilt from the registry by the workers.
#[test]
fn seed_on_a_cluster_reached_over_the_wire() {
    let cluster = LocalCluster::builder()
        .n_workers(2)
        .threads_per_worker(1)
        .start()
        .unwrap();
    let client = Client::connect(&cluster.scheduler_addr()).unwrap();
    let sync = SyncScheduler::new();
    let x = random::random(&[60, 60], 20, 42).unwrap();
    let total = (&x + &x.t()).unwrap().sum(None).unwrap();
    let expected = total.compute_scalar_with(&sync).unwrap();
    assert_eq!(total.compute_scalar_with(&client).unwrap(), expected);
    let means = x.mean(0).unwrap();
    assert!(same(
        &means.compute_with(&client).unwrap(),
        &means.compute_with(&sync).unwrap()
    ));
    let prod = x.matmul(&x.t()).unwrap();
    assert!(same(
        &prod.compute_with(&client).unwrap(),
        &prod.compute_with(&sync).unwrap()
    ));

    // A closure cannot be sent: refused before anything is submitted.
    let y = x.map_blocks(|b| b + 1.0);
    let err = y.compute_with(&client).unwrap_err().to_string();
    assert!(
        err.contains("map_blocks") && err.contains("register_op"),
        "{err}"
    );
    // The cluster keeps serving.
    assert_eq!(total.compute_scalar_with(&client).unwrap(), expected);
}

proptest::proptest! {
    #![proptest_config(crate::common::config())]

    /// Random shapes and chunkings (irregular, size-1 blocks): a pipeline of
    /// elementwise, transpose, rechunk, slicing, cumsum and reductions gives
    /// the same result with a process boundary around every task and value as
    /// on the sync scheduler.
    #[test]
    fn random_pipelines_across_processes(
        (data, chunks) in crate::common::array_case(6),
        axis in 0usize..3,
    ) {
        let x = from_array(data, chunks).unwrap();
        let axis = axis % x.ndim();
        let t = x.t();
        let y = ((&x * 2.0).unwrap() - &t.t()).unwrap().abs();
        check("elementwise", &y);
        check("transpose", &(&t + 1.0).unwrap());
        check("sum", &y.sum(None).unwrap());
        check("mean over an axis", &y.mean(axis).unwrap());
        check("argmax over an axis", &x.argmax(axis).unwrap());
        check("cumsum", &x.cumsum(axis).unwrap());
        let half = vec![x.shape()[0].div_ceil(2); 1];
        let mut target: Vec<Vec<usize>> = x.shape().iter().map(|&d| vec![d]).collect();
        target[0] = half.clone();
        if half[0] < x.shape()[0] {
            target[0].push(x.shape()[0] - half[0]);
        }
        check("rechunk", &x.rechunk(target).unwrap());
        check("slice", &x.slice(&[Slice::new(0, None, 2)]).unwrap());
    }
}

/// Every op dask-array registers has a tag of its own (one registration per
/// type and dtype), and every dtype's chunks have a codec.
#[test]
fn registrations_are_unique_and_complete() {
    let registry = dask_core::op::registry();
    let tags: Vec<&str> = registry
        .tags()
        .into_iter()
        .filter(|t| t.starts_with("dask_array::"))
        .collect();
    assert!(tags.len() > 100, "{} dask-array ops registered", tags.len());
    for tag in &tags {
        match dask_core::op::build_op(tag, &[0xff; 3]) {
            Err(dask_core::Error::DuplicateOp { tag }) => panic!("{tag} registered twice"),
            Err(dask_core::Error::Codec { .. }) | Ok(_) => {}
            Err(other) => panic!("{tag}: {other}"),
        }
    }
    fn has_codec<T: Element>() -> bool {
        codec::has_codec(&Value::new(ArrayD::<T>::default(ndarray::IxDyn(&[1]))))
    }
    assert!(has_codec::<f64>() && has_codec::<f32>() && has_codec::<i64>());
    assert!(has_codec::<i32>() && has_codec::<bool>());
}
