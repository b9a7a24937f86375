//! AsyncClient inside a tokio runtime (#[tokio::test], current-thread and
//! multi-threaded), the as_completed Stream, async coordination waits and
//! actor calls; futures held by queues and variables across two TCP
//! clients. Oracles: std iterators and plain arithmetic on the same inputs.

use std::collections::BTreeSet;
use std::time::Duration;

use dask_core::op::Fallible;
use dask_distributed::coordination::{Event, Lock, Pub, Queue, Semaphore, Sub, Variable};
use dask_distributed::{AsyncClient, Client, Error, FutureStatus, LocalCluster, ReturnWhen};
use dask_testing::test_timeout;

fn square(x: i64) -> i64 {
    x * x
}
dask_core::register_op!(square);

fn fail_if_odd(x: i64) -> Result<i64, String> {
    if x % 2 == 1 {
        Err(format!("{x} is odd"))
    } else {
        Ok(x * 10)
    }
}
dask_core::register_op!(try fail_if_odd);

#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
struct Tally {
    total: i64,
}

impl Tally {
    fn add(&mut self, x: i64) -> i64 {
        self.total += x;
        self.total
    }
}
dask_distributed::register_actor!(Tally { add });

/// A wait that should succeed (half the test limit: a hang fails with a
/// timeout error first).
fn long() -> Duration {
    test_timeout() / 2
}

/// A wait that is meant to time out.
fn short() -> Duration {
    Duration::from_millis(50)
}

async fn local(workers: usize) -> AsyncClient {
    AsyncClient::start_local(
        LocalCluster::builder()
            .n_workers(workers)
            .threads_per_worker(2)
            .no_dashboard(),
    )
    .await
    .expect("cluster")
}

/// Runs `body` with the suite's time limit.
async fn limited<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(test_timeout(), body)
        .await
        .expect("test timed out");
}

