//! The futures API beyond submit/result: submit options (pure keys,
//! priority, retries, worker restrictions, explicit keys), cancel, wait,
//! as_completed, fire_and_forget, scatter, persist. Every test runs on a
//! LocalCluster (real TCP scheduler, workers in this process) under a
//! watchdog; results are checked against plain Rust.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use dask_core::Key;
use dask_distributed::scheduler::state::Status;
use dask_distributed::{
    Client, Error, FutureStatus, LocalCluster, ReturnWhen, ScatterOptions, SubmitOptions,
};
use dask_testing::{silence_intentional_panics, test_timeout, within};

static CALLS: Mutex<Option<HashMap<i64, usize>>> = Mutex::new(None);

/// Squares `x`, counting calls per input (inputs are unique per test).
fn counted_square(x: i64) -> i64 {
    *CALLS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .entry(x)
        .or_default() += 1;
    x * x
}
dask_core::register_op!(counted_square);

fn calls_of(x: i64) -> usize {
    CALLS
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|m| m.get(&x).copied())
        .unwrap_or(0)
}

fn add(a: i64, b: i64) -> i64 {
    a + b
}
dask_core::register_op!(add);

/// A latch tasks wait on, so a test controls when they finish. Waits are
/// bounded (the test's time limit), so a forgotten latch cannot hang.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

/// Opens its gate when dropped, so a failing test does not leave task
/// threads waiting (the cluster's runtime waits for them when it stops).
struct OpenOnDrop(Gate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

impl Gate {
    fn opener(&self) -> OpenOnDrop {
        OpenOnDrop(self.clone())
    }

    /// A task body that waits at the gate, then gives its input back.
    fn passing(&self) -> impl Fn(i64) -> i64 + Clone + Send + Sync + 'static {
        let gate = self.clone();
        move |x: i64| {
            gate.wait();
            x
        }
    }

    fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }
    fn wait(&self) {
        let (lock, cvar) = &*self.0;
        let guard = lock.lock().unwrap();
        let _ = cvar
            .wait_timeout_while(guard, test_timeout(), |open| !*open)
            .unwrap();
    }
}

/// Polls `cond` until it holds (bounded by the test's time limit).
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + test_timeout();
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn cluster(n_workers: usize, threads: u32) -> LocalCluster {
    LocalCluster::builder()
        .n_workers(n_workers)
        .threads_per_worker(threads)
        .start()
        .unwrap()
}

/// An in-process client (closures work) whose workers are all registered.
fn in_process(n_workers: usize, threads: u32) -> Client {
    let client = Client::with_cluster(cluster(n_workers, threads)).unwrap();
    assert!(eventually(|| client.workers().unwrap().len() == n_workers));
    client
}

fn limit() -> Duration {
    test_timeout()
}

#[test]
fn pure_keys_run_once_and_impure_ones_do_not_share() {
    within(limit(), || {
        let cluster = cluster(2, 1);
        let client = cluster.client().unwrap();
        let x = 7_000_001i64;
        let a = client.submit(counted_square, (x,)).unwrap();
        let b = client.submit(counted_square, (x,)).unwrap();
        assert_eq!(a.key(), b.key(), "same op and arguments: same key");
        assert_eq!(a.result().unwrap(), x * x);
        assert_eq!(b.result().unwrap(), x * x);
        assert_eq!(calls_of(x), 1, "computed once");

        // Different arguments, different keys.
        let c = client.submit(counted_square, (x + 1,)).unwrap();
        assert_ne!(a.key(), c.key());
        assert_eq!(c.result().unwrap(), (x + 1) * (x + 1));

        // pure(false): a new key each time, and it runs again.
        let impure = SubmitOptions::new().pure(false);
        let d = client.submit_with(counted_square, (x,), &impure).unwrap();
        assert_ne!(a.key(), d.key());
        assert_eq!(d.result().unwrap(), x * x);
        assert_eq!(calls_of(x), 2);

        // Futures as arguments are named by their keys.
        let s1 = client.submit(add, (&a, &c)).unwrap();
        let s2 = client.submit(add, (&a, &c)).unwrap();
        assert_eq!(s1.key(), s2.key());
        assert_eq!(s1.result().unwrap(), x * x + (x + 1) * (x + 1));

        // An explicit key.
        let key = Key::named("my-chosen-key");
        let e = client
            .submit_with(add, (2i64, 3i64), &SubmitOptions::new().key(key.clone()))
            .unwrap();
        assert_eq!(e.key(), &key);
        assert_eq!(e.result().unwrap(), add(2, 3));
        // map refuses one key for many tasks.
        let err = client
            .map_with(counted_square, [1i64], &SubmitOptions::new().key(key))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    });
}

