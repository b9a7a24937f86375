//! Worker memory, spilling, heartbeats, missing data and work stealing on a
//! LocalCluster (real TCP, in-process workers); every result is checked
//! against the sync scheduler.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use dask_core::op::fn_op;
use dask_core::{Arg, Graph, Key, Scheduler, Task, Value};
use dask_distributed::{Client, Error, LocalCluster};
use dask_sync_scheduler::SyncScheduler;
use dask_testing::within;

/// Polls `cond` until it holds; panics after `limit` (a bound against hangs,
/// not a timing assertion).
fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

const PATIENCE: Duration = Duration::from_secs(60);

/// A deterministic chunk of `len` words for seed `i`.
fn chunk(i: u64, len: u64) -> Vec<u64> {
    (0..len)
        .map(|j| (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ j)
        .collect()
}
dask_core::register_op!(chunk);

/// An order-sensitive checksum of every input chunk.
fn checksum(chunks: Vec<Value>) -> u64 {
    chunks.iter().fold(17u64, |acc, c| {
        let c = c.downcast_ref::<Vec<u64>>().expect("chunks");
        c.iter()
            .fold(acc, |a, x| a.wrapping_mul(31).wrapping_add(*x))
    })
}
dask_core::register_op!(checksum);

/// Order-sensitive combination of u64 inputs plus a constant, a little slow.
fn slow_mix(inputs: Vec<Value>, constant: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(2));
    inputs
        .iter()
        .map(|v| *v.downcast_ref::<u64>().expect("u64 inputs"))
        .fold(constant, |acc, x| acc.wrapping_mul(31).wrapping_add(x))
}
dask_core::register_op!(slow_mix);

/// Executions of [`counted`] per constant: stolen tasks must run once.
static EXECUTIONS: LazyLock<Mutex<HashMap<u64, usize>>> = LazyLock::new(Default::default);

/// Reads a big chunk, takes a while, counts its executions.
fn counted(big: Vec<u64>, i: u64) -> u64 {
    *EXECUTIONS.lock().unwrap().entry(i).or_default() += 1;
    std::thread::sleep(Duration::from_millis(15));
    big.iter().fold(i, |a, x| a.wrapping_add(*x))
}
dask_core::register_op!(counted);

fn as_u64(values: &[Value]) -> Vec<u64> {
    values
        .iter()
        .map(|v| *v.downcast_ref::<u64>().unwrap())
        .collect()
}

/// A random DAG of `slow_mix` tasks named after `seed`.
fn random_graph(seed: u64, n: usize) -> (Graph, Vec<Key>) {
    let name = format!("res{seed}");
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut rand = move |m: u64| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s % m.max(1)
    };
    let op = fn_op(slow_mix);
    let mut g = Graph::new();
    for i in 0..n {
        let deps: Vec<Arg> = (0..rand(4))
            .filter(|_| i > 0)
            .map(|_| Arg::Key(Key::new(name.as_str(), [rand(i as u64)])))
            .collect();
        g.insert(
            Key::new(name.as_str(), [i as u64]),
            Task::new(op.clone(), vec![Arg::List(deps), Arg::value(i as u64)]),
        );
    }
    let outputs = (0..n as u64)
        .filter(|i| i % 5 == 0 || *i == n as u64 - 1)
        .map(|i| Key::new(name.as_str(), [i]))
        .collect();
    (g, outputs)
}

#[test]
fn killing_the_holder_mid_graph_reports_missing_data_and_recomputes() {
    within(PATIENCE * 3, || {
        for round in 0..3u64 {
            let cluster = LocalCluster::builder()
                .n_workers(3)
                .threads_per_worker(1)
                .start()
                .unwrap();
            let client = cluster.client().unwrap();
            let (g, outputs) = random_graph(700 + round, 300);
            let expected = as_u64(&SyncScheduler::new().compute(&g, &outputs).unwrap());
            let victim = cluster.worker(round as usize).unwrap();
            std::thread::scope(|s| {
                s.spawn(|| {
                    // Kill it once it holds results others will need.
                    wait_until(PATIENCE, "the victim to run tasks", || {
                        victim.metrics().tasks_executed >= 10
                    });
                    victim.kill();
                });
                let got = as_u64(&client.compute(&g, &outputs).unwrap());
                assert_eq!(got, expected, "round {round}");
            });
            assert!(victim.is_finished() || victim.metrics().tasks_executed >= 10);
        }
    });
}

