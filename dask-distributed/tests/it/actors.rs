//! Actors on LocalClusters over real TCP: exact counters under calls from
//! many tasks and two clients, order per caller, the dead-worker and
//! unknown-method cases, and the actor's state freed with its last handle.
//! Oracles: plain arithmetic (every increment returns a distinct value,
//! together exactly 1..=N) and a worker-side drop record.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use dask_distributed::coordination::{Event, Variable};
use dask_distributed::{ActorHandle, Client, Error, LocalCluster};
use dask_testing::{test_timeout, within};
use serde::{Deserialize, Serialize};

/// A wait that should succeed: half the test's limit.
fn long() -> Duration {
    test_timeout() / 2
}

fn cluster(n_workers: usize, threads: u32) -> LocalCluster {
    LocalCluster::builder()
        .n_workers(n_workers)
        .threads_per_worker(threads)
        .no_dashboard()
        .start()
        .unwrap()
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct Counter {
    n: u64,
}

impl Counter {
    fn increment(&mut self) -> u64 {
        self.n += 1;
        self.n
    }
    fn add(&mut self, x: u64) -> u64 {
        self.n += x;
        self.n
    }
    fn value(&mut self) -> u64 {
        self.n
    }
    fn explode(&mut self) -> u64 {
        panic!("intentional panic in an actor method")
    }
    /// Blocks until the event `event` on the scheduler at `scheduler` is set.
    fn wait_for(&mut self, scheduler: String, event: String) -> u64 {
        let event = Event::new(&scheduler, event).expect("event");
        u64::from(event.wait(long()).is_ok())
    }
    /// A method left out of the registration.
    fn not_registered(&mut self) -> u64 {
        self.n
    }
}
dask_distributed::register_actor!(Counter {
    increment,
    add,
    value,
    explode,
    wait_for
});

/// Calls `increment` `n` times on `counter` from inside a task; returns the
/// values it saw.
fn increment_times(counter: ActorHandle<Counter>, n: u64) -> Vec<u64> {
    (0..n)
        .map(|_| {
            counter
                .call(Counter::increment, ())
                .expect("call")
                .result()
                .expect("result")
        })
        .collect()
}
dask_core::register_op!(increment_times);

#[test]
fn an_actor_counter_incremented_10000_times_from_tasks_and_clients_is_exact() {
    within(test_timeout(), || {
        let client = Client::with_cluster(cluster(2, 2)).unwrap();
        let counter = client.submit_actor(Counter::default()).unwrap();
        // 10 tasks of in-process closures holding the client's handle.
        let handle = counter.clone();
        let closures = client
            .map(
                move |_task: u64| -> Vec<u64> { increment_times(handle.clone(), 450) },
                0..10u64,
            )
            .unwrap();
        // 10 tasks of a registered op from a second (wire) client: the
        // handle travels by its codec.
        let wire = client.cluster().unwrap().client().unwrap();
        let registered: Vec<_> = (0..10)
            .map(|_| {
                wire.submit_with(
                    increment_times,
                    (counter.clone(), 450u64),
                    &dask_distributed::SubmitOptions::new().pure(false),
                )
                .unwrap()
            })
            .collect();
        // 1000 from the client itself, all in flight at once.
        let calls: Vec<_> = (0..1000)
            .map(|_| counter.call(Counter::increment, ()).unwrap())
            .collect();
        let mut seen: Vec<u64> = calls.into_iter().map(|c| c.result().unwrap()).collect();
        for values in client.gather(&closures).unwrap() {
            seen.extend(values);
        }
        for values in wire.gather(&registered).unwrap() {
            seen.extend(values);
        }
        // Every increment saw a distinct count: together exactly 1..=10_000.
        assert_eq!(seen.len(), 10_000);
        let distinct: HashSet<u64> = seen.iter().copied().collect();
        assert_eq!(distinct, (1..=10_000u64).collect::<HashSet<u64>>());
        assert_eq!(
            counter.call(Counter::value, ()).unwrap().result().unwrap(),
            10_000
        );
        assert_eq!(counter.state().unwrap().result().unwrap().n, 10_000);
    });
}

#[test]
fn two_clients_call_one_actor_and_each_sees_its_calls_in_order() {
    within(test_timeout(), || {
        let cluster = cluster(2, 1);
        let a = cluster.client().unwrap();
        let b = cluster.client().unwrap();
        let counter = a.submit_actor(Counter::default()).unwrap();
        // The handle travels to the other client through a Variable.
        Variable::new(&a, "actor-two-clients")
            .unwrap()
            .set(counter.clone())
            .unwrap();
        let theirs: ActorHandle<Counter> = Variable::new(&b, "actor-two-clients")
            .unwrap()
            .get(long())
            .unwrap();
        assert_eq!(theirs.key(), counter.key());
        let (mine, other) = std::thread::scope(|s| {
            let mine = s.spawn(|| {
                let calls: Vec<_> = (0..200)
                    .map(|_| counter.call(Counter::add, (1u64,)).unwrap())
                    .collect();
                calls
                    .into_iter()
                    .map(|c| c.result().unwrap())
                    .collect::<Vec<u64>>()
            });
            let other = s.spawn(|| {
                let calls: Vec<_> = (0..200)
                    .map(|_| theirs.call(Counter::add, (5u64,)).unwrap())
                    .collect();
                calls
                    .into_iter()
                    .map(|c| c.result().unwrap())
                    .collect::<Vec<u64>>()
            });
            (mine.join().unwrap(), other.join().unwrap())
        });
        // Each caller's calls ran in the order it made them.
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
        assert!(other.windows(2).all(|w| w[0] < w[1]), "{other:?}");
        let total = 200 + 200 * 5;
        assert_eq!(theirs.state().unwrap().result().unwrap().n, total);
        // `.await` inside a tokio runtime.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let value = rt
            .block_on(async { counter.call(Counter::value, ()).unwrap().await })
            .unwrap();
        assert_eq!(value, total);
    });
}

#[test]
fn a_dead_workers_actor_fails_pending_and_later_calls_with_actor_lost() {
    within(test_timeout(), || {
        let cluster = cluster(2, 1);
        let client = cluster.client().unwrap();
        let counter = client.submit_actor(Counter::default()).unwrap();
        // Round robin: another actor soon lands on the other worker (other
        // tests' actors may take turns in between).
        let survivor = loop {
            let s = client.submit_actor(Counter::default()).unwrap();
            if s.worker() != counter.worker() {
                break s;
            }
        };
        assert_eq!(
            counter
                .call(Counter::increment, ())
                .unwrap()
                .result()
                .unwrap(),
            1
        );
        // A call that cannot finish until the test says so.
        let scheduler = cluster.scheduler_addr();
        let pending = counter
            .call(
                Counter::wait_for,
                (scheduler.clone(), "actor-dead-worker".to_owned()),
            )
            .unwrap();
        let i = cluster
            .worker_addrs()
            .iter()
            .position(|a| a == counter.worker())
            .unwrap();
        assert!(cluster.kill_worker(i));
        match pending.result_timeout(long()) {
            Err(Error::ActorLost { worker, .. }) => assert_eq!(worker, counter.worker()),
            other => panic!("expected ActorLost, got {other:?}"),
        }
        let later = counter
            .call(Counter::increment, ())
            .and_then(|c| c.result_timeout(long()));
        assert!(matches!(later, Err(Error::ActorLost { .. })), "{later:?}");
        // The other worker's actor is unaffected.
        assert_eq!(
            survivor
                .call(Counter::add, (3u64,))
                .unwrap()
                .result()
                .unwrap(),
            3
        );
        // Let the abandoned method's thread end.
        Event::new(&client, "actor-dead-worker")
            .unwrap()
            .set()
            .unwrap();
    });
}

/// A type never given to `register_actor!`.
struct NotAnActor;

#[test]
fn unknown_methods_unregistered_types_and_failing_methods_get_typed_errors() {
    within(test_timeout(), || {
        let cluster = cluster(1, 1);
        let client = cluster.client().unwrap();
        let counter = client.submit_actor(Counter::default()).unwrap();
        match counter.call(Counter::not_registered, ()) {
            Err(Error::UnknownActorMethod { method, detail, .. }) => {
                assert_eq!(method, "not_registered");
                assert!(detail.contains("register_actor!"), "{detail}");
            }
            other => panic!("expected UnknownActorMethod, got {other:?}"),
        }
        let closure = counter.call(|c: &mut Counter| c.n, ());
        assert!(
            matches!(closure, Err(Error::UnknownActorMethod { .. })),
            "{closure:?}"
        );
        match client.submit_actor(NotAnActor) {
            Err(Error::ActorNotRegistered { actor_type }) => assert_eq!(actor_type, "NotAnActor"),
            other => panic!("expected ActorNotRegistered, got {other:?}"),
        }
        match counter.call(Counter::explode, ()).unwrap().result() {
            Err(Error::ActorCallFailed {
                method, message, ..
            }) => {
                assert_eq!(method, "explode");
                assert!(message.contains("intentional panic"), "{message}");
            }
            other => panic!("expected ActorCallFailed, got {other:?}"),
        }
        // The actor survived its failing method.
        assert_eq!(
            counter
                .call(Counter::add, (2u64,))
                .unwrap()
                .result()
                .unwrap(),
            2
        );
    });
}

/// Tokens of `Tracked` actors whose state was dropped (on the worker).
static DROPPED: Mutex<Vec<u64>> = Mutex::new(Vec::new());

#[derive(Clone, Serialize, Deserialize)]
struct Tracked {
    token: u64,
}

impl Tracked {
    fn token(&mut self) -> u64 {
        self.token
    }
}
dask_distributed::register_actor!(Tracked { token });

impl Drop for Tracked {
    fn drop(&mut self) {
        DROPPED.lock().unwrap().push(self.token);
    }
}

fn dropped(token: u64) -> bool {
    DROPPED.lock().unwrap().contains(&token)
}

#[test]
fn dropping_every_handle_frees_the_actor_on_its_worker() {
    within(test_timeout(), || {
        // In-process: the initial state is moved, never copied, so the only
        // `Tracked` with this token is the worker's.
        let client = Client::with_cluster(cluster(1, 1)).unwrap();
        let token = 7_700_001;
        let handle = client.submit_actor(Tracked { token }).unwrap();
        let key = handle.key().clone();
        let clone = handle.clone();
        drop(handle);
        assert_eq!(
            clone.call(Tracked::token, ()).unwrap().result().unwrap(),
            token
        );
        assert!(!dropped(token), "a clone still holds it");
        assert!(client.task_state(&key).unwrap().is_some());
        drop(clone);
        // Released: the scheduler forgets the key and the worker drops the
        // state (the watchdog bounds the wait).
        while !dropped(token) || client.task_state(&key).unwrap().is_some() {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            DROPPED
                .lock()
                .unwrap()
                .iter()
                .filter(|t| **t == token)
                .count(),
            1
        );
    });
}