#[test]
fn closures_fall_back_to_unique_keys() {
    within(limit(), || {
        let client = in_process(1, 2);
        let f = |x: i64| x * 3;
        let a = client.submit(f, (5i64,)).unwrap();
        let b = client.submit(f, (5i64,)).unwrap();
        assert_ne!(a.key(), b.key(), "a closure has no tag: no content key");
        assert_eq!(client.gather(&[a, b]).unwrap(), vec![15, 15]);
    });
}

#[test]
fn higher_priority_runs_first() {
    within(limit(), || {
        let client = in_process(1, 1);
        let gate = Gate::default();
        let _open_on_exit_gate = gate.opener();
        let ran = Arc::new(Mutex::new(Vec::new()));
        let record = {
            let ran = ran.clone();
            let gate = gate.clone();
            move |id: i64| {
                // Both the blocker and the filler wait: a filler that ran at
                // once would free its slot while the later submissions are
                // still arriving, and the next one would start early.
                if id <= 0 {
                    gate.wait();
                }
                ran.lock().unwrap().push(id);
                id
            }
        };
        // The blocker and a filler take the worker's two slots (saturation
        // 1.1 per thread); everything after queues at the scheduler.
        let mut futures = vec![client.submit(record.clone(), (-1i64,)).unwrap()];
        futures.push(client.submit(record.clone(), (0i64,)).unwrap());
        let mut expected_tail = Vec::new();
        for i in 1..=12i64 {
            let priority = if i % 3 == 0 { 10 } else { -(i % 2) };
            let opts = SubmitOptions::new().priority(priority);
            futures.push(client.submit_with(record.clone(), (i,), &opts).unwrap());
            expected_tail.push((-priority, i));
        }
        // Every submission reached the scheduler before the gate opens.
        let last = futures.last().unwrap().key().clone();
        assert_eq!(client.task_state(&last).unwrap(), Some(Status::Queued));
        gate.open();
        let results = client.gather(&futures).unwrap();
        assert_eq!(results, (-1..=12).collect::<Vec<i64>>());
        // Oracle: by priority (higher first), then submission order. The
        // scheduler hands queued tasks out in that order, one per freed slot;
        // the worker holds at most two at once (saturation) and may start
        // those two in either order, so each task runs at most one place
        // away from its rank, and groups two priority levels apart never mix.
        expected_tail.sort();
        let mut expected = vec![-1, 0];
        expected.extend(expected_tail.iter().map(|&(_, i)| i));
        let ran = ran.lock().unwrap().clone();
        let mut sorted = ran.clone();
        sorted.sort();
        assert_eq!(sorted, (-1..=12).collect::<Vec<i64>>(), "each ran once");
        let pos = |id: i64| ran.iter().position(|&x| x == id).unwrap();
        for (rank, &id) in expected.iter().enumerate() {
            assert!(
                pos(id).abs_diff(rank) <= 1,
                "{id}: ran {ran:?}, expected {expected:?}"
            );
        }
        let of = |p: i64| {
            expected_tail
                .iter()
                .filter(move |t| t.0 == -p)
                .map(|t| pos(t.1))
        };
        assert!(of(10).max() < of(-1).min(), "ran {ran:?}");
    });
}