#[test]
fn data_three_times_the_memory_limit_reduces_via_spilling() {
    within(PATIENCE, || {
        let limit: u64 = 2 * 1024 * 1024; // per worker
        let words: u64 = 32 * 1024; // 256 KiB per chunk
        let n_chunks = 48u64; // 12 MiB: 3x the cluster's 4 MiB
        let spill_root =
            std::env::temp_dir().join(format!("dask-spill-test-{}", std::process::id()));
        let cluster = LocalCluster::builder()
            .n_workers(2)
            .threads_per_worker(1)
            .memory_limit(limit)
            .local_directory(&spill_root)
            .start()
            .unwrap();
        assert!(cluster.to_string().contains("memory=4.00 MiB"), "{cluster}");
        let client = cluster.client().unwrap();
        let mut g = Graph::new();
        let keys: Vec<Key> = (0..n_chunks).map(|i| Key::new("chunk", [i])).collect();
        for (i, k) in keys.iter().enumerate() {
            g.insert(
                k.clone(),
                Task::new(fn_op(chunk), vec![Arg::value(i as u64), Arg::value(words)]),
            );
        }
        let total = Key::named("checksum");
        g.insert(
            total.clone(),
            Task::new(
                fn_op(checksum),
                vec![Arg::List(keys.iter().cloned().map(Arg::Key).collect())],
            ),
        );
        let outputs = vec![total];
        let expected = as_u64(&SyncScheduler::new().compute(&g, &outputs).unwrap());
        let got = as_u64(&client.compute(&g, &outputs).unwrap());
        assert_eq!(got, expected);
        let metrics = cluster.worker_metrics();
        eprintln!("spilling 3x the limit: {metrics:#?}");
        let writes: u64 = metrics.iter().map(|m| m.store.spill_writes).sum();
        let reads: u64 = metrics.iter().map(|m| m.store.spill_reads).sum();
        assert!(writes > 0, "nothing was spilled: {metrics:?}");
        assert!(reads > 0, "nothing was read back: {metrics:?}");
        // Spilled beyond the target, never beyond the whole data.
        assert!(writes <= n_chunks * 2, "{metrics:?}");
        let dirs: Vec<_> = (0..2)
            .map(|i| cluster.worker(i).unwrap().spill_directory())
            .collect();
        assert!(dirs.iter().all(|d| d.starts_with(&spill_root)), "{dirs:?}");
        drop(client);
        drop(cluster);
        for d in dirs {
            assert!(!d.exists(), "{} was not removed at shutdown", d.display());
        }
        let _ = std::fs::remove_dir_all(&spill_root);
    });
}

/// A value with no codec (it cannot be spilled) and a declared size.
#[derive(Clone)]
struct Opaque(u64);

impl dask_core::sizeof::Sizeof for Opaque {
    fn sizeof(&self) -> u64 {
        300
    }
}
dask_core::register_sizeof!(Opaque);

/// One-thread workers with a 1 MiB memory limit (spill target 600 KiB).
fn spilling_cluster(n_workers: usize) -> LocalCluster {
    LocalCluster::builder()
        .n_workers(n_workers)
        .threads_per_worker(1)
        .memory_limit(1024 * 1024)
        .start()
        .unwrap()
}

