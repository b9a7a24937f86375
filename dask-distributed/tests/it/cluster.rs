//! End to end: a scheduler and workers over real TCP on 127.0.0.1 (workers as
//! tasks of this process), a blocking Client, results checked against the sync
//! scheduler.

use std::time::Duration;

use dask_core::op::fn_op;
use dask_core::{delayed, try_delayed, Arg, Collection, Graph, Key, Scheduler, Task, Value};
use dask_distributed::scheduler::server::{self, SchedulerHandle};
use dask_distributed::worker::{self, WorkerHandle};
use dask_distributed::Client;
use dask_sync_scheduler::SyncScheduler;

fn inc(x: i64) -> i64 {
    x + 1
}
dask_core::register_op!(inc);

/// Order-sensitive combination of its inputs plus a constant.
fn mix(inputs: Vec<Value>, constant: u64) -> u64 {
    inputs
        .iter()
        .map(|v| *v.downcast_ref::<u64>().expect("u64 inputs"))
        .fold(constant, |acc, x| acc.wrapping_mul(31).wrapping_add(x))
}
dask_core::register_op!(mix);

fn slow_mix(inputs: Vec<Value>, constant: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(2));
    mix(inputs, constant)
}
dask_core::register_op!(slow_mix);

fn fail_if_negative(x: i64) -> Result<i64, String> {
    if x < 0 {
        Err(format!("{x} is negative"))
    } else {
        Ok(x)
    }
}
dask_core::register_op!(try fail_if_negative);

fn explode(_x: i64) -> i64 {
    panic!("intentional panic on a worker")
}
dask_core::register_op!(explode);

struct Cluster {
    runtime: tokio::runtime::Runtime,
    scheduler: SchedulerHandle,
    workers: Vec<WorkerHandle>,
}

impl Cluster {
    fn start(n_workers: usize, nthreads: u32) -> Cluster {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (scheduler, workers) = runtime.block_on(async {
            let scheduler = server::start("127.0.0.1:0").await.unwrap();
            let addr = scheduler.addr().to_string();
            let mut workers = Vec::new();
            for _ in 0..n_workers {
                workers.push(worker::start(&addr, nthreads).await.unwrap());
            }
            (scheduler, workers)
        });
        Cluster {
            runtime,
            scheduler,
            workers,
        }
    }

    fn client(&self) -> Client {
        Client::connect(&self.scheduler.addr().to_string()).unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for w in &self.workers {
            w.kill();
        }
        self.scheduler.shutdown();
    }
}

/// A random DAG of `mix` tasks: task i reads up to 3 earlier tasks. Keys are
/// named after the seed: a key names one computation, cluster-wide.
fn random_graph(seed: u64, n: usize, op: std::sync::Arc<dyn dask_core::Op>) -> (Graph, Vec<Key>) {
    let name = format!("m{seed}");
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut rand = move |m: u64| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s % m.max(1)
    };
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
        .filter(|i| i % 7 == 0 || *i == n as u64 - 1)
        .map(|i| Key::new(name.as_str(), [i]))
        .collect();
    (g, outputs)
}

fn as_u64(values: &[Value]) -> Vec<u64> {
    values
        .iter()
        .map(|v| *v.downcast_ref::<u64>().unwrap())
        .collect()
}

#[test]
fn submit_inc_nine_gives_ten() {
    let cluster = Cluster::start(2, 1);
    let client = cluster.client();
    let x = delayed(inc).call((9i64,));
    assert_eq!(x.compute_with(&client).unwrap(), inc(9));
    let y = delayed(inc).call((&x,));
    assert_eq!(y.compute_with(&client).unwrap(), inc(inc(9)));
}

#[test]
fn random_graphs_match_the_sync_scheduler() {
    let cluster = Cluster::start(3, 2);
    let client = cluster.client();
    for seed in 0..20 {
        let (g, outputs) = random_graph(seed, 150, fn_op(mix));
        let expected = as_u64(&SyncScheduler::new().compute(&g, &outputs).unwrap());
        let got = as_u64(&client.compute(&g, &outputs).unwrap());
        assert_eq!(got, expected, "seed {seed}");
    }
}