#[test]
fn retries_rerun_failing_tasks() {
    silence_intentional_panics();
    within(limit(), || {
        let client = in_process(2, 1);
        let flaky = |fail_times: usize| {
            let attempts = Arc::new(AtomicUsize::new(0));
            let counter = attempts.clone();
            let f = move |x: i64| -> i64 {
                if counter.fetch_add(1, Ordering::SeqCst) < fail_times {
                    panic!("intentional panic: flaky attempt");
                }
                x * 2
            };
            (f, attempts)
        };
        // Two failures, two retries: succeeds on the third attempt.
        let (f, attempts) = flaky(2);
        let fut = client
            .submit_with(f, (21i64,), &SubmitOptions::new().retries(2))
            .unwrap();
        assert_eq!(fut.result().unwrap(), 42);
        assert_eq!(attempts.load(Ordering::SeqCst), 3);

        // Two failures, one retry: fails after two attempts, typed.
        let (f, attempts) = flaky(2);
        let fut = client
            .submit_with(f, (21i64,), &SubmitOptions::new().retries(1))
            .unwrap();
        let err = fut.result().unwrap_err();
        match &err {
            Error::Core(e) => assert_eq!(e.failed_key(), Some(fut.key()), "{err}"),
            other => panic!("expected a task failure, got {other:?}"),
        }
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        assert_eq!(fut.status(), FutureStatus::Error);
    });
}

#[test]
fn worker_restrictions_place_tasks_and_bad_addresses_are_refused() {
    within(limit(), || {
        let cluster = cluster(2, 1);
        let client = cluster.client().unwrap();
        assert!(eventually(|| client.workers().unwrap().len() == 2));
        let addrs = cluster.worker_addrs();
        let target = addrs[1].clone();
        let opts = SubmitOptions::new().workers([target.clone()]);
        let futures = client.map_with(counted_square, 100..120i64, &opts).unwrap();
        assert_eq!(
            client.gather(&futures).unwrap(),
            (100..120i64).map(|x| x * x).collect::<Vec<_>>()
        );
        let keys: Vec<Key> = futures.iter().map(|f| f.key().clone()).collect();
        for (key, holders) in client.who_has(&keys).unwrap() {
            assert_eq!(holders, vec![target.clone()], "{key} ran elsewhere");
        }

        // An address no worker has: a typed error at submit, naming it.
        let bad = SubmitOptions::new().workers(["127.0.0.1:1"]);
        match client.submit_with(add, (1i64, 2i64), &bad).unwrap_err() {
            Error::UnknownWorker { addr, known } => {
                assert_eq!(addr, "127.0.0.1:1");
                assert_eq!(known.len(), 2);
            }
            other => panic!("expected UnknownWorker, got {other}"),
        }
        let none = SubmitOptions::new().workers(Vec::<String>::new());
        let err = client.submit_with(add, (1i64, 2i64), &none).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    });
}

#[test]
fn a_task_whose_only_allowed_worker_died_waits_in_no_worker() {
    within(limit(), || {
        let client = in_process(2, 1);
        let cluster = client.cluster().unwrap();
        let addrs = cluster.worker_addrs();
        let gate = Gate::default();
        let _open_on_exit_gate = gate.opener();
        let opts = SubmitOptions::new().workers([addrs[0].clone()]);
        let fut = client.submit_with(gate.passing(), (1i64,), &opts).unwrap();
        assert!(eventually(
            || client.task_state(fut.key()).unwrap() == Some(Status::Processing)
        ));
        assert!(cluster.kill_worker(0));
        assert!(eventually(
            || client.task_state(fut.key()).unwrap() == Some(Status::NoWorker)
        ));
        assert_eq!(fut.status(), FutureStatus::Pending);
        // A wait with a timeout says so instead of hanging.
        let err = client
            .wait(
                std::slice::from_ref(&fut),
                Some(Duration::from_millis(20)),
                ReturnWhen::AllCompleted,
            )
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        let err = fut.result_timeout(Duration::from_millis(20)).unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        gate.open();
        // The other worker still serves.
        assert_eq!(
            client
                .submit(|x: i64| x + 1, (1i64,))
                .unwrap()
                .result()
                .unwrap(),
            2
        );
    });
}

