//! Streams of tiny tasks: workers start the next waiting task on the thread
//! that just finished one (the hand-over), and messages travel in batches.
//! None of that may lose, duplicate or swap a key's result: thousands of
//! tiny tasks on two workers are checked against the sync scheduler, and a
//! stream where some tasks fail keeps every failure on its own key. Real
//! LocalClusters over TCP, every test under a watchdog.

use dask_core::{Arg, Graph, Key, Scheduler, Task, Value};
use dask_distributed::{Client, Error, LocalCluster};
use dask_sync_scheduler::SyncScheduler;
use dask_testing::{silence_intentional_panics, test_timeout, within};

fn batch_mix(x: u64) -> u64 {
    x.wrapping_mul(2_654_435_761).rotate_left(7) ^ x
}
dask_core::register_op!(batch_mix);

fn batch_sub(a: u64, b: u64) -> u64 {
    a.wrapping_sub(b.rotate_left(3))
}
dask_core::register_op!(batch_sub);

/// Fails (an intentional panic) when `x % 13 == 5`.
fn batch_fail_some(x: u64) -> u64 {
    if x % 13 == 5 {
        panic!("intentional panic: {x} is 5 mod 13");
    }
    batch_mix(x)
}
dask_core::register_op!(batch_fail_some);

fn cluster(n_workers: usize, threads: u32) -> LocalCluster {
    LocalCluster::builder()
        .n_workers(n_workers)
        .threads_per_worker(threads)
        .no_dashboard()
        .start()
        .unwrap()
}

/// 6,000 leaves and 4,000 non-commutative combinations of neighbours, every
/// key an output: a swapped or lost result changes the answer.
fn graph() -> (Graph, Vec<Key>) {
    let mut graph = Graph::new();
    let mut keys = Vec::new();
    for i in 0..6_000u64 {
        let key = Key::new("batch-leaf", [i]);
        graph.insert(
            key.clone(),
            Task::new(
                dask_core::op::IntoOp::into_op(batch_mix),
                vec![Arg::Value(Value::new(i))],
            ),
        );
        keys.push(key);
    }
    for j in 0..4_000u64 {
        let key = Key::new("batch-pair", [j]);
        graph.insert(
            key.clone(),
            Task::new(
                dask_core::op::IntoOp::into_op(batch_sub),
                vec![
                    Arg::Key(Key::new("batch-leaf", [j + 1])),
                    Arg::Key(Key::new("batch-leaf", [j])),
                ],
            ),
        );
        keys.push(key);
    }
    (graph, keys)
}

fn values(values: Vec<Value>) -> Vec<u64> {
    values
        .into_iter()
        .map(|v| v.take::<u64>().unwrap())
        .collect()
}

#[test]
fn ten_thousand_tiny_tasks_on_two_workers_equal_the_sync_scheduler() {
    within(test_timeout(), || {
        let (graph, keys) = graph();
        let expected = values(SyncScheduler::new().compute(&graph, &keys).unwrap());
        // Two workers of one thread (a stream per thread) and of two threads
        // (the hand-over between threads of one worker).
        for threads in [1, 2] {
            let cluster = cluster(2, threads);
            // Over TCP: registered ops, encoded values.
            let tcp = cluster.client().unwrap();
            let got = values(tcp.compute(&graph, &keys).unwrap());
            assert_eq!(got, expected, "{threads} thread(s), TCP client");
            let futures = tcp.map(batch_mix, 0..10_000u64).unwrap();
            let want: Vec<u64> = (0..10_000).map(batch_mix).collect();
            assert_eq!(tcp.gather(&futures).unwrap(), want, "map + gather");
            drop((futures, tcp));
            // In-process: tasks handed over as they are.
            let owner = Client::with_cluster(cluster).unwrap();
            let got = values(owner.compute(&graph, &keys).unwrap());
            assert_eq!(got, expected, "{threads} thread(s), owning client");
            owner.shutdown();
        }
    });
}

#[test]
fn failures_in_a_stream_of_tiny_tasks_stay_on_their_own_keys() {
    silence_intentional_panics();
    within(test_timeout(), || {
        let cluster = cluster(2, 1);
        let client = cluster.client().unwrap();
        let n = 2_000u64;
        let futures = client.map(batch_fail_some, 0..n).unwrap();
        let mut failed = 0;
        for (x, future) in (0..n).zip(&futures) {
            match future.result() {
                Ok(v) => {
                    assert!(x % 13 != 5, "{x} should have failed, gave {v}");
                    assert_eq!(v, batch_mix(x), "the result of {x}");
                }
                Err(Error::Core(dask_core::Error::TaskFailed { key, message, .. })) => {
                    assert_eq!(x % 13, 5, "{x} failed: {message}");
                    assert_eq!(&key, future.key(), "the failure of {x} names its own key");
                    assert!(message.contains(&format!("{x} is 5 mod 13")), "{message}");
                    failed += 1;
                }
                Err(other) => panic!("{x}: unexpected error {other}"),
            }
        }
        assert_eq!(failed, (0..n).filter(|x| x % 13 == 5).count());
        // The workers keep serving: the fine tasks again (released first, so
        // they run again), all at once.
        drop(futures);
        let fine: Vec<u64> = (0..n).filter(|x| x % 13 != 5).collect();
        let again = client.map(batch_fail_some, fine.clone()).unwrap();
        let want: Vec<u64> = fine.iter().map(|&x| batch_mix(x)).collect();
        assert_eq!(client.gather(&again).unwrap(), want);
    });
}