#[tokio::test]
async fn submit_map_gather_inside_a_current_thread_runtime() {
    limited(async {
        let client = local(2).await;
        let x = client.submit(square, (7i64,)).await.unwrap();
        assert_eq!((&x).await.unwrap(), square(7));
        let futures = client.map(square, 0..40i64).await.unwrap();
        let got = client.gather(&futures).await.unwrap();
        assert_eq!(got, (0..40).map(square).collect::<Vec<_>>());
        // A future as an argument; wait() before gathering.
        let y = client.submit(square, (&x,)).await.unwrap();
        let done = client
            .wait(
                std::slice::from_ref(&y),
                Some(long()),
                ReturnWhen::AllCompleted,
            )
            .await
            .unwrap();
        assert_eq!(done.done.len(), 1);
        assert_eq!(y.await.unwrap(), square(square(7)));
        assert_eq!(client.total_threads().await.unwrap(), 4);
        client.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_completed_stream_yields_every_result_once_with_errors_as_items() {
    limited(async {
        let client = local(2).await;
        // The Fallible marker: an Err fails the task (rather than being its value).
        let futures = client
            .map::<_, Fallible<fn(i64) -> i64, String>, _, _>(fail_if_odd, 0..30i64)
            .await
            .unwrap();
        let mut stream = client.as_completed(futures).with_results();
        let (mut ok, mut failed) = (BTreeSet::new(), BTreeSet::new());
        let mut yielded = 0;
        while let Some((future, result)) = stream.next().await {
            yielded += 1;
            assert!(future.done());
            match result {
                Ok(v) => assert!(ok.insert(v), "{v} yielded twice"),
                Err(e) => {
                    assert_eq!(future.status(), FutureStatus::Error);
                    assert!(failed.insert(e.to_string()), "{e} yielded twice");
                }
            }
        }
        // Oracle: the same function over the same inputs with std iterators.
        let expected_ok: BTreeSet<i64> = (0..30).filter_map(|x| fail_if_odd(x).ok()).collect();
        assert_eq!(yielded, 30);
        assert_eq!(ok, expected_ok);
        assert_eq!(failed.len(), (0..30).filter(|x| x % 2 == 1).count());
        assert!(failed.iter().all(|e| e.contains("is odd")), "{failed:?}");

        // Plain futures, as a futures_core::Stream, from the blocking client's futures too.
        let futures = client.map(square, 100..110i64).await.unwrap();
        let mut stream = dask_distributed::as_completed_stream(futures);
        let mut keys = BTreeSet::new();
        while let Some(f) = stream.next().await {
            assert!(keys.insert(f.key().clone()));
            assert!(f.done());
        }
        assert_eq!(keys.len(), 10);
        assert_eq!(stream.remaining(), 0);
        client.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn coordination_waits_time_out_with_the_typed_error_and_succeed_otherwise() {
    limited(async {
        let client = local(1).await;
        // Lock: a second handle times out while the first holds it.
        let a = Lock::new(&client, "async-lock").unwrap();
        let b = Lock::new(&client, "async-lock").unwrap();
        a.acquire_async(long()).await.unwrap();
        let err = b.acquire_async(short()).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        a.release_async().await.unwrap();
        b.acquire_async(long()).await.unwrap();
        b.release_async().await.unwrap();
        // Semaphore(2) never admits a third.
        let sem = Semaphore::new_async(&client, "async-sem", 2).await.unwrap();
        sem.acquire_async(long()).await.unwrap();
        let _second = sem.lease_async(long()).await.unwrap();
        let err = sem.acquire_async(short()).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        sem.release_async().await.unwrap();
        // Queue: empty get times out; put then get in order.
        let q = Queue::new_async(&client, "async-queue", Some(2))
            .await
            .unwrap();
        let err = q.get_async::<i64>(short()).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        q.put_async(1i64, long()).await.unwrap();
        q.put_async(2i64, long()).await.unwrap();
        let err = q.put_async(3i64, short()).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "a full queue: {err}");
        assert_eq!(q.qsize_async().await.unwrap(), 2);
        assert_eq!(q.get_async::<i64>(long()).await.unwrap(), 1);
        assert_eq!(q.get_async::<i64>(long()).await.unwrap(), 2);
        // Event.
        let ev = Event::new(&client, "async-event").unwrap();
        let err = ev.wait_async(short()).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        ev.set_async().await.unwrap();
        ev.wait_async(long()).await.unwrap();
        assert!(ev.is_set_async().await.unwrap());
        // Variable.
        let var = Variable::new(&client, "async-var").unwrap();
        let err = var.get_async::<String>(short()).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        var.set_async("v".to_string()).await.unwrap();
        assert_eq!(var.get_async::<String>(long()).await.unwrap(), "v");
        var.delete_async().await.unwrap();
        // Pub/sub.
        let sub = Sub::new_async(&client, "async-topic").await.unwrap();
        let err = sub.get_async::<u64>(short()).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        let publisher = Pub::new(&client, "async-topic").unwrap();
        assert_eq!(publisher.put_async(5u64).await.unwrap(), 1);
        assert_eq!(sub.get_async::<u64>(long()).await.unwrap(), 5);
        client.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_abandoned_lock_acquire_gives_the_lock_back() {
    limited(async {
        let client = local(1).await;
        let holder = Lock::new(&client, "abandoned").unwrap();
        let waiter = Lock::new(&client, "abandoned").unwrap();
        holder.acquire_async(long()).await.unwrap();
        {
            // Dropped while parked on the scheduler.
            let acquire = waiter.acquire_async(long());
            let gave_up = tokio::time::timeout(short(), acquire).await;
            assert!(gave_up.is_err());
        }
        holder.release_async().await.unwrap(); // granted to the abandoned wait...
                                               // ...which gives it back: a third handle gets it.
        let third = Lock::new(&client, "abandoned").unwrap();
        third.acquire_async(long()).await.unwrap();
        third.release_async().await.unwrap();
        client.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn actor_calls_are_awaited() {
    limited(async {
        let client = local(1).await;
        let tally = client.submit_actor(Tally::default()).await.unwrap();
        let mut expected = 0;
        for x in 1..=20i64 {
            expected += x;
            let got = tally.call(Tally::add, (x,)).unwrap().await.unwrap();
            assert_eq!(got, expected);
        }
        // Pipelined: issue all, then await in order.
        let calls: Vec<_> = (0..50i64)
            .map(|x| tally.call(Tally::add, (x,)).unwrap())
            .collect();
        for (x, call) in (0..50i64).zip(calls) {
            expected += x;
            assert_eq!(call.await.unwrap(), expected);
        }
        assert_eq!(tally.state().unwrap().await.unwrap().total, expected);
        client.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn the_blocking_api_inside_a_runtime_is_a_typed_error() {
    limited(async {
        let client = local(1).await;
        let x = client.submit(square, (3i64,)).await.unwrap();
        let err = x.result().unwrap_err();
        assert!(matches!(err, Error::InsideRuntime), "{err}");
        assert!(err.to_string().contains("AsyncClient"), "{err}");
        let err = client.client().gather(&[x]).unwrap_err();
        assert!(matches!(err, Error::InsideRuntime), "{err}");
        let started = LocalCluster::builder().start();
        assert!(matches!(started, Err(Error::InsideRuntime)));
        let err = Client::connect(client.scheduler_addr()).unwrap_err();
        assert!(matches!(err, Error::InsideRuntime), "{err}");
        // The async client to the same scheduler works.
        let other = AsyncClient::connect(client.scheduler_addr()).await.unwrap();
        assert_eq!(other.workers().await.unwrap().len(), 1);
        other.close().await;
        client.shutdown().await;
    })
    .await;
}

/// Polls `cond` (a scheduler round trip) until it holds, up to `limit`.
fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "{what} did not happen in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_future_in_a_queue_keeps_its_value_until_another_client_takes_it() {
    dask_testing::within(test_timeout(), || {
        let cluster = LocalCluster::builder()
            .n_workers(1)
            .threads_per_worker(1)
            .no_dashboard()
            .start()
            .unwrap();
        let a = Client::connect(&cluster.scheduler_addr()).unwrap();
        let b = Client::connect(&cluster.scheduler_addr()).unwrap();
        let queue_a = Queue::new(&a, "futures", None).unwrap();
        let queue_b = Queue::new(&b, "futures", None).unwrap();
        let x = a.submit(square, (12i64,)).unwrap();
        assert_eq!(x.result().unwrap(), square(12));
        let key = x.key().clone();
        queue_a.put_future(&x, long()).unwrap();
        drop(x);
        // A's release went out before this question: the queue still holds it.
        let held = a.who_has(std::slice::from_ref(&key)).unwrap();
        assert!(!held[0].1.is_empty(), "dropped with its last future");
        assert_eq!(queue_b.qsize().unwrap(), 1);

        let y = queue_b.get_future::<i64>(long()).unwrap();
        assert_eq!(y.key(), &key);
        assert_eq!(
            b.gather(std::slice::from_ref(&y)).unwrap(),
            vec![square(12)]
        );
        // Used as an argument by B's next task.
        let z = b.submit(square, (&y,)).unwrap();
        assert_eq!(z.result().unwrap(), square(square(12)));
        drop((y, z));
        // Nobody holds it any more: the scheduler forgets it.
        eventually(long(), "forgetting the key", || {
            b.task_state(&key).unwrap().is_none()
        });

        // Wrong kinds are refused, the item consumed.
        queue_a.put(5i64, long()).unwrap();
        let err = queue_b.get_future::<i64>(long()).unwrap_err();
        assert!(matches!(err, Error::Coordination { .. }), "{err}");
        let w = a.submit(square, (2i64,)).unwrap();
        queue_a.put_future(&w, long()).unwrap();
        let err = queue_b.get::<i64>(long()).unwrap_err();
        assert!(err.to_string().contains("get_future"), "{err}");
        let w_key = w.key().clone();
        drop(w);
        eventually(long(), "forgetting a refused future", || {
            a.task_state(&w_key).unwrap().is_none()
        });
        drop((queue_a, queue_b, a, b));
        cluster.shutdown();
    });
}

#[test]
fn a_future_in_a_variable_is_held_until_overwritten_or_deleted() {
    dask_testing::within(test_timeout(), || {
        let cluster = LocalCluster::builder()
            .n_workers(1)
            .threads_per_worker(1)
            .no_dashboard()
            .start()
            .unwrap();
        let a = Client::connect(&cluster.scheduler_addr()).unwrap();
        let b = Client::connect(&cluster.scheduler_addr()).unwrap();
        let var_a = Variable::new(&a, "model").unwrap();
        let var_b = Variable::new(&b, "model").unwrap();
        let first = a.submit(square, (3i64,)).unwrap();
        first.result().unwrap();
        let first_key = first.key().clone();
        var_a.set_future(&first).unwrap();
        drop(first);
        let held = a.who_has(std::slice::from_ref(&first_key)).unwrap();
        assert!(!held[0].1.is_empty());
        // Every get gives a future of the getter (the variable keeps it).
        for _ in 0..2 {
            let got = var_b.get_future::<i64>(long()).unwrap();
            assert_eq!(got.result().unwrap(), square(3));
        }
        // Overwritten: the first value is let go once B's futures are gone.
        let second = a.submit(square, (4i64,)).unwrap();
        var_a.set_future(&second).unwrap();
        eventually(long(), "releasing the overwritten future", || {
            a.task_state(&first_key).unwrap().is_none()
        });
        let second_key = second.key().clone();
        drop(second);
        let got = var_b.get_future::<i64>(long()).unwrap();
        assert_eq!(got.result().unwrap(), square(4));
        let err = var_b.get_future::<String>(long()).unwrap_err();
        assert!(matches!(err, Error::Coordination { .. }), "{err}");
        var_a.delete().unwrap();
        drop(got);
        eventually(long(), "releasing the deleted future", || {
            a.task_state(&second_key).unwrap().is_none()
        });
        drop((var_a, var_b, a, b));
        cluster.shutdown();
    });
}

#[tokio::test]
async fn futures_pass_through_an_async_queue_between_two_clients() {
    limited(async {
        let a = local(1).await;
        let b = AsyncClient::connect(a.scheduler_addr()).await.unwrap();
        let qa = Queue::new_async(&a, "async-futures", None).await.unwrap();
        let qb = Queue::new_async(&b, "async-futures", None).await.unwrap();
        // B waits first: the put hands the future straight to it.
        let getter = tokio::spawn(async move { qb.get_future_async::<i64>(long()).await });
        let futures = a.map(square, 0..5i64).await.unwrap();
        for f in &futures {
            qa.put_future_async(f, long()).await.unwrap();
        }
        let first = getter.await.unwrap().unwrap();
        drop(futures);
        let qb = Queue::new_async(&b, "async-futures", None).await.unwrap();
        let mut rest = Vec::new();
        for _ in 0..4 {
            rest.push(qb.get_future_async::<i64>(long()).await.unwrap());
        }
        let mut got = vec![first.await.unwrap()];
        got.extend(b.gather(&rest).await.unwrap());
        assert_eq!(got, (0..5).map(square).collect::<Vec<_>>());
        b.close().await;
        a.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_worker_on_a_current_thread_runtime_runs_tasks_on_its_task_threads() {
    limited(async {
        let scheduler = dask_distributed::scheduler::server::start("127.0.0.1:0")
            .await
            .unwrap();
        let addr = scheduler.addr().to_string();
        let worker = dask_distributed::worker::start(&addr, 1).await.unwrap();
        let client = AsyncClient::connect(&addr).await.unwrap();
        for i in 0..3i64 {
            let x = client.submit(square, (i,)).await.unwrap();
            assert_eq!(x.await.unwrap(), square(i));
        }
        // This runtime cannot move its other work off a blocked thread, so
        // no task starts on the thread that received it.
        let metrics = worker.metrics();
        assert_eq!(metrics.tasks_executed, 3);
        assert_eq!(metrics.tasks_started_inline, 0);
        client.shutdown().await;
        worker.kill();
    })
    .await;
}