#[test]
fn cancel_releases_the_task_and_its_dependents() {
    within(limit(), || {
        let client = in_process(1, 2);
        let gate = Gate::default();
        let _open_on_exit_gate = gate.opener();
        let a = client.submit(gate.passing(), (1i64,)).unwrap();
        let b = client.submit(|x: i64| x + 1, (&a,)).unwrap();
        assert!(eventually(
            || client.task_state(a.key()).unwrap() == Some(Status::Processing)
        ));
        a.cancel().unwrap();
        assert_eq!(a.status(), FutureStatus::Cancelled);
        match a.result().unwrap_err() {
            Error::Cancelled { key } => assert_eq!(&key, a.key()),
            other => panic!("expected Cancelled, got {other}"),
        }
        // The dependent is cancelled by the scheduler.
        match b.result().unwrap_err() {
            Error::Cancelled { key } => assert_eq!(&key, b.key()),
            other => panic!("expected Cancelled, got {other}"),
        }
        assert_eq!(b.status(), FutureStatus::Cancelled);
        // The scheduler forgot both.
        assert!(eventually(|| client.task_state(a.key()).unwrap().is_none()
            && client.task_state(b.key()).unwrap().is_none()));
        gate.open();

        // Several at once, and the client keeps serving.
        let gate2 = Gate::default();
        let _open_on_exit_gate2 = gate2.opener();
        let g2 = gate2.clone();
        let slow = move |x: i64| {
            g2.wait();
            x
        };
        let many: Vec<_> = (0..4i64)
            .map(|i| client.submit(slow.clone(), (i,)).unwrap())
            .collect();
        client.cancel(&many).unwrap();
        assert!(many.iter().all(|f| f.status() == FutureStatus::Cancelled));
        gate2.open();
        let c = client.submit(|x: i64| x * 10, (4i64,)).unwrap();
        assert_eq!(c.result().unwrap(), 40);
    });
}

#[test]
fn wait_all_first_and_timeout() {
    within(limit(), || {
        let client = in_process(2, 1);
        let futures = client.map(|x: i64| x * x, 0..20i64).unwrap();
        let res = client
            .wait(&futures, None, ReturnWhen::AllCompleted)
            .unwrap();
        assert_eq!(res.done.len(), 20);
        assert!(res.not_done.is_empty());
        assert!(futures.iter().all(|f| f.status() == FutureStatus::Finished));
        assert_eq!(
            client.gather(&futures).unwrap(),
            (0..20i64).map(|x| x * x).collect::<Vec<_>>()
        );

        let gate = Gate::default();

        let _open_on_exit_gate = gate.opener();
        let blocked = client.submit(gate.passing(), (1i64,)).unwrap();
        let quick = client.submit(|x: i64| x + 1, (1i64,)).unwrap();
        let pair = vec![blocked.clone(), quick.clone()];
        let res = client
            .wait(&pair, None, ReturnWhen::FirstCompleted)
            .unwrap();
        assert_eq!(res.done.len(), 1);
        assert_eq!(res.done[0].key(), quick.key());
        assert_eq!(res.not_done[0].key(), blocked.key());

        let err = client
            .wait(
                &pair,
                Some(Duration::from_millis(20)),
                ReturnWhen::AllCompleted,
            )
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");

        // Cancelling from another thread ends a wait with no timeout.
        let res = std::thread::scope(|s| {
            let waiter = s.spawn(|| client.wait(&pair, None, ReturnWhen::AllCompleted));
            blocked.cancel().unwrap();
            waiter.join().unwrap()
        })
        .unwrap();
        assert_eq!(res.done.len(), 2);
        gate.open();
    });
}

#[test]
fn as_completed_yields_every_future_once() {
    within(limit(), || {
        let cluster = cluster(2, 1);
        let client = cluster.client().unwrap();
        let futures = client.map(counted_square, 200..240i64).unwrap();
        let mut got: Vec<i64> = client
            .as_completed(futures)
            .unwrap()
            .map(|f| f.result().unwrap())
            .collect();
        got.sort();
        assert_eq!(got, (200..240i64).map(|x| x * x).collect::<Vec<_>>());

        let futures = client.map(counted_square, 240..260i64).unwrap();
        let mut pairs: Vec<(i64, i64)> = client
            .as_completed(futures)
            .unwrap()
            .with_results()
            .map(|(f, r)| (r.unwrap(), f.result().unwrap()))
            .collect();
        pairs.sort();
        let expected: Vec<(i64, i64)> = (240..260i64).map(|x| (x * x, x * x)).collect();
        assert_eq!(pairs, expected);
    });
}

#[test]
fn as_completed_times_out_on_a_blocked_future() {
    within(limit(), || {
        let client = in_process(1, 1);
        let gate = Gate::default();
        let _open_on_exit_gate = gate.opener();
        let blocked = client.submit(gate.passing(), (1i64,)).unwrap();
        let mut it = client.as_completed(vec![blocked]).unwrap();
        let err = it.next_timeout(Duration::from_millis(20)).unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        gate.open();
        let f = it.next().unwrap();
        assert_eq!(f.result().unwrap(), 1);
        assert!(it.next().is_none());
    });
}