#[test]
fn failing_and_panicking_tasks_name_the_failing_key() {
    let cluster = Cluster::start(2, 1);
    let client = cluster.client();
    let bad = try_delayed(fail_if_negative).call((-3i64,));
    let downstream = delayed(inc).call((&bad,));
    let sync_err = downstream.compute_with(&SyncScheduler::new()).unwrap_err();
    let err = downstream.compute_with(&client).unwrap_err();
    // The chain is fused into one task under the downstream key, on every scheduler.
    assert_eq!(err.failed_key(), sync_err.failed_key());
    match &err {
        dask_core::Error::TaskFailed { op, message, .. } => {
            assert_eq!(op, "fail_if_negative");
            assert!(message.contains("-3 is negative"), "{message}");
        }
        other => panic!("expected TaskFailed, got {other:?}"),
    }
    // Unfused (computed directly as the output), the failing task's own key.
    let err = bad.compute_with(&client).unwrap_err();
    assert_eq!(err.failed_key(), Some(bad.key()));

    let boom = delayed(explode).call((1i64,));
    let err = boom.compute_with(&client).unwrap_err();
    assert_eq!(
        err.failed_key(),
        boom.compute_with(&SyncScheduler::new())
            .unwrap_err()
            .failed_key()
    );
    assert_eq!(err.failed_key(), Some(boom.key()));
    assert!(err.to_string().contains("intentional panic"), "{err}");

    // The cluster keeps serving.
    assert_eq!(delayed(inc).call((1i64,)).compute_with(&client).unwrap(), 2);
}

#[test]
fn closures_are_refused_before_submission() {
    let cluster = Cluster::start(1, 1);
    let client = cluster.client();
    let x = delayed(|a: i64| a * 2).call((4i64,));
    let err = x.compute_with(&client).unwrap_err();
    assert!(
        matches!(err, dask_core::Error::OpNotRegistered { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("register_op!"), "{err}");
}

#[test]
fn killing_a_worker_mid_graph_still_gives_the_right_answer() {
    for round in 0..3 {
        let cluster = Cluster::start(3, 1);
        let client = cluster.client();
        let (g, outputs) = random_graph(100 + round, 300, fn_op(slow_mix));
        let expected = as_u64(&SyncScheduler::new().compute(&g, &outputs).unwrap());
        let victim = &cluster.workers[round as usize % 3];
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(60));
                victim.kill();
            });
            let got = as_u64(&client.compute(&g, &outputs).unwrap());
            assert_eq!(got, expected, "round {round}");
        });
        assert!(victim.is_finished());
        let _ = &cluster.runtime;
    }
}

#[test]
fn a_dead_scheduler_fails_waits_instead_of_hanging() {
    let cluster = Cluster::start(1, 1);
    let client = cluster.client();
    let (g, outputs) = random_graph(7, 400, fn_op(slow_mix));
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            cluster.scheduler.shutdown();
        });
        let err = client.compute(&g, &outputs).unwrap_err();
        assert!(matches!(err, dask_core::Error::Scheduler { .. }), "{err}");
    });
}

#[test]
fn local_cluster_and_client_new() {
    let client = Client::new().unwrap();
    let cluster = client.cluster().expect("Client::new owns a cluster");
    assert_eq!(cluster.n_workers(), 1);
    assert!(
        cluster
            .to_string()
            .starts_with("LocalCluster(scheduler=tcp://127.0.0.1:"),
        "{cluster}"
    );
    // The owning client shows its cluster, dashboard included.
    let shown = client.to_string();
    assert!(
        shown.starts_with("Client(scheduler=tcp://127.0.0.1:")
            && shown.contains("dashboard=http://"),
        "{shown}"
    );
    let (g, outputs) = random_graph(3, 100, fn_op(mix));
    let expected = as_u64(&SyncScheduler::new().compute(&g, &outputs).unwrap());
    assert_eq!(as_u64(&client.compute(&g, &outputs).unwrap()), expected);
    // shutdown stops the owned cluster: its scheduler no longer listens.
    let addr = client.scheduler_addr().to_owned();
    client.shutdown();
    assert!(Client::connect(&addr).is_err(), "{addr} still listens");

    let cluster = dask_distributed::LocalCluster::builder()
        .n_workers(3)
        .threads_per_worker(1)
        .start()
        .unwrap();
    assert_eq!(cluster.total_threads(), 3);
    let client = cluster.client().unwrap();
    assert_eq!(as_u64(&client.compute(&g, &outputs).unwrap()), expected);
    // A client that does not own the cluster asks the scheduler.
    let shown = client.to_string();
    assert!(
        shown.starts_with("Client(scheduler=tcp://127.0.0.1:")
            && shown.contains("workers=3, threads=3"),
        "{shown}"
    );
    assert!(cluster.kill_worker(0));
    assert_eq!(as_u64(&client.compute(&g, &outputs).unwrap()), expected);

    let err = dask_distributed::LocalCluster::builder()
        .n_workers(0)
        .start()
        .err()
        .unwrap();
    assert!(
        matches!(err, dask_distributed::Error::InvalidConfig { .. }),
        "{err}"
    );
}

#[test]
fn one_client_shared_by_several_threads() {
    // Regression: replies to concurrent requests were matched by arrival order.
    let cluster = Cluster::start(2, 2);
    let client = cluster.client();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let client = &client;
            s.spawn(move || {
                // Every thread also computes one graph all threads share (same
                // keys): no compute may release what another still waits for.
                let (shared, shared_out) = random_graph(4242, 120, fn_op(mix));
                let shared_expected =
                    as_u64(&SyncScheduler::new().compute(&shared, &shared_out).unwrap());
                assert_eq!(
                    as_u64(&client.compute(&shared, &shared_out).unwrap()),
                    shared_expected
                );
                for round in 0..5 {
                    let (g, outputs) = random_graph(1000 + t * 10 + round, 80, fn_op(mix));
                    let expected = as_u64(&SyncScheduler::new().compute(&g, &outputs).unwrap());
                    assert_eq!(as_u64(&client.compute(&g, &outputs).unwrap()), expected);
                }
            });
        }
    });
}