#[test]
fn spilled_values_are_served_to_peers_over_tcp_and_to_futures() {
    use dask_distributed::protocol::Role;
    use dask_distributed::worker::PeerPool;
    within(PATIENCE, || {
        let words: u64 = 16 * 1024; // 128 KiB per value
        let cluster = spilling_cluster(2); // most of 24 values spill
        let client = cluster.client().unwrap();
        let futures: Vec<_> = (0..24u64)
            .map(|i| client.submit(chunk, (i, words)).unwrap())
            .collect();
        for (i, f) in futures.iter().enumerate() {
            assert_eq!(f.result().unwrap(), chunk(i as u64, words), "future {i}");
        }
        let spilled: u64 = cluster
            .worker_metrics()
            .iter()
            .map(|m| m.store.spilled_keys)
            .sum();
        assert!(spilled > 0, "{:?}", cluster.worker_metrics());
        // A peer's request over TCP (not the in-process shortcut): whichever
        // worker holds each value sends it, spilled or not.
        let addrs: Vec<String> = (0..2)
            .map(|i| cluster.worker(i).unwrap().data_addr().to_owned())
            .collect();
        let pool = PeerPool::new(Role::Worker);
        cluster.runtime().block_on(async {
            for (i, f) in futures.iter().enumerate() {
                let mut found = None;
                for addr in &addrs {
                    if let Ok(mut v) = pool.fetch(addr, std::slice::from_ref(f.key())).await {
                        found = v.pop();
                    }
                }
                let v = found.unwrap_or_else(|| panic!("no worker served {}", f.key()));
                assert_eq!(
                    v.downcast_ref::<Vec<u64>>().unwrap(),
                    &chunk(i as u64, words)
                );
            }
        });
    });
}

fn byte_chunk(i: u64, len: u64) -> Vec<u8> {
    (0..len).map(|j| (i * 7 + j % 251) as u8).collect()
}
dask_core::register_op!(byte_chunk);

/// Byte vectors have a split encoding and an in-place receiver: a fetch over
/// TCP reads each one straight into its vector, whether the holder sends it
/// from memory (its own buffer) or from its spill file (whole, as data).
#[test]
fn split_values_are_fetched_over_tcp_into_place_spilled_or_not() {
    use dask_distributed::protocol::Role;
    use dask_distributed::worker::PeerPool;
    within(PATIENCE, || {
        let len: u64 = 128 * 1024;
        let cluster = spilling_cluster(1); // some of 12 values spill
        let client = cluster.client().unwrap();
        let futures: Vec<_> = (0..12u64)
            .map(|i| client.submit(byte_chunk, (i, len)).unwrap())
            .collect();
        client
            .wait(&futures, None, dask_distributed::ReturnWhen::AllCompleted)
            .unwrap();
        let stats = cluster.worker_metrics()[0].store.clone();
        assert!(stats.spilled_keys > 0 && stats.memory_keys > 0, "{stats:?}");
        let addr = cluster.worker(0).unwrap().data_addr().to_owned();
        let pool = PeerPool::new(Role::Worker);
        let keys: Vec<Key> = futures.iter().map(|f| f.key().clone()).collect();
        cluster.runtime().block_on(async {
            // All in one reply (24 data frames), then one by one.
            let all = pool.fetch(&addr, &keys).await.unwrap();
            for (i, v) in all.iter().enumerate() {
                assert_eq!(
                    v.downcast_ref::<Vec<u8>>().unwrap(),
                    &byte_chunk(i as u64, len)
                );
            }
            for (i, k) in keys.iter().enumerate() {
                let v = pool.fetch(&addr, std::slice::from_ref(k)).await.unwrap();
                assert_eq!(
                    v[0].downcast_ref::<Vec<u8>>().unwrap(),
                    &byte_chunk(i as u64, len)
                );
            }
        });
    });
}

#[test]
fn values_without_a_codec_stay_in_memory_and_the_worker_says_so() {
    within(PATIENCE, || {
        let cluster = LocalCluster::builder()
            .n_workers(1)
            .threads_per_worker(1)
            .memory_limit(10_000)
            .memory_thresholds(dask_distributed::spill::MemoryThresholds {
                target: 0.01, // 100 bytes: every opaque value is beyond it
                ..Default::default()
            })
            .start()
            .unwrap();
        let client = Client::with_cluster(cluster).unwrap();
        let futures: Vec<_> = (0..3u64)
            .map(|i| client.submit(move |x: u64| Opaque(x + i), (i,)).unwrap())
            .collect();
        let sums: Vec<_> = futures
            .iter()
            .map(|f| client.submit(|o: Opaque| o.0, (f,)).unwrap())
            .collect();
        assert_eq!(
            client.gather(&sums).unwrap(),
            (0..3u64).map(|i| i + i).collect::<Vec<_>>()
        );
        let m = &client.cluster().unwrap().worker_metrics()[0];
        // The three opaque values stay (and say so); the u64 sums spill.
        assert_eq!(m.store.unspillable_bytes, 900, "{m:?}");
        assert_eq!(m.store.memory_bytes, 900, "{m:?}");
        assert_eq!(m.store.spilled_keys, 3, "{m:?}");
    });
}