#[test]
fn fire_and_forget_runs_after_every_handle_is_dropped() {
    within(limit(), || {
        let client = in_process(1, 2);
        let gate = Gate::default();
        let _open_on_exit_gate = gate.opener();
        let (tx, rx) = std::sync::mpsc::channel::<i64>();
        let tx = Mutex::new(tx);
        let a = client.submit(gate.passing(), (21i64,)).unwrap();
        let b = client
            .submit(
                move |x: i64| {
                    let y = x * 2;
                    tx.lock().unwrap().send(y).unwrap();
                    y
                },
                (&a,),
            )
            .unwrap();
        client.fire_and_forget(&b).unwrap();
        let b_key = b.key().clone();
        drop(a);
        drop(b);
        gate.open();
        assert_eq!(rx.recv_timeout(test_timeout()).unwrap(), 21 * 2);
        // Once finished, the scheduler lets it go.
        assert!(eventually(|| client.task_state(&b_key).unwrap().is_none()));
    });
}

#[test]
fn scatter_puts_values_on_workers_for_later_submits() {
    within(limit(), || {
        let cluster = cluster(2, 1);
        let client = cluster.client().unwrap();
        assert!(eventually(|| client.workers().unwrap().len() == 2));
        let values: Vec<i64> = vec![3, 5, 7, 11];
        let futures = client.scatter(values.clone()).unwrap();
        assert!(futures
            .iter()
            .all(|f| f.status() == FutureStatus::Finished || f.status() == FutureStatus::Pending));
        assert_eq!(client.gather(&futures).unwrap(), values);
        // Round-robin: both workers hold some.
        let keys: Vec<Key> = futures.iter().map(|f| f.key().clone()).collect();
        let who_has = client.who_has(&keys).unwrap();
        let addrs = cluster.worker_addrs();
        for (i, (_, holders)) in who_has.iter().enumerate() {
            assert_eq!(holders.len(), 1);
            assert!(addrs.contains(&holders[0]));
            assert_ne!(holders[0], who_has[(i + 1) % who_has.len()].1[0]);
        }
        // Arguments of later submits.
        let sum = client.submit(add, (&futures[0], &futures[3])).unwrap();
        assert_eq!(sum.result().unwrap(), values[0] + values[3]);

        // Broadcast: every worker holds every value.
        let everywhere = client
            .scatter_with(vec![100i64, 200], &ScatterOptions::new().broadcast(true))
            .unwrap();
        let keys: Vec<Key> = everywhere.iter().map(|f| f.key().clone()).collect();
        let mut sorted_addrs = addrs.clone();
        sorted_addrs.sort();
        for (_, mut holders) in client.who_has(&keys).unwrap() {
            holders.sort();
            assert_eq!(holders, sorted_addrs);
        }
        let s = client
            .submit(add, (&everywhere[0], &everywhere[1]))
            .unwrap();
        assert_eq!(s.result().unwrap(), 300);

        // Bad input: a value without a codec to other processes, an unknown worker.
        struct Opaque;
        let err = client.scatter(vec![Opaque]).unwrap_err();
        assert!(
            matches!(err, Error::Core(dask_core::Error::NoCodec { .. })),
            "{err}"
        );
        let err = client
            .scatter_with(vec![1i64], &ScatterOptions::new().workers(["127.0.0.1:1"]))
            .unwrap_err();
        assert!(matches!(err, Error::UnknownWorker { .. }), "{err}");
    });
}

#[test]
fn scatter_in_process_needs_no_codec() {
    within(limit(), || {
        #[derive(Clone, Debug, PartialEq)]
        struct Opaque(Vec<i64>);
        let client = in_process(2, 1);
        let futures = client
            .scatter(vec![Opaque(vec![1, 2]), Opaque(vec![3])])
            .unwrap();
        let total = client
            .submit(
                |a: Opaque, b: Opaque| a.0.iter().chain(&b.0).sum::<i64>(),
                (&futures[0], &futures[1]),
            )
            .unwrap();
        assert_eq!(total.result().unwrap(), 6);
        assert_eq!(futures[1].result().unwrap(), Opaque(vec![3]));
    });
}