fn add(a: i64, b: i64) -> i64 {
    a + b
}
dask_core::register_op!(add);

#[test]
fn futures_submit_result_and_status() {
    use dask_distributed::FutureStatus;
    let cluster = Cluster::start(2, 1);
    let client = cluster.client();

    // The seed: submit(inc, 9) gives 10, and the status ends finished.
    let fut = client.submit(inc, (9i64,)).unwrap();
    assert_eq!(fut.result().unwrap(), inc(9));
    assert_eq!(fut.status(), FutureStatus::Finished);
    assert!(fut.done());

    // Futures as arguments: the values stay on the workers.
    let a = client.submit(inc, (1i64,)).unwrap();
    let b = client.submit(inc, (2i64,)).unwrap();
    let c = client.submit(add, (&a, &b)).unwrap();
    assert_eq!(c.result().unwrap(), inc(1) + inc(2));
    let d = client.submit(add, (&c, 100i64)).unwrap();
    assert_eq!(d.result().unwrap(), inc(1) + inc(2) + 100);

    // A clone keeps the value alive after the original is dropped.
    let a2 = a.clone();
    drop(a);
    assert_eq!(a2.result().unwrap(), inc(1));

    // Failures: typed, on the future and on everything that depends on it.
    let boom = client.submit(explode, (1i64,)).unwrap();
    let err = boom.result().unwrap_err();
    match &err {
        dask_distributed::Error::Core(e) => assert_eq!(e.failed_key(), Some(boom.key())),
        other => panic!("expected a task failure, got {other:?}"),
    }
    assert_eq!(boom.status(), FutureStatus::Error);
    let after = client.submit(inc, (&boom,)).unwrap();
    match after.result().unwrap_err() {
        dask_distributed::Error::Core(e) => assert_eq!(e.failed_key(), Some(boom.key())),
        other => panic!("expected a task failure, got {other:?}"),
    }

    // gather, in order, checked against plain Rust.
    let futures: Vec<_> = (0..20i64)
        .map(|i| client.submit(inc, (i,)).unwrap())
        .collect();
    assert_eq!(
        client.gather(&futures).unwrap(),
        (0..20).map(inc).collect::<Vec<_>>()
    );

    // Closures cannot go to another process: refused at submit.
    let err = client.submit(|x: i64| x + 1, (1i64,)).unwrap_err();
    assert!(
        matches!(
            err,
            dask_distributed::Error::Core(dask_core::Error::OpNotRegistered { .. })
        ),
        "{err}"
    );
}

#[test]
fn futures_with_closures_on_an_in_process_cluster() {
    #[derive(Clone, Debug, PartialEq)]
    struct Opaque(Vec<i64>); // no codec: never serialized in-process
    let client = Client::new().unwrap();
    let data = client
        .submit(|n: i64| Opaque((0..n).collect()), (5i64,))
        .unwrap();
    let total = client
        .submit(|o: Opaque| o.0.iter().sum::<i64>(), (&data,))
        .unwrap();
    assert_eq!(total.result().unwrap(), (0..5).sum::<i64>());
    assert_eq!(data.result().unwrap(), Opaque((0..5).collect()));
    let fails = client
        .submit(|x: i64| -> i64 { panic!("intentional panic {x}") }, (3i64,))
        .unwrap();
    let err = fails.result().unwrap_err();
    assert!(err.to_string().contains("intentional panic 3"), "{err}");
}

#[test]
fn map_and_await_inside_a_user_runtime() {
    let cluster = Cluster::start(2, 1);
    let client = cluster.client();
    let futures = client.map(inc, 0..50i64).unwrap();
    assert_eq!(
        client.gather(&futures).unwrap(),
        (0..50).map(inc).collect::<Vec<_>>()
    );

    // `.await` inside the user's own (single-threaded) runtime: no blocking call.
    let user_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let a = client.submit(inc, (41i64,)).unwrap();
    let b = client.submit(add, (&a, 1i64)).unwrap();
    let (va, vb) = user_rt.block_on(async { ((&a).await, b.await) });
    assert_eq!(va.unwrap(), inc(41));
    assert_eq!(vb.unwrap(), inc(41) + 1);
    // The blocking call refuses to run inside a runtime instead of panicking.
    let err = user_rt.block_on(async { a.result() }).unwrap_err();
    assert!(
        matches!(err, dask_distributed::Error::InsideRuntime),
        "{err}"
    );
}
