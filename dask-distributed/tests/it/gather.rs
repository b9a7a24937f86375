//! Batched `Client::gather`: many futures held by several workers come back
//! in order and equal plain Rust; an erred future fails the gather with its
//! own key's error; a value lost with its worker is recomputed. Real
//! LocalClusters over TCP, every test under a watchdog.

use std::collections::BTreeSet;

use dask_core::{Key, Scheduler};
use dask_distributed::{Client, Error, LocalCluster};
use dask_sync_scheduler::SyncScheduler;
use dask_testing::{silence_intentional_panics, test_timeout, within};

fn gather_cube(x: i64) -> i64 {
    x * x * x
}
dask_core::register_op!(gather_cube);

/// Fails (an intentional panic) on 7, cubes the rest.
fn cube_but_seven(x: i64) -> i64 {
    if x == 7 {
        panic!("intentional panic: seven");
    }
    x * x * x
}
dask_core::register_op!(cube_but_seven);

fn cluster(n_workers: usize) -> LocalCluster {
    LocalCluster::builder()
        .n_workers(n_workers)
        .threads_per_worker(1)
        .no_dashboard()
        .start()
        .unwrap()
}

/// The distinct workers holding `keys`.
fn holders(client: &Client, keys: &[Key]) -> BTreeSet<String> {
    client
        .who_has(keys)
        .unwrap()
        .into_iter()
        .flat_map(|(_, addrs)| addrs)
        .collect()
}

#[test]
fn gather_of_many_futures_from_several_workers_equals_plain_rust() {
    within(test_timeout(), || {
        let cluster = cluster(3);
        let expected: Vec<i64> = (0..600).map(gather_cube).collect();
        // Over TCP (values decoded) and in-process (values handed over).
        let tcp = cluster.client().unwrap();
        let futures = tcp.map(gather_cube, 0..600i64).unwrap();
        assert_eq!(tcp.gather(&futures).unwrap(), expected);
        let keys: Vec<Key> = futures.iter().map(|f| f.key().clone()).collect();
        assert!(holders(&tcp, &keys).len() >= 2, "values on one worker only");
        // Repeated and reordered futures, gathered again.
        let mut picked: Vec<_> = futures.iter().rev().step_by(3).cloned().collect();
        picked.extend(futures.iter().take(5).cloned());
        picked.push(futures[0].clone());
        let want: Vec<i64> = picked
            .iter()
            .map(|f| expected[futures.iter().position(|g| g.key() == f.key()).unwrap()])
            .collect();
        assert_eq!(tcp.gather(&picked).unwrap(), want);
        assert_eq!(tcp.gather::<i64>(&[]).unwrap(), Vec::<i64>::new());
        drop((picked, futures, tcp));

        let owner = Client::with_cluster(cluster).unwrap();
        let futures = owner.map(|x: i64| x * x * x, 0..600i64).unwrap();
        assert_eq!(owner.gather(&futures).unwrap(), expected);
    });
}

#[test]
fn gather_with_one_erred_future_raises_that_keys_error() {
    silence_intentional_panics();
    within(test_timeout(), || {
        let cluster = cluster(2);
        let client = cluster.client().unwrap();
        let futures = client.map(cube_but_seven, 0..40i64).unwrap();
        match client.gather(&futures) {
            Err(Error::Core(dask_core::Error::TaskFailed { key, message, .. })) => {
                assert_eq!(&key, futures[7].key());
                assert!(message.contains("seven"), "{message}");
            }
            other => panic!(
                "expected the failure of {}, got {other:?}",
                futures[7].key()
            ),
        }
        // The others are fine, gathered without the erred one.
        let mut fine = futures;
        fine.remove(7);
        let want: Vec<i64> = (0..40).filter(|&x| x != 7).map(gather_cube).collect();
        assert_eq!(client.gather(&fine).unwrap(), want);
    });
}

#[test]
fn gather_after_a_holder_was_killed_recomputes_the_lost_values() {
    within(test_timeout(), || {
        let cluster = cluster(3);
        let client = cluster.client().unwrap();
        // The oracle: the same tasks as a graph on the sync scheduler.
        let mut graph = dask_core::Graph::new();
        let keys: Vec<Key> = (0..300i64)
            .map(|x| {
                let key = Key::new("oracle-cube", [x as u64]);
                graph.insert(
                    key.clone(),
                    dask_core::Task::new(
                        dask_core::op::IntoOp::into_op(gather_cube),
                        vec![dask_core::Arg::Value(dask_core::Value::new(x))],
                    ),
                );
                key
            })
            .collect();
        let expected: Vec<i64> = SyncScheduler::new()
            .compute(&graph, &keys)
            .unwrap()
            .into_iter()
            .map(|v| v.take::<i64>().unwrap())
            .collect();

        let futures = client.map(gather_cube, 0..300i64).unwrap();
        assert_eq!(client.gather(&futures).unwrap(), expected);
        let victim = cluster.worker_addrs()[0].clone();
        let held: Vec<Key> = futures.iter().map(|f| f.key().clone()).collect();
        assert!(
            holders(&client, &held).contains(&victim),
            "the victim holds none"
        );
        assert!(cluster.kill_worker(0));
        assert_eq!(client.gather(&futures).unwrap(), expected);
        assert!(!holders(&client, &held).contains(&victim));
    });
}

/// A result of at most 100 KB: the small ones come with their reports.
fn filled(len: u64) -> Vec<u8> {
    vec![len as u8; len as usize]
}
dask_core::register_op!(filled);

#[test]
fn small_results_come_with_their_reports_and_need_no_worker_to_gather() {
    within(test_timeout(), || {
        let cluster = cluster(2);
        let client = cluster.client().unwrap();
        let futures = client.map(gather_cube, 0..50i64).unwrap();
        let small = client.submit(filled, (1_000u64,)).unwrap();
        let large = client.submit(filled, (100_000u64,)).unwrap();
        let all = dask_distributed::ReturnWhen::AllCompleted;
        client.wait(&futures, None, all).unwrap();
        client
            .wait(&[small.clone(), large.clone()], None, all)
            .unwrap();
        // No worker is left to serve a value: the small ones are here already.
        assert!(cluster.kill_worker(0) && cluster.kill_worker(1));
        let expected: Vec<i64> = (0..50).map(gather_cube).collect();
        assert_eq!(client.gather(&futures).unwrap(), expected);
        assert_eq!(small.result().unwrap(), filled(1_000));
        // Beyond the limit a value stays on its worker and is lost with it:
        // it waits for a worker to recompute it.
        let limit = std::time::Duration::from_millis(300);
        match large.result_timeout(limit) {
            Err(Error::Timeout { .. }) => {}
            other => panic!("expected the large value to wait for a worker, got {other:?}"),
        }
    });
}