fn inc(x: i64) -> i64 {
    x + 1
}
dask_core::register_op!(inc);

#[test]
fn persist_keeps_results_on_the_workers() {
    use dask_core::{delayed, Collection};
    use dask_sync_scheduler::SyncScheduler;
    within(limit(), || {
        let cluster = cluster(2, 1);
        let client = cluster.client().unwrap();
        let sync = SyncScheduler::new();
        let x = delayed(counted_square).call((300i64,));
        let total = delayed(add).call((&x, &x));
        // Oracles first: the sync scheduler runs counted_square here too.
        let expected = total.compute_with(&sync).unwrap();
        let oracle = delayed(inc).call((&total,)).compute_with(&sync).unwrap();
        let calls_before = calls_of(300);

        let persisted = client.persist(&total).unwrap();
        assert_eq!(persisted.keys(), total.keys());
        assert_eq!(
            calls_of(300),
            calls_before + 1,
            "computed once on the cluster"
        );
        let key = persisted.keys()[0].clone();
        assert_eq!(client.task_state(&key).unwrap(), Some(Status::Memory));
        assert_eq!(
            client.who_has(std::slice::from_ref(&key)).unwrap()[0]
                .1
                .len(),
            1
        );

        // Reused where it is: same value, nothing recomputed.
        assert_eq!(persisted.compute_with(&client).unwrap(), expected);
        let downstream = delayed(inc).call((&persisted,));
        assert_eq!(downstream.compute_with(&client).unwrap(), oracle);
        assert_eq!(calls_of(300), calls_before + 1, "not recomputed");
        // Another scheduler fetches the values from the cluster.
        assert_eq!(downstream.compute_with(&sync).unwrap(), oracle);

        // Dropping the persisted collection releases the values.
        drop(downstream);
        drop(persisted);
        assert!(eventually(|| client.task_state(&key).unwrap().is_none()));
    });
}

#[test]
fn persist_in_process_and_failures() {
    use dask_core::{delayed, Collection};
    use dask_sync_scheduler::SyncScheduler;
    silence_intentional_panics();
    within(limit(), || {
        let client = in_process(2, 1);
        let parts: Vec<_> = (0..6i64)
            .map(|i| delayed(move |k: i64| vec![k; 3]).call((i,)))
            .collect();
        let sum = delayed(|v: Vec<i64>| v.iter().sum::<i64>());
        let sums: Vec<_> = parts.iter().map(|p| sum.call((p,))).collect();
        let persisted: Vec<_> = sums.iter().map(|s| client.persist(s).unwrap()).collect();
        let total: i64 = persisted
            .iter()
            .map(|p| p.compute_with(&client).unwrap())
            .sum();
        assert_eq!(total, (0..6i64).map(|i| 3 * i).sum::<i64>());
        let sync = SyncScheduler::new();
        assert_eq!(
            persisted[2].compute_with(&sync).unwrap(),
            sums[2].compute_with(&sync).unwrap()
        );

        // A failing task: persist gives the typed task failure.
        let bad = delayed(|x: i64| -> i64 { panic!("intentional panic {x}") }).call((1i64,));
        let err = client.persist(&bad).unwrap_err();
        assert!(err.to_string().contains("intentional panic 1"), "{err}");
    });
}

#[test]
fn a_scattered_value_lost_with_its_worker_is_a_clear_error() {
    within(limit(), || {
        let cluster = cluster(2, 1);
        let client = cluster.client().unwrap();
        assert!(eventually(|| client.workers().unwrap().len() == 2));
        let addrs = cluster.worker_addrs();
        let fut = client
            .scatter_with(
                vec![5i64],
                &ScatterOptions::new().workers([addrs[0].clone()]),
            )
            .unwrap()
            .remove(0);
        let holders = client
            .who_has(std::slice::from_ref(fut.key()))
            .unwrap()
            .remove(0)
            .1;
        assert_eq!(holders, vec![addrs[0].clone()]);
        assert!(cluster.kill_worker(0));
        assert!(eventually(|| client.workers().unwrap().len() == 1));
        let err = fut.result().unwrap_err();
        assert!(err.to_string().contains("scatter it again"), "{err}");
        // The cluster keeps serving.
        assert_eq!(
            client.submit(add, (1i64, 2i64)).unwrap().result().unwrap(),
            3
        );
    });
}