#[test]
fn a_worker_above_its_pause_threshold_pauses_until_memory_is_freed() {
    use dask_distributed::metrics::WorkerStatus;
    within(PATIENCE, || {
        // Pause at 800 bytes: three unspillable values of 300 cross it.
        let cluster = LocalCluster::builder()
            .n_workers(1)
            .threads_per_worker(1)
            .memory_limit(1000)
            .start()
            .unwrap();
        let client = Client::with_cluster(cluster).unwrap();
        let metrics = || client.cluster().unwrap().worker_metrics()[0].clone();
        let held: Vec<_> = (0..3u64)
            .map(|i| client.submit(Opaque, (i,)).unwrap())
            .collect();
        wait_until(PATIENCE, "the worker to pause", || {
            metrics().status == WorkerStatus::Paused
        });
        // A task submitted now waits: on the worker, or queued by the
        // scheduler if a heartbeat told it of the pause first. Freeing the
        // values lets it run.
        let later = client.submit(|x: u64| x * 3, (7u64,)).unwrap();
        let waited = later.result_timeout(Duration::from_millis(300));
        assert!(matches!(waited, Err(Error::Timeout { .. })), "{waited:?}");
        assert!(metrics().tasks_ready <= 1);
        assert_eq!(metrics().status, WorkerStatus::Paused);
        drop(held);
        assert_eq!(later.result().unwrap(), 21);
        assert_eq!(metrics().status, WorkerStatus::Running);
    });
}

#[test]
fn a_worker_that_stops_heartbeating_is_removed_and_its_data_recomputed() {
    within(PATIENCE, || {
        let cluster = LocalCluster::builder()
            .n_workers(3)
            .threads_per_worker(1)
            .heartbeat_interval(Duration::from_millis(20))
            .worker_ttl(Duration::from_millis(500))
            .start()
            .unwrap();
        let client = cluster.client().unwrap();
        let (g, outputs) = random_graph(900, 400);
        let expected = as_u64(&SyncScheduler::new().compute(&g, &outputs).unwrap());
        let silent = cluster.worker(1).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                wait_until(PATIENCE, "the worker to run tasks", || {
                    silent.metrics().tasks_executed >= 10
                });
                silent.stop_heartbeats();
            });
            let got = as_u64(&client.compute(&g, &outputs).unwrap());
            assert_eq!(got, expected);
        });
        // The scheduler closed its connection: the worker stopped by itself.
        wait_until(PATIENCE, "the silent worker to be dropped", || {
            silent.is_finished()
        });
        // The rest of the cluster keeps serving.
        let (g, outputs) = random_graph(901, 100);
        let expected = as_u64(&SyncScheduler::new().compute(&g, &outputs).unwrap());
        assert_eq!(as_u64(&client.compute(&g, &outputs).unwrap()), expected);
    });
}