#[test]
fn a_dropped_future_still_feeds_its_pending_dependents() {
    within(limit(), || {
        let client = in_process(1, 2);
        let gate = Gate::default();
        let _open_on_exit_gate = gate.opener();
        let gated = gate.passing();
        // Temporaries dropped at once: their tasks must still run for `top`.
        let top = {
            let a = client.submit(gated.clone(), (20i64,)).unwrap();
            let b = client.submit(|x: i64| x + 1, (&a,)).unwrap();
            client.submit(|x: i64| x * 2, (&b,)).unwrap()
        };
        gate.open();
        assert_eq!(top.result().unwrap(), (20 + 1) * 2);
    });
}

/// xorshift64*: reproducible by seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1) as u64) as usize
    }
}

/// One node of the model: its value in plain Rust, its parent, whether it
/// was cancelled itself.
struct Node {
    value: i64,
    parent: Option<usize>,
    cancelled: bool,
}

fn model_cancelled(nodes: &[Node], mut i: usize) -> bool {
    loop {
        if nodes[i].cancelled {
            return true;
        }
        match nodes[i].parent {
            Some(p) => i = p,
            None => return false,
        }
    }
}

/// Random sequences of submit (literals or a future), scatter, cancel and
/// drop, checked against a model: values from plain Rust; a future is
/// cancelled iff it or an ancestor was cancelled (before or after it was
/// submitted). Once every handle is gone, the scheduler forgets every key.
fn random_futures_session(client: &Client, seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let impure = SubmitOptions::new().pure(false);
    let mut nodes: Vec<Node> = Vec::new();
    let mut live: Vec<(usize, dask_distributed::Future<i64>)> = Vec::new();
    let mut all_keys: Vec<Key> = Vec::new();
    for _ in 0..40 {
        match rng.below(10) {
            0..=2 => {
                let (a, b) = (rng.below(100) as i64, rng.below(100) as i64);
                let f = client.submit_with(add, (a, b), &impure).unwrap();
                nodes.push(Node {
                    value: a + b,
                    parent: None,
                    cancelled: false,
                });
                all_keys.push(f.key().clone());
                live.push((nodes.len() - 1, f));
            }
            3..=5 if !live.is_empty() => {
                let (p, parent) = &live[rng.below(live.len())];
                let lit = rng.below(1000) as i64;
                nodes.push(Node {
                    value: nodes[*p].value + lit,
                    parent: Some(*p),
                    cancelled: false,
                });
                let i = nodes.len() - 1;
                match client.submit_with(add, (parent, lit), &impure) {
                    Ok(f) => {
                        all_keys.push(f.key().clone());
                        live.push((i, f));
                    }
                    Err(Error::Cancelled { .. }) => {
                        assert!(model_cancelled(&nodes, i), "refused but not cancelled");
                    }
                    Err(other) => panic!("submit failed: {other}"),
                }
            }
            6 => {
                let v = rng.below(100) as i64;
                let f = client.scatter(vec![v]).unwrap().remove(0);
                nodes.push(Node {
                    value: v,
                    parent: None,
                    cancelled: false,
                });
                all_keys.push(f.key().clone());
                live.push((nodes.len() - 1, f));
            }
            7 if !live.is_empty() => {
                let (i, f) = &live[rng.below(live.len())];
                f.cancel().unwrap();
                nodes[*i].cancelled = true;
            }
            8 if !live.is_empty() => {
                let k = rng.below(live.len());
                live.swap_remove(k);
            }
            _ => {}
        }
    }
    for (i, f) in &live {
        match f.result() {
            Ok(v) => {
                assert!(
                    !model_cancelled(&nodes, *i),
                    "seed {seed}: {} not cancelled",
                    f.key()
                );
                assert_eq!(v, nodes[*i].value, "seed {seed}: value of {}", f.key());
            }
            Err(Error::Cancelled { .. }) => {
                assert!(
                    model_cancelled(&nodes, *i),
                    "seed {seed}: {} cancelled",
                    f.key()
                )
            }
            Err(other) => panic!("seed {seed}: {} failed: {other}", f.key()),
        }
    }
    drop(live);
    assert!(
        eventually(|| all_keys
            .iter()
            .all(|k| client.task_state(k).unwrap().is_none())),
        "seed {seed}: the scheduler still holds keys nobody wants"
    );
}