/// One big chunk and `n` slow tasks reading it: data locality puts them all
/// on the chunk's holder. Returns the tasks each worker executed.
fn skewed_by_locality(stealing: bool, base: u64, n: u64) -> Vec<u64> {
    let cluster = LocalCluster::builder()
        .n_workers(3)
        .threads_per_worker(1)
        .work_stealing(stealing)
        .start()
        .unwrap();
    let client = cluster.client().unwrap();
    let mut g = Graph::new();
    let big = Key::new("big", [base]);
    g.insert(
        big.clone(),
        Task::new(
            fn_op(chunk),
            vec![Arg::value(base), Arg::value(64 * 1024u64)],
        ),
    );
    let outputs: Vec<Key> = (0..n).map(|i| Key::new("reader", [base + i])).collect();
    for (i, k) in outputs.iter().enumerate() {
        g.insert(
            k.clone(),
            Task::new(
                fn_op(counted),
                vec![Arg::Key(big.clone()), Arg::value(base + i as u64)],
            ),
        );
    }
    let expected = as_u64(&SyncScheduler::new().compute(&g, &outputs).unwrap());
    let before = cluster.worker_metrics();
    let got = as_u64(&client.compute(&g, &outputs).unwrap());
    assert_eq!(got, expected);
    let after = cluster.worker_metrics();
    let executions = EXECUTIONS.lock().unwrap();
    for i in 0..n {
        // Once by the sync scheduler, once by the cluster.
        assert_eq!(executions.get(&(base + i)), Some(&2), "task {i}");
    }
    after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.tasks_executed - b.tasks_executed)
        .collect()
}

#[test]
fn idle_workers_steal_tasks_placed_by_locality_and_none_runs_twice() {
    within(PATIENCE, || {
        let n = 60;
        let without = skewed_by_locality(false, 10_000, n);
        // Control: locality alone puts every reader on the chunk's holder.
        assert_eq!(without.iter().filter(|&&e| e > 0).count(), 1, "{without:?}");
        let with = skewed_by_locality(true, 20_000, n);
        eprintln!("tasks per worker: without stealing {without:?}, with {with:?}");
        assert_eq!(with.iter().sum::<u64>(), n + 1, "{with:?}");
        assert!(
            with.iter().filter(|&&e| e > 0).count() >= 2,
            "no task was stolen: {with:?}"
        );
        assert!(
            *with.iter().max().unwrap() < n,
            "the holder still ran everything: {with:?}"
        );
    });
}

/// A value with no codec and a declared size of 1000 bytes.
#[derive(Clone)]
struct Kilo(u64);

impl dask_core::sizeof::Sizeof for Kilo {
    fn sizeof(&self) -> u64 {
        1000
    }
}
dask_core::register_sizeof!(Kilo);

#[test]
fn a_worker_looks_at_memory_before_each_task_and_overshoots_by_one_output_at_most() {
    use dask_distributed::metrics::WorkerStatus;
    within(PATIENCE, || {
        // Pause at 8000 bytes; every task makes 1000 unspillable bytes, far
        // faster than the memory monitor looks (every 100 ms).
        let cluster = LocalCluster::builder()
            .n_workers(1)
            .threads_per_worker(1)
            .memory_limit(10_000)
            .dashboard_port(0)
            .start()
            .unwrap();
        let thresholds = dask_distributed::spill::MemoryThresholds::default();
        let pause_at = (10_000.0 * thresholds.pause) as u64;
        let client = Client::with_cluster(cluster).unwrap();
        let metrics = || client.cluster().unwrap().worker_metrics()[0].clone();
        let n = 40u64;
        let mut futures: Vec<_> = (0..n).map(|i| client.submit(Kilo, (i,)).unwrap()).collect();
        let mut total = 0u64;
        let mut rounds = 0;
        while !futures.is_empty() {
            // Held values only grow until some are let go: the plateau, once
            // some tasks ran and the worker paused again with nothing
            // running, is the peak.
            wait_until(PATIENCE, "the worker to pause or finish", || {
                let m = metrics();
                futures.iter().any(|f| f.done())
                    && ((m.status == WorkerStatus::Paused && m.tasks_executing == 0)
                        || futures.iter().all(|f| f.done()))
            });
            let m = metrics();
            assert!(
                m.store.memory_bytes <= pause_at + 1000,
                "round {rounds}: {m:?}"
            );
            let (finished, rest): (Vec<_>, Vec<_>) = futures.into_iter().partition(|f| f.done());
            assert!(!finished.is_empty(), "round {rounds}: nothing finished");
            total += client
                .gather(&finished)
                .unwrap()
                .iter()
                .map(|k| k.0)
                .sum::<u64>();
            futures = rest;
            rounds += 1;
        }
        assert_eq!(total, (0..n).sum::<u64>());
        assert!(rounds > 1, "the worker paused on the way");
    });
}