#[test]
fn random_futures_sessions_on_a_tcp_cluster() {
    within(limit(), || {
        let cluster = cluster(2, 1);
        let client = cluster.client().unwrap();
        assert!(eventually(|| client.workers().unwrap().len() == 2));
        for seed in 0..12 {
            random_futures_session(&client, seed);
        }
    });
}

#[test]
fn random_futures_sessions_in_process() {
    within(limit(), || {
        let client = in_process(2, 1);
        for seed in 100..112 {
            random_futures_session(&client, seed);
        }
    });
}

#[test]
fn retry_reruns_an_erred_future_and_its_erred_dependencies() {
    silence_intentional_panics();
    within(limit(), || {
        let client = in_process(2, 1);
        let attempts = Arc::new(AtomicUsize::new(0));
        let counter = attempts.clone();
        let flaky = move |x: i64| -> i64 {
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("intentional panic: first attempt");
            }
            x * 2
        };
        let a = client.submit(flaky, (21i64,)).unwrap();
        let b = client.submit(|x: i64| x + 1, (&a,)).unwrap();
        match b.result().unwrap_err() {
            Error::Core(e) => assert_eq!(e.failed_key(), Some(a.key())),
            other => panic!("expected a task failure, got {other}"),
        }
        assert_eq!(a.status(), FutureStatus::Error);
        // Retrying the dependent reruns the erred dependency first.
        b.retry().unwrap();
        assert_eq!(b.result().unwrap(), 21 * 2 + 1);
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        // `a` was rerun on the way; its report came before `b`'s.
        assert_eq!(a.status(), FutureStatus::Finished);
        assert_eq!(a.result().unwrap(), 42);
        // Retrying a finished future does nothing.
        a.retry().unwrap();
        assert_eq!(a.status(), FutureStatus::Finished);
    });
}

#[test]
fn a_task_reaching_an_idle_worker_alone_starts_on_the_thread_that_received_it() {
    within(limit(), || {
        let client = in_process(1, 1);
        let cluster = client.cluster().unwrap();
        for i in 0..5i64 {
            let got = client
                .submit(|x: i64| x * 3, (i,))
                .unwrap()
                .result()
                .unwrap();
            assert_eq!(got, i * 3);
        }
        let metrics = &cluster.worker_metrics()[0];
        assert_eq!(metrics.tasks_executed, 5);
        assert_eq!(metrics.tasks_started_inline, 5, "{metrics:?}");
        // A batch waits for the task thread instead (at most its first task
        // reaches the worker alone); every result is still right.
        let futures = client.map(|x: i64| x + 1, 0..200i64).unwrap();
        let got = client.gather(&futures).unwrap();
        assert_eq!(got, (1..201).collect::<Vec<i64>>());
        let metrics = &cluster.worker_metrics()[0];
        assert_eq!(metrics.tasks_executed, 205);
        assert!(metrics.tasks_started_inline < 205, "{metrics:?}");
    });
}

#[test]
fn a_task_blocking_its_workers_only_thread_leaves_the_worker_serving() {
    within(limit(), || {
        let client = in_process(1, 1);
        let cluster = client.cluster().unwrap();
        let held = client.scatter(vec![7i64]).unwrap();
        let gate = Gate::default();
        let _open_on_exit_gate = gate.opener();
        let blocked = client.submit(gate.passing(), (1i64,)).unwrap();
        assert!(eventually(
            || cluster.worker_metrics()[0].tasks_executing == 1
        ));
        assert_eq!(cluster.worker_metrics()[0].tasks_started_inline, 1);
        // The task blocks the thread that received it: the worker still
        // serves its data, and queues the next task for its one thread.
        assert_eq!(client.gather(&held).unwrap(), vec![7]);
        let next = client.submit(|x: i64| x + 1, (1i64,)).unwrap();
        let err = next.result_timeout(Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        gate.open();
        assert_eq!(blocked.result().unwrap(), 1);
        assert_eq!(next.result().unwrap(), 2);
        assert_eq!(client.workers().unwrap().len(), 1);
    });
}
